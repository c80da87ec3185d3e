"""Learned models as evaluation methods: ``amodal eval --method default | default-regression | FOLDER``.

Importing this module registers them with :mod:`amodal.evaluation.methods`;
each wraps an :class:`AmodalSegmentationPipeline` built with the evaluation's
options (samples, seed, steps, guidance, depth).
"""

from __future__ import annotations

from pathlib import Path

from amodal.evaluation.methods import MethodOptions, pipeline_method, register_folder_loader, register_method
from amodal.pipeline.segmentation import AmodalSegmentationPipeline, SegmentationConfig


def _pipeline_config(options: MethodOptions) -> SegmentationConfig:
    return SegmentationConfig(
        steps=options.steps,
        guidance=options.guidance,
        samples=options.samples,
        seed=options.seed,
        use_depth=options.use_depth,
        progress=False,
    )


def model_method(name_or_path: str, options: MethodOptions):
    """An evaluation method running the model ``name_or_path`` through the segmentation pipeline."""
    return pipeline_method(AmodalSegmentationPipeline.from_pretrained(name_or_path, _pipeline_config(options)))


def _folder_loader(path: Path, options: MethodOptions):
    if (path / "config.json").is_file() or (path / "model_index.json").is_file():
        return model_method(str(path), options)
    return None


register_method("default", lambda options: model_method("default", options))
register_method("default-regression", lambda options: model_method("default-regression", options))
register_folder_loader(_folder_loader)
