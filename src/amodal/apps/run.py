"""``amodal run``: the paper's full system on a video: pseudo-depth, amodal segmentation, content completion.

The video is read once into an :class:`amodal.Clip` and both stages run in memory
(:class:`amodal.system.AmodalSystem`); nothing passes between them through files. Outputs:

- ``OUT/segmentation/``: what ``amodal segment`` writes (mask PNGs, DAVIS-style ``davis/``
  label images, ``amodal.json``, ``coco_instances.json``, ``predictions_sailvos.json``, overlay
  videos, with ``samples > 1`` the uncertainty outputs, with ``save_depth`` ``depth/``,
  ``summary.json``), plus ``modal/<object_id>/``, the modal masks, so that ``amodal complete``
  can be rerun on the outputs;
- ``OUT/completion/``: what ``amodal complete`` writes (per object ``rgb/``, ``rgba/`` and
  ``overlay/`` PNGs, and ``spread/`` with ``samples > 1``);
- ``OUT/layers/`` with ``--export layers``: per object a square object-centred video on white
  and as RGBA, its crop boxes, and the depth order per frame (apps/layers.py);
- ``OUT/summary.json``: objects, frames, seconds per stage.

Unlike ``amodal segment``, which streams, the whole clip is held in memory (stage 2 needs
every frame of an object's window at once); the run is refused up front when it would not fit.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal.apps.segment import SegmentRunConfig
from amodal.errors import InputError


@dataclass(frozen=True)
class TwoStageConfig:
    """Stage 1 settings (with their inputs) plus the stage-2 model and its settings."""

    segmentation: SegmentRunConfig  # inputs, depth, stage-1 model and settings (its ``out`` is not used)
    completion_model: str = "default-completion"  # stage-2 model: a bundled name, our folder, or an official checkpoint
    steps: int | None = None  # denoising steps of stage 2; None = the model's own
    guidance: float | None = None  # guidance scale of stage 2; None = the model's own
    samples: int = 1  # appearances per object in stage 2 (stage 1's hypotheses are segmentation.pipeline.samples)
    seed: int = 0  # seed of stage 2's initial noise
    propagate: bool = True  # ours: stage 2 carries pixels other frames show first, paints the rest
    height: int | None = None  # stage-2 resolution of an official checkpoint; None: its own
    width: int | None = None
    overwrite: bool = False  # replace an existing OUT that amodal run did not write
    layers: bool = False  # also write object layers for 4D reconstruction into OUT/layers (apps/layers.py)
    layer_size: int = 576  # side of the layer frames (SV4D's 576)


# Bytes one pixel of one (object, frame) costs while both stages' results are held: the masks,
# the completed samples, RGB, RGBA and overlay (uint8), with room for the float copies of a window.
BYTES_PER_OBJECT_PIXEL = 40
# ... and each further sample: stage 2's RGB sample (uint8), stage 1's mask sample and its share in float32.
BYTES_PER_EXTRA_SAMPLE = 8

PAD_REFUSED = ("--pad is not supported by `amodal run`: stage 2 completes objects inside the frame, where their pixels "
               "are; run `amodal segment --pad` for masks that reach past the border")


def write_modal_folders(clip, out: Path) -> None:
    """Write the clip's modal masks as ``out/<object_id>/<frame>.png`` (0/255)."""
    from PIL import Image

    for k, oid in enumerate(clip.object_ids):
        folder = out / str(oid)
        folder.mkdir(parents=True, exist_ok=True)
        for t, name in enumerate(clip.frame_names):
            Image.fromarray(clip.modal_masks[k, t].astype(np.uint8) * 255).save(folder / f"{name}.png")


def run_two_stage(config: TwoStageConfig, out: str | Path) -> dict:
    """Run both stages into ``out``; returns a summary (also written to ``out/summary.json``)."""
    from amodal.apps.segment import check_arguments, inputs_of
    from amodal.checkpoints.formats import OFFICIAL
    from amodal.checkpoints.official import adapter
    from amodal.checkpoints.registry import model_inputs, resolve
    from amodal.util.fs import atomic_dir, check_output

    seg = config.segmentation
    if seg.pipeline.pad:
        raise InputError(PAD_REFUSED)
    check_arguments(seg)
    from amodal.apps.layers import check_layer_size

    check_layer_size(config.layer_size)
    final = check_output(out, command="run", inputs=(*inputs_of(seg), *model_inputs(config.completion_model)), overwrite=config.overwrite)
    # Every model is checked before the first stage starts: its kind, its stage, its layout.
    resolve(seg.model, "segmentation", flag="--segmentation-model")
    completion = resolve(config.completion_model, "completion", flag="--completion-model")
    if completion.kind == OFFICIAL:
        adapter.read_config(completion.path)
    with atomic_dir(final, command="run") as tmp:
        summary = _run_into(config, tmp, final)
    return summary


