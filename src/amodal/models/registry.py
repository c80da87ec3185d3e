"""``load_segmenter``: one entry point for every stage-1 model amodal can run.

Names and paths it accepts:

- ``"default"``: the bundled diffusion model (``amodal/weights/default/``);
- ``"default-regression"``: its one-step regression twin;
- a folder written by ``save_pretrained`` / ``amodal train`` (``config.json`` +
  ``model.safetensors``);
- a folder in the official Diffusion-VAS layout (``model_index.json``), handed
  to :func:`amodal.official.load_segmenter`.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from amodal.errors import CheckpointError, InputError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
BUNDLED = {
    "default": "default",  # diffusion segmenter, trained on the synthetic world (see weights/TRAINING.md)
    "default-regression": "default-regression",  # the same backbone trained as a one-step regressor
}


def _is_converted_official(config: Path) -> bool:
    """A folder written by ``amodal convert official`` (safetensors + config of the official model)."""
    from amodal.official.model import CONVERTED_FORMAT

    try:
        return config.is_file() and json.loads(config.read_text()).get("format") == CONVERTED_FORMAT
    except (json.JSONDecodeError, AttributeError):
        return False


def is_official_folder(path: str | os.PathLike) -> bool:
    """An official Diffusion-VAS checkpoint folder, as released or as converted by ``amodal convert official``."""
    path = Path(path)
    return (path / "model_index.json").is_file() or _is_converted_official(path / "config.json")


def bundled_path(name: str) -> Path:
    """The folder of a bundled model (``"default"`` or ``"default-regression"``)."""
    if name not in BUNDLED:
        raise InputError(f"unknown bundled model {name!r}; choose one of {sorted(BUNDLED)}")
    return WEIGHTS_DIR / BUNDLED[name]


def load_segmenter(name_or_path: str | os.PathLike, device: str | torch.device | None = None, **kwargs):
    """Load a stage-1 model implementing :class:`amodal.models.AmodalSegmenter`, in eval mode.

    Args:
        name_or_path: ``"default"``, ``"default-regression"``, or a model folder.
        device: where to put the weights (default: CPU for our models; the
            official loader's own default otherwise).
        **kwargs: passed on to the official-checkpoint loader (our folders take none).

    Raises:
        InputError: the name is unknown or the path does not exist.
        CheckpointError: the folder is not a model folder, or its weights do not
            match its config (the message lists missing and unexpected keys).
    """
    from amodal.models.segmenter import CONFIG_NAME, FORMAT, load_segmenter_folder

    text = str(name_or_path)
    if text in BUNDLED:
        path = bundled_path(text)
        if not (path / CONFIG_NAME).is_file():
            raise CheckpointError(f"bundled model {text!r} is missing from {path}; reinstall amodal")
        if kwargs:
            raise InputError(f"--model {text}: options {sorted(kwargs)} apply only to official checkpoints")
        return load_segmenter_folder(path, device or "cpu")
    path = Path(name_or_path)
    if not path.exists():
        raise InputError(
            f"--model {text}: no such folder; pass {' or '.join(repr(n) for n in BUNDLED)} or a model folder"
        )
    if not path.is_dir():
        raise InputError(f"--model {text}: not a folder; a model folder holds config.json and model.safetensors")
    config = path / CONFIG_NAME
    if config.is_file():
        try:
            ours = json.loads(config.read_text()).get("format") == FORMAT
        except (json.JSONDecodeError, AttributeError):
            ours = False
        if ours:
            if kwargs:
                raise InputError(f"{path}: options {sorted(kwargs)} apply only to official checkpoints")
            return load_segmenter_folder(path, device or "cpu")
    if (path / "model_index.json").is_file() or _is_converted_official(config):
        from amodal.official import load_segmenter as load_official

        if device is not None:
            kwargs["device"] = device
        return load_official(path, **kwargs)
    raise CheckpointError(
        f"{path}: not a model folder; expected config.json with \"format\": \"{FORMAT}\" (amodal train) "
        "or model_index.json (an official Diffusion-VAS checkpoint)"
    )
