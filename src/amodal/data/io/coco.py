"""COCO instance annotations (what ``pycocotools.coco.COCO`` loads), written by ``segment`` and ``annotate``.

One image per frame, one annotation per object and frame whose mask is not empty, with the mask as
a compressed RLE ``segmentation``, its tight ``bbox`` ``[x, y, w, h]`` and pixel ``area``; extra
keys (``track_id``, ``modal_area``, ``uncertainty``) ride along, as COCO readers ignore what they
do not know.
"""

from __future__ import annotations

import numpy as np


def category_name(category_id: int) -> str:
    """The name a category id gets when the data has none: ``object`` for 0 (unknown), else ``category N``."""
    return "object" if category_id == 0 else f"category {category_id}"


class CocoInstances:
    """Images and mask annotations added one at a time; :meth:`to_dict` is the COCO JSON object."""

    def __init__(self, description: str):
        self.description = description
        self.images: list[dict] = []
        self.annotations: list[dict] = []
        self.categories: set[int] = set()

    def add_image(self, file_name: str, height: int, width: int, **extra) -> int:
        """Add one frame; returns its image id (1, 2, ...)."""
        image_id = len(self.images) + 1
        self.images.append({"id": image_id, "file_name": file_name, "width": int(width), "height": int(height), **extra})
        return image_id

    def add_mask(self, image_id: int, category_id: int, mask: np.ndarray, rle: dict, **extra) -> None:
        """Add ``mask`` (``(H, W) bool``, its COCO RLE ``rle``) to an image; an empty mask adds nothing."""
        ys, xs = np.nonzero(mask)
        if not len(ys):
            return
        self.categories.add(int(category_id))
        self.annotations.append({
            "id": len(self.annotations) + 1, "image_id": image_id, "category_id": int(category_id),
            "segmentation": rle, "area": int(len(ys)),
            "bbox": [int(xs.min()), int(ys.min()), int(xs.max() + 1 - xs.min()), int(ys.max() + 1 - ys.min())],
            "iscrowd": 0, **extra,
        })

    def to_dict(self) -> dict:
        return {
            "info": {"description": self.description},
            "images": self.images,
            "annotations": self.annotations,
            "categories": [{"id": c, "name": category_name(c)} for c in sorted(self.categories)],
        }
