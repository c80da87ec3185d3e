"""Leaving a process group (several processes started by ``accelerate launch``) cleanly."""

from __future__ import annotations

import atexit


def leave_group_at_exit() -> None:
    """Close the process group when the interpreter exits (registered once, however often asked).

    A gloo group still open at exit has its worker threads destroyed under
    it, which aborts the process ("terminate called without an active
    exception") at random, depending on which process finishes first.
    """
    atexit.unregister(_leave_group)
    atexit.register(_leave_group)


def _leave_group() -> None:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()
