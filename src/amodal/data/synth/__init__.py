"""A synthetic video world in the spirit of Kubric MOVi-B/D, rendered on the CPU.

``generate_clip(config, seed)`` returns one :class:`amodal.Clip` with frames,
modal and amodal masks, inverse depth and amodal RGB, as a pure function of
its arguments; ``write_split`` writes thousands of them in the curated SAIL-VOS
clip format (``amodal data synth``). See ``docs/datasets.md``.
"""

from amodal.data.synth.config import CATEGORIES, CATEGORY_NAMES, TEXTURES, SynthConfig
from amodal.data.synth.dataset import DEFAULT_SPLITS, SynthSplit, video_id, video_seed, write_split
from amodal.data.synth.generate import generate_clip

__all__ = [
    "CATEGORIES",
    "CATEGORY_NAMES",
    "DEFAULT_SPLITS",
    "TEXTURES",
    "SynthConfig",
    "SynthSplit",
    "generate_clip",
    "video_id",
    "video_seed",
    "write_split",
]
