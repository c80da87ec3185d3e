"""Pseudo-depth for the segmentation stage: Depth Anything V2, run from local files.

:func:`load_depth_model` reads a transformers-format folder
(``config.json`` + ``model.safetensors``) or an original ``.pth`` release;
:func:`estimate_depth` turns ``(T, H, W, 3) uint8`` frames into
``(T, H, W) float32`` relative inverse depth (larger is nearer);
:func:`normalize_depth` (or ``DepthConfig(normalize=True)``) maps a clip to
``[-1, 1]`` with one min-max over all its frames, as the reference does.
"""

from amodal.depth.anything import (
    DepthConfig,
    DepthModel,
    convert_depth_checkpoint,
    estimate_depth,
    load_depth_model,
    original_to_transformers,
)
from amodal.depth.normalize import normalize_depth

__all__ = [
    "DepthConfig",
    "DepthModel",
    "convert_depth_checkpoint",
    "estimate_depth",
    "load_depth_model",
    "normalize_depth",
    "original_to_transformers",
]
