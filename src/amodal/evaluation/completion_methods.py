"""Content-completion (stage 2) methods under evaluation, and their explicit registry.

A completion method is a callable ``(clip, amodal_masks) -> samples``:

- ``clip``: an :class:`amodal.Clip` with frames, modal masks and depth; its
  ``amodal_masks`` are the masks given (ground truth or a stage-1 prediction),
  its ``amodal_rgb`` is ``None`` (no peeking at the answer);
- ``amodal_masks``: ``(K, T, H, W) bool``, the objects' extents to fill;
- ``samples``: ``(S, K, T, H, W, 3) uint8``, each object on white, ``S``
  hypotheses (1 for deterministic methods). Evaluation scores sample 0 as
  Top-1 and the best of the first ``k`` per (video, object) on ``psnr_occ``
  as Top-k.

The baselines (``copy-modal``, ``temporal``) are listed in :data:`BASELINES`;
:func:`register_completion_method` adds a name for the current process; every
other name goes to :func:`learned_completion_method`, the one place where a
learned model (a bundled name or a folder, run through
``amodal.completion.pipeline``) is to be looked up. Nothing is registered as a
side effect of an import.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from amodal.clip import Clip
from amodal.completion import baselines
from amodal.errors import InputError

CompletionMethod = Callable[[Clip, np.ndarray], np.ndarray]


@dataclass(frozen=True)
class CompletionOptions:
    """What evaluation asks of every completion method it builds."""

    samples: int = 1  # hypotheses per object for generative methods (Top-k); deterministic ones give 1
    seed: int = 0  # seeds generative methods so that a run can be repeated exactly
    steps: int | None = None  # denoising steps of diffusion models; None = each model's own default
    guidance: float | None = None  # classifier-free guidance scale; None = each model's own
    propagate: bool = True  # learned models: carry pixels other frames show first (PipelineConfig.propagate)


CompletionFactory = Callable[[CompletionOptions], CompletionMethod]

BASELINES: dict[str, Callable[[Clip, np.ndarray], np.ndarray]] = {
    "copy-modal": baselines.copy_modal,  # the visible pixels, hidden ones white
    "temporal": baselines.temporal,  # hidden pixels from the nearest frame where they were visible
}
_ADDED: dict[str, CompletionFactory] = {}  # names added with register_completion_method in this process


def register_completion_method(name: str, factory: CompletionFactory) -> None:
    """Make ``get_completion_method(name)`` build a method with ``factory(options)`` (replaces an earlier entry)."""
    _ADDED[name] = factory


def completion_method_names() -> tuple[str, ...]:
    """The names :func:`get_completion_method` knows: the baselines, then added names."""
    return tuple(BASELINES) + tuple(n for n in _ADDED if n not in BASELINES)


def get_completion_method(name_or_path: str, options: CompletionOptions = CompletionOptions()) -> CompletionMethod:
    """The completion method ``name_or_path``: an added name, a baseline, or a learned model.

    Raises ``InputError`` ("unknown completion method", listing the known names) when none matches.
    """
    if name_or_path in _ADDED:
        return _ADDED[name_or_path](options)
    if name_or_path in BASELINES:
        return deterministic_method(BASELINES[name_or_path])
    return learned_completion_method(name_or_path, options)


def learned_completion_method(name_or_path: str, options: CompletionOptions) -> CompletionMethod:
    """A learned stage-2 model (bundled name or model folder) as a completion method.

    The single place where learned completion models are looked up: the
    checkpoint registry tells a completion model (bundled name or folder) from
    anything else, and :class:`amodal.completion.pipeline.ContentCompletionPipeline`
    runs it, returning ``(S, K, T, H, W, 3) uint8``.
    """
    from amodal.checkpoints.registry import bundled_names, detect_format
    from amodal.completion.pipeline import ContentCompletionPipeline, PipelineConfig

    found = detect_format(name_or_path)
    if found is None or found.stage not in (None, "completion"):
        known = ", ".join((*completion_method_names(), *bundled_names("completion")))
        what = (f"--method {name_or_path}: a stage-1 (segmentation) model, which --masks takes, not a completion method"
                if found is not None else f"unknown completion method {name_or_path!r}")
        raise InputError(f"{what}; choose one of {known} or pass a completion model folder")
    config = PipelineConfig(steps=options.steps, guidance=options.guidance, samples=options.samples,
                            seed=options.seed, propagate=options.propagate, progress=False)
    pipe = ContentCompletionPipeline.from_pretrained(name_or_path, config)

    def method(clip: Clip, amodal_masks: np.ndarray) -> np.ndarray:
        return pipe(clip, amodal_masks | clip.modal_masks).samples

    return method


def deterministic_method(fn: Callable[[Clip, np.ndarray], np.ndarray]) -> CompletionMethod:
    """A one-sample completion method from ``(clip, amodal_masks) -> (K, T, H, W, 3) uint8``."""

    def method(clip: Clip, amodal_masks: np.ndarray) -> np.ndarray:
        return np.asarray(fn(clip, amodal_masks))[None]

    method.__name__ = getattr(fn, "__name__", "method")
    return method


def check_samples(samples, clip: Clip, name: str) -> np.ndarray:
    """``samples`` checked to be ``(S, K, T, H, W, 3) uint8`` with ``S >= 1`` for ``clip``; ``InputError`` naming ``name``."""
    expected = (clip.num_objects, clip.num_frames, *clip.size, 3)
    if (
        not isinstance(samples, np.ndarray)
        or samples.ndim != 6
        or samples.dtype != np.uint8
        or samples.shape[1:] != expected
        or samples.shape[0] < 1
    ):
        raise InputError(
            f"completion method {name} returned {getattr(samples, 'dtype', type(samples).__name__)} "
            f"{getattr(samples, 'shape', None)} for clip {clip.source}; expected (S, {', '.join(map(str, expected))}) uint8"
        )
    return samples
