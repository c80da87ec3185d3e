"""Our synthetic sets: the SAIL-VOS clip format with depth, amodal RGB and a folder per split.

Layout of a set at ``DIR``::

    DIR/<split>/annotations.json      # SAIL-VOS clip list (see amodal.data.datasets.sailvos)
    DIR/<split>/<image_file_names>    # frames, and the depth and amodal RGB files,
                                      # all relative to DIR/<split>/

Each annotation entry adds to the SAIL-VOS keys ``video_id``, ``height``,
``width``, ``fps``, ``depth_file_names`` (16-bit PNGs of camera z-depth in
millimetres: inverse depth ``1000 / value``) and ``amodal_rgb_file_names``.
Entries of one video share their frame list and become one multi-object clip.
"""

from __future__ import annotations

import os
from pathlib import Path

from amodal.data.datasets.sailvos import SailvosIndex
from amodal.errors import InputError

ANNOTATIONS_NAME = "annotations.json"  # the annotation file of each split folder


def split_dir(root: str | os.PathLike, split: str) -> Path:
    """``root/split``, checked to exist; ``InputError`` naming it otherwise."""
    path = Path(root) / split
    if not path.is_dir():
        raise InputError(
            f"{path}: split folder not found; pass --data with a folder holding {split}/{ANNOTATIONS_NAME}"
        )
    return path


def synthetic_index(root: str | os.PathLike, split: str = "test") -> SailvosIndex:
    """The clips of ``root/split``: annotations at ``root/split/annotations.json``, files relative to ``root/split``."""
    folder = split_dir(root, split)
    return SailvosIndex(folder / ANNOTATIONS_NAME, folder, kind="synthetic")
