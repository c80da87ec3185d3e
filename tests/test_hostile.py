"""amodal as a hostile user tries it: outputs over inputs, bad arguments, impossible sizes.

Every case runs the real command line (``amodal.cli.main``) and checks what a user would see and
what is left on disk: a non-zero exit, exactly one ``amodal: error:`` line and no traceback, every
input byte-identical afterwards, and nothing new beside ``--out``.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amodal.apps.demo import DEMO_ROOT, DEMO_SPLIT
from amodal.checkpoints.registry import WEIGHTS_DIR
from amodal.cli import main
from amodal.segmentation.model import SegmenterConfig, build_segmenter

from tiny import TINY_BACKBONE

pytestmark = pytest.mark.usefixtures("one_thread")

FRAMES, H, W = 6, 24, 32


def _write_clip(root: Path) -> Path:
    """``root/rgbs/frame_NNN.jpg`` and ``root/masks/frame_NNN.png``: a square behind a bar."""
    (root / "rgbs").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(0)
    for t in range(FRAMES):
        frame = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
        mask = np.zeros((H, W), np.uint8)
        mask[6:16, 4 + 2 * t : 14 + 2 * t] = 255
        mask[:, 14:18] = 0  # the bar hides a column of the square
        Image.fromarray(frame).save(root / "rgbs" / f"frame_{t:03d}.jpg")
        Image.fromarray(mask).save(root / "masks" / f"frame_{t:03d}.png")
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("model") / "tiny"
    build_segmenter(SegmenterConfig(backbone=TINY_BACKBONE, num_frames=4, height=16, width=32)).save_pretrained(path)
    return path


@pytest.fixture
def world(tmp_path, tiny_model) -> dict:
    """A clip, a video of it, an unrelated user folder and file, and a bystander file beside them."""
    from amodal.data.io.frames import read_frames
    from amodal.data.io.video import write_video

    clip = _write_clip(tmp_path / "clip")
    video = tmp_path / "clip.mp4"
    write_video(video, iter(read_frames(clip / "rgbs")), fps=8)
    thesis = tmp_path / "papers"
    thesis.mkdir()
    (thesis / "thesis.txt").write_text("four years of work\n")
    notes = tmp_path / "notes.txt"
    notes.write_text("do not replace me\n")
    gif = tmp_path / "holiday.gif"
    Image.fromarray(np.zeros((4, 4, 3), np.uint8)).save(gif)
    return {"root": tmp_path, "gif": gif, "clip": clip, "rgbs": clip / "rgbs", "masks": clip / "masks", "video": video,
            "thesis": thesis, "notes": notes, "model": tiny_model, "bundled": WEIGHTS_DIR, "demo": DEMO_ROOT / DEMO_SPLIT}


def _tree(root: Path) -> dict[str, str]:
    """Every file under ``root`` (hidden ones included) and the hash of its bytes."""
    out = {}
    for path in sorted(root.rglob("*")):
        if path.is_file():
            out[str(path.relative_to(root))] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif path.is_dir():
            out[str(path.relative_to(root)) + "/"] = "dir"
    return out


def _run(argv, capsys) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    captured = capsys.readouterr()
    return code, captured.err


SEGMENT = ["segment", "--quiet", "--model", "{model}", "--frames", "{rgbs}", "--masks", "{masks}"]

# (case id, argv with {placeholders} for the world's paths, a regex the one error line must match)
CASES = [
    # --- outputs over inputs: the data-loss cases ---
    ("segment-out-is-frames", SEGMENT + ["--out", "{rgbs}"], r"--out .*rgbs: is the input"),
    ("segment-out-is-clip-root", SEGMENT + ["--out", "{clip}"], r"contains the input"),
    ("segment-out-is-inside-frames", SEGMENT + ["--out", "{rgbs}/out"], r"inside the input folder"),
    ("segment-out-is-user-folder", SEGMENT + ["--out", "{thesis}"], r"not written by `amodal segment`.*--overwrite"),
    ("segment-out-is-a-file", SEGMENT + ["--out", "{notes}"], r"existing file; amodal never replaces a file with a folder"),
    ("segment-out-is-a-file-overwrite", SEGMENT + ["--out", "{notes}", "--overwrite"], r"never replaces a file with a folder"),
    ("segment-out-is-the-model", SEGMENT + ["--out", "{model}"], r"is the input"),
    ("segment-out-is-dot", SEGMENT + ["--out", "."], r"current folder"),
    ("complete-out-is-frames",
     ["complete", "--model", "{model}", "--frames", "{rgbs}", "--masks", "{masks}", "--amodal", "{masks}", "--out", "{rgbs}"],
     r"is the input"),
    ("overlay-out-is-the-video", ["overlay", "--video", "{video}", "--masks", "{masks}", "--out", "{video}"], r"is the input"),
    ("overlay-out-is-the-video-overwrite",
     ["overlay", "--video", "{video}", "--masks", "{masks}", "--out", "{video}", "--overwrite"], r"is the input"),
    ("convert-out-is-the-checkpoint", ["convert", "official", "{model}", "--out", "{model}"], r"is the input"),
    ("run-out-is-frames",
     ["run", "--frames", "{rgbs}", "--masks", "{masks}", "--segmentation-model", "{model}", "--completion-model", "{model}",
      "--out", "{clip}"], r"contains the input"),
    # --- outputs over the bundled models and demo data: inputs too, even with --overwrite ---
    ("bench-json-is-bundled-config",
     ["bench", "--model", "default", "--json", "{bundled}/default/config.json", "--overwrite"], r"--json .*: is inside the input folder"),
    ("bench-json-is-against-config",
     ["bench", "--model", "{model}", "--against", "default-regression", "--json", "{bundled}/default-regression/config.json",
      "--overwrite"], r"--json .*: is inside the input folder"),
    ("segment-out-is-bundled-model", SEGMENT[:3] + ["default"] + SEGMENT[4:] + ["--out", "{bundled}/default", "--overwrite"],
     r"--out .*: is the input"),
    ("segment-out-holds-bundled-models", SEGMENT[:3] + ["default"] + SEGMENT[4:] + ["--out", "{bundled}", "--overwrite"],
     r"contains the input"),
    ("demo-out-is-demo-clip", ["demo", "--quiet", "--out", "{demo}", "--overwrite"], r"--out .*: is the input"),
    # --- outputs that cannot be created ---
    ("segment-out-under-a-file", SEGMENT + ["--out", "{notes}/sub"], r"is a file, so nothing can be created under it"),
    ("segment-out-under-proc", SEGMENT + ["--out", "/proc/amodal-out"], r"cannot be created"),
    # --- existing outputs of other kinds ---
    ("eval-out-is-a-file",
     ["eval", "--dataset", "synthetic", "--data", "{clip}", "--method", "modal", "--out", "{notes}"], r"existing file"),
    ("demo-out-is-user-folder", ["demo", "--quiet", "--out", "{thesis}"], r"not written by `amodal demo`"),
    ("demo-out-is-a-file", ["demo", "--quiet", "--out", "{notes}"], r"existing file"),
    ("synth-out-is-a-file", ["data", "synth", "--quiet", "--split", "val", "--videos", "1", "--out", "{notes}"], r"existing file"),
    ("synth-out-is-user-folder", ["data", "synth", "--quiet", "--split", "val", "--videos", "1", "--out", "{thesis}"],
     r"not written by `amodal data synth`"),
    ("bench-json-is-a-folder", ["bench", "--model", "{model}", "--json", "{thesis}"], r"--json .*existing folder"),
    ("bench-json-exists", ["bench", "--model", "{model}", "--json", "{notes}"], r"--json .*exists; choose a new file name"),
    ("overlay-out-not-a-video", ["overlay", "--frames", "{rgbs}", "--masks", "{masks}", "--out", "{notes}"],
     r"cannot write '.txt' files"),
    ("overlay-out-exists", ["overlay", "--frames", "{rgbs}", "--masks", "{masks}", "--out", "{gif}"], r"exists; choose a new file name"),
    # --- arguments ---
    ("segment-device-cuda", SEGMENT + ["--out", "{root}/o", "--device", "cuda"], r"--device cuda: this machine has"),
    ("segment-device-mps", SEGMENT + ["--out", "{root}/o", "--device", "mps"], r"--device mps: unknown device"),
    ("segment-device-banana", SEGMENT + ["--out", "{root}/o", "--device", "banana"], r"--device banana: unknown device"),
    ("segment-seed-negative", SEGMENT + ["--out", "{root}/o", "--seed", "-1"], r"--seed must be in \[0, 2\*\*63\)"),
    ("segment-fps-zero", SEGMENT + ["--out", "{root}/o", "--fps", "0"], r"--fps must be > 0"),
    ("segment-resolution-huge", SEGMENT + ["--out", "{root}/o", "--resolution", "100000x100000"], r"needs about .* GiB"),
    ("segment-pad-huge", SEGMENT + ["--out", "{root}/o", "--pad", "1000"], r"needs about .* GiB"),
    ("segment-resolution-odd", SEGMENT + ["--out", "{root}/o", "--resolution", "18x30"],
     r"--resolution 18x30: this model needs multiples of 4 per side \(for example 16x28\)"),
    ("segment-resolution-tiny", SEGMENT + ["--out", "{root}/o", "--resolution", "4x4"], r"--resolution must be at least 8x8"),
    ("segment-masks-is-an-image", ["segment", "--quiet", "--model", "{model}", "--frames", "{rgbs}", "--rle",
                                   "{masks}/frame_000.png", "--out", "{root}/o"], r"frame_000.png"),
    ("segment-unknown-flag", SEGMENT + ["--out", "{root}/o", "--bogus"], r"unrecognized arguments: --bogus"),
    ("segment-bad-steps", SEGMENT + ["--out", "{root}/o", "--steps", "0"], r"--steps must be >= 1"),
    ("overlay-max-width-zero", ["overlay", "--frames", "{rgbs}", "--masks", "{masks}", "--out", "{root}/o.gif",
                                "--max-width", "0"], r"--max-width must be > 0"),
    ("complete-bad-device", ["complete", "--model", "{model}", "--frames", "{rgbs}", "--masks", "{masks}", "--amodal",
                             "{masks}", "--out", "{root}/o", "--device", "banana"], r"unknown device"),
    ("complete-stage1-model", ["complete", "--model", "{model}", "--frames", "{rgbs}", "--masks", "{masks}", "--amodal",
                               "{masks}", "--out", "{root}/o"], r"a segmentation model, not a completion model"),
    ("run-stage1-as-completion", ["run", "--frames", "{rgbs}", "--masks", "{masks}", "--segmentation-model", "{model}",
                                  "--completion-model", "{model}", "--out", "{root}/o"],
     r"--completion-model .*a segmentation model, not a completion model"),
    ("run-missing-completion", ["run", "--frames", "{rgbs}", "--masks", "{masks}", "--segmentation-model", "{model}",
                                "--completion-model", "{root}/nowhere", "--out", "{root}/o"],
     r"--completion-model .*nowhere: no such folder"),
    ("segment-masks-one-image", ["segment", "--quiet", "--model", "{model}", "--frames", "{rgbs}", "--masks",
                                 "{masks}/frame_000.png", "--out", "{root}/o"], r"frame_000.png: is one image; masks are a folder"),
    ("segment-dtype-of-our-model", SEGMENT + ["--out", "{root}/o", "--dtype", "bfloat16"],
     r"--dtype bfloat16: amodal's own models run in float32"),
    ("train-export-not-a-run", ["train", "export", "{clip}", "--out", "{root}/o"], r"not a training run folder \(no config.json\)"),
    ("train-out-is-user-folder", ["train", "segmentation", "--config", "{notes}", "--out", "{thesis}"],
     r"not a training config|not valid JSON|not written by `amodal train segmentation`"),
    ("bench-device-banana", ["bench", "--model", "{model}", "--device", "banana"], r"unknown device"),
    ("eval-seed-negative", ["eval", "--dataset", "synthetic", "--data", "{clip}", "--method", "modal", "--seed", "-1",
                            "--out", "{root}/o"], r"--seed must be in"),
]


@pytest.mark.parametrize("case, argv, message", CASES, ids=[c[0] for c in CASES])
def test_hostile_invocation(world, case, argv, message, capsys, monkeypatch):
    monkeypatch.chdir(world["root"])
    before = _tree(world["root"])
    argv = [a.format(**world) for a in argv]
    code, err = _run(argv, capsys)
    assert code != 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("amodal: error: "), err
    assert "Traceback" not in err
    assert "weights_only" not in err
    assert re.search(message, lines[0]), lines[0]
    after = _tree(world["root"])
    assert after == before, f"changed on disk: {sorted(set(after.items()) ^ set(before.items()))[:6]}"


def test_overwrite_replaces_a_user_folder_but_never_an_input(world, capsys, monkeypatch):
    monkeypatch.chdir(world["root"])
    argv = [a.format(**world) for a in SEGMENT + ["--steps", "1", "--out", "{thesis}", "--overwrite"]]
    code, err = _run(argv, capsys)
    assert code == 0, err
    assert not (world["thesis"] / "thesis.txt").exists() and (world["thesis"] / "summary.json").is_file()
    # A second run replaces its own earlier output without --overwrite.
    argv = [a.format(**world) for a in SEGMENT + ["--steps", "1", "--out", "{thesis}"]]
    assert _run(argv, capsys)[0] == 0
    siblings = sorted(p.name for p in world["root"].iterdir())
    assert siblings == ["clip", "clip.mp4", "holiday.gif", "notes.txt", "papers"]  # no temporaries left


def test_a_stale_temporary_of_a_killed_run_is_removed_by_the_next_run(world, capsys, monkeypatch):
    monkeypatch.chdir(world["root"])
    dead = 2**22 + 12345  # above the default pid_max: no such process
    stale = world["root"] / f".out.amodal-tmp-{dead}-abc"
    (stale / "masks").mkdir(parents=True)
    live = world["root"] / f".out.amodal-tmp-{os.getpid()}-xyz"  # a running writer's: kept
    live.mkdir()
    argv = [a.format(**world) for a in SEGMENT + ["--steps", "1", "--out", "{root}/out"]]
    assert _run(argv, capsys)[0] == 0
    assert not stale.exists() and live.exists()


def test_unexpected_errors_are_one_line_and_debug_gives_the_traceback(monkeypatch, capsys):
    import amodal.cli.demo as demo_cli

    def boom(args):
        raise RuntimeError("something\nbroke")

    monkeypatch.setattr(demo_cli, "run", boom)
    code, err = _run(["demo"], capsys)
    assert code == 1 and err.strip() == "amodal: error: RuntimeError: something broke (rerun with --debug for the traceback)"
    code, err = _run(["--debug", "demo"], capsys)
    assert code == 1 and "Traceback" in err and err.strip().splitlines()[-1].startswith("amodal: error: RuntimeError")
    monkeypatch.setenv("AMODAL_DEBUG", "1")
    code, err = _run(["demo"], capsys)
    assert "Traceback" in err


def test_out_of_memory_is_one_line(monkeypatch, capsys):
    import amodal.cli.demo as demo_cli

    def exhaust(args):
        raise MemoryError

    monkeypatch.setattr(demo_cli, "run", exhaust)
    code, err = _run(["demo"], capsys)
    assert code == 1 and err.strip().startswith("amodal: error: out of memory;") and len(err.strip().splitlines()) == 1


def test_a_pickle_is_refused_without_suggesting_to_unpickle(tmp_path, capsys, recwarn):
    import pickle

    path = tmp_path / "depth.pth"
    path.write_bytes(pickle.dumps(os.system))  # unpickling it would hand over a function that runs commands
    code, err = _run(["convert", "depth-anything", str(path), "--out", str(tmp_path / "o")], capsys)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("amodal: error: ")
    assert "weights_only" not in err and "depth.pth" in err
    assert not (tmp_path / "o").exists()
    assert not [w for w in recwarn if "weights_only" in str(w.message)]
