"""One entry point for every model amodal can run: bundled names, model folders, official checkpoints.

Names and paths :func:`load_segmenter` accepts:

- ``"default"``: the bundled diffusion segmenter (``amodal/assets/weights/default/``);
- ``"default-regression"``: its one-step regression twin;
- a folder written by ``save_pretrained`` / ``amodal train`` (``config.json`` + ``model.safetensors``);
- an official Diffusion-VAS folder (``model_index.json``) or one converted by ``amodal convert official``.

What a name or folder is comes from :func:`amodal.checkpoints.formats.folder_format` alone.
"""

from __future__ import annotations

import os
from pathlib import Path

from amodal.checkpoints.formats import CONFIG_NAME, OURS, ModelFormat, folder_format
from amodal.errors import CheckpointError, InputError

WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "assets" / "weights"
# Bundled name -> (stage, folder under WEIGHTS_DIR). How each was trained: assets/weights/TRAINING.md.
BUNDLED = {
    "default": ("segmentation", "default"),  # diffusion segmenter trained on the synthetic world
    "default-regression": ("segmentation", "default-regression"),  # the same backbone as a one-step regressor
    "default-boxes": ("segmentation", "default-boxes"),  # default fine-tuned on box crops: for amodal boxes as input
    "default-completion": ("completion", "default-completion"),  # diffusion completer, trained on the synthetic world
    "default-completion-regression": ("completion", "default-completion-regression"),  # its one-step twin
}


def bundled_names(stage: str | None = None) -> tuple[str, ...]:
    """The bundled model names, of one stage or all."""
    return tuple(name for name, (s, _) in BUNDLED.items() if stage in (None, s))


def bundled_path(name: str) -> Path:
    """The folder of a bundled model."""
    if name not in BUNDLED:
        raise InputError(f"unknown bundled model {name!r}; choose one of {sorted(BUNDLED)}")
    return WEIGHTS_DIR / BUNDLED[name][1]


def model_inputs(*names) -> tuple:
    """``names`` as paths an output must not touch: bundled names become their folders, ``None`` stays."""
    return tuple(bundled_path(n) if isinstance(n, str) and n in BUNDLED else n for n in names)


def detect_format(name_or_path: str | os.PathLike) -> ModelFormat | None:
    """What ``name_or_path`` is (a bundled name or a model folder), or ``None`` when it is neither."""
    text = str(name_or_path)
    if text in BUNDLED:
        stage, _ = BUNDLED[text]
        return ModelFormat(OURS, stage, bundled_path(text), bundled=text)
    return folder_format(name_or_path)


def resolve(name_or_path: str | os.PathLike, stage: str, flag: str = "--model") -> ModelFormat:
    """:func:`detect_format`, or an error naming ``flag`` and what would have been accepted.

    Raises:
        InputError: the path does not exist, is not a folder, or holds a model of the other stage.
        CheckpointError: the folder exists but is no model folder amodal reads.
    """
    text = str(name_or_path)
    found = detect_format(name_or_path)
    names = " or ".join(repr(n) for n in bundled_names(stage)) or "no bundled name"
    if found is None:
        path = Path(name_or_path)
        if not path.exists():
            raise InputError(f"{flag} {text}: no such folder; pass {names} or a model folder")
        if not path.is_dir():
            raise InputError(f"{flag} {text}: not a folder; a model folder holds {CONFIG_NAME} and model.safetensors")
        raise CheckpointError(
            f"{path}: not a model folder; expected {CONFIG_NAME} with an amodal \"format\" tag (amodal train) "
            "or model_index.json (an official Diffusion-VAS checkpoint)"
        )
    if found.stage not in (None, stage):
        raise InputError(f"{flag} {text}: a {found.stage} model, not a {stage} model; pass a {stage} model")
    if found.bundled and not (found.path / CONFIG_NAME).is_file():
        raise CheckpointError(f"bundled model {text!r} is missing from {found.path}; reinstall amodal")
    return found


def load_segmenter(name_or_path: str | os.PathLike, device=None, **kwargs):
    """Load a stage-1 model implementing :class:`amodal.segmentation.protocol.AmodalSegmenter`, in eval mode.

    Args:
        name_or_path: ``"default"``, ``"default-regression"``, or a model folder.
        device: where to put the weights (default: CPU for our models; the
            official loader's own default otherwise).
        **kwargs: passed on to the official-checkpoint loader (our folders take none).

    Raises:
        InputError: the name is unknown, the path does not exist, or it is a completion model.
        CheckpointError: the folder is not a model folder, or its weights do not
            match its config (the message lists missing and unexpected keys).
    """
    found = resolve(name_or_path, "segmentation")
    if found.kind == OURS:
        if set(kwargs) == {"dtype"}:
            raise InputError(
                f"--dtype {kwargs['dtype']}: amodal's own models run in float32; other precisions are for official checkpoints"
            )
        if kwargs:
            raise InputError(f"--model {name_or_path}: options {sorted(kwargs)} apply only to official checkpoints")
        from amodal.segmentation.model import load_segmenter_folder

        return load_segmenter_folder(found.path, device or "cpu")
    from amodal.segmentation.official import load_segmenter as load_official

    if device is not None:
        kwargs["device"] = device
    return load_official(found.path, **kwargs)


def load_completer(name_or_path: str | os.PathLike, device=None, **kwargs):
    """Load a stage-2 model: one of ours (bundled name or folder) or an official / converted checkpoint.

    ``kwargs`` (dtype, offload, settings, height, width) apply to official checkpoints only.
    """
    found = resolve(name_or_path, "completion")
    if found.kind == OURS:
        given = sorted(k for k, v in kwargs.items() if v not in (None, False, "float32"))
        if given:
            raise InputError(f"--model {name_or_path}: options {given} apply only to official checkpoints")
        from amodal.completion.model import load_completer_folder

        return load_completer_folder(found.path, device or "cpu")
    from amodal.completion.official import load_completer as load_official

    if device is not None:
        kwargs["device"] = device
    return load_official(found.path, **kwargs)
