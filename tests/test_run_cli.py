"""``amodal run``: depth model, official-layout stage 1 and stage 2 chained on a clip (tiny random models, built in code)."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from amodal.cli import main

from tiny import tiny_depth_network

pytestmark = pytest.mark.usefixtures("one_thread")


def first_frames(clip, tmp_path, count):
    """Copies of the first ``count`` frames and masks of a clip folder: (frames folder, masks folder)."""
    frames, masks = tmp_path / "frames", tmp_path / "masks"
    for kind, folder in (("rgbs", frames), ("masks", masks)):
        folder.mkdir()
        for path in sorted((clip / kind).iterdir())[:count]:
            shutil.copy(path, folder / path.name)
    return frames, masks


def test_run_chains_depth_segmentation_and_completion(tiny_clip, official_checkpoint, tmp_path):
    checkpoint = official_checkpoint
    depth_model = tmp_path / "depth"
    tiny_depth_network().save_pretrained(depth_model, safe_serialization=True)
    frames, masks = first_frames(tiny_clip, tmp_path, 6)
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


def test_run_writes_what_the_in_memory_system_returns(tiny_clip, tmp_path):
    """The bundled models by default; OUT holds exactly the AmodalSystem's masks and completed objects."""
    from amodal.clip import Clip
    from amodal.data.io.frames import read_frames
    from amodal.system import AmodalSystem

    frames, masks = first_frames(tiny_clip, tmp_path, 6)
    out = tmp_path / "out"
    assert main(["run", "--quiet", "--frames", str(frames), "--masks", str(masks), "--no-depth", "--seed", "3",
                 "--out", str(out)]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["completion_model"] == "default-completion" and summary["frames"] == 6

    names = tuple(p.stem for p in sorted(frames.iterdir()))
    modal = np.stack([np.asarray(Image.open(masks / f"{n}.png").convert("L")) > 128 for n in names])[None]
    clip = Clip(frames=read_frames(frames), modal_masks=modal, object_ids=(1,), frame_names=names)
    system = AmodalSystem.from_pretrained("default", "default-completion")
    system.segmentation.config = dataclass_replace(system.segmentation.config, progress=False)
    system.completion.config = dataclass_replace(system.completion.config, progress=False)
    expected = system(clip, seed=3)
    written_masks = np.stack([np.asarray(Image.open(out / "segmentation" / "masks" / "1" / f"{n}.png")) > 0 for n in names])
    np.testing.assert_array_equal(written_masks, expected.amodal_masks[0])
    written_rgba = np.stack([np.asarray(Image.open(out / "completion" / "1" / "rgba" / f"{n}.png")) for n in names])
    np.testing.assert_array_equal(written_rgba, expected.completion.rgba[0])
    # The modal masks are kept beside stage 1's outputs, so `amodal complete` can be rerun on OUT.
    rerun = tmp_path / "rerun"
    assert main(["complete", "--quiet", "--model", "default-completion", "--frames", str(frames),
                 "--masks", str(out / "segmentation" / "modal"), "--amodal", str(out / "segmentation" / "masks"),
                 "--seed", "3", "--out", str(rerun)]) == 0
    again = np.stack([np.asarray(Image.open(rerun / "1" / "rgba" / f"{n}.png")) for n in names])
    np.testing.assert_array_equal(again, written_rgba)


def dataclass_replace(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)


def test_run_refuses_a_clip_that_does_not_fit_in_memory_before_anything_runs(tiny_clip, tmp_path, monkeypatch, capsys):
    import amodal.util.checks as checks

    monkeypatch.setattr(checks, "available_memory", lambda: 1024)
    out = tmp_path / "out"
    code = main(["run", "--quiet", "--frames", str(tiny_clip / "rgbs"), "--masks", str(tiny_clip / "masks"),
                 "--no-depth", "--out", str(out)])
    assert code == 2
    err = capsys.readouterr().err
    assert "amodal: error:" in err and "`amodal segment`" in err
    assert not out.exists() and not list(tmp_path.glob(".out*"))


def test_run_samples_and_both_stages_report_progress_off_a_terminal(tiny_clip, tmp_path, capsys):
    """--samples K reaches both stages; stage 2 says what it does on a non-terminal stderr; one line each at the end."""
    frames, masks = first_frames(tiny_clip, tmp_path, 6)
    out = tmp_path / "out"
    capsys.readouterr()
    assert main(["run", "--frames", str(frames), "--masks", str(masks), "--no-depth", "--samples", "2",
                 "--out", str(out)]) == 0
    printed = capsys.readouterr()
    assert "stage 2: completing 1 object(s) over 6 frames with default-completion" in printed.err
    assert "stage 2: done in" in printed.err
    lines = printed.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {out}: ") and "{" not in lines[0]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["samples"] == {"segmentation": 2, "completion": 2}
    assert len(list((out / "segmentation" / "uncertainty" / "1").iterdir())) == 6
    assert (out / "segmentation" / "uncertainty.mp4").is_file()
    assert len(list((out / "completion" / "1" / "spread").iterdir())) == 6
    assert len(list((out / "segmentation" / "davis").iterdir())) == 6

    # amodal complete on run's outputs: the same notes, and one summary line rather than a raw dict.
    again = tmp_path / "again"
    assert main(["complete", "--frames", str(frames), "--masks", str(out / "segmentation" / "modal"),
                 "--amodal", str(out / "segmentation" / "masks"), "--out", str(again)]) == 0
    printed = capsys.readouterr()
    assert "amodal: stage 2: completing 1 object(s) over 6 frames" in printed.err
    lines = printed.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"wrote {again}: 1 object(s), 6 frames, ") and "{" not in lines[0]
    summary = json.loads((again / "summary.json").read_text())
    # The bundled model's own settings, from its config.json.
    from amodal.checkpoints.registry import bundled_path

    config = json.loads((bundled_path("default-completion") / "config.json").read_text())
    assert summary["objects"] == [1] and summary["frames"] == 6
    assert (summary["steps"], summary["guidance"]) == (config["sampling_steps"], config["sampling_guidance"])
    # --quiet keeps stderr empty.
    assert main(["complete", "--quiet", "--frames", str(frames), "--masks", str(out / "segmentation" / "modal"),
                 "--amodal", str(out / "segmentation" / "masks"), "--out", str(again)]) == 0
    assert capsys.readouterr().err == ""
