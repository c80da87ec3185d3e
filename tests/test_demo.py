"""``amodal demo``: both stages on the bundled clip, scored against its ground truth, outputs people can open."""

import json

import numpy as np
import pytest
from PIL import Image

from amodal.apps.demo import composite
from amodal.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_demo_runs_both_stages_and_writes_completed_objects(tmp_path, capsys):
    from amodal.data.io.video import iter_video

    out = tmp_path / "demo"
    assert main(["demo", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "stage 1" in printed and "stage 2" in printed and "default-completion" in printed
    def refuse(constant):
        raise ValueError(f"scores.json holds {constant}, which strict JSON parsers reject")

    summary = json.loads((out / "scores.json").read_text(), parse_constant=refuse)  # no NaN / Infinity
    json.dumps(summary, allow_nan=False)
    assert summary["scores"]["modal"]["miou_occ"] is None  # every frame dropped: undefined, written as null
    assert set(summary["scores"]) == {"modal", "convex", "temporal", "default"}
    stage2 = summary["completion_scores"]
    assert set(stage2) == {"copy-modal", "temporal", "default-completion"}
    # Leaving hidden pixels white is the floor any completion must clear.
    assert stage2["default-completion"]["psnr_occ"] > stage2["copy-modal"]["psnr_occ"] + 3
    for oid in range(1, 6):
        files = sorted((out / "completion" / str(oid) / "rgba").iterdir())
        assert len(files) == 48
        assert np.asarray(Image.open(files[0])).shape == (128, 256, 4)
    frames = list(iter_video(out / "system.mp4"))
    assert len(frames) == 48 and frames[0].shape[1] > 3 * 2 * 256  # enlarged 2x for display
    # The 128-pixel-high clip is shown at 2x, the legend in a strip below the panels, not over them.
    panels = next(iter_video(out / "panels.mp4"))
    assert panels.shape[1] > 4 * 2 * 256 and panels.shape[0] > 2 * 128 + 20 + 15
    overlay = next(iter_video(out / "overlay.mp4"))
    assert overlay.shape[1] > 2 * 2 * 256


def test_composite_paints_the_more_hidden_object_first():
    rgb = np.zeros((2, 1, 4, 4, 3), np.uint8)
    rgb[0] += 10
    rgb[1] += 200
    masks = np.zeros((2, 1, 4, 4), bool)
    masks[:, :, 1:3, 1:3] = True  # both objects cover the same pixels
    modal = masks.copy()
    modal[0] = False  # object 0 is hidden entirely: it is behind
    modal[0, 0, 1, 1] = True
    out = composite(rgb, masks, modal)
    assert (out[0, 1:3, 1:3] == 200).all()  # object 1, in front, is painted last
    assert (out[0, 0] == 255).all()  # white where no object is


def test_bench_system_times_both_stages_per_object_frame(tmp_path, capsys):
    out = tmp_path / "bench.json"
    argv = ["bench", "--system", "--model", "default-regression", "--completion-model", "default-completion-regression",
            "--repeats", "1", "--json", str(out)]
    assert main(argv) == 0
    assert "per object-frame" in capsys.readouterr().out
    r = json.loads(out.read_text())
    assert (r["frames"], r["objects"]) == (48, 5)
    for stage in ("segmentation", "completion"):
        assert r[f"{stage}_sec_per_frame"] > 0
        assert r[f"{stage}_sec_per_object_frame"] == pytest.approx(r[f"{stage}_sec_per_frame"] / 5)
    # A stage-2 model where stage 1 is asked for is refused in one line before anything runs.
    assert main(["bench", "--system", "--model", "default-completion"]) == 2
    assert "amodal: error:" in capsys.readouterr().err


def test_bench_prints_what_a_regression_model_runs(capsys):
    assert main(["bench", "--model", "default-regression", "--steps", "25", "--guidance", "1.5", "--repeats", "1"]) == 0
    printed = capsys.readouterr().out
    assert "one step, no guidance" in printed and "(--steps/--guidance ignored)" in printed
    assert "steps=25" not in printed and "guidance=1.5" not in printed
