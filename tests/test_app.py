"""``amodal app``'s plain functions (apps/webapp.py): uploads into a Clip, picking objects by a click, a run and its
zip, and a one-line message for every bad input. The page itself is driven in a browser by test_app_browser.py."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amodal.apps import webapp
from amodal.apps.webapp import AppConfig, RunSettings
from amodal.cli import main
from amodal.errors import InputError

pytestmark = pytest.mark.usefixtures("one_thread")

FAST = AppConfig(example_frames=4, layer_size=32, model="default-regression", completion_model="default-completion-regression")
FAST_SETTINGS = RunSettings(model="default-regression", completion_model="default-completion-regression")


@pytest.fixture(scope="module")
def clip():
    """The bundled example's first 4 frames (128x256, five objects, with depth)."""
    return webapp.load_example(webapp.DEMO_EXAMPLE, FAST)


def _zip(path: Path, files: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def _png(array: np.ndarray, palette: bool = False) -> bytes:
    import io

    image = Image.fromarray(array.astype(np.uint8))
    if palette:
        image = image.convert("P")
        image.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0, 128, 128, 0, 0, 0, 128, 128, 0, 128] + [0] * (256 * 3 - 18))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def _frames_zip(clip, path: Path, folder: str = "rgbs/") -> Path:
    return _zip(path, {f"{folder}{name}.png": _png(frame) for name, frame in zip(clip.frame_names, clip.frames)})


def _index_masks_zip(clip, path: Path, size=None, count=None) -> Path:
    files = {}
    for t, name in enumerate(clip.frame_names[:count]):
        labels = np.zeros(clip.size, np.uint8)
        for k, oid in enumerate(clip.object_ids):
            labels[clip.modal_masks[k, t]] = oid
        if size is not None:
            labels = np.asarray(Image.fromarray(labels).resize(size[::-1], Image.Resampling.NEAREST))
        files[f"masks/{name}.png"] = _png(labels, palette=True)
    return _zip(path, files)


def _one_line(error: pytest.ExceptionInfo) -> str:
    message = webapp.error_message(error.value)
    assert "\n" not in message and "Traceback" not in message, message
    assert "amodal-app-upload" not in message, message  # temporary folders are named by the upload
    return message


# Loading -----------------------------------------------------------------------------------------
def test_the_example_is_the_demo_clip_cut_short_without_ground_truth(clip):
    assert clip.num_frames == 4 and clip.size == (128, 256)
    assert clip.object_ids == (1, 2, 3, 4, 5)
    assert clip.amodal_masks is None and clip.amodal_rgb is None and clip.depth is not None
    with pytest.raises(InputError, match="unknown example"):
        webapp.load_example("nope", FAST)


def test_a_video_with_palette_label_masks(clip, tmp_path):
    from amodal.data.io.writers import write_animation

    video = tmp_path / "street.mp4"
    write_animation(video, clip.frames, 8.0)
    loaded = webapp.load_upload(video, _index_masks_zip(clip, tmp_path / "labels.zip"), "auto", FAST)
    assert loaded.source == "street.mp4" and loaded.num_frames == 4
    assert loaded.object_ids == clip.object_ids
    np.testing.assert_array_equal(loaded.modal_masks, clip.modal_masks)
    assert np.abs(loaded.frames.astype(int) - clip.frames).mean() < 12  # lossy video


def test_frames_zip_with_per_object_folders_or_an_rle_json(clip, tmp_path):
    from amodal.data.io.writers import write_rle_json

    frames = _frames_zip(clip, tmp_path / "frames.zip")
    per_object = _zip(tmp_path / "objects.zip", {
        f"{oid}/{name}.png": _png(clip.modal_masks[k, t] * 255)
        for k, oid in enumerate(clip.object_ids[:2]) for t, name in enumerate(clip.frame_names)
    })
    loaded = webapp.load_upload(frames, per_object, "auto", FAST)
    np.testing.assert_array_equal(loaded.frames, clip.frames)
    assert loaded.object_ids == (1, 2)
    np.testing.assert_array_equal(loaded.modal_masks, clip.modal_masks[:2])

    rle = write_rle_json(tmp_path / "masks.json", clip.frame_names, clip.object_ids, clip.modal_masks)
    loaded = webapp.load_upload(frames, rle, "auto", FAST)
    np.testing.assert_array_equal(loaded.modal_masks, clip.modal_masks)


