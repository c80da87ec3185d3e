"""Argument checks shared by the commands, run before any work: devices, dtypes, sizes that must fit in memory.

Each raises :class:`InputError` with one line naming the argument and the fix.
"""

from __future__ import annotations

from amodal.errors import InputError

DEVICE_KINDS = ("cpu", "cuda")  # what amodal runs on; "cuda:N" picks a GPU


def check_device(device: str, flag: str = "--device") -> str:
    """``device`` if torch can run on it here, else an error naming what this machine offers."""
    import torch

    text = str(device)
    kind, _, index = text.partition(":")
    if kind not in DEVICE_KINDS or (index and not index.isdigit()) or (kind == "cpu" and index):
        raise InputError(f"{flag} {text}: unknown device; use cpu or cuda (cuda:N for one GPU)")
    if kind == "cuda":
        if not torch.cuda.is_available():
            build = "a CPU-only build of torch" if torch.version.cuda is None else "torch with no usable GPU"
            raise InputError(f"{flag} {text}: this machine has {build}; use --device cpu")
        if index and int(index) >= torch.cuda.device_count():
            raise InputError(f"{flag} {text}: only {torch.cuda.device_count()} GPU(s) here; use cuda:0 ... cuda:{torch.cuda.device_count() - 1}")
    return text


def available_memory() -> int | None:
    """Bytes of memory the system can give this process now (``MemAvailable``), or ``None`` when unknown."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def check_fits_in_memory(needed_bytes: float, what: str, fix: str) -> None:
    """Refuse work whose estimated need exceeds the memory available now."""
    free = available_memory()
    if free is not None and needed_bytes > free:
        raise InputError(f"{what} needs about {needed_bytes / 2**30:.1f} GiB, more than the {free / 2**30:.1f} GiB free; {fix}")


def check_positive(value, flag: str, allow_none: bool = True):
    """``value`` if it is > 0 (or ``None`` when allowed)."""
    if value is None and allow_none:
        return value
    if value is None or value <= 0:
        raise InputError(f"{flag} must be > 0, got {value}")
    return value


def check_seed(seed: int, flag: str = "--seed") -> int:
    """Seeds are non-negative integers below 2**63 (what numpy and torch accept)."""
    if not 0 <= int(seed) < 2**63:
        raise InputError(f"{flag} must be in [0, 2**63), got {seed}")
    return int(seed)
