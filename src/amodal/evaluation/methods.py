"""Methods under evaluation: anything that maps a :class:`amodal.Clip` to a :class:`Prediction`.

A method is a callable ``Clip -> Prediction``; called with ``amodal_boxes=`` (``(K, T, 4)``
``[x, y, w, h]``, segmentation/boxes.py) it keeps its masks inside those boxes, which learned
methods also use as input. Deterministic methods return
one sample; diffusion methods return ``S`` hypotheses, of which evaluation
scores sample 0 as Top-1 and the best of the first ``k`` per (video, object)
as Top-k, as in the paper.

The registry is explicit: the baselines (``modal``, ``convex``, ``temporal``)
are listed here, and every other name goes to the checkpoint registry
(:func:`amodal.checkpoints.registry.detect_format`), which knows the bundled
stage-1 models and tells a model folder from anything else; a model becomes a
method through :func:`model_method`. :func:`register_method` adds a name for
the current process (benchmarks wrap their own pipelines with it); nothing is
registered as a side effect of an import.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from amodal.clip import Clip
from amodal.errors import InputError
from amodal.segmentation import baselines


@dataclass(frozen=True, eq=False)
class Prediction:
    """A method's output for one clip.

    Attributes:
        samples: ``(S, K, T, H, W) bool`` amodal masks; ``S = 1`` for
            deterministic methods, ``S`` hypotheses for generative ones.
    """

    samples: np.ndarray

    def __post_init__(self) -> None:
        if not isinstance(self.samples, np.ndarray) or self.samples.ndim != 5 or self.samples.dtype != np.bool_:
            raise InputError(
                f"a method must return (S, K, T, H, W) bool samples, got {getattr(self.samples, 'dtype', None)} "
                f"{getattr(self.samples, 'shape', None)}"
            )
        if self.samples.shape[0] < 1:
            raise InputError("a method returned no samples")

    @property
    def top1(self) -> np.ndarray:
        """``(K, T, H, W) bool``: sample 0."""
        return self.samples[0]


Method = Callable[[Clip], Prediction]


@dataclass(frozen=True)
class MethodOptions:
    """What evaluation asks of every method it builds."""

    samples: int = 1  # hypotheses per object for generative methods (Top-k); deterministic ones give 1
    seed: int = 0  # seeds generative methods so that a run can be repeated exactly
    steps: int | None = None  # denoising steps of diffusion models; None = each model's own best (its config)
    guidance: float | None = None  # classifier-free guidance scale; None = each model's own
    use_depth: bool = True  # False runs learned models mask-only even when the clip has depth
    box_mode: str | None = None  # how learned models use amodal boxes when evaluation gives them (SegmentationConfig)
    box_margin: float = 0.25
    levels: str | None = None  # how samples are thresholded (SegmentationConfig.levels); None = the model's own


MethodFactory = Callable[[MethodOptions], Method]

BASELINES: dict[str, Callable[[Clip], np.ndarray]] = {
    "modal": baselines.modal_baseline,  # no completion: the visible mask
    "convex": baselines.convex_baseline,  # convex hull of each frame's visible mask
    "temporal": baselines.temporal_baseline,  # motion-compensated union of neighbouring frames
}
_ADDED: dict[str, MethodFactory] = {}  # names added with register_method in this process


def register_method(name: str, factory: MethodFactory) -> None:
    """Make ``get_method(name)`` build a method with ``factory(options)`` in this process (replaces an earlier entry)."""
    _ADDED[name] = factory


def method_names() -> tuple[str, ...]:
    """The names :func:`get_method` knows: the baselines, the bundled stage-1 models, then added names."""
    from amodal.checkpoints.registry import bundled_names

    return tuple(BASELINES) + bundled_names("segmentation") + tuple(n for n in _ADDED if n not in BASELINES)


def get_method(name_or_path: str, options: MethodOptions = MethodOptions()) -> Method:
    """The method ``name_or_path``: a baseline, an added name, a bundled model, or the model in that folder.

    Raises ``InputError`` listing the known names when none matches, and
    ``CheckpointError`` for a folder that is not a stage-1 model.
    """
    from amodal.checkpoints.registry import detect_format, resolve

    if name_or_path in _ADDED:
        return _ADDED[name_or_path](options)
    if name_or_path in BASELINES:
        return masks_method(BASELINES[name_or_path])
    if detect_format(name_or_path) is None and not Path(name_or_path).exists():
        raise InputError(
            f"unknown method {name_or_path!r}; choose one of {', '.join(method_names())} or pass a model folder"
        )
    resolve(name_or_path, "segmentation", flag="--method")  # a folder that is no stage-1 model: say so now
    return model_method(name_or_path, options)


def model_method(name_or_path: str, options: MethodOptions) -> Method:
    """An evaluation method running the stage-1 model ``name_or_path`` through the segmentation pipeline."""
    from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig

    config = SegmentationConfig(
        steps=options.steps,
        guidance=options.guidance,
        samples=options.samples,
        seed=options.seed,
        use_depth=options.use_depth,
        box_mode=options.box_mode,
        levels=options.levels,
        box_margin=options.box_margin,
        progress=False,
    )
    return pipeline_method(AmodalSegmentationPipeline.from_pretrained(name_or_path, config))


def masks_method(fn: Callable[[Clip], np.ndarray]) -> Method:
    """A deterministic method from a function ``Clip -> (K, T, H, W) bool`` (one sample).

    With ``amodal_boxes`` its masks are cut to the boxes and unioned with the modal masks, as the
    segmentation pipeline does.
    """

    def method(clip: Clip, amodal_boxes: np.ndarray | None = None) -> Prediction:
        masks = np.asarray(fn(clip))
        if amodal_boxes is not None:
            from amodal.segmentation.boxes import check_boxes, rasterize

            boxes = check_boxes(amodal_boxes, clip.num_objects)
            inside = np.stack([rasterize(boxes[:, t], clip.size) for t in range(clip.num_frames)], axis=1)
            masks = (masks & inside) | clip.modal_masks
        return Prediction(masks[None])

    method.__name__ = getattr(fn, "__name__", "method")
    return method


def pipeline_method(pipeline: Callable) -> Method:
    """A method from a segmentation pipeline such as :class:`amodal.segmentation.pipeline.AmodalSegmentationPipeline`.

    ``pipeline(clip, return_samples=True[, amodal_boxes=...])`` must return an object with
    ``samples`` (``(S, K, T, H', W') bool`` or ``None``), ``amodal_masks``
    (``(K, T, H', W') bool``) and ``border`` (``(top, left)`` pixels of extra
    room around the frame, so ``H' = H + 2 * top``); the extra room is cropped
    off, as ground truth covers the frame only.
    """

    def method(clip: Clip, amodal_boxes: np.ndarray | None = None) -> Prediction:
        out = pipeline(clip, return_samples=True) if amodal_boxes is None else pipeline(clip, return_samples=True, amodal_boxes=amodal_boxes)
        samples = out.samples if out.samples is not None else out.amodal_masks[None]
        top, left = (int(b) for b in getattr(out, "border", (0, 0)))
        h, w = clip.size
        return Prediction(np.ascontiguousarray(samples[..., top : top + h, left : left + w]).astype(bool))

    return method

