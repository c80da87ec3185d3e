"""The official Diffusion-VAS checkpoints, run with the library's sampler.

Both public checkpoints (``diffusion-vas-amodal-segmentation`` and
``diffusion-vas-content-completion``) are diffusers pipeline folders; only
:mod:`amodal.official.adapter` knows their layout. Load them with
:func:`load_segmenter` (stage 1, an :class:`amodal.models.AmodalSegmenter`) and
:func:`load_completer` (stage 2). :func:`save_converted` writes the library's
own format (``config.json`` + one ``model.safetensors``), which both loaders
also accept.
"""

from amodal.official.completion import OfficialCompleter, load_completer
from amodal.official.config import EMBEDDING_ORDERS, GenerationConfig, OfficialConfig, RuntimeConfig
from amodal.official.model import OfficialModel, load_official_model, save_converted
from amodal.official.segmenter import MASK_THRESHOLD, OfficialSegmenter, load_segmenter

__all__ = [
    "EMBEDDING_ORDERS",
    "MASK_THRESHOLD",
    "GenerationConfig",
    "OfficialCompleter",
    "OfficialConfig",
    "OfficialModel",
    "OfficialSegmenter",
    "RuntimeConfig",
    "load_completer",
    "load_official_model",
    "load_segmenter",
    "save_converted",
]
