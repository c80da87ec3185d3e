"""``amodal segment`` end to end with a tiny model on clip folders built in code, and its input errors.

The bundled default model's run on the shared real clips is an extra check that
skips without the shared folder.
"""

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from amodal.cli import main
from amodal.data.io import rle as rle_codec
from amodal.data.io.frames import probe_frames
from amodal.data.io.masks import read_mask_folder
from amodal.viz.davis import label_image
from amodal.segmentation.model import SegmenterConfig, build_segmenter

from tiny import CLIP_FRAMES, CLIP_VARIANTS, TINY_BACKBONE, tiny_scene

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    torch.manual_seed(0)
    config = SegmenterConfig(backbone=TINY_BACKBONE, num_frames=8, height=16, width=32)
    path = tmp_path_factory.mktemp("model") / "tiny"
    build_segmenter(config).save_pretrained(path)
    return path


def segment(*args):
    return main(["segment", "--quiet", "--steps", "2", *map(str, args)])


def scene_of(name: str) -> dict:
    """The scene the ``tiny_clips`` clip ``name`` was drawn from."""
    return tiny_scene(CLIP_FRAMES, shift=1, start=CLIP_VARIANTS[name][0])


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.mark.parametrize("name", ["binary", "inverted"])
def test_segment_clip_writes_every_output(tiny_clips, tiny_model, tmp_path, name):
    clip = tiny_clips[name]
    out = tmp_path / "out"
    assert segment("--frames", clip / "rgbs", "--masks", clip / "masks", "--model", tiny_model, "--out", out,
                   "--window", 8, "--overlap", 2) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["frames"] == CLIP_FRAMES and [o["id"] for o in summary["objects"]] == [1]
    info = summary["model_info"]  # what the model is, not an empty dict
    assert (info["num_frames"], info["height"], info["width"]) == (8, 16, 32) and info["parameters"] > 0
    assert info["config"]["num_frames"] == 8
    assert summary["sampling"]["levels"] == info["default_sample_levels"] == info["config"]["sample_levels"]
    assert summary["depth"] == "none" and summary["depth_used"] is False  # no depth given: mask-only
    assert summary["windows"] == 4  # 25 frames in windows of 8 overlapping by 2
    assert all(not k.endswith("windows") for k in summary["timings_s"])  # timings are seconds only
    # The masks were read by luminance whatever the palette order: the scene's square exactly.
    assert summary["objects"][0]["modal_pixels"] == int(scene_of(name)["modal"][0].sum())
    masks = sorted((out / "masks" / "1").iterdir())
    assert len(masks) == CLIP_FRAMES
    first_modal = np.asarray(Image.open(clip / "masks" / "frame_000.png").convert("L")) > 128
    first_amodal = np.asarray(Image.open(masks[0])) > 0
    assert first_amodal.shape == first_modal.shape and first_modal.any()
    assert not (first_modal & ~first_amodal).any()  # the visible part is always kept
    per_object = json.loads((out / "amodal.json").read_text())
    decoded = rle_codec.decode(per_object["objects"][0]["amodal"][0])
    np.testing.assert_array_equal(decoded, first_amodal)
    reference = json.loads((out / "predictions_sailvos.json").read_text())
    assert len(reference) == CLIP_FRAMES and "(0, 1)" in reference
    from pycocotools.coco import COCO

    coco = COCO(str(out / "coco_instances.json"))  # the standard reader loads it
    assert len(coco.imgs) == CLIP_FRAMES
    first = coco.loadAnns(coco.getAnnIds(imgIds=[1]))
    assert len(first) == 1 and first[0]["track_id"] == 1
    np.testing.assert_array_equal(coco.annToMask(first[0]).astype(bool), first_amodal)
    assert probe_frames(out / "overlay.mp4").num_frames == CLIP_FRAMES
    assert (out / "overlay.gif").stat().st_size > 0


