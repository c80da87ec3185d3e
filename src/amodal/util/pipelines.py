"""What both stages' pipelines share at call time: per-call settings, the seed of a call, moving models.

No torch at import time (``amodal.segmentation`` and ``amodal.completion`` import nothing heavy).
"""

from __future__ import annotations

import numbers

from amodal.errors import InputError
from amodal.util.checks import check_device, check_seed


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_call_settings(num_inference_steps=None, guidance_scale=None, num_samples=None) -> None:
    """One-line errors, named as the call's arguments, for per-call settings out of range (``None``: not given)."""
    if num_inference_steps is not None and not (_is_int(num_inference_steps) and num_inference_steps >= 1):
        raise InputError(f"num_inference_steps must be an integer >= 1, got {num_inference_steps!r}")
    if guidance_scale is not None and not (isinstance(guidance_scale, numbers.Real) and guidance_scale >= 0):
        raise InputError(f"guidance_scale must be >= 0 (1 runs the conditional model alone), got {guidance_scale!r}")
    if num_samples is not None and not (_is_int(num_samples) and num_samples >= 1):
        raise InputError(f"num_samples must be an integer >= 1, got {num_samples!r}")


def call_seed(seed: int | None, generator, default: int) -> int:
    """The one seed a call runs with: ``seed``, else ``generator.initial_seed() % 2**63``, else ``default``.

    A pipeline draws all its noise from generators it derives from this seed (per window and
    batch), so a ``torch.Generator`` stands for its *initial seed* only: its current state is
    neither read nor advanced, ``torch.Generator().manual_seed(7)`` gives exactly what
    ``seed=7`` gives, and passing the same generator twice repeats the output (unlike diffusers,
    where a generator moves on). The generator's device does not matter.
    """
    if seed is not None and generator is not None:
        raise InputError("seed and generator: give one of them (a generator stands for its initial seed)")
    if generator is not None:
        import torch

        if not isinstance(generator, torch.Generator):
            raise InputError(f"generator must be a torch.Generator, got {type(generator).__name__}; or pass seed=<int>")
        return int(generator.initial_seed()) % 2**63
    if seed is not None:
        if not _is_int(seed):
            raise InputError(f"seed must be an integer in [0, 2**63), got {seed!r}")
        return check_seed(int(seed), flag="seed")
    return int(default)


def place(model, device, what: str) -> None:
    """Move ``model``'s weights to ``device`` (checked as ``--device`` is), or a one-line error.

    Our models are torch modules and move. An official checkpoint chooses where its networks
    live (device, dtype, offloading) when it is loaded: it stays there, and asking for another
    device is an error that says to load it there.
    """
    import torch

    check_device(str(device), flag="device")
    target = torch.device(device)
    official = getattr(model, "model", None)
    if getattr(official, "runtime", None) is not None:
        here = official.device
        if (here.type, here.index or 0) != (target.type, target.index or 0):
            raise InputError(
                f"device {device}: {what} is an official checkpoint loaded on {here}; "
                f"load it there instead: from_pretrained(..., device={str(device)!r})"
            )
        return
    if callable(getattr(model, "to", None)):
        model.to(target)
