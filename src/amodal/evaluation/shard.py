"""Splitting an evaluation across processes started by ``accelerate launch`` (or ``torchrun``), and merging.

Process ``r`` of ``n`` takes clips ``r, r + n, r + 2n, ...``; each scores its
clips into per-frame rows, the rows are gathered on every process with
Accelerate's ``gather_object`` and merged in clip order, so the pooled numbers
are the ones a single process gives. Only process 0 writes outputs.

Errors cannot be allowed to strand the other processes in the gather: each
process catches its own failure, the gather carries it, and every process
then raises the first one.
"""

from __future__ import annotations

import os
import traceback
from dataclasses import dataclass
from typing import Any, Callable

from amodal.errors import AmodalError, InputError
from amodal.util.processes import leave_group_at_exit


@dataclass(frozen=True)
class Shard:
    """This process's place among the evaluation processes."""

    index: int  # 0-based rank of this process
    count: int  # number of processes

    @property
    def is_main(self) -> bool:
        """Process 0 shows progress and writes the outputs."""
        return self.index == 0


def current_shard() -> Shard:
    """The shard of this process: from Accelerate's state when launched with several processes, else ``Shard(0, 1)``.

    Accelerate is imported only in that case (it imports torch); on machines
    without CUDA the processes join a CPU (gloo) group.
    """
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return Shard(0, 1)
    import torch
    from accelerate import PartialState

    state = PartialState(cpu=not torch.cuda.is_available())
    leave_group_at_exit()
    return Shard(state.process_index, state.num_processes)


def run_sharded(shard: Shard, work: Callable[[], Any]) -> list[Any]:
    """Run ``work()`` on every process and return all results in rank order (on every process).

    An :class:`~amodal.errors.AmodalError` on any process is raised on all
    of them (the first by rank); any other failure becomes a ``RuntimeError``
    carrying the failing process's traceback.
    """
    if shard.count == 1:
        return [work()]
    try:
        outcome = ("ok", work())
    except AmodalError as e:
        outcome = ("input", str(e))
    except Exception:  # noqa: BLE001 - carried to every process so none waits forever
        outcome = ("crash", traceback.format_exc())
    from accelerate.utils import gather_object

    outcomes = gather_object([outcome])
    for status, payload in outcomes:
        if status == "input":
            raise InputError(payload)
    for rank, (status, payload) in enumerate(outcomes):
        if status == "crash":
            raise RuntimeError(f"evaluation process {rank} failed:\n{payload}")
    return [payload for _, payload in outcomes]
