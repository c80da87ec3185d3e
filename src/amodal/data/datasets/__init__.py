"""Evaluation datasets, all read into the one :class:`amodal.Clip` layout.

``open_dataset(kind, root, ...)`` is the front door: it yields one
:class:`amodal.Clip` per clip of the dataset. Evaluation uses the lower layer,
``index_dataset``, whose :class:`DatasetIndex` counts clips from the
annotations alone, decodes ground truth without images
(:meth:`DatasetIndex.annotation`, all that scoring a prediction file needs)
and loads frames only to run a method (:meth:`DatasetIndex.item`).

Kinds and what one clip is:

- ``synthetic``: our generated sets (SAIL-VOS format plus depth and amodal
  RGB), ``root/<split>/annotations.json``; one clip per video, all objects.
- ``sailvos``: the curated SAIL-VOS clip list; entries sharing their frames
  are one clip with one object per entry.
- ``tao-amodal``: the curated TAO-Amodal tracks and their track offsets;
  tracks sharing their frames are one clip. Amodal ground truth is boxes.
- ``movi``: MOVi-B/D video folders; one clip per video, all objects.

Evaluation always groups by ``(video, object)``, whatever a clip holds.
See ``docs/datasets.md`` for the file layouts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from amodal.clip import Clip
from amodal.data.datasets.base import Annotation, DatasetIndex, DatasetItem
from amodal.errors import InputError

DATASET_KINDS = ("synthetic", "sailvos", "tao-amodal", "movi")

__all__ = ["DATASET_KINDS", "Annotation", "DatasetIndex", "DatasetItem", "index_dataset", "open_dataset"]


def index_dataset(
    kind: str,
    root: str | os.PathLike | None = None,
    split: str = "test",
    *,
    annotations: str | os.PathLike | None = None,
    track_offsets: str | os.PathLike | None = None,
) -> DatasetIndex:
    """Read a dataset's annotations into a :class:`DatasetIndex`.

    Args:
        kind: one of :data:`DATASET_KINDS`.
        root: the dataset folder. Without ``annotations`` the annotations are
            ``root/split/annotations.json`` and file names are relative to
            ``root/split`` (MOVi: video folders in ``root/split``).
        split: the split folder.
        annotations: an annotation file given directly (SAIL-VOS, TAO-Amodal,
            synthetic); file names are then relative to ``root``, which may be
            ``None`` when only ground truth is needed.
        track_offsets: TAO-Amodal ``{video_id: first track id}`` file; default
            ``track_ids_abs2rel.json`` beside the annotations.
    """
    if kind not in DATASET_KINDS:
        raise InputError(f"unknown dataset kind {kind!r}; choose one of {', '.join(DATASET_KINDS)}")
    if kind == "movi":
        if root is None:
            raise InputError("--data is required for MOVi: the folder holding <split>/<video>/")
        from amodal.data.datasets.movi import MoviIndex

        return MoviIndex(root, split)
    if annotations is None:
        if root is None:
            raise InputError(f"pass --data (with {split}/annotations.json in it) or --annotations for {kind}")
        from amodal.data.datasets.synthetic import ANNOTATIONS_NAME, split_dir

        frame_root = split_dir(root, split)
        annotations = frame_root / ANNOTATIONS_NAME
    else:
        frame_root = None if root is None else Path(root)
    if kind == "tao-amodal":
        from amodal.data.datasets.tao_amodal import TaoAmodalIndex

        return TaoAmodalIndex(annotations, track_offsets, frame_root)
    from amodal.data.datasets.sailvos import SailvosIndex

    return SailvosIndex(annotations, frame_root, kind=kind)


def open_dataset(
    kind: str,
    root: str | os.PathLike | None,
    split: str = "test",
    *,
    annotations: str | os.PathLike | None = None,
    track_offsets: str | os.PathLike | None = None,
) -> Iterator[Clip]:
    """Yield every clip of a dataset as an :class:`amodal.Clip` (frames loaded one clip at a time).

    Arguments as in :func:`index_dataset`; ``root`` must hold the frames.
    """
    index = index_dataset(kind, root, split, annotations=annotations, track_offsets=track_offsets)
    for i in range(len(index)):
        yield index.item(i).clip
