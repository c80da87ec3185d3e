"""Resumable training state as safetensors + JSON (no pickles), written atomically.

A checkpoint is a folder ``step_NNNNNNNN/`` holding:

- ``model.safetensors``: the backbone weights being optimised;
- ``ema.safetensors``: their exponential moving average;
- ``optimizer.safetensors``: the optimiser's per-parameter tensors, flattened to
  ``state.<param index>.<name>``;
- ``rng.safetensors``: torch's CPU (and CUDA) generator states;
- ``state.json``: step, EMA update count, optimiser hyperparameters, scheduler
  state, Python and NumPy generator states, the data sampler position and the
  training config.

The folder appears only once complete, so the newest one is always loadable.
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from amodal.errors import CheckpointError
from amodal.util.fs import atomic_dir

PREFIX = "step_"


def _flatten_optimizer(state: dict) -> tuple[dict[str, torch.Tensor], dict]:
    tensors, scalars = {}, {}
    for index, entries in state["state"].items():
        for name, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"state.{index}.{name}"] = value.detach().cpu().contiguous()
            else:
                scalars[f"{index}.{name}"] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict) -> dict:
    state: dict[int, dict] = {}
    for key, value in tensors.items():
        _, index, name = key.split(".", 2)
        state.setdefault(int(index), {})[name] = value
    for key, value in meta["scalars"].items():
        index, name = key.split(".", 1)
        state.setdefault(int(index), {})[name] = value
    return {"state": state, "param_groups": meta["param_groups"]}


def _rng_state() -> tuple[dict[str, torch.Tensor], dict]:
    tensors = {"torch_cpu": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"torch_cuda_{i}"] = s
    version, values, gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    meta = {
        "python": [version, list(values), gauss],
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
    }
    return tensors, meta


def _set_rng_state(tensors: dict[str, torch.Tensor], meta: dict) -> None:
    torch.set_rng_state(tensors["torch_cpu"])
    if torch.cuda.is_available():
        states = [tensors[k] for k in sorted(tensors) if k.startswith("torch_cuda_")]
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(states)
    version, values, gauss = meta["python"]
    random.setstate((version, tuple(values), gauss))
    kind, keys, pos, has_gauss, cached = meta["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))


@dataclass
class Resumed:
    """What :func:`load_checkpoint` restored: the step to continue from and the saved JSON state."""

    step: int
    state: dict
    path: Path


def save_checkpoint(
    root: Path,
    step: int,
    model: torch.nn.Module,
    ema,
    optimizer: torch.optim.Optimizer,
    scheduler,
    extra: dict,
    keep: int,
) -> Path:
    """Write ``root/step_<step>`` atomically and keep only the newest ``keep`` checkpoints."""
    from safetensors.torch import save_file

    path = Path(root) / f"{PREFIX}{step:08d}"
    opt_tensors, opt_meta = _flatten_optimizer(optimizer.state_dict())
    rng_tensors, rng_meta = _rng_state()
    state = {
        "step": step,
        "ema_updates": ema.updates,
        "optimizer": opt_meta,
        "scheduler": scheduler.state_dict(),
        "rng": rng_meta,
        **extra,
    }
    with atomic_dir(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}, str(tmp / "model.safetensors"))
        save_file({k: v.contiguous() for k, v in ema.state_dict().items()}, str(tmp / "ema.safetensors"))
        save_file(opt_tensors, str(tmp / "optimizer.safetensors"))
        save_file(rng_tensors, str(tmp / "rng.safetensors"))
        (tmp / "state.json").write_text(json.dumps(state) + "\n")
    for old in list_checkpoints(root)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return path


def pick_checkpoint(run_dir: Path, checkpoint: str | Path | None) -> Path:
    """The checkpoint an export reads: ``checkpoint`` when given, else the run's newest (``InputError`` when none)."""
    from amodal.errors import InputError

    if checkpoint is not None:
        return Path(checkpoint)
    found = list_checkpoints(Path(run_dir) / "checkpoints")
    if not found:
        raise InputError(f"{run_dir}: no checkpoints to export; train first")
    return found[-1]


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoint folders under ``root``, oldest first."""
    root = Path(root)
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if p.is_dir() and p.name.startswith(PREFIX) and p.name[len(PREFIX) :].isdigit()]
    return sorted(found, key=lambda p: int(p.name[len(PREFIX) :]))


def resume_newest(root: Path, model: torch.nn.Module, ema, optimizer, scheduler) -> Resumed | None:
    """Restore the newest readable checkpoint under ``root``; ``None`` when there is none.

    A checkpoint that cannot be read (a disk error, a file damaged after it was written) is named
    on stderr and the one before it is used; when none can be read, a ``CheckpointError`` names them.
    """
    import sys

    found = list_checkpoints(root)
    failures = []
    for path in reversed(found):
        try:
            resumed = load_checkpoint(path, model, ema, optimizer, scheduler)
        except CheckpointError as e:
            failures.append(str(e))
            print(f"amodal: skipping an unreadable checkpoint: {e}", file=sys.stderr)
            continue
        return resumed
    if failures:
        raise CheckpointError(
            f"{root}: no readable checkpoint ({len(failures)} tried); the newest said: {failures[0]}"
        )
    return None


def load_checkpoint(path: Path, model: torch.nn.Module, ema, optimizer, scheduler) -> Resumed:
    """Restore everything :func:`save_checkpoint` wrote into the given objects (strictly)."""
    from amodal.checkpoints.safetensors import load_state_strict, read_safetensors

    path = Path(path)
    try:
        state = json.loads((path / "state.json").read_text())
        fix = "delete it to resume from an older one"
        weights = read_safetensors(path / "model.safetensors", fix)
        ema_weights = read_safetensors(path / "ema.safetensors", fix)
        opt_tensors = read_safetensors(path / "optimizer.safetensors", fix)
        rng_tensors = read_safetensors(path / "rng.safetensors", fix)
    except (OSError, json.JSONDecodeError, KeyError) as e:
        raise CheckpointError(f"{path}: incomplete or unreadable checkpoint ({e}); delete it to resume from an older one") from None
    load_state_strict(model, weights, str(path / "model.safetensors"))
    ema.load_state_dict(ema_weights, state["ema_updates"])
    optimizer.load_state_dict(_unflatten_optimizer(opt_tensors, state["optimizer"]))
    scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(rng_tensors, state["rng"])
    return Resumed(step=int(state["step"]), state=state, path=path)
