"""Stage 1, amodal segmentation: modal masks (and pseudo-depth) in, amodal masks out.

- :mod:`~amodal.segmentation.protocol`: :class:`AmodalSegmenter`, what every stage-1 model presents;
- :mod:`~amodal.segmentation.model`: our diffusion segmenter and its one-step regression twin (``lite``);
- :mod:`~amodal.segmentation.official`: an official Diffusion-VAS segmentation checkpoint;
- :mod:`~amodal.segmentation.priors`: geometric prior channels computed from the modal masks;
- :mod:`~amodal.segmentation.baselines`: the non-learned methods (modal, convex, temporal);
- :mod:`~amodal.segmentation.pipeline`: :class:`AmodalSegmentationPipeline`, videos of any length.

Importing this package imports nothing heavy; names below resolve on first use.
"""

_LAZY = {
    "AmodalSegmenter": "amodal.segmentation.protocol",
    "AmodalSegmentationPipeline": "amodal.segmentation.pipeline",
    "SegmentationConfig": "amodal.segmentation.pipeline",
    "SegmentationOutput": "amodal.segmentation.pipeline",
    "FrameResult": "amodal.segmentation.pipeline",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'amodal.segmentation' has no attribute {name!r}")