def test_mask_kind_is_guessed(clip, tmp_path):
    one = clip.modal_masks[4]
    # A binary mask whose object is palette index 0 (white), as in the wild: luminance.
    inverted = tmp_path / "inverted"
    inverted.mkdir()
    for t in range(clip.num_frames):
        image = Image.fromarray((~one[t]).astype(np.uint8)).convert("P")
        image.putpalette([255, 255, 255, 0, 0, 0] + [0] * (256 * 3 - 6))
        image.save(inverted / f"{t}.png")
    assert webapp.guess_mask_mode(inverted) == "luminance"
    loaded = webapp.load_upload(_frames_zip(clip, tmp_path / "f.zip"),
                                _zip(tmp_path / "m.zip", {p.name: p.read_bytes() for p in inverted.iterdir()}), "auto", FAST)
    assert loaded.object_ids == (1,)
    np.testing.assert_array_equal(loaded.modal_masks[0], one)
    # DAVIS-style palette labels (dark colours, several ids): index.
    labels = tmp_path / "labels"
    labels.mkdir()
    (labels / "0.png").write_bytes(_png(np.array([[0, 1], [2, 1]]), palette=True))
    assert webapp.guess_mask_mode(labels) == "index"
    # Gray label images with many ids, some bright: index (mid tones everywhere).
    many = tmp_path / "many"
    many.mkdir()
    Image.fromarray(np.arange(0, 250, 10, dtype=np.uint8).reshape(5, 5).repeat(4, 0).repeat(4, 1)).save(many / "0.png")
    assert webapp.guess_mask_mode(many) == "index"
    # A one-object mask with soft edges over a hundred palette indices, as in the wild: luminance.
    soft = tmp_path / "soft"
    soft.mkdir()
    yy, xx = np.mgrid[:160, :160]
    radius = np.hypot(yy - 80, xx - 80)
    gray = (np.clip(60.5 - radius, 0, 1) * 255).round().astype(np.uint8)  # a disc, its rim anti-aliased
    assert len(np.unique(gray)) > 20
    Image.fromarray(gray).quantize(100).save(soft / "0.png")
    assert Image.open(soft / "0.png").mode == "P"
    assert webapp.guess_mask_mode(soft) == "luminance"


def test_the_real_clips_masks_read_as_one_object(shared_dir):
    # The giraffe's masks use 100 palette indices (soft edges) with the object at index 0, white.
    for name in ("giraffe", "horse", "birdcage"):
        assert webapp.guess_mask_mode(shared_dir / "data/real_clips" / name / "masks") == "luminance", name


# Bad uploads: one line each ---------------------------------------------------------------------
def test_bad_uploads_give_one_line(clip, tmp_path):
    frames = _frames_zip(clip, tmp_path / "frames.zip")
    masks = _index_masks_zip(clip, tmp_path / "masks.zip")
    text = tmp_path / "notes.txt"
    text.write_text("hello")
    fake = tmp_path / "broken.mp4"
    fake.write_bytes(b"not a video at all" * 100)
    not_zip = tmp_path / "fake.zip"
    not_zip.write_bytes(b"not a zip either" * 100)
    cases = [
        ((None, masks), "upload a video"),
        ((frames, None), "upload the modal masks"),
        ((text, masks), "notes.txt: not a video"),
        ((fake, masks), "broken.mp4"),
        ((frames, text), "masks must be a .zip"),
        ((frames, _zip(tmp_path / "empty.zip", {})), "empty.zip: the zip is empty"),
        ((frames, not_zip), "fake.zip: not a zip"),
        ((frames, _index_masks_zip(clip, tmp_path / "small.zip", size=(64, 128))), "the frames are 256x128"),
        ((frames, _index_masks_zip(clip, tmp_path / "short.zip", count=3)), "short.zip"),
        ((frames, _zip(tmp_path / "evil.zip", {"../escape.png": b"x"})), "points outside the zip"),
    ]
    for (video, mask_file), expected in cases:
        with pytest.raises(InputError) as error:
            webapp.load_upload(video, mask_file, "auto", FAST)
        assert expected in _one_line(error), (expected, str(error.value))


