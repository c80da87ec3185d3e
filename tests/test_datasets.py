"""Dataset adapters: SAIL-VOS / synthetic format, TAO-Amodal, MOVi, windows; all yield amodal.Clip."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amodal import Clip
from amodal.data.datasets import index_dataset, open_dataset
from amodal.data.datasets.base import RleStack, decode_rles
from amodal.data.datasets.base import split_item
from amodal.data.windows import plan_windows
from amodal.errors import InputError
from amodal.data.io import rle

from tiny import SCENE_H, SCENE_W, tiny_scene

H, W = SCENE_H, SCENE_W  # frame size of the tiny synthetic split


def _box(mask: np.ndarray) -> list[float]:
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return [0.0, 0.0, 0.0, 0.0]
    return [float(xs.min()), float(ys.min()), float(xs.max() + 1 - xs.min()), float(ys.max() + 1 - ys.min())]


def write_synthetic_split(root: Path, split: str = "test", videos: int = 2, frames: int = 6) -> list[dict]:
    """Write ``videos`` tiny videos in our synthetic format (SAIL-VOS clips + depth + amodal RGB).

    Video ``v`` shifts the square start by ``v`` pixels. Returns the scenes.
    """
    folder = root / split
    entries, scenes = [], []
    for v in range(videos):
        scene = tiny_scene(frames, start=6 + v)
        scenes.append(scene)
        vid = f"{split}_{v:06d}"
        base = folder / "videos" / vid
        names = [f"frame_{t:05d}" for t in range(frames)]
        for sub in ("rgb", "depth", "amodal_rgb/1", "amodal_rgb/2"):
            (base / sub).mkdir(parents=True, exist_ok=True)
        for t, name in enumerate(names):
            Image.fromarray(scene["frames"][t]).save(base / "rgb" / f"{name}.png")
            Image.fromarray(scene["depth"][t]).save(base / "depth" / f"{name}.png")
            for k in (1, 2):
                look = np.full((H, W, 3), 255, np.uint8)
                look[scene["amodal"][k - 1, t]] = (40, 200, 60) if k == 1 else (200, 40, 40)
                Image.fromarray(look).save(base / "amodal_rgb" / str(k) / f"{name}.png")
        for k in (1, 2):
            entries.append(
                {
                    "obj_id": k,
                    "category_id": k + 2,
                    "image_ids": [1000 * (v + 1) + t for t in range(frames)],
                    "image_file_names": [f"videos/{vid}/rgb/{n}.png" for n in names],
                    "segmentation": [rle.encode(m) for m in scene["amodal"][k - 1]],
                    "visible_mask": [rle.encode(m) for m in scene["modal"][k - 1]],
                    "bbox": [_box(m) for m in scene["amodal"][k - 1]],  # the true amodal box, as `amodal data synth` writes
                    "video_id": vid,
                    "height": H,
                    "width": W,
                    "fps": 8.0,
                    "depth_file_names": [f"videos/{vid}/depth/{n}.png" for n in names],
                    "amodal_rgb_file_names": [f"videos/{vid}/amodal_rgb/{k}/{n}.png" for n in names],
                }
            )
    (folder / "annotations.json").write_text(json.dumps(entries))
    return scenes


def write_movi_video(folder: Path, frames: int = 4) -> dict:
    """One MOVi-layout video folder: the tiny scene with the square as instance 0 and the bar as instance 1."""
    scene = tiny_scene(frames)
    folder.mkdir(parents=True)
    meta = {
        "metadata": {"num_frames": frames, "height": H, "width": W},
        "instances": [{"category": 3}, {"category": 5}],
    }
    (folder / "metadata.json").write_text(json.dumps(meta))
    for t in range(frames):
        rgba = np.concatenate([scene["frames"][t], np.full((H, W, 1), 255, np.uint8)], axis=-1)
        Image.fromarray(rgba).save(folder / f"rgba_full_{t:05d}.png")
        index_map = np.zeros((H, W), np.uint8)
        index_map[scene["modal"][0, t]] = 1
        index_map[scene["modal"][1, t]] = 2
        Image.fromarray(index_map).save(folder / f"segmentation_full_{t:05d}.png")
        for k in range(2):
            Image.fromarray(scene["amodal"][k, t].astype(np.uint8) * (k + 1)).save(
                folder / f"segmentation_{k}_{t:05d}.png"
            )
        Image.fromarray(scene["depth"][t].astype(np.float32) / 1000).save(folder / f"depth_full_{t:05d}.tiff")
    return scene


# ----------------------------------------------------------------------------- synthetic / SAIL-VOS format
def test_synthetic_split_yields_one_clip_per_video_with_depth_and_amodal_rgb(tmp_path):
    scenes = write_synthetic_split(tmp_path)
    index = index_dataset("synthetic", tmp_path, "test")
    assert len(index) == 2
    item = index.item(1)
    clip = item.clip
    assert isinstance(clip, Clip)
    assert clip.object_ids == (1, 2) and clip.category_ids == (3, 4)
    assert clip.frames.shape == (6, H, W, 3)
    np.testing.assert_array_equal(clip.modal_masks, scenes[1]["modal"])
    np.testing.assert_array_equal(clip.amodal_masks, scenes[1]["amodal"])
    # Inverse depth from millimetres: 1000 / z, nearer is larger.
    np.testing.assert_allclose(clip.depth, 1000.0 / scenes[1]["depth"], rtol=1e-6)
    assert clip.depth[0][scenes[1]["amodal"][1, 0]].min() > clip.depth[0][0, 0]
    assert clip.amodal_rgb.shape == (2, 6, H, W, 3)
    assert (clip.amodal_rgb[0][~scenes[1]["amodal"][0]] == 255).all()
    assert clip.frame_names[0] == "frame_00000"
    assert item.annotation.video == "test_000001"
    assert item.annotation.frame_keys[:2] == (2000, 2001)
    assert [c.num_objects for c in open_dataset("synthetic", tmp_path)] == [2, 2]


def test_ground_truth_reads_without_frames_and_crops_exactly(tmp_path):
    scenes = write_synthetic_split(tmp_path, videos=1)
    for png in (tmp_path / "test").rglob("*.png"):
        png.unlink()
    index = index_dataset("synthetic", tmp_path)
    full = index.annotation(0)
    cropped = index.annotation(0, cropped=True)
    np.testing.assert_array_equal(full.amodal_masks, scenes[0]["amodal"])
    assert cropped.cropped and cropped.size == (H, W)
    y0, x0 = cropped.origin
    h, w = cropped.amodal_masks.shape[2:]
    np.testing.assert_array_equal(full.amodal_masks[:, :, y0 : y0 + h, x0 : x0 + w], cropped.amodal_masks)
    assert full.amodal_masks.sum() == cropped.amodal_masks.sum()
    with pytest.raises(InputError, match="frame_00000.png: file not found"):
        index.item(0)


def test_sailvos_fixture_annotations(shared_dir):
    path = shared_dir / "fixtures" / "official_metrics" / "sailvos" / "annotations.json"
    index = index_dataset("sailvos", annotations=path)
    assert len(index) == 8
    annotation = index.annotation(0)
    assert annotation.size == (800, 1280)
    assert annotation.object_keys == (24,) and annotation.frame_keys[0] == 100000
    assert annotation.video == "video000/images"
    assert annotation.amodal_masks.shape == (1, 25, 800, 1280)
    assert (annotation.amodal_masks >= annotation.modal_masks).all()


def test_tao_fixture_maps_tracks_to_relative_ids(shared_dir):
    folder = shared_dir / "fixtures" / "official_metrics" / "tao_amodal"
    index = index_dataset("tao-amodal", annotations=folder / "annotations.json")  # offsets file found beside it
    assert len(index) == 6
    annotation = index.annotation(0)
    # Track 66 of video 1324 whose first track is 64: relative id "3", as the predictions use.
    assert annotation.video == "1324" and annotation.object_ids == (66,) and annotation.object_keys == ("3",)
    assert annotation.frame_keys[0] == "frame0000.jpg"
    assert annotation.amodal_masks is None and annotation.amodal_boxes.shape == (1, 25, 4)
    assert annotation.modal_masks.shape == (1, 25, 720, 1280)


def test_movi_folder_layout(tmp_path):
    scene = write_movi_video(tmp_path / "test" / "video_7")
    index = index_dataset("movi", tmp_path, "test")
    assert len(index) == 1
    clip = index.item(0).clip
    assert clip.object_ids == (1, 2) and clip.category_ids == (3, 5)
    np.testing.assert_array_equal(clip.modal_masks, scene["modal"])
    np.testing.assert_array_equal(clip.amodal_masks, scene["amodal"])
    np.testing.assert_allclose(clip.depth, 1000.0 / scene["depth"], rtol=1e-5)
    np.testing.assert_array_equal(clip.frames, scene["frames"])
    assert index.annotation(0).video == "video_7"


# ----------------------------------------------------------------------------- RLE checks and bad input
def test_rle_windows_and_boxes_match_full_decoding():
    rng = np.random.default_rng(0)
    masks = rng.random((5, 17, 23)) < 0.3
    masks[1] = False
    rles = [rle.encode(m) for m in masks] + [None]
    stack = RleStack.parse(rles, None, "x")
    full = stack.decode()
    np.testing.assert_array_equal(full[:5], masks)
    assert not full[5].any()
    ys, xs = np.nonzero(masks.any(axis=0))
    assert stack.box() == (ys.min(), ys.max() + 1, xs.min(), xs.max() + 1)
    np.testing.assert_array_equal(stack.decode((3, 11, 2, 20)), full[:, 3:11, 2:20])
    # Uncompressed list counts too.
    runs = {"size": [2, 2], "counts": [1, 2, 1]}
    np.testing.assert_array_equal(decode_rles([runs], None, "x")[0], [[False, True], [True, False]])


@pytest.mark.parametrize(
    "counts, message",
    [
        ("", "not a COCO compressed string"),
        ("P1370000", "runs cover"),
        ("zz", "not a COCO"),
        ("P13700000l05", "runs cover"),
    ],
)
def test_corrupt_rle_is_named(counts, message):
    good = rle.encode(np.eye(10, dtype=bool))
    with pytest.raises(InputError, match=rf"f\.json: entry \[3\]\[1\]: corrupt RLE counts \({message}"):
        decode_rles([good, {"size": [10, 10], "counts": counts}], None, "f.json: entry [3]")


def test_bad_annotation_files_name_the_entry(tmp_path):
    write_synthetic_split(tmp_path, videos=1)
    path = tmp_path / "test" / "annotations.json"
    entries = json.loads(path.read_text())
    del entries[1]["visible_mask"]
    path.write_text(json.dumps(entries))
    with pytest.raises(InputError, match=r"entry \[1\] lacks visible_mask"):
        index_dataset("synthetic", tmp_path)
    path.write_text("{not json")
    with pytest.raises(InputError, match="not valid JSON"):
        index_dataset("synthetic", tmp_path)
    path.write_text(json.dumps({"a": 1}))
    with pytest.raises(InputError, match="expected a JSON list"):
        index_dataset("synthetic", tmp_path)
    with pytest.raises(InputError, match="split folder not found"):
        index_dataset("synthetic", tmp_path, "val")


def test_wrong_frame_size_names_the_file(tmp_path):
    write_synthetic_split(tmp_path, videos=1)
    frame = tmp_path / "test" / "videos" / "test_000000" / "rgb" / "frame_00002.png"
    Image.fromarray(np.zeros((H, W + 1, 3), np.uint8)).save(frame)
    with pytest.raises(InputError, match=r"frame_00002.png: image is 65x48 but the annotations say 64x48"):
        index_dataset("synthetic", tmp_path).item(0)


# ----------------------------------------------------------------------------- windows
def test_windows_cover_every_frame_once_with_a_shifted_tail():
    windows = plan_windows(25, 10)
    assert [(w.start, w.stop, w.scored_from) for w in windows] == [(0, 10, 0), (10, 20, 10), (15, 25, 20)]
    assert [(w.start, w.stop, w.scored_from) for w in plan_windows(7, 10)] == [(0, 7, 0)]
    assert [(w.start, w.stop, w.scored_from) for w in plan_windows(20, 10)] == [(0, 10, 0), (10, 20, 10)]
    scored = [f for w in plan_windows(23, 4) for f in range(w.scored_from, w.stop)]
    assert scored == list(range(23))
    with pytest.raises(InputError, match="--window must be >= 1"):
        plan_windows(5, 0)


def test_split_item_slices_clip_and_ground_truth(tmp_path):
    write_synthetic_split(tmp_path, videos=1)
    item = index_dataset("synthetic", tmp_path).item(0)
    parts = list(split_item(item, 4))
    assert [(w.start, w.stop, w.scored_from) for _, w in parts] == [(0, 4, 0), (2, 6, 4)]
    second, _ = parts[1]
    np.testing.assert_array_equal(second.clip.modal_masks, item.clip.modal_masks[:, 2:6])
    np.testing.assert_array_equal(second.annotation.amodal_masks, item.annotation.amodal_masks[:, 2:6])
    assert second.annotation.frame_keys == item.annotation.frame_keys[2:6]
    assert [w for _, w in split_item(item, None)][0].stop == 6