def read_clip(seg: SegmentRunConfig, source):
    """The whole video of ``source`` in memory as an :class:`amodal.Clip` (depth when a folder was given)."""
    from amodal.clip import Clip

    frames = np.stack(list(source.iter_frames()))
    modal = np.stack(list(source.iter_modal()), axis=1)  # (K, T, H, W)
    depth_frames = source.iter_depth() if not seg.no_depth else None
    depth = None if depth_frames is None else np.stack(list(depth_frames)).astype(np.float32)
    return Clip(frames=frames, modal_masks=modal, object_ids=tuple(source.object_ids),
                frame_names=tuple(source.frame_names), depth=depth, source=str(seg.frames))


def _run_into(config: TwoStageConfig, out: Path, final: Path) -> dict:
    from amodal.apps.complete import NotedCompletion, completion_pipeline, write_result
    from amodal.apps.segment import DepthWriter, SegmentationWriter, write_overlays, run_summary, segmentation_pipeline
    from amodal.util.fs import write_json
    from amodal.checkpoints.formats import OURS
    from amodal.checkpoints.registry import resolve
    from amodal.completion.pipeline import CompletionConfig
    from amodal.data.io.stream import open_video
    from amodal.system import AmodalSystem
    from amodal.util.checks import check_fits_in_memory

    seg = config.segmentation
    timings: dict[str, float] = {}
    start = time.perf_counter()
    source = open_video(seg.frames, seg.masks, seg.mask_mode, seg.objects, seg.depth, seg.fps)
    height, width = source.size
    extra = (max(seg.pipeline.samples, config.samples) - 1) * BYTES_PER_EXTRA_SAMPLE
    check_fits_in_memory(
        source.num_frames * height * width * (3 + len(source.object_ids) * (BYTES_PER_OBJECT_PIXEL + extra)),
        f"`amodal run` on {source.num_frames} frames of {width}x{height} with {len(source.object_ids)} object(s)",
        "run `amodal segment` (which streams) and then `amodal complete` on parts of the video",
    )
    segmentation = segmentation_pipeline(seg, source, timings)
    ours = resolve(config.completion_model, "completion").kind == OURS
    t0 = time.perf_counter()
    completion = completion_pipeline(
        config.completion_model, device=seg.device, dtype="float32" if ours else seg.dtype,
        height=None if ours else config.height, width=None if ours else config.width,
        steps=config.steps, guidance=config.guidance, samples=config.samples, propagate=config.propagate,
        official=CompletionConfig(seed=config.seed), progress=seg.pipeline.progress,
    )
    timings["completion_model_load"] = time.perf_counter() - t0
    depth_model = None
    if seg.depth_model is not None:
        from amodal.depth import load_depth_model

        t0 = time.perf_counter()
        depth_model = load_depth_model(seg.depth_model, device=seg.device)
        timings["depth_load"] = time.perf_counter() - t0
    clip = read_clip(seg, source)
    if clip.depth is None and depth_model is None and getattr(segmentation.segmenter, "uses_depth", False) and not seg.no_depth:
        print("amodal: no depth given (--depth or --depth-model): running the model mask-only")
    noted = NotedCompletion(completion, config.completion_model, seg.pipeline.progress)
    result = AmodalSystem(segmentation, noted, depth_model)(clip, seed=config.seed)
    timings.update(result.timings)

    stage1 = out / "segmentation"
    samples = seg.pipeline.samples
    writer = SegmentationWriter(stage1, source, with_uncertainty=samples > 1)
    frequency = result.segmentation.frequency
    for t in range(clip.num_frames):
        writer.add(t, clip.modal_masks[:, t], result.amodal_masks[:, t], None if frequency is None else frequency[:, t])
    writer.finish((0, 0), padded=False)
    write_overlays(stage1, source, clip.object_ids, seg, samples > 1, (0, 0))
    write_modal_folders(clip, stage1 / "modal")
    depth_kind = "none" if result.depth is None else ("model" if depth_model is not None else "precomputed")
    stage1_summary = run_summary(seg, source, segmentation, writer.areas, (height, width), depth_kind, timings)
    if seg.save_depth and result.depth is not None:
        saver = DepthWriter(stage1 / "depth")
        for name, depth in zip(clip.frame_names, result.depth):
            saver.add(name, depth)
        stage1_summary["depth_range"] = saver.finish()
    write_json(stage1 / "summary.json", stage1_summary)
    write_result(result.completion, clip.frame_names, out / "completion")
    if config.layers:
        from amodal.apps.layers import write_layers

        t0 = time.perf_counter()
        write_layers(out / "layers", result.completion.rgb, result.completion.rgba, clip.modal_masks,
                     result.amodal_masks, clip.object_ids, clip.frame_names, depth=result.depth, size=config.layer_size)
        timings["layers"] = time.perf_counter() - t0
    timings["total"] = time.perf_counter() - start

    summary = {
        "segmentation": str(final / "segmentation"),
        "completion": str(final / "completion"),
        "segmentation_model": seg.model,
        "completion_model": config.completion_model,
        "objects": list(clip.object_ids),
        "frames": clip.num_frames,
        "samples": {"segmentation": samples, "completion": config.samples},
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "seconds_per_frame": round((timings["segmentation"] + timings["completion"]) / clip.num_frames, 4),
    }
    write_json(out / "summary.json", summary)
    return summary
