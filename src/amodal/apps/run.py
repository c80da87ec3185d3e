"""``amodal run``: the paper's full system on a video: pseudo-depth, amodal segmentation, content completion.

Outputs: ``OUT/segmentation/`` (everything ``amodal segment`` writes, plus
``modal/<object_id>/`` masks for stage 2) and ``OUT/completion/`` (what
``amodal complete`` writes: per object ``rgb/``, ``rgba/`` and ``overlay/`` PNGs).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal.errors import InputError
from amodal.apps.segment import SegmentRunConfig, segment_video


@dataclass(frozen=True)
class TwoStageConfig:
    """Stage 1 settings (with their inputs and output) plus the stage-2 model and its settings."""

    segmentation: SegmentRunConfig  # inputs, depth, stage-1 model and settings; its ``out`` is OUT/segmentation
    completion_model: str  # stage-2 checkpoint (official Diffusion-VAS content completion, or converted)
    steps: int | None = None  # Euler steps of stage 2; None = the checkpoint's own (the reference's 25)
    guidance: float | None = None  # guidance scale of stage 2; None = the checkpoint's own (the reference's 1.5)
    seed: int = 0  # seed of stage 2's initial noise
    height: int | None = None  # stage-2 resolution; None: the checkpoint's own
    width: int | None = None
    overwrite: bool = False  # replace an existing OUT that amodal run did not write


def write_modal_folders(source, out: Path) -> None:
    """Write the source's modal masks as ``out/<object_id>/<frame>.png`` (0/255), one frame at a time."""
    from PIL import Image

    for oid in source.object_ids:
        (out / str(oid)).mkdir(parents=True, exist_ok=True)
    for t, modal in enumerate(source.iter_modal()):
        for k, oid in enumerate(source.object_ids):
            Image.fromarray(modal[k].astype(np.uint8) * 255).save(out / str(oid) / f"{source.frame_names[t]}.png")


def run_two_stage(config: TwoStageConfig, out: str | Path) -> dict:
    """Run both stages into ``out``; returns a summary (also written to ``out/summary.json``)."""
    import dataclasses

    from amodal.apps.segment import check_arguments, inputs_of
    from amodal.checkpoints.official import adapter
    from amodal.checkpoints.formats import OFFICIAL
    from amodal.checkpoints.registry import resolve
    from amodal.util.fs import atomic_dir, check_output

    seg = config.segmentation
    if seg.pipeline.pad:
        raise InputError("--pad is not supported by `amodal run`: stage 2 completes objects inside the frame")
    check_arguments(seg)
    final = check_output(
        out, command="run", inputs=(*inputs_of(seg), config.completion_model), overwrite=config.overwrite
    )
    # Every model is checked before the first stage starts: its kind, its stage, its layout.
    resolve(seg.model, "segmentation", flag="--segmentation-model")
    completion = resolve(config.completion_model, "completion", flag="--completion-model")
    if completion.kind == OFFICIAL:
        adapter.read_config(completion.path)
    with atomic_dir(final, command="run") as tmp:
        summary = _run_into(config, dataclasses.replace(seg, out=str(tmp / "segmentation")), tmp, final)
    return summary


def _run_into(config: TwoStageConfig, seg, out: Path, final: Path) -> dict:
    from amodal.apps.complete import CompleteCommand, run_complete
    from amodal.completion.pipeline import CompletionConfig
    from amodal.data.io.stream import open_video

    timings = {}
    t0 = time.perf_counter()
    stage1 = segment_video(seg)
    timings["segmentation"] = time.perf_counter() - t0
    source = open_video(seg.frames, seg.masks, seg.mask_mode, seg.objects, seg.depth, seg.fps)
    write_modal_folders(source, out / "segmentation" / "modal")
    t0 = time.perf_counter()
    run_complete(
        CompleteCommand(
            model=config.completion_model,
            frames=seg.frames,
            masks=str(out / "segmentation" / "modal"),
            amodal=str(out / "segmentation" / "masks"),
            out=str(out / "completion"),
            completion=CompletionConfig(
                generation=_generation(config),
                seed=config.seed,
            ),
            device=seg.device,
            dtype=seg.dtype,
            height=config.height,
            width=config.width,
        ),
        progress=seg.pipeline.progress,
    )
    timings["completion"] = time.perf_counter() - t0
    summary = {
        "segmentation": str(final / "segmentation"),
        "completion": str(final / "completion"),
        "objects": [o["id"] for o in stage1["objects"]],
        "frames": stage1["frames"],
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _generation(config: TwoStageConfig):
    """Stage 2's sampling settings (a ``GenerationConfig``): the checkpoint's own, with what the command line chose."""
    from amodal.checkpoints.official.config import GenerationConfig

    chosen = {"steps": config.steps} if config.steps is not None else {}
    if config.guidance is not None:
        chosen.update(min_guidance=config.guidance, max_guidance=config.guidance)
    return GenerationConfig(**chosen)
