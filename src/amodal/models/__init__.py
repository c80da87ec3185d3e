"""Stage-1 (amodal segmentation) and stage-2 (content completion) models.

Tensor layout inside every model, stated once: videos are ``(B, T, C, H, W)``
float tensors (batch, frames, channels, height, width), the layout of diffusers'
``UNetSpatioTemporalConditionModel``. Mask-level model interfaces take
``(B, T, H, W)``; the conversion to and from :class:`amodal.Clip` arrays happens
in the pipelines.
"""

from amodal.models.base import AmodalSegmenter

__all__ = ["AmodalSegmenter"]