def test_limits_are_settings(clip, tmp_path):
    frames = _frames_zip(clip, tmp_path / "frames.zip")
    masks = _index_masks_zip(clip, tmp_path / "masks.zip")
    with pytest.raises(InputError) as error:
        webapp.load_upload(frames, masks, "auto", AppConfig(max_frames=3))
    assert "4 frames, more than this server's limit of 3 (--max-frames)" in _one_line(error)
    with pytest.raises(InputError) as error:
        webapp.load_upload(frames, masks, "auto", AppConfig(max_upload_mb=0.001))
    assert "more than this server's limit of 0.001 MB (--max-upload-mb)" in _one_line(error)
    with pytest.raises(InputError) as error:
        webapp.load_upload(frames, masks, "auto", AppConfig(max_frame_pixels=1000))
    assert "256x128 are larger than this server takes" in _one_line(error)
    with pytest.raises(InputError) as error:
        webapp.load_upload(frames, masks, "auto", AppConfig(max_unzipped_mb=0.01))
    assert "unzips to more than" in _one_line(error)
    for bad in (dict(port=0), dict(port=70000), dict(max_upload_mb=0), dict(max_frames=0)):
        with pytest.raises(InputError):
            AppConfig(**bad)


def test_unexpected_errors_are_one_line_too():
    assert webapp.error_message(InputError("bad\n  input")) == "bad input"
    message = webapp.error_message(ValueError("deep\ninside"))
    assert message.startswith("unexpected error (ValueError: deep inside)") and "\n" not in message


