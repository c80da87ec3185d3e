"""``amodal data occlude``: occluders painted over real objects give exact amodal truth, and the split loads and scores."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import amodal.cli
from amodal.apps.occlude import parse_exclude, parse_size
from amodal.data.datasets import index_dataset
from amodal.data.io.rle import decode
from amodal.data.occlude import (
    OCCLUDER_KINDS,
    OccludeConfig,
    content_box,
    fit_size,
    free_frame_count,
    kept_segments,
    occlude,
    occlude_clip,
    plan_occluders,
)
from amodal.errors import InputError

from tiny import write_clip_folder

T, H, W = 16, 40, 64


def scene(frames: int = T, seed: int = 0, border: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A textured background and an ellipse sliding right: ``(T, H, W, 3) uint8`` frames, ``(T, H, W) bool`` mask."""
    rng = np.random.default_rng(seed)
    h = H + 2 * border
    background = rng.integers(40, 200, (h // 4 + 1, W // 4 + 1, 3)).repeat(4, 0).repeat(4, 1)[:h, :W]
    yy, xx = np.mgrid[0:h, 0:W]
    pixels, masks = [], []
    for t in range(frames):
        mask = ((yy - h / 2) / 11) ** 2 + ((xx - 16 - 1.5 * t) / 14) ** 2 <= 1
        mask[:border] = mask[h - border :] = False
        frame = background.copy()
        stripes = 60 + 4 * (xx[mask] % 10)
        frame[mask] = np.stack([np.full_like(stripes, 220), stripes, np.full_like(stripes, 40)], axis=-1)
        frame[:border] = frame[h - border :] = 5  # letterboxing
        pixels.append(frame)
        masks.append(mask)
    return np.stack(pixels).astype(np.uint8), np.stack(masks)


@pytest.fixture(scope="module")
def tiny():
    return scene()


# ------------------------------------------------------------------------------ the construction
def test_amodal_truth_is_the_original_and_the_visible_part_lies_inside(tiny):
    frames, mask = tiny
    made = occlude(frames, mask, OccludeConfig(), seed=3)
    clip = made.clip
    assert clip.num_objects == 1 and clip.num_frames == T and clip.depth is None
    np.testing.assert_array_equal(clip.amodal_masks[0], mask)
    assert not (clip.modal_masks[0] & ~clip.amodal_masks[0]).any()
    np.testing.assert_array_equal(clip.amodal_rgb[0][mask], frames[mask])
    assert (clip.amodal_rgb[0][~mask] == 255).all()
    # Frames change only where an occluder was planned; the object really loses pixels.
    covered = np.zeros(mask.shape, bool)
    for occluder in made.occluders:
        for t in range(occluder.start, occluder.stop):
            covered[t] |= occluder.mask(t, (H, W))
    assert (clip.frames[~covered] == frames[~covered]).all()
    np.testing.assert_array_equal(clip.modal_masks[0], mask & ~covered)
    assert (clip.amodal_masks[0] & ~clip.modal_masks[0]).any()


def test_hidden_pixels_really_change_colour(tiny):
    frames, mask = tiny
    config = OccludeConfig(min_change=30)
    for seed in range(4):
        clip = occlude_clip(frames, mask, config, seed=seed)
        hidden = clip.amodal_masks[0] & ~clip.modal_masks[0]
        change = np.abs(clip.frames.astype(int) - frames.astype(int)).sum(axis=-1)
        assert hidden.any() and change[hidden].min() >= 30


def test_panels_hide_the_object_entirely_when_asked(tiny):
    frames, mask = tiny
    config = OccludeConfig(full_hide_rate=1.0, hide_frames=(2, 3))
    for seed in range(3):
        made = occlude(frames, mask, config, seed=seed)
        panels = [o for o in made.occluders if o.kind == "panel"]
        assert len(panels) == 1 and 2 <= len(panels[0].hidden) <= 3
        visible = made.clip.modal_masks[0].reshape(T, -1).any(axis=1)
        for t in panels[0].hidden:
            assert not visible[t] and mask[t].any()  # in view, and not one pixel visible
        assert visible[panels[0].start] and visible[panels[0].stop - 1]  # it slides on and off
    # Without panels no event is planned to hide the object.
    made = occlude(frames, mask, OccludeConfig(full_hide_rate=0.0), seed=0)
    assert all(o.kind != "panel" for o in made.occluders)


def test_free_frames_are_left_fully_visible(tiny):
    frames, mask = tiny
    config = OccludeConfig(free_share=0.25)
    for seed in range(4):
        made = occlude(frames, mask, config, seed=seed)
        free = [t for t, kind in enumerate(made.kinds) if kind is None]
        assert len(free) >= free_frame_count(T, config) == 4
        for t in free:
            np.testing.assert_array_equal(made.clip.modal_masks[0, t], mask[t])
            np.testing.assert_array_equal(made.clip.frames[t], frames[t])


@pytest.mark.parametrize("kind", OCCLUDER_KINDS)
def test_every_kind_occludes(tiny, kind):
    frames, mask = tiny
    made = occlude(frames, mask, OccludeConfig(kinds=(kind,), patch_rate=0.0), seed=1)
    assert made.occluders and {o.kind for o in made.occluders} == {kind}
    assert set(made.appearances) == {"flat" if kind == "flat" else "solid"}
    assert (made.clip.amodal_masks & ~made.clip.modal_masks).any()


def test_patches_come_from_the_frames_and_never_repaint_the_object(tiny):
    frames, mask = tiny
    made = occlude(frames, mask, OccludeConfig(kinds=("box", "disc"), patch_rate=1.0, patch_object_share=0.05), seed=2)
    assert "patch" in made.appearances


def test_the_same_seed_gives_the_same_bytes(tiny):
    frames, mask = tiny
    a, b = occlude_clip(frames, mask, seed=7), occlude_clip(frames, mask, seed=7)
    np.testing.assert_array_equal(a.frames, b.frames)
    np.testing.assert_array_equal(a.modal_masks, b.modal_masks)
    assert plan_occluders(mask, seed=7) == plan_occluders(mask, seed=7)
    c = occlude_clip(frames, mask, seed=8)
    assert not np.array_equal(a.frames, c.frames)


def test_segments_sizes_borders_and_arguments():
    assert kept_segments(25, range(10, 19), 4) == [(0, 10), (19, 25)]
    assert kept_segments(25, [0, 1, 2, 3, 22, 23, 24], 4) == [(4, 22)]
    assert kept_segments(25, [2, 20], 4) == [(3, 20), (21, 25)]  # frames 0-1: a run too short to keep
    assert kept_segments(10, range(10), 1) == []
    assert fit_size((524, 640), (180, 320)) == (180, 220) and fit_size((360, 640), (180, 320)) == (180, 320)
    frames, mask = scene(frames=3, border=6)
    assert content_box(frames, mask, 32) == (6, H + 6, 0, W)
    assert content_box(frames, mask, 0) == (0, H + 12, 0, W)
    assert parse_exclude("horse:10-18") == ("horse", tuple(range(10, 19)))
    assert parse_exclude("a:b:1,3-4") == ("a:b", (1, 3, 4))
    assert parse_size("180x320") == (180, 320)
    for bad in ("horse", "horse:", "horse:5-2", "horse:x"):
        with pytest.raises(InputError, match="--exclude"):
            parse_exclude(bad)
    with pytest.raises(InputError, match="--size"):
        parse_size("180")
    with pytest.raises(InputError, match="kinds"):
        OccludeConfig(kinds=("cube",))


# ------------------------------------------------------------------------------ the command and the set
@pytest.fixture
def cli(monkeypatch, capsys):
    monkeypatch.setattr(amodal.cli, "COMMANDS", ("data", "eval"))

    def run(*argv):
        code = amodal.cli.main([str(a) for a in argv])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


@pytest.fixture
def clips(tmp_path) -> Path:
    root = tmp_path / "clips"
    for name, seed in (("ball", 0), ("puck", 1)):
        frames, mask = scene(seed=seed, border=4 if name == "puck" else 0)
        write_clip_folder(root / name, frames, mask, suffix=".png")
    return root


def test_the_written_split_loads_and_scores(cli, clips, tmp_path):
    out = tmp_path / "set"
    code, stdout, err = cli(
        "data", "occlude", "--clips", clips, "--out", out, "--split", "test", "--seed", 5,
        "--exclude", "puck:6-7", "--exclude", "ball:0", "--size", "20x32",
    )
    assert code == 0, err
    split = out / "test"
    entries = json.loads((split / "annotations.json").read_text())
    assert [e["video_id"] for e in entries] == ["ball_001-015", "puck_000-005", "puck_008-015"]
    assert [e["source_frames"][0] for e in entries] == [1, 0, 8]
    ids = [i for e in entries for i in e["image_ids"]]
    assert len(ids) == len(set(ids)) == 15 + 6 + 8
    for entry in entries:
        assert "depth_file_names" not in entry and entry["height"] == 20 and entry["width"] == 32
        for t in range(len(entry["image_ids"])):
            assert not (decode(entry["visible_mask"][t]) & ~decode(entry["segmentation"][t])).any()
    assert "3 videos" in stdout
    summary = json.loads((split / "summary.json").read_text())
    assert summary["clips"]["puck"]["cropped_borders"] == [4, 4, 0, 0]  # letterboxing went before resizing
    assert sum(summary["visible_fraction_histogram"].values()) == summary["frames"] == 29

    # The synthetic reader takes it (no depth), with amodal RGB, and the truth is the source mask.
    index = index_dataset("synthetic", out, split="test")
    assert len(index) == 3
    item = index.item(1)
    assert item.clip.depth is None and item.clip.amodal_rgb.shape == (1, 6, 20, 32, 3)
    _, mask = scene(seed=1, border=4)
    from amodal.data.occlude import resize_clip

    _, small = resize_clip(np.zeros((T, H, W, 3), np.uint8), mask[:, 4:-4], (20, 32))
    np.testing.assert_array_equal(item.annotation.amodal_masks[0], small[:6])
    frame = np.asarray(Image.open(split / entries[1]["image_file_names"][0]))
    np.testing.assert_array_equal(item.clip.frames[0], frame)  # PNG: what was painted is what is read

    # Stage-1 evaluation runs on it unchanged: the modal baseline scores the visible fraction.
    code, _, err = cli(
        "eval", "--dataset", "synthetic", "--data", out, "--split", "test", "--method", "modal",
        "--no-plots", "--quiet", "--out", tmp_path / "eval",
    )
    assert code == 0, err
    metrics = json.loads((tmp_path / "eval" / "metrics.json").read_text())
    metrics = metrics.get("modal", metrics)  # one method: its numbers at the top level
    assert metrics["miou"] == pytest.approx(summary["mean_visible_fraction"], abs=1e-4)

    # Same seed, same bytes; a rerun replaces the split it wrote.
    before = (split / "annotations.json").read_bytes()
    code, _, err = cli(
        "data", "occlude", "--clips", clips, "--out", out, "--seed", 5,
        "--exclude", "puck:6-7", "--exclude", "ball:0", "--size", "20x32",
    )
    assert code == 0, err
    assert (split / "annotations.json").read_bytes() == before


def test_bad_arguments_are_one_line_errors(cli, clips, tmp_path):
    code, _, err = cli("data", "occlude", "--clips", clips, "--out", tmp_path / "o", "--exclude", "horse:1")
    assert code == 2 and "no clip named 'horse'" in err
    code, _, err = cli("data", "occlude", "--clips", clips, "--out", tmp_path / "o", "--exclude", "ball:30")
    assert code == 2 and "past the clip's last frame" in err
    code, _, err = cli("data", "occlude", "--clips", clips, "--out", clips / "ball" / "x")
    assert code == 2 and "inside the input" in err
    code, _, err = cli("data", "occlude", "--clips", tmp_path / "nowhere", "--out", tmp_path / "o")
    assert code == 2 and "folder not found" in err
    code, _, err = cli("data", "occlude", "--clips", clips / "ball", "--out", tmp_path / "o", "--exclude", "ball:0-15")
    assert code == 2 and "nothing to write" in err
    assert not (tmp_path / "o").exists()


def test_real_clips(real_clips_dir, tmp_path, cli):
    """The shared clips build into a set at a small size: the horse (the man in front of it throughout) is excluded."""
    out = tmp_path / "real"
    code, _, err = cli(
        "data", "occlude", "--clips", real_clips_dir, "--out", out, "--size", "45x80",
        "--exclude", "horse:0-24", "--exclude", "birdcage:0-3,22-24", "--exclude", "giraffe:13-23",
    )
    assert code == 0, err
    entries = json.loads((out / "test" / "annotations.json").read_text())
    assert [e["video_id"] for e in entries] == ["birdcage_004-021", "giraffe_000-012"]
    assert [(e["height"], e["width"]) for e in entries] == [(45, 79), (45, 80)]  # birdcage letterboxing cropped
    summary = json.loads((out / "test" / "summary.json").read_text())
    assert summary["clips"]["horse"]["videos"] == 0 and summary["frames"] == 18 + 13
    assert summary["visible_fraction_histogram"]["1"] >= 4 + 3  # the free frames of the two videos
    index = index_dataset("synthetic", out, split="test")
    item = index.item(0)
    assert item.clip.amodal_rgb is not None and not (item.clip.modal_masks & ~item.annotation.amodal_masks).any()
