"""``amodal demo``: the whole system (both stages) on a bundled synthetic clip with ground truth.

The clip (``amodal/assets/demo``, 48 frames at 128x256, five objects that pass
behind each other, one of them hidden entirely for a stretch) is in the
synthetic dataset format of ``docs/datasets.md``; it was written by::

    amodal data synth --out src/amodal/data --split demo --videos 1 --seed 5 \\
        --config src/amodal/assets/demo_synth.json

The demo runs :class:`amodal.system.AmodalSystem` on it: stage 1 segments every
object (three overlapping windows of the default model's 16 frames), stage 2
completes each object inside the predicted amodal masks. Both are scored against
the clip's ground truth next to the non-learned baselines: stage 1 under the
SAIL-VOS protocol (mIoU, mIoU_occ, strict), stage 2 end to end on the hidden
region of the true amodal mask (psnr_occ, ssim_occ, mae_occ; ``docs/evaluation.md``),
with the baselines given the same stage-1 masks. It writes overlay videos, the
completed objects as RGBA PNGs, and ``system.mp4``: input, amodal masks and the
completed objects side by side.
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
    model: str = "default"  # the stage-1 model (see ``amodal segment --model``)
    completion_model: str = "default-completion"  # the stage-2 model (see ``amodal complete --model``)
    steps: int | None = None  # denoising steps; None = the model's own best
    guidance: float | None = None  # stage-1 guidance scale; None = the model's own best
    samples: int = 1  # hypotheses per object
    seed: int = 0  # seed of the initial noise
    progress: bool = True  # progress bars
    legend: bool = True  # the colour legend below the overlay videos
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


def completion_scores(clip, samples: np.ndarray) -> dict:
    """psnr_occ, ssim_occ, mae_occ (Top-1) of ``(S, K, T, H, W, 3) uint8`` completions against the clip's truth.

    Scored on the hidden part of the *true* amodal mask, as ``amodal eval --task completion``.
    """
    from amodal.data.datasets.base import Annotation
    from amodal.evaluation.scoring import score_completion, summarize_completion

    annotation = Annotation(
        video=clip.source or "demo", modal_masks=clip.modal_masks, amodal_masks=clip.amodal_masks, amodal_boxes=None,
        object_ids=clip.object_ids, category_ids=(0,) * clip.num_objects, object_keys=clip.object_ids,
        frame_keys=tuple(range(clip.num_frames)), frame_names=clip.frame_names, fps=8.0, source=clip.source or "demo",
    )
    summary = summarize_completion(score_completion(annotation, clip.amodal_rgb, samples, 0))
    return {name: summary[name] for name in ("psnr_occ", "ssim_occ", "mae_occ", "psnr", "silhouette_iou")}


def composite(rgb: np.ndarray, masks: np.ndarray, modal: np.ndarray) -> np.ndarray:
    """``(T, H, W, 3) uint8``: every completed object on white, the most hidden painted first (it is behind).

    Args:
        rgb: ``(K, T, H, W, 3) uint8`` completed objects; masks, modal: ``(K, T, H, W) bool``.
    """
    out = np.full(rgb.shape[1:], 255, np.uint8)
    hidden = (masks & ~modal).sum(axis=(2, 3)) / np.maximum(masks.sum(axis=(2, 3)), 1)  # (K, T) hidden share
    for t in range(rgb.shape[1]):
        for k in np.argsort(-hidden[:, t], kind="stable"):
            out[t][masks[k, t]] = rgb[k, t][masks[k, t]]
    return out


def run_demo(config: DemoConfig) -> dict:
    """Run both stages on the bundled clip, score them, write overlays and completions; returns the summary."""
    from amodal.apps.complete import NotedCompletion, write_result
    from amodal.checkpoints.registry import model_inputs
    from amodal.completion import baselines as completion_baselines
    from amodal.completion.pipeline import ContentCompletionPipeline, PipelineConfig
    from amodal.segmentation import baselines
    from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig
    from amodal.system import AmodalSystem
    from amodal.util.fs import atomic_dir, check_output
    from amodal.viz.overlay import render_overlay_video

    inputs = (*model_inputs(config.model, config.completion_model), DEMO_ROOT / DEMO_SPLIT)
    out = check_output(config.out, command="demo", overwrite=config.overwrite, inputs=inputs)
    clip = demo_clip()
    system = AmodalSystem(
        AmodalSegmentationPipeline.from_pretrained(
            config.model,
            SegmentationConfig(steps=config.steps, guidance=config.guidance, samples=config.samples, seed=config.seed,
                               progress=config.progress),
        ),
        NotedCompletion(  # says on a non-terminal stderr when stage 2 starts and ends
            ContentCompletionPipeline.from_pretrained(
                config.completion_model, PipelineConfig(seed=config.seed, progress=config.progress)
            ),
            config.completion_model, config.progress,
        ),
    )
    given = clip.replace(amodal_masks=None, amodal_rgb=None)  # the system never sees the answer
    output = system(given)
    masks = output.amodal_masks
    results = {
        "modal": score(clip, baselines.modal_baseline(clip)),
        "convex": score(clip, baselines.convex_baseline(clip)),
        "temporal": score(clip, baselines.temporal_baseline(clip)),
        config.model: score(clip, masks),
    }
    stage1_input = clip.replace(amodal_masks=masks, amodal_rgb=None)
    completion = {
        "copy-modal": completion_scores(clip, completion_baselines.copy_modal(stage1_input, masks)[None]),
        "temporal": completion_scores(clip, completion_baselines.temporal(stage1_input, masks)[None]),
        config.completion_model: completion_scores(clip, output.completion.samples),
    }
    with atomic_dir(out, command="demo") as tmp:
        drawing = dict(legend=config.legend, progress=config.progress)
        render_overlay_video(clip, tmp / "overlay.mp4", masks, **drawing)  # amodal | ground truth
        render_overlay_video(clip, tmp / "overlay.gif", masks, **drawing)
        render_overlay_video(clip, tmp / "panels.mp4", masks, panels=True, **drawing)
        write_result(output.completion, clip.frame_names, tmp / "completion")
        _write_system_video(tmp / "system.mp4", clip, masks, output.completion.rgb, legend=config.legend)
        _write_scores(tmp, clip, config, system, output.timings, results, completion)
    return json.loads((out / "scores.json").read_text())


def _write_system_video(path: Path, clip, masks: np.ndarray, rgb: np.ndarray, *, legend: bool = True) -> None:
    """Input frame, amodal masks over it, and the completed objects, side by side, enlarged for display."""
    from amodal.data.io.writers import write_animation
    from amodal.viz.overlay import below, display_scale, enlarge, legend_strip, overlay_frame, side_by_side, text_size

    completed = composite(rgb, masks, clip.modal_masks)
    factor = display_scale(clip.size[0])

    def frames():
        strip = None
        for t in range(clip.num_frames):
            frame = enlarge(clip.frames[t], factor)
            drawn = overlay_frame(frame, enlarge(clip.modal_masks[:, t], factor, (1, 2)), enlarge(masks[:, t], factor, (1, 2)),
                                  object_ids=clip.object_ids, legend=False)
            image = side_by_side([frame, drawn, enlarge(completed[t], factor)],
                                 ["input", "amodal masks (stage 1)", "completed objects (stage 2)"])
            if legend:
                strip = strip if strip is not None else legend_strip(image.shape[1], clip.object_ids, size=text_size(frame.shape[0]))
                image = below(image, strip)
            yield image

    write_animation(path, frames(), 8.0)


def _write_scores(folder: Path, clip, config: DemoConfig, system, timings: dict, results: dict, completion: dict) -> None:
    from amodal.util.fs import write_json

    seconds = timings["segmentation"] + timings["completion"]
    summary = {
        "clip": clip.source,
        "frames": clip.num_frames,
        "objects": clip.num_objects,
        "model": config.model,
        "completion_model": config.completion_model,
        "steps": system.segmentation.steps,
        "guidance": system.segmentation.guidance,
        "completion_steps": system.completion.completer.default_steps,
        "seconds": round(seconds, 2),
        "seconds_per_frame": round(seconds / clip.num_frames, 3),
        "seconds_per_frame_by_stage": {k: round(timings[k] / clip.num_frames, 3) for k in ("segmentation", "completion")},
        "scores": results,
        "completion_scores": completion,
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


def format_completion_table(summary: dict) -> str:
    """Stage 2's scores as an aligned text table ("-" where no frame had a hidden part)."""
    def number(value, digits: int) -> str:
        return "-" if value is None or value != value else f"{value:.{digits}f}"

    lines = [f"{'method':<28} {'psnr_occ':>9} {'ssim_occ':>9} {'mae_occ':>8}"]
    for name, s in summary["completion_scores"].items():
        lines.append(f"{name:<28} {number(s['psnr_occ'], 2):>9} {number(s['ssim_occ'], 3):>9} {number(s['mae_occ'], 1):>8}")
    return "\n".join(lines)
