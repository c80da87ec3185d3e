"""The one folder-format detector: what kind of model a name or folder is, from its files alone.

Reading a folder's kind never loads weights or imports torch, so commands can check every
``--model`` argument before any work starts.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

CONFIG_NAME = "config.json"  # every model folder amodal writes holds its config here ...
WEIGHTS_NAME = "model.safetensors"  # ... and its weights here
OFFICIAL_INDEX = "model_index.json"  # what marks a diffusers pipeline folder (the official release)

SEGMENTER_FORMAT = "amodal-segmenter"  # the "format" tag of our stage-1 folders (amodal train segmentation)
COMPLETER_FORMAT = "amodal-completer"  # the tag of our stage-2 folders (amodal train completion)
CONVERTED_OFFICIAL_FORMAT = "amodal-official-svd"  # the tag of `amodal convert official` folders

# Kinds of model folder.
OURS = "amodal"  # config.json + model.safetensors written by amodal train / save_pretrained
OFFICIAL = "official"  # a released Diffusion-VAS folder (model_index.json, unet/, vae/, ...)
CONVERTED = "converted"  # an official model converted to config.json + one model.safetensors


@dataclass(frozen=True)
class ModelFormat:
    """What :func:`detect_format` found."""

    kind: str  # OURS, OFFICIAL or CONVERTED
    stage: str | None  # "segmentation" or "completion"; None for official layouts, which look the same for both
    path: Path  # the model folder
    bundled: str | None = None  # the bundled name, when the model is one


def config_format(folder: Path) -> str | None:
    """The ``format`` tag of ``folder/config.json``, or ``None`` when there is no readable tag."""
    try:
        value = json.loads((folder / CONFIG_NAME).read_text()).get("format")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def folder_format(path: str | os.PathLike) -> ModelFormat | None:
    """The kind of model folder ``path`` is, or ``None`` when it is not a model folder amodal reads."""
    path = Path(path)
    if not path.is_dir():
        return None
    if (path / OFFICIAL_INDEX).is_file():
        return ModelFormat(OFFICIAL, _official_stage(path), path)
    tag = config_format(path)
    if tag == SEGMENTER_FORMAT:
        return ModelFormat(OURS, "segmentation", path)
    if tag == COMPLETER_FORMAT:
        return ModelFormat(OURS, "completion", path)
    if tag == CONVERTED_OFFICIAL_FORMAT:
        return ModelFormat(CONVERTED, None, path)
    return None


def _official_stage(path: Path) -> str | None:
    """The stage an official-layout folder states in its ``meta.json`` (``amodal train`` exports do), else ``None``."""
    import json

    try:
        stage = json.loads((path / "meta.json").read_text()).get("stage")
    except (OSError, ValueError, AttributeError):
        return None
    return stage if stage in ("segmentation", "completion") else None


def is_official_layout(path: str | os.PathLike) -> bool:
    """An official Diffusion-VAS checkpoint, as released or as converted by ``amodal convert official``."""
    found = folder_format(path)
    return found is not None and found.kind in (OFFICIAL, CONVERTED)
