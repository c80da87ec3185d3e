"""The whole system in memory: pseudo-depth, stage 1 (amodal masks), stage 2 (each object's full appearance).

Example::

    from amodal.system import AmodalSystem

    system = AmodalSystem.from_pretrained("default", "default-completion")
    out = system(clip)                 # clip: amodal.Clip with frames and modal masks
    out.amodal_masks                   # (K, T, H, W) bool
    out.completion.rgb                 # (K, T, H, W, 3) uint8, each object alone on white

Nothing is written to disk between the stages; ``amodal run`` writes what this returns.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np

from amodal.clip import Clip
from amodal.completion.pipeline import CompletionOutput, ContentCompletionPipeline, PipelineConfig
from amodal.errors import InputError
from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig, SegmentationOutput


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

    def __call__(self, clip: Clip, *, num_samples: int | None = None, seed: int | None = None) -> SystemOutput:
        """Amodal masks and completed objects for every object of ``clip``."""
        timings = {}
        depth = clip.depth
        if depth is None and self.depth_model is not None:
            from amodal.depth import estimate_depth

            start = time.perf_counter()
            depth = estimate_depth(self.depth_model, clip.frames, progress=False)
            timings["depth"] = time.perf_counter() - start
            clip = dataclasses.replace(clip, depth=depth)
        start = time.perf_counter()
        segmentation = self.segmentation(clip)
        timings["segmentation"] = time.perf_counter() - start
        start = time.perf_counter()
        completion = self.completion(clip, segmentation.amodal_masks, num_samples=num_samples, seed=seed)
        timings["completion"] = time.perf_counter() - start
        return SystemOutput(segmentation.amodal_masks, segmentation, completion, depth, timings)