def test_segment_samples_pad_and_index_masks(tiny_clip, tiny_model, tmp_path):
    clip = tiny_clip
    # Two objects in one label image per frame: the clip's square (id 3) and a box below it (id 7).
    labels = tmp_path / "labels"
    labels.mkdir()
    for path in sorted((clip / "masks").iterdir())[:10]:
        modal = np.asarray(Image.open(path).convert("L")) > 128
        label = np.where(modal, 3, 0).astype(np.uint8)
        label[32:44, 4:20] = 7
        Image.fromarray(label, mode="L").save(labels / path.name)
    frames = tmp_path / "frames"
    frames.mkdir()
    for path in sorted((clip / "rgbs").iterdir())[:10]:
        shutil.copy(path, frames / path.name)
    out = tmp_path / "out"
    assert segment("--frames", frames, "--masks", labels, "--mask-mode", "index", "--model", tiny_model,
                   "--samples", 3, "--pad", 0.25, "--out", out) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [o["id"] for o in summary["objects"]] == [3, 7]
    h, w = summary["size"]
    assert summary["output_size"] == [h + 2 * round(h * 0.25), w + 2 * round(w * 0.25)]
    assert len(list((out / "uncertainty" / "7").iterdir())) == 10
    # The uncertainty video: the padded frame, enlarged (48 + 2 * 12 = 72 px high -> 4x), a colour bar below.
    video = probe_frames(out / "uncertainty.mp4")
    assert video.num_frames == 10 and video.width == 4 * summary["output_size"][1]
    assert video.height > 4 * summary["output_size"][0] + 20
    # DAVIS-style label images at the output size: read back by index they are the stated layering.
    assert summary["davis_labels"] == {"1": 3, "2": 7}
    names = [p.stem for p in sorted(frames.iterdir())]
    back = read_mask_folder(out / "davis", names, mode="index")
    assert back.object_ids == (1, 2) and back.modal.shape[2:] == tuple(summary["output_size"])
    bh, bw = ((o - i) // 2 for o, i in zip(summary["output_size"], summary["size"]))
    for t, name in enumerate(names):
        label = np.asarray(Image.open(labels / f"{name}.png"))
        modal = np.pad(label[None] == np.array([3, 7])[:, None, None], ((0, 0), (bh, bh), (bw, bw)))
        amodal = np.stack([np.asarray(Image.open(out / "masks" / str(oid) / f"{name}.png")) > 0 for oid in (3, 7)])
        np.testing.assert_array_equal(back.modal[:, t], label_image(modal, amodal) == np.array([1, 2])[:, None, None])
        # The stated rule: a visible object keeps its visible pixels; every labelled pixel is in that object's mask.
        assert (back.modal[:, t] >= modal).all() and (back.modal[:, t] <= amodal).all()
        assert (back.modal[:, t].any(0) == amodal.any(0)).all()
    only = tmp_path / "only"
    assert segment("--frames", frames, "--masks", labels, "--mask-mode", "index", "--objects", 7,
                   "--model", tiny_model, "--out", only) == 0
    assert [o["id"] for o in json.loads((only / "summary.json").read_text())["objects"]] == [7]


def test_segment_bad_inputs_are_one_line_errors(tiny_clips, tiny_model, tmp_path, capsys):
    clip = tiny_clips["inverted"]  # many palette indices, none of them 250
    few = tmp_path / "few"
    few.mkdir()
    for path in sorted((clip / "masks").iterdir())[:5]:
        shutil.copy(path, few / path.name)
    out = tmp_path / "out"
    cases = [
        (["--frames", clip / "rgbs", "--masks", few, "--model", tiny_model], f"5 masks for {CLIP_FRAMES} frames"),
        (["--frames", clip / "rgbs", "--masks", clip / "masks", "--mask-mode", "index", "--objects", 250,
          "--model", tiny_model], "object id 250 not found"),
        (["--frames", clip / "rgbs", "--masks", clip / "masks", "--model", tmp_path], "not a model folder"),
        (["--frames", tmp_path / "missing", "--masks", clip / "masks", "--model", tiny_model], "not found"),
        (["--frames", clip / "rgbs", "--masks", clip / "masks", "--model", tiny_model, "--resolution", "15x33"],
         "multiples of"),
    ]
    for args, message in cases:
        assert segment(*args, "--out", out) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("amodal: error:") and message in err and "\n" not in err, err
        assert not out.exists()  # nothing half-written
    assert not any(p.name.startswith(".out") for p in tmp_path.iterdir())


def test_default_model_on_a_clip(tiny_clip, tmp_path):
    """The bundled default model end to end: it recovers part of the square hidden by the bar (few steps, as below)."""
    out = tmp_path / "out"
    assert segment("--frames", tiny_clip / "rgbs", "--masks", tiny_clip / "masks", "--out", out, "--samples", 2) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "default" and summary["frames"] == CLIP_FRAMES
    assert 1.0 <= summary["objects"][0]["amodal_to_modal_ratio"] < 3.0
    scene = scene_of("binary")
    amodal = np.stack([np.asarray(Image.open(f)) > 0 for f in sorted((out / "masks" / "1").iterdir())])
    modal, truth = scene["modal"][0], scene["amodal"][0]
    assert not (modal & ~amodal).any()
    assert iou(amodal, truth) > iou(modal, truth) + 0.05  # better than answering the visible part


@pytest.mark.parametrize("name", ["birdcage", "giraffe", "horse"])
def test_default_model_on_real_clips(real_clips_dir, tmp_path, name):
    """The bundled default model end to end on real footage it never saw (few steps to keep CI fast)."""
    clip = real_clips_dir / name
    out = tmp_path / name
    assert segment("--frames", clip / "rgbs", "--masks", clip / "masks", "--out", out, "--samples", 2) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["model"] == "default" and summary["frames"] == 25
    ratio = summary["objects"][0]["amodal_to_modal_ratio"]
    assert 1.0 <= ratio < 3.0  # contains the visible part and does not flood the frame
    assert probe_frames(out / "uncertainty.mp4").num_frames == 25


def test_segment_with_amodal_boxes_stays_inside_them(tiny_clips, tiny_model, tmp_path, capsys):
    clip = tiny_clips["binary"]
    modal = scene_of("binary")["modal"][0]
    ys, xs = np.nonzero(modal.any(0))
    box = [int(xs.min()), int(ys.min()), int(xs.max() + 1 - xs.min()), int(ys.max() + 1 - ys.min())]
    frames = len(modal)
    boxes = tmp_path / "boxes.json"
    boxes.write_text(json.dumps({"1": [box] * (frames - 1) + [None]}))
    out = tmp_path / "out"
    assert segment("--frames", clip / "rgbs", "--masks", clip / "masks", "--model", tiny_model,
                   "--amodal-boxes", boxes, "--out", out) == 0
    masks = np.stack([np.asarray(Image.open(p)) > 0 for p in sorted((out / "masks" / "1").iterdir())])
    x, y, w, h = box
    outside = masks[:-1].copy()
    outside[:, y : y + h, x : x + w] = False
    assert not outside.any()  # never outside the box (the last frame has none)
    assert not (modal & ~masks).any()
    summary = json.loads((out / "summary.json").read_text())
    assert summary["settings"]["amodal_boxes"] == str(boxes)
    assert summary["sampling"]["box_mode"] == "clip"  # the model's own: a model not trained on box crops
    capsys.readouterr()
    boxes.write_text(json.dumps({"1": [box]}))  # one frame's worth for a longer clip
    assert segment("--frames", clip / "rgbs", "--masks", clip / "masks", "--model", tiny_model,
                   "--amodal-boxes", boxes, "--out", tmp_path / "bad") == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"amodal: error: --amodal-boxes {boxes}: object 1 needs one entry per frame") and "\n" not in err
    assert not (tmp_path / "bad").exists()
    assert segment("--frames", clip / "rgbs", "--masks", clip / "masks", "--model", tiny_model,
                   "--amodal-boxes", boxes, "--out", boxes, "--overwrite") == 2  # an input is never the output
    assert json.loads(boxes.read_text()) == {"1": [box]}