# Picking objects ---------------------------------------------------------------------------------
def test_a_click_picks_the_object_under_it(clip):
    for k, oid in enumerate(clip.object_ids):
        ys, xs = np.nonzero(clip.modal_masks[k, 0])
        assert webapp.object_at(clip, xs[len(xs) // 2], ys[len(ys) // 2]) == oid
    # Just beside a small object still picks it; far from every object is a message.
    ys, xs = np.nonzero(clip.modal_masks[2, 0])
    right = xs.max() + 1
    row = ys[xs == xs.max()][0]
    assert webapp.object_at(clip, right + 1, row) == clip.object_ids[2]
    assert not clip.modal_masks[:, 0, :20, :20].any()  # the top-left corner is floor, far from every object
    with pytest.raises(InputError) as error:
        webapp.object_at(clip, 5, 5)
    assert "no object at" in _one_line(error)
    with pytest.raises(InputError, match="outside"):
        webapp.object_at(clip, 999, 5)
    assert webapp.toggle([1, 3], 3) == [1] and webapp.toggle([1], 3) == [1, 3] and webapp.toggle(None, 2) == [2]


def test_the_first_frame_view_is_enlarged_and_outlines_the_selection(clip):
    scale = webapp.view_scale(clip)
    plain = webapp.first_frame_view(clip)
    chosen = webapp.first_frame_view(clip, [5])
    assert scale == 2 and plain.shape[1] == 2 * clip.size[1] and plain.shape[0] >= 2 * clip.size[0]
    changed = np.argwhere((plain != chosen).any(-1))
    assert len(changed) and (chosen[tuple(changed.T)] == 255).all()


def test_a_run_needs_an_offered_model_and_an_object(clip):
    with pytest.raises(InputError, match="no object selected"):
        webapp.run_job(clip, [], FAST_SETTINGS, FAST)
    with pytest.raises(InputError, match=r"\[9\] are not in this clip"):
        webapp.run_job(clip, [9], FAST_SETTINGS, FAST)
    with pytest.raises(InputError, match="stage-1 model '/etc'"):  # a request may name anything: only listed models load
        webapp.run_job(clip, [1], RunSettings(model="/etc"), FAST)
    with pytest.raises(InputError, match="samples must be in 1..4"):
        webapp.run_job(clip, [1], RunSettings(samples=9), FAST)


# A run -------------------------------------------------------------------------------------------
def test_a_run_writes_what_amodal_run_writes_and_zips_it(clip, tmp_path):
    config = AppConfig(**{**FAST.__dict__, "work_dir": str(tmp_path)})
    heard = []
    result = webapp.run_job(clip, [2, 5], RunSettings(**{**FAST_SETTINGS.__dict__, "samples": 2}), config,
                            progress=lambda fraction, desc="": heard.append(desc))
    assert heard[0] == "loading the models" and heard[-1] == "done" and any("stage 2" in d for d in heard)
    assert result.clip.object_ids == (2, 5)
    assert result.amodal_masks.shape == (2, 4, 128, 256) and (result.amodal_masks >= result.clip.modal_masks).all()
    assert result.frequency is not None and result.completed.shape == (2, 4, 128, 256, 3)

    names = set(zipfile.ZipFile(result.zip_path).namelist())
    root, first = webapp.ZIP_ROOT, clip.frame_names[0]
    expected = [
        "summary.json",
        *(f"segmentation/{f}" for f in ("amodal.json", "coco_instances.json", "predictions_sailvos.json",
                                        "overlay.mp4", "overlay.gif", "uncertainty.mp4", "summary.json")),
        *(f"segmentation/{kind}/{oid}/{first}.png" for kind in ("masks", "uncertainty", "modal") for oid in (2, 5)),
        *(f"completion/{oid}/{kind}/{first}.png" for kind in ("rgb", "rgba", "overlay") for oid in (2, 5)),
        *(f"layers/{oid}/{kind}/{first}.png" for kind in ("rgb", "rgba") for oid in (2, 5)),
        "layers/depth_order.json",
    ]
    missing = [m for m in expected if f"{root}/{m}" not in names]
    assert missing == []
    assert all(n.startswith(f"{root}/") for n in names)
    summary = json.loads(zipfile.ZipFile(result.zip_path).read(f"{root}/summary.json"))
    assert summary["objects"] == [2, 5] and summary["frames"] == 4 and summary["settings"]["samples"] == 2
    rgba = Image.open(result.folder / "completion" / "5" / "rgba" / f"{first}.png")
    assert rgba.mode == "RGBA" and rgba.size == (256, 128)

    modal, amodal, uncertainty, completed = webapp.frame_views(result, 3)
    assert modal.shape[1] == amodal.shape[1] == uncertainty.shape[1] == 512
    assert completed.ndim == 3 and completed.dtype == np.uint8
    # One sample: no uncertainty map. Old runs are cleared beyond keep_runs.
    again = webapp.run_job(clip, [5], FAST_SETTINGS, AppConfig(**{**config.__dict__, "keep_runs": 1}))
    assert webapp.frame_views(again, 0)[2] is None
    assert not result.folder.exists() and again.zip_path.is_file()


# The command -------------------------------------------------------------------------------------
def test_the_command_refuses_bad_arguments_in_one_line(capsys, monkeypatch):
    assert main(["app", "--port", "70000"]) == 2
    assert capsys.readouterr().err.strip() == "amodal: error: --port must be in 1..65535, got 70000"
    assert main(["app", "--model", "no-such-model"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("amodal: error:") and "\n" not in err
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    assert main(["app"]) == 2
    assert capsys.readouterr().err.strip() == "amodal: error: gradio is not installed; pip install 'amodal[app]'"


def test_importing_the_app_does_not_import_gradio():
    code = "import sys, amodal, amodal.apps.webapp, amodal.cli.app; print('gradio' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "False"
