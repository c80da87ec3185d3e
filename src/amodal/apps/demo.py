"""``amodal demo``: the whole stage-1 system on a bundled synthetic clip with ground truth.

The clip (``amodal/assets/demo``, 48 frames at 128x256, five objects that pass
behind each other, one of them hidden entirely for a stretch) is in the
synthetic dataset format of ``docs/datasets.md``; it was written by::

    amodal data synth --out src/amodal/data --split demo --videos 1 --seed 5 \\
        --config src/amodal/assets/demo_synth.json

The demo segments every object with the chosen model (three overlapping
windows of the default model's 16 frames), scores it against the ground truth
under the SAIL-VOS protocol next to the non-learned baselines, and writes
overlay videos a person can look at.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

DEMO_ROOT = Path(__file__).resolve().parent.parent / "assets"
DEMO_SPLIT = "demo"


@dataclass(frozen=True)
class DemoConfig:
    """Settings of ``amodal demo``."""

    out: str = "demo_output"  # folder for the overlays and scores
    model: str = "default"  # the model to run (see ``amodal segment --model``)
    steps: int | None = None  # denoising steps; None = the model's own best
    samples: int = 1  # hypotheses per object
    seed: int = 0  # seed of the initial noise
    progress: bool = True  # progress bars
    overwrite: bool = False  # replace an existing out folder that amodal demo did not write


def demo_clip():
    """The bundled clip as an :class:`amodal.Clip` with ground truth."""
    from amodal.data.datasets import open_dataset

    return next(iter(open_dataset("synthetic", DEMO_ROOT, split=DEMO_SPLIT)))


def score(clip, amodal: np.ndarray) -> dict:
    """mIoU, mIoU_occ (reference protocol) and mIoU_occ_strict of ``(K, T, H, W) bool`` predictions.

    Frames where an object is entirely out of view (empty ground truth) are
    skipped, as in the synthetic evaluation.
    """
    from amodal.evaluation.metrics import sailvos_frame_scores, sailvos_summary

    ious, occs, occ_gts = [], [], []
    for k in range(clip.num_objects):
        iou, occ, occ_gt = sailvos_frame_scores(amodal[k], clip.amodal_masks[k], clip.modal_masks[k])
        in_view = clip.amodal_masks[k].any(axis=(1, 2))
        ious.append(iou[in_view])
        occs.append(occ[in_view])
        occ_gts.append(occ_gt[in_view])
    return sailvos_summary(np.concatenate(ious), np.concatenate(occs), np.concatenate(occ_gts))


def run_demo(config: DemoConfig) -> dict:
    """Segment the bundled clip, score it, write overlays; returns the scores per method."""
    from amodal.segmentation import baselines
    from amodal.checkpoints.registry import BUNDLED
    from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig
    from amodal.util.fs import atomic_dir, check_output
    from amodal.viz.overlay import render_overlay_video

    out = check_output(
        config.out, command="demo", overwrite=config.overwrite, inputs=(None if config.model in BUNDLED else config.model,)
    )
    clip = demo_clip()
    pipe = AmodalSegmentationPipeline.from_pretrained(
        config.model,
        SegmentationConfig(steps=config.steps, samples=config.samples, seed=config.seed, progress=config.progress),
    )
    start = time.perf_counter()
    output = pipe(clip)
    seconds = time.perf_counter() - start
    results = {
        "modal": score(clip, baselines.modal_baseline(clip)),
        "convex": score(clip, baselines.convex_baseline(clip)),
        "temporal": score(clip, baselines.temporal_baseline(clip)),
        config.model: score(clip, output.amodal_masks),
    }
    with atomic_dir(out, command="demo") as tmp:
        render_overlay_video(clip, tmp / "overlay.mp4", output.amodal_masks)
        render_overlay_video(clip, tmp / "overlay.gif", output.amodal_masks)
        render_overlay_video(clip, tmp / "panels.mp4", output.amodal_masks, panels=True)
        _write_scores(tmp, clip, config, pipe, seconds, results)
    return json.loads((out / "scores.json").read_text())


def _write_scores(folder: Path, clip, config: DemoConfig, pipe, seconds: float, results: dict) -> None:
    from amodal.util.fs import write_json

    summary = {
        "clip": clip.source,
        "frames": clip.num_frames,
        "objects": clip.num_objects,
        "model": config.model,
        "steps": pipe.steps,
        "guidance": pipe.guidance,
        "seconds": round(seconds, 2),
        "seconds_per_frame": round(seconds / clip.num_frames, 3),
        "scores": results,
    }
    write_json(folder / "scores.json", summary)


def format_table(summary: dict) -> str:
    """The scores as an aligned text table (fractions shown as percentages; "-" where no frame was kept)."""
    def percent(value) -> str:
        return "-" if value is None or value != value else f"{100 * value:.2f}"

    lines = [f"{'method':<20} {'mIoU':>7} {'mIoU_occ':>9} {'mIoU_occ_strict':>16}"]
    for name, s in summary["scores"].items():
        lines.append(f"{name:<20} {percent(s['miou']):>7} {percent(s['miou_occ']):>9} {percent(s['miou_occ_strict']):>16}")
    return "\n".join(lines)