def test_segment_saves_the_depth_it_estimated(tiny_clip, tiny_model, tmp_path, capsys):
    """--save-depth: 16-bit PNGs over the video's range, read back to the depth the model estimated."""
    from amodal.depth import estimate_depth, load_depth_model
    from amodal.data.io.frames import read_frames
    from amodal.data.io.loader import read_depth

    from tiny import tiny_depth_network

    depth_model = tmp_path / "depth-model"
    tiny_depth_network().save_pretrained(depth_model, safe_serialization=True)
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    for kind, folder in (("rgbs", frames), ("masks", masks)):
        folder.mkdir()
        for path in sorted((tiny_clip / kind).iterdir())[:6]:
            shutil.copy(path, folder / path.name)
    out = tmp_path / "out"
    assert segment("--frames", frames, "--masks", masks, "--model", tiny_model, "--depth-model", depth_model,
                   "--save-depth", "--out", out) == 0
    summary = json.loads((out / "summary.json").read_text())
    low, high = summary["depth_range"]
    names = [p.stem for p in sorted(frames.iterdir())]
    assert sorted(p.name for p in (out / "depth").iterdir()) == sorted(f"{n}.png" for n in names)  # no float copies left
    png = Image.open(out / "depth" / f"{names[0]}.png")
    assert png.mode.startswith("I;16") or png.mode == "I"
    stored = read_depth(out / "depth", names)  # the loader of --depth reads them as they are
    assert stored.min() == 0 and stored.max() == 65535
    expected = estimate_depth(load_depth_model(str(depth_model)), read_frames(frames), progress=False)
    np.testing.assert_allclose(low + stored / 65535 * (high - low), expected, atol=(high - low) / 65535 + 1e-5)
    # Saving depth needs estimated depth.
    capsys.readouterr()
    assert segment("--frames", frames, "--masks", masks, "--model", tiny_model, "--save-depth", "--out", tmp_path / "o2") == 2
    assert "--save-depth" in capsys.readouterr().err and not (tmp_path / "o2").exists()
