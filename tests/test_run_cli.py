"""``amodal run``: depth model, official-layout stage 1 and stage 2 chained on a clip (tiny random models, built in code)."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from amodal.cli import main

from tiny import tiny_depth_network

pytestmark = pytest.mark.usefixtures("one_thread")


def test_run_chains_depth_segmentation_and_completion(tiny_clip, official_checkpoint, tmp_path):
    checkpoint = official_checkpoint
    depth_model = tmp_path / "depth"
    tiny_depth_network().save_pretrained(depth_model, safe_serialization=True)
    clip = tiny_clip
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    frames.mkdir()
    masks.mkdir()
    for path in sorted((clip / "rgbs").iterdir())[:6]:
        shutil.copy(path, frames / path.name)
    for path in sorted((clip / "masks").iterdir())[:6]:
        shutil.copy(path, masks / path.name)
    out = tmp_path / "out"
    code = main([
        "run", "--quiet", "--frames", str(frames), "--masks", str(masks), "--depth-model", str(depth_model),
        "--segmentation-model", str(checkpoint), "--completion-model", str(checkpoint),
        "--steps", "2", "--height", "16", "--width", "32", "--out", str(out),
    ])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["objects"] == [1] and summary["frames"] == 6
    seg = json.loads((out / "segmentation" / "summary.json").read_text())
    assert seg["depth"] == "model"
    amodal = sorted((out / "segmentation" / "masks" / "1").iterdir())
    assert len(amodal) == 6
    modal = np.asarray(Image.open(masks / "frame_000.png").convert("L")) > 128
    assert modal.any()
    assert not (modal & ~(np.asarray(Image.open(amodal[0])) > 0)).any()
    rgba = sorted((out / "completion" / "1" / "rgba").iterdir())
    assert len(rgba) == 6
    image = np.asarray(Image.open(rgba[0]))
    assert image.shape == (*modal.shape, 4)
