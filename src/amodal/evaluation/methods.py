"""Methods under evaluation: anything that maps a :class:`amodal.Clip` to a :class:`Prediction`.

A method is a callable ``Clip -> Prediction``. Deterministic methods return
one sample; diffusion methods return ``S`` hypotheses, of which evaluation
scores sample 0 as Top-1 and the best of the first ``k`` per (video, object)
as Top-k, as in the paper.

The registry maps names to factories ``MethodOptions -> Method``. The
baselines (``modal``, ``convex``, ``temporal``) are registered here. Learned
models enter through the same door, without this module knowing about them:

- :func:`register_method` adds a name (``"default"``,
  ``"default-regression"``): its factory builds the model and wraps its
  pipeline with :func:`pipeline_method`, e.g.::

      register_method("default", lambda options: pipeline_method(
          AmodalSegmentationPipeline.from_pretrained(
              "default", SegmentationConfig(samples=options.samples, seed=options.seed))))

- :func:`register_folder_loader` adds a function that recognises a model
  folder and returns a method for it (or ``None`` when the folder is not
  its kind), so that ``get_method("path/to/model")`` works.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from amodal import baselines
from amodal.clip import Clip
from amodal.errors import InputError


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
    steps: int = 25  # denoising steps of diffusion models (the paper's 25)
    guidance: float = 1.5  # classifier-free guidance scale of diffusion models (the paper's 1.5)
    use_depth: bool = True  # False runs learned models mask-only even when the clip has depth


MethodFactory = Callable[[MethodOptions], Method]
FolderLoader = Callable[[Path, MethodOptions], Optional[Method]]

_FACTORIES: dict[str, MethodFactory] = {}
_FOLDER_LOADERS: list[FolderLoader] = []


def register_method(name: str, factory: MethodFactory) -> None:
    """Make ``get_method(name)`` build a method with ``factory(options)`` (replaces an earlier entry)."""
    _FACTORIES[name] = factory


def register_folder_loader(loader: FolderLoader) -> None:
    """Let ``get_method(folder)`` try ``loader(folder, options)``; it returns ``None`` for folders it does not read."""
    _FOLDER_LOADERS.append(loader)


def method_names() -> tuple[str, ...]:
    """Names :func:`get_method` knows, in registration order."""
    return tuple(_FACTORIES)


def get_method(name_or_path: str, options: MethodOptions = MethodOptions()) -> Method:
    """The method registered as ``name_or_path``, or the model in that folder.

    Raises ``InputError`` listing the known names when neither matches.
    """
    import amodal.pipeline.methods  # noqa: F401  registers the learned models (imports torch, so only here)

    if name_or_path in _FACTORIES:
        return _FACTORIES[name_or_path](options)
    path = Path(name_or_path)
    if path.is_dir():
        for loader in _FOLDER_LOADERS:
            method = loader(path, options)
            if method is not None:
                return method
        raise InputError(
            f"{path}: no installed model loader reads this folder; pass a model folder saved by amodal "
            f"or one of the methods {', '.join(_FACTORIES)}"
        )
    raise InputError(f"unknown method {name_or_path!r}; choose one of {', '.join(_FACTORIES)} or pass a model folder")


def masks_method(fn: Callable[[Clip], np.ndarray]) -> Method:
    """A deterministic method from a function ``Clip -> (K, T, H, W) bool`` (one sample)."""

    def method(clip: Clip) -> Prediction:
        return Prediction(np.asarray(fn(clip))[None])

    method.__name__ = getattr(fn, "__name__", "method")
    return method


def pipeline_method(pipeline: Callable) -> Method:
    """A method from a segmentation pipeline such as :class:`amodal.pipeline.segmentation.AmodalSegmentationPipeline`.

    ``pipeline(clip, return_samples=True)`` must return an object with
    ``samples`` (``(S, K, T, H', W') bool`` or ``None``), ``amodal_masks``
    (``(K, T, H', W') bool``) and ``border`` (``(top, left)`` pixels of extra
    room around the frame, so ``H' = H + 2 * top``); the extra room is cropped
    off, as ground truth covers the frame only.
    """

    def method(clip: Clip) -> Prediction:
        out = pipeline(clip, return_samples=True)
        samples = out.samples if out.samples is not None else out.amodal_masks[None]
        top, left = (int(b) for b in getattr(out, "border", (0, 0)))
        h, w = clip.size
        return Prediction(np.ascontiguousarray(samples[..., top : top + h, left : left + w]).astype(bool))

    return method


register_method("modal", lambda options: masks_method(baselines.modal_baseline))
register_method("convex", lambda options: masks_method(baselines.convex_baseline))
register_method("temporal", lambda options: masks_method(baselines.temporal_baseline))
