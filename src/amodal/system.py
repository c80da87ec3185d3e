"""The whole system in memory: pseudo-depth, stage 1 (amodal masks), stage 2 (each object's full appearance).

Example::

    from amodal.system import AmodalSystem

    system = AmodalSystem.from_pretrained("default", "default-completion").to("cpu")
    out = system(clip)                 # clip: amodal.Clip with frames and modal masks
    out = system(frames, modal_masks, num_samples=3, seed=0)   # or arrays: (T, H, W, 3) uint8, (K, T, H, W) bool
    out.amodal_masks                   # (K, T, H, W) bool
    out.completion.rgb                 # (K, T, H, W, 3) uint8, each object alone on white

Nothing is written to disk between the stages; ``amodal run`` writes what this returns.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

from typing import TYPE_CHECKING

import numpy as np

from amodal.clip import Clip, as_clip
from amodal.completion.pipeline import CompletionOutput, ContentCompletionPipeline, PipelineConfig
from amodal.errors import InputError
from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig, SegmentationOutput

if TYPE_CHECKING:
    import torch


@dataclass
class SystemOutput:
    """Both stages' results for one clip.

    Attributes:
        amodal_masks: ``(K, T, H, W) bool``, containing the modal masks.
        segmentation: stage 1's full output (samples, frequency, timings).
        completion: stage 2's output (:class:`~amodal.completion.pipeline.CompletionOutput`).
        depth: ``(T, H, W) float32`` inverse depth the segmenter saw, or ``None``.
        timings: seconds per stage.
    """

    amodal_masks: np.ndarray
    segmentation: SegmentationOutput
    completion: CompletionOutput
    depth: np.ndarray | None
    timings: dict = field(default_factory=dict)


class AmodalSystem:
    """Depth (optional), stage 1 and stage 2 held together; ``system(clip)`` runs them in memory."""

    def __init__(self, segmentation: AmodalSegmentationPipeline, completion: ContentCompletionPipeline, depth_model=None):
        if segmentation.config.pad:
            raise InputError("the system completes objects inside the frame: use a segmentation config with pad 0")
        self.segmentation = segmentation
        self.completion = completion
        self.depth_model = depth_model

    @classmethod
    def from_pretrained(
        cls,
        segmentation: str = "default",
        completion: str = "default-completion",
        depth_model: str | None = None,
        *,
        segmentation_config: SegmentationConfig | None = None,
        completion_config: PipelineConfig | None = None,
        device: str | None = None,
    ) -> "AmodalSystem":
        """Load both stages (and a Depth Anything V2 folder when given) from names or local folders."""
        depth = None
        if depth_model is not None:
            from amodal.depth import load_depth_model

            depth = load_depth_model(depth_model, device=device or "cpu")
        return cls(
            AmodalSegmentationPipeline.from_pretrained(segmentation, segmentation_config, device=device),
            ContentCompletionPipeline.from_pretrained(completion, completion_config, device=device),
            depth,
        )

    def to(self, device) -> "AmodalSystem":
        """Move both stages' models to ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``); returns ``self``.

        A device torch cannot use here is a one-line :class:`~amodal.errors.InputError` naming it.
        The depth model and official checkpoints stay where they were loaded (``from_pretrained(..., device=...)``).
        """
        self.segmentation.to(device)
        self.completion.to(device)
        return self

    def __call__(
        self,
        clip: Clip | np.ndarray,
        modal_masks: np.ndarray | None = None,
        *,
        depth: np.ndarray | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_samples: int | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        segmentation_kwargs: dict | None = None,
        completion_kwargs: dict | None = None,
    ) -> SystemOutput:
        """Amodal masks and completed objects for every object.

        Args:
            clip: an :class:`amodal.Clip`, or the frames as an array, ``(T, H, W, 3) uint8`` RGB.
            modal_masks: with frames as an array (required then), ``(K, T, H, W) bool``, or
                ``(T, H, W) bool`` for one object.
            depth: with arrays, ``(T, H, W) float32`` inverse depth (larger is nearer); else the
                clip's own, else the system's depth model's estimate, else none (mask-only).
            num_inference_steps, guidance_scale, num_samples, seed, generator: per-call settings
                of both stages (``None``: each pipeline's config, else each model's own best); see
                :meth:`AmodalSegmentationPipeline.__call__` (a generator stands for its initial seed).
            segmentation_kwargs, completion_kwargs: settings for one stage only, over the shared
                ones, e.g. ``segmentation_kwargs={"num_samples": 5, "return_samples": True}``.
        """
        timings = {}
        clip = as_clip(clip, "frames", modal_masks=modal_masks, depth=depth)
        shared = {"num_inference_steps": num_inference_steps, "guidance_scale": guidance_scale,
                  "num_samples": num_samples, "seed": seed, "generator": generator}
        shared = {key: value for key, value in shared.items() if value is not None}
        stage1 = _stage_kwargs(shared, segmentation_kwargs, "segmentation_kwargs")
        stage2 = _stage_kwargs(shared, completion_kwargs, "completion_kwargs")
        depth = clip.depth
        if depth is None and self.depth_model is not None:
            from amodal.depth import estimate_depth

            start = time.perf_counter()
            depth = estimate_depth(self.depth_model, clip.frames, progress=False)
            timings["depth"] = time.perf_counter() - start
            clip = dataclasses.replace(clip, depth=depth)
        start = time.perf_counter()
        segmentation = self.segmentation(clip, **stage1)
        timings["segmentation"] = time.perf_counter() - start
        start = time.perf_counter()
        completion = self.completion(clip, segmentation.amodal_masks, **stage2)
        timings["completion"] = time.perf_counter() - start
        return SystemOutput(segmentation.amodal_masks, segmentation, completion, depth, timings)


def _stage_kwargs(shared: dict, own: dict | None, name: str) -> dict:
    """The shared settings with one stage's own over them; a stage's seed replaces a shared generator and back."""
    if own is not None and not isinstance(own, dict):
        raise InputError(f"{name} must be a dict of that stage's per-call settings, got {type(own).__name__}")
    own = own or {}
    merged = dict(shared)
    if "seed" in own or "generator" in own:
        merged.pop("seed", None)
        merged.pop("generator", None)
    merged.update(own)
    return merged
