"""Strict weight I/O, the one place amodal reads tensors from disk: safetensors only, never pickle.

:func:`read_safetensors` reads one or more files; :func:`check_state_dict` compares a set of tensors
with what an architecture expects and raises a :class:`CheckpointError` listing every missing,
unexpected and mis-shaped key; :func:`load_state_strict` does both for a module.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Mapping

import torch
from torch import nn

from amodal.errors import CheckpointError

_SHOWN = 8  # keys listed per kind of mismatch before "..."


def read_safetensors(files: list[Path] | Path | str | os.PathLike, fix: str = "re-download or re-export it") -> dict[str, torch.Tensor]:
    """All tensors of one or more safetensors files, on the CPU.

    Raises ``CheckpointError`` naming the corrupt or missing file and ``fix``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    if isinstance(files, (str, os.PathLike)):
        files = [Path(files)]
    tensors: dict[str, torch.Tensor] = {}
    for file in files:
        try:
            tensors.update(load_file(str(file), device="cpu"))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"{file}: cannot read these safetensors ({e}); {fix}") from None
    return tensors


def check_state_dict(expected: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor], where: Path | str) -> None:
    """``CheckpointError`` listing missing and unexpected weight names and mismatched shapes, if any."""
    missing = sorted(set(expected) - set(given))
    unexpected = sorted(set(given) - set(expected))
    shapes = sorted(
        f"{k}: {tuple(given[k].shape)} != {tuple(expected[k].shape)}"
        for k in set(expected) & set(given)
        if tuple(given[k].shape) != tuple(expected[k].shape)
    )
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
            if items:
                more = f" ... ({len(items)} in all)" if len(items) > _SHOWN else ""
                parts.append(f"{label} {items[:_SHOWN]}{more}")
        raise CheckpointError(f"{where}: weights do not match the architecture of its config: " + "; ".join(parts))


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], where: Path | str) -> None:
    """Load ``state`` into ``module`` after :func:`check_state_dict` against the module's own state."""
    check_state_dict(module.state_dict(), state, where)
    module.load_state_dict(dict(state), strict=True)
