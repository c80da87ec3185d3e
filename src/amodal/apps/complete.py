"""``amodal complete``: read frames and mask folders, run stage 2, write each object's completed appearance."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amodal.clip import Clip
from amodal.completion.pipeline import CompletionConfig, ContentCompletionPipeline, PipelineConfig, generation_with
from amodal.errors import InputError


def write_result(result, frame_names: tuple[str, ...], out: str | os.PathLike, also=None) -> Path:
    """Write ``out/<object id>/{rgb,rgba,overlay}/<frame>.png`` (and ``spread/``, the per-pixel standard
    deviation over samples on 0..255, when there are several); the folder appears only once complete.

    ``also(folder)``, when given, writes more into the folder before it appears (``--export layers``).
    """
    from PIL import Image

    from amodal.util.fs import atomic_dir

    out = Path(out)
    with atomic_dir(out, command="complete") as tmp:
        spread = getattr(result, "spread", None)
        for k, object_id in enumerate(result.object_ids):
            kinds = [("rgb", result.rgb[k]), ("rgba", result.rgba[k]), ("overlay", result.overlay[k])]
            if spread is not None:
                kinds.append(("spread", np.clip(np.round(spread[k]), 0, 255).astype(np.uint8)))
            for kind, images in kinds:
                folder = tmp / str(object_id) / kind
                folder.mkdir(parents=True)
                for name, image in zip(frame_names, images):
                    Image.fromarray(image).save(folder / f"{name}.png")
        if also is not None:
            also(tmp)
    return out


def stage_note(text: str, progress: bool = True) -> None:
    """Say on stderr what a stage is doing, when its progress bar would not show (stderr is not a terminal).

    The stage-2 pipeline's bar, like most, draws only on a terminal; in a log file or a pipe
    these lines are what tells a user the run is alive and where it is.
    """
    if progress and not sys.stderr.isatty():
        print(f"amodal: {text}", file=sys.stderr, flush=True)


class NotedCompletion:
    """A stage-2 pipeline that announces its start and end with :func:`stage_note`; otherwise the pipeline itself."""

    def __init__(self, pipeline: ContentCompletionPipeline, name: str, progress: bool = True):
        self.pipeline = pipeline
        self.name = name
        self.progress = progress

    def __call__(self, clip, amodal_masks=None, **kwargs):
        k, t = clip.modal_masks.shape[:2]
        stage_note(f"stage 2: completing {k} object(s) over {t} frames with {self.name}", self.progress)
        start = time.perf_counter()
        result = self.pipeline(clip, amodal_masks, **kwargs)
        seconds = time.perf_counter() - start
        stage_note(f"stage 2: done in {seconds:.1f} s ({seconds / max(1, t):.3f} s/frame)", self.progress)
        return result

    def __getattr__(self, name):
        return getattr(self.pipeline, name)


@dataclass(frozen=True)
class CompleteCommand:
    """What ``amodal complete`` runs."""

    model: str  # official or converted content-completion checkpoint folder
    frames: str  # folder of RGB frames or a video file
    masks: str  # modal masks: one folder of images, or subfolders named by object id
    amodal: str  # amodal masks from stage 1, laid out like ``masks``
    out: str  # output folder (replaced atomically)
    completion: CompletionConfig = field(default_factory=CompletionConfig)
    device: str = "cpu"  # cpu or cuda
    dtype: str = "float32"  # float32 / bfloat16 (CPU); float16 / bfloat16 (CUDA)
    offload: bool = False  # move each network to the GPU only while it runs
    height: int | None = None  # model resolution; None: the checkpoint's native size (256 for the official one)
    width: int | None = None  # the reference notes 512x1024 sometimes does better than 256x512
    overwrite: bool = False  # replace an existing --out that amodal complete did not write
    steps: int | None = None  # denoising steps; None = the model's own (the official checkpoints' 25)
    guidance: float | None = None  # guidance scale; None = the model's own (the official checkpoints' 1.5)
    samples: int = 1  # appearances per object; the written one is sample 0
    propagate: bool = True  # ours: carry pixels other frames show first, paint the rest (PipelineConfig.propagate)
    layers: bool = False  # also write object layers for 4D reconstruction into OUT/layers (apps/layers.py)
    layer_size: int = 576  # side of the layer frames (SV4D's 576)


def run_complete(command: CompleteCommand, *, progress: bool = True) -> dict:
    """Read the folders, load the model, complete every object, write the results (and ``OUT/summary.json``).

    Returns the summary: ``out``, ``model``, ``objects`` (ids), ``frames``, ``samples``, ``steps``,
    ``guidance`` (what ran; ``None`` for an official checkpoint's own schedule), ``timings_s`` and
    ``seconds_per_frame``.
    """
    from amodal.data.io.frames import frame_names, read_frames
    from amodal.data.io.masks import read_mask_folder
    from amodal.checkpoints.registry import model_inputs, resolve
    from amodal.util.checks import check_device, check_seed
    from amodal.util.fs import check_output

    check_device(command.device)
    check_seed(command.completion.seed)
    from amodal.apps.layers import check_layer_size

    check_layer_size(command.layer_size)
    out = check_output(
        command.out, command="complete", inputs=(command.frames, command.masks, command.amodal, *model_inputs(command.model)),
        overwrite=command.overwrite,
    )
    resolve(command.model, "completion")  # a wrong --model is found before the frames are read
    start = time.perf_counter()
    stage_note(f"reading {command.frames}, {command.masks} and {command.amodal}", progress)
    frames = read_frames(command.frames)
    names = frame_names(command.frames)
    size = frames.shape[1:3]
    # Both folders: one folder of images (one object) or one numbered subfolder per object, matched to the frames.
    modal = read_mask_folder(command.masks, names, size, what="modal masks")
    amodal = read_mask_folder(command.amodal, names, size, require_visible=False, what="amodal masks")
    if modal.object_ids != amodal.object_ids:
        raise InputError(
            f"{command.amodal}: object ids {list(amodal.object_ids)} differ from {command.masks}'s {list(modal.object_ids)}"
        )
    clip = Clip(
        frames=frames, modal_masks=modal.modal, object_ids=modal.object_ids, frame_names=names, source=str(command.frames)
    )
    # read_mask_folder returns whatever masks a folder holds as ``.modal``; these are the amodal ones.
    pipe = completion_pipeline(
        command.model, device=command.device, dtype=command.dtype, offload=command.offload, height=command.height,
        width=command.width, steps=command.steps, guidance=command.guidance, samples=command.samples,
        propagate=command.propagate, official=command.completion, progress=progress,
    )
    timings = {"read_and_load": time.perf_counter() - start}
    t0 = time.perf_counter()
    result = NotedCompletion(pipe, command.model, progress)(clip, amodal.modal)
    timings["completion"] = time.perf_counter() - t0
    completer = pipe.completer
    iterative = bool(getattr(completer, "iterative", True))
    summary = {
        "out": str(out),
        "model": command.model,
        "objects": list(modal.object_ids),
        "frames": len(names),
        "samples": command.samples,
        # what ran: a one-step regression model takes neither steps nor guidance
        "steps": (command.steps or getattr(completer, "default_steps", None)) if iterative else 1,
        "guidance": (command.guidance if command.guidance is not None else getattr(completer, "default_guidance", None))
        if iterative else None,
        "seed": command.completion.seed,
    }

    def also(folder: Path) -> None:
        from amodal.util.fs import write_json

        if command.layers:
            from amodal.apps.layers import write_layers

            write_layers(folder / "layers", result.rgb, result.rgba, modal.modal, amodal.modal, modal.object_ids, names,
                         size=command.layer_size)
        timings["total"] = time.perf_counter() - start
        summary["timings_s"] = {k: round(v, 4) for k, v in timings.items()}
        summary["seconds_per_frame"] = round(timings["completion"] / max(1, len(names)), 4)
        write_json(folder / "summary.json", summary)

    stage_note(f"writing {out}", progress)
    write_result(result, names, out, also)
    return summary


def completion_pipeline(
    model: str,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    offload: bool = False,
    height: int | None = None,
    width: int | None = None,
    steps: int | None = None,
    guidance: float | None = None,
    samples: int = 1,
    propagate: bool = True,
    official: CompletionConfig = CompletionConfig(),
    progress: bool = True,
) -> ContentCompletionPipeline:
    """The stage-2 pipeline ``model`` names: one of ours on object crops, or an official checkpoint on whole frames.

    ``official`` holds the reference sampler settings and the seed; ``steps`` and ``guidance``
    override the model's own for either kind.
    """
    import dataclasses

    from amodal.checkpoints.formats import OURS
    from amodal.checkpoints.registry import load_completer, resolve

    settings = PipelineConfig(seed=official.seed, samples=samples, propagate=propagate, progress=progress)
    if resolve(model, "completion").kind == OURS:
        official_only = [flag for flag, value in (("--dtype", dtype != "float32"), ("--offload", offload),
                                                  ("--height", height), ("--width", width)) if value]
        if official_only:
            flags = " and ".join(official_only).replace("--height and --width", "--resolution")
            raise InputError(f"{flags}: apply to official checkpoints; amodal's own run at their native size in float32")
        settings = dataclasses.replace(settings, steps=steps, guidance=guidance)
        return ContentCompletionPipeline(load_completer(model, device=device), settings)
    generation = generation_with(official.generation, steps, guidance)
    completer = load_completer(model, device=device, dtype=dtype, offload=offload, settings=generation,
                               height=height, width=width)
    return ContentCompletionPipeline(completer, settings, official=dataclasses.replace(official, generation=generation))
