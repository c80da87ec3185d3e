"""Kill amodal at random points and run it again: the result equals an uninterrupted run, nothing is left behind.

``segment`` and ``train`` run as real subprocesses (``python -m amodal``) and are stopped with SIGKILL
(no cleanup possible) or SIGTERM (cleanup expected) at seeded random moments.
"""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amodal.segmentation.model import SegmenterConfig, build_segmenter

from tiny import TINY_BACKBONE

FRAMES, H, W = 40, 24, 32
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


@pytest.fixture(scope="module")
def clip_and_model(tmp_path_factory):
    root = tmp_path_factory.mktemp("kill")
    (root / "rgbs").mkdir()
    (root / "masks").mkdir()
    for t in range(FRAMES):
        mask = np.zeros((H, W), np.uint8)
        mask[6:16, (t % 20) : (t % 20) + 10] = 255
        mask[:, 14:18] = 0
        Image.fromarray(np.full((H, W, 3), 8 * (t % 30), np.uint8)).save(root / "rgbs" / f"frame_{t:03d}.png")
        Image.fromarray(mask).save(root / "masks" / f"frame_{t:03d}.png")
    torch.manual_seed(0)
    model = root / "model"
    build_segmenter(SegmenterConfig(backbone=TINY_BACKBONE, num_frames=4, height=16, width=32)).save_pretrained(model)
    return root, model


def _segment_argv(root: Path, model: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "amodal", "segment", "--quiet", "--model", str(model), "--frames", str(root / "rgbs"),
            "--masks", str(root / "masks"), "--steps", "2", "--samples", "2", "--out", str(out)]


def _masks(out: Path) -> dict[str, str]:
    return {str(p.relative_to(out)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted((out / "masks").rglob("*.png"))}


def _stray(parent: Path, keep: set[str]) -> list[str]:
    return sorted(p.name for p in parent.iterdir() if p.name not in keep)


def _stop_after(argv: list[str], delay: float, sig: int) -> int:
    proc = subprocess.Popen(argv, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(delay)
    proc.send_signal(sig)
    proc.wait(timeout=120)
    return proc.returncode


@pytest.mark.slow
def test_segment_killed_anywhere_then_rerun_equals_an_uninterrupted_run(clip_and_model, tmp_path):
    root, model = clip_and_model
    reference = tmp_path / "reference"
    subprocess.run(_segment_argv(root, model, reference), env=ENV, check=True, capture_output=True)
    expected = _masks(reference)
    assert len(expected) == FRAMES

    work = tmp_path / "work"
    work.mkdir()
    out = work / "out"
    rng = np.random.default_rng(0)
    for delay in rng.uniform(0.5, 4.0, size=3):
        _stop_after(_segment_argv(root, model, out), float(delay), signal.SIGKILL)
    # A SIGKILL may leave a temporary beside --out; the next run removes it and finishes the job.
    subprocess.run(_segment_argv(root, model, out), env=ENV, check=True, capture_output=True)
    assert _masks(out) == expected
    assert _stray(work, {"out"}) == []


@pytest.mark.slow
def test_segment_terminated_cleans_up_at_once(clip_and_model, tmp_path):
    root, model = clip_and_model
    out = tmp_path / "out"
    code = None
    for delay in (2.0, 3.0, 4.0):
        code = _stop_after(_segment_argv(root, model, out), delay, signal.SIGTERM)
        if code == 143:
            break
    if code != 143:
        pytest.skip("the run finished before SIGTERM arrived on this machine")
    assert _stray(tmp_path, set()) == []  # no output, no temporary


TRAIN_CONFIG = {
    "model": {
        "objective": "diffusion",
        "num_frames": 4,
        "height": 16,
        "width": 32,
        "backbone": {"channels": [8, 16], "patch": 2, "heads": 2, "emb_dim": 16, "groups": 4},
    },
    "data": {"source": "generator", "train_clips": 2, "val_clips": 2, "val_windows": 2, "occluded_share": 0.0},
    "steps": 24,
    "batch_size": 2,
    "warmup_steps": 2,
    "log_every": 1,
    "checkpoint_every": 4,
    "validate_every": 0,
    "val_steps": 1,
}


@pytest.fixture(scope="module")
def train_setup(tmp_path_factory):
    import json

    root = tmp_path_factory.mktemp("train-kill")
    synth = root / "synth.json"
    synth.write_text(json.dumps({"height": 32, "width": 64, "num_frames": 8, "max_march_steps": 16}))
    config = {**TRAIN_CONFIG, "data": {**TRAIN_CONFIG["data"], "synth_config": str(synth), "cache_dir": str(root / "cache")}}
    path = root / "config.json"
    path.write_text(json.dumps(config))
    return path


def _train_argv(config: Path, out: Path) -> list[str]:
    return [sys.executable, "-m", "amodal", "train", "segmentation", "--config", str(config), "--out", str(out),
            "--no-progress", "--threads", "1"]


def _log(out: Path) -> list[dict]:
    import json

    return [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines() if line.strip()]


def _weights(folder: Path) -> dict:
    from amodal.checkpoints.safetensors import read_safetensors

    return read_safetensors(folder / "model.safetensors")


@pytest.mark.slow
def test_train_killed_anywhere_then_resumed_equals_an_uninterrupted_run(train_setup, tmp_path):
    reference = tmp_path / "reference"
    subprocess.run(_train_argv(train_setup, reference), env=ENV, check=True, capture_output=True)
    work = tmp_path / "work"
    work.mkdir()
    out = work / "run"
    rng = np.random.default_rng(1)
    for delay in rng.uniform(2.0, 9.0, size=3):
        _stop_after(_train_argv(train_setup, out), float(delay), signal.SIGKILL)
    subprocess.run(_train_argv(train_setup, out), env=ENV, check=True, capture_output=True)
    got, expected = _log(out), _log(reference)
    steps = [r["step"] for r in got if "loss" in r]
    assert steps == sorted(set(steps)), "a step was logged twice"
    assert [r["loss"] for r in got if "loss" in r] == [r["loss"] for r in expected if "loss" in r]
    a, b = _weights(out / "model"), _weights(reference / "model")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    leftovers = [p.name for p in (out / "checkpoints").iterdir() if p.name.startswith(".")]
    assert leftovers == [] and _stray(work, {"run"}) == []


@pytest.mark.slow
def test_a_corrupt_newest_checkpoint_is_named_and_the_one_before_is_used(train_setup, tmp_path):
    out = tmp_path / "run"
    subprocess.run(_train_argv(train_setup, out) + ["--stop-at", "8"], env=ENV, check=True, capture_output=True)
    newest = sorted((out / "checkpoints").iterdir())[-1]
    assert newest.name == "step_00000008"
    (newest / "model.safetensors").write_bytes(b"\x00" * 64)  # a damaged disk
    done = subprocess.run(_train_argv(train_setup, out), env=ENV, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "skipping an unreadable checkpoint" in done.stderr and "step_00000008" in done.stderr
    assert "Traceback" not in done.stderr
    steps = [r["step"] for r in _log(out) if "loss" in r]
    assert steps == list(range(1, 25))
