"""Per-frame evaluation results: one row per (clip, object, frame), pooled before any averaging.

Keeping every frame's score (instead of per-clip means) is what lets shards,
windows and Top-k selection merge into exactly the numbers one process gives.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

# Columns every table has, whatever the protocol:
#   clip (int)            index of the clip in the dataset
#   video (str)           video the clip comes from
#   object_id (int)       object id within the video
#   category_id (int)     category of the object (0 when unknown)
#   frame (int)           frame index within the dataset clip
#   visible_fraction      modal area over amodal area (box area for TAO-Amodal), nan when undefined
#   scored (bool)         the row counts in the protocol's means (see amodal.evaluation.scoring)
# Per-sample columns are (N, S): iou, and occ_iou for mask protocols.
ID_COLUMNS = ("clip", "video", "object_id", "category_id", "frame", "visible_fraction", "scored")


@dataclass(frozen=True, eq=False)
class FrameTable:
    """Columns of equal length ``N``; per-sample columns have shape ``(N, S)``."""

    columns: dict

    def __post_init__(self) -> None:
        lengths = {name: len(col) for name, col in self.columns.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"frame table columns differ in length: {lengths}")

    def __len__(self) -> int:
        return len(next(iter(self.columns.values()))) if self.columns else 0

    def __getitem__(self, name: str) -> np.ndarray:
        return self.columns[name]

    def __contains__(self, name: str) -> bool:
        return name in self.columns

    @property
    def num_samples(self) -> int:
        """``S``, the number of hypotheses scored per frame."""
        return int(self.columns["iou"].shape[1]) if len(self) else 1

    def take(self, rows: np.ndarray) -> "FrameTable":
        """The rows ``rows`` (indices or a boolean mask)."""
        return FrameTable({name: col[rows] for name, col in self.columns.items()})

    def group_ids(self) -> np.ndarray:
        """``(N,) int64``: one id per ``(video, object_id)``, the unit Top-k and MOVi averages work on."""
        keys = np.char.add(np.char.add(self["video"].astype(str), "\x00"), self["object_id"].astype(str))
        return np.unique(keys, return_inverse=True)[1].astype(np.int64)

    @staticmethod
    def concat(tables: Sequence["FrameTable"]) -> "FrameTable":
        """Rows of all tables in order, sorted stably by clip so any sharding gives one order."""
        tables = [t for t in tables if len(t)]
        if not tables:
            return FrameTable({})
        names = list(tables[0].columns)
        merged = FrameTable({name: np.concatenate([t[name] for t in tables]) for name in names})
        return merged.take(np.argsort(merged["clip"], kind="stable"))
