"""``amodal data synth``: the on-disk split format, resuming, and errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import amodal.cli
from amodal.data.io.rle import decode
from amodal.data.synth import SynthConfig, SynthSplit, generate_clip, video_seed, write_split
from amodal.data.synth import dataset

TINY = {"height": 32, "width": 48, "num_frames": 5, "num_objects": [2, 3]}
REQUIRED = {
    "segmentation": list,
    "visible_mask": list,
    "bbox": list,
    "image_ids": list,
    "obj_id": int,
    "category_id": int,
    "image_file_names": list,
    "video_id": str,
    "height": int,
    "width": int,
    "fps": float,
    "depth_file_names": list,
    "amodal_rgb_file_names": list,
}


@pytest.fixture
def cli(monkeypatch):
    """Run ``amodal`` with only this command registered (other commands are tested elsewhere)."""
    monkeypatch.setattr(amodal.cli, "COMMANDS", ("data",))
    return amodal.cli.main


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(TINY))
    return path


def _synth(cli, out, config_file, videos, *extra) -> int:
    argv = ["data", "synth", "--out", str(out), "--split", "val", "--videos", str(videos), "--seed", "3"]
    return cli(argv + ["--config", str(config_file), "--quiet", *extra])


def validate_split(split_dir: Path) -> list[dict]:
    """Check a written split against the documented format; return its entries."""
    entries = json.loads((split_dir / "annotations.json").read_text())
    assert isinstance(entries, list) and entries
    frames_by_video: dict[str, list[int]] = {}
    for entry in entries:
        for key, kind in REQUIRED.items():
            assert isinstance(entry[key], kind), key
        t_count = len(entry["image_ids"])
        for key in ("segmentation", "visible_mask", "bbox", "image_file_names", "depth_file_names", "amodal_rgb_file_names"):
            assert len(entry[key]) == t_count, key
        h, w = entry["height"], entry["width"]
        frames_by_video.setdefault(entry["video_id"], entry["image_ids"])
        assert frames_by_video[entry["video_id"]] == entry["image_ids"]  # objects of a video share frames
        for t in range(t_count):
            amodal = decode(entry["segmentation"][t])
            modal = decode(entry["visible_mask"][t])
            assert amodal.shape == (h, w) and not np.any(modal & ~amodal)
            assert len(entry["bbox"][t]) == 4 and all(isinstance(v, float) for v in entry["bbox"][t])
        for name in entry["image_file_names"] + entry["depth_file_names"] + entry["amodal_rgb_file_names"]:
            assert (split_dir / name).is_file(), name
        depth = np.array(Image.open(split_dir / entry["depth_file_names"][0]))
        assert depth.dtype == np.uint16 and depth.shape == (h, w) and depth.min() > 0
        rgb = np.array(Image.open(split_dir / entry["image_file_names"][0]))
        assert rgb.shape == (h, w, 3)
    image_ids = [i for ids in frames_by_video.values() for i in ids]
    assert len(image_ids) == len(set(image_ids)), "image ids must be unique across the split"
    return entries


def test_synth_writes_a_valid_split(cli, tmp_path, config_file, capsys):
    assert _synth(cli, tmp_path / "ds", config_file, 3) == 0
    split_dir = tmp_path / "ds" / "val"
    entries = validate_split(split_dir)
    assert sorted({e["video_id"] for e in entries}) == ["val_000000", "val_000001", "val_000002"]
    summary = json.loads((split_dir / "summary.json").read_text())
    assert summary["videos"] == 3 and summary["objects"] == len(entries) and summary["frames"] == 15
    assert sum(summary["visible_fraction_histogram"].values()) == summary["object_frames_in_view"]
    assert summary["object_frames_in_view"] + summary["object_frames_out_of_view"] == 5 * len(entries)
    assert sum(summary["objects_per_class"].values()) == len(entries)
    assert summary["generated_this_run"] == 3 and summary["clips_per_minute"] > 0
    assert "3 videos" in capsys.readouterr().out

    # The files hold exactly what generate_clip returns (up to JPEG for the frames).
    config = SynthConfig.from_dict(TINY)
    clip = generate_clip(config, video_seed(3, "val", 1))
    mine = [e for e in entries if e["video_id"] == "val_000001"]
    assert [e["obj_id"] for e in mine] == list(clip.object_ids)
    for k, entry in enumerate(mine):
        for t in range(clip.num_frames):
            np.testing.assert_array_equal(decode(entry["segmentation"][t]), clip.amodal_masks[k, t])
            np.testing.assert_array_equal(decode(entry["visible_mask"][t]), clip.modal_masks[k, t])
            amodal_rgb = np.array(Image.open(split_dir / entry["amodal_rgb_file_names"][t]))
            np.testing.assert_array_equal(amodal_rgb, clip.amodal_rgb[k, t])
        depth = np.array(Image.open(split_dir / entry["depth_file_names"][0])).astype(np.float64)
        np.testing.assert_allclose(1000.0 / depth, clip.depth[0], rtol=2e-3)
        frame = np.array(Image.open(split_dir / entry["image_file_names"][0])).astype(np.float64)
        assert np.abs(frame - clip.frames[0]).mean() < 6.0  # JPEG at quality 95


def test_rerun_skips_finished_videos_and_extends(cli, tmp_path, config_file):
    root = tmp_path / "ds"
    assert _synth(cli, root, config_file, 2) == 0
    done = root / "val" / "videos" / "val_000000" / "annotation.json"
    stamp = done.stat().st_mtime_ns
    before = json.loads((root / "val" / "annotations.json").read_text())
    assert _synth(cli, root, config_file, 3) == 0
    assert done.stat().st_mtime_ns == stamp
    summary = json.loads((root / "val" / "summary.json").read_text())
    assert summary["videos"] == 3 and summary["generated_this_run"] == 1
    after = validate_split(root / "val")
    assert after[: len(before)] == before


def test_interrupted_video_leaves_nothing_visible(tmp_path, monkeypatch):
    config = SynthConfig.from_dict(TINY)
    real = dataset.depth_to_png
    calls = {"n": 0}

    def failing(inverse_depth):
        calls["n"] += 1
        if calls["n"] == 8:  # in the middle of the second video
            raise KeyboardInterrupt
        return real(inverse_depth)

    monkeypatch.setattr(dataset, "depth_to_png", failing)
    job = SynthSplit(out=tmp_path, split="val", videos=3, seed=0, synth=config)
    with pytest.raises(KeyboardInterrupt):
        write_split(job, progress=False)
    videos = tmp_path / "val" / "videos"
    assert sorted(p.name for p in videos.iterdir()) == ["val_000000"]
    assert not (tmp_path / "val" / "annotations.json").exists()
    monkeypatch.setattr(dataset, "depth_to_png", real)
    summary = write_split(job, progress=False)
    assert summary["generated_this_run"] == 2
    validate_split(tmp_path / "val")


def test_workers_give_the_same_split(tmp_path):
    config = SynthConfig.from_dict(TINY)
    one = write_split(SynthSplit(out=tmp_path / "a", split="val", videos=2, seed=1, synth=config), progress=False)
    two = write_split(SynthSplit(out=tmp_path / "b", split="val", videos=2, seed=1, synth=config, workers=2), progress=False)
    assert one["objects"] == two["objects"]
    a = (tmp_path / "a" / "val" / "annotations.json").read_bytes()
    b = (tmp_path / "b" / "val" / "annotations.json").read_bytes()
    assert a == b


def test_other_config_into_existing_split_is_an_error(cli, tmp_path, config_file, capsys):
    assert _synth(cli, tmp_path / "ds", config_file, 1) == 0
    capsys.readouterr()
    config_file.write_text(json.dumps({**TINY, "occlusion_rate": 0.1}))
    assert _synth(cli, tmp_path / "ds", config_file, 1) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("amodal: error:") and "occlusion_rate" in err and "\n" not in err


def test_unknown_config_key_is_a_one_line_error(cli, tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"height": 32, "resolution": [1, 2]}))
    assert _synth(cli, tmp_path / "ds", bad, 1) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        f"amodal: error: {bad}: unknown keys ['resolution']; valid keys are "
        f"{sorted(SynthConfig().to_dict())}"
    )
    assert not (tmp_path / "ds").exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["--split", "Bad Name", "--videos", "1"], "--split"),
        (["--split", "extra"], "--videos is required"),
        (["--videos", "0"], "--videos must be at least 1"),
        (["--workers", "0", "--videos", "1"], "--workers"),
    ],
)
def test_bad_arguments(cli, tmp_path, capsys, argv, needle):
    assert cli(["data", "synth", "--out", str(tmp_path), "--quiet", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("amodal: error:") and needle in err and "\n" not in err


def test_help_has_a_worked_example(cli, capsys):
    assert cli(["data", "synth", "--help"]) == 0
    out = capsys.readouterr().out
    assert "example:" in out and "amodal data synth --out" in out
