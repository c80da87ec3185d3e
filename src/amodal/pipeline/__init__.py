"""User-facing pipelines: they hold models, stream videos, and return output dataclasses."""

from amodal.pipeline.segmentation import (
    AmodalSegmentationPipeline,
    FrameResult,
    SegmentationConfig,
    SegmentationOutput,
)

__all__ = ["AmodalSegmentationPipeline", "FrameResult", "SegmentationConfig", "SegmentationOutput"]
