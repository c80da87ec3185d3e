"""COCO run-length encoding of binary masks (the format of the reference annotations).

RLEs are dicts ``{"size": [H, W], "counts": str}`` with the compressed counts
string, as ``pycocotools.mask.encode`` writes them and the reference evaluation
reads them. Masks here are ``(H, W) bool``.
"""

from __future__ import annotations

import warnings

import numpy as np

from amodal.errors import InputError


def encode(mask: np.ndarray) -> dict:
    """Encode one ``(H, W) bool`` mask as a JSON-ready COCO RLE."""
    from pycocotools import mask as mask_utils

    if mask.ndim != 2:
        raise InputError(f"RLE encoding needs a (H, W) mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def decode(rle: dict, where: str = "RLE") -> np.ndarray:
    """Decode a COCO RLE (compressed string or uncompressed list counts) to ``(H, W) bool``.

    ``where`` names the entry in error messages (a file and key).
    """
    from pycocotools import mask as mask_utils

    try:
        size = [int(s) for s in rle["size"]]
        counts = rle["counts"]
    except (KeyError, TypeError, ValueError) as e:
        raise InputError(f"{where}: not a COCO RLE (needs 'size' and 'counts'): {e}") from None
    try:
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects({"size": size, "counts": counts}, size[0], size[1])
        else:
            rle = {"size": size, "counts": counts.encode("ascii") if isinstance(counts, str) else counts}
        with warnings.catch_warnings():
            # pycocotools' Cython arrays predate NumPy 2's __array__(copy=) protocol; harmless.
            warnings.simplefilter("ignore", DeprecationWarning)
            return mask_utils.decode(rle).astype(bool)
    except Exception as e:  # pycocotools raises bare exceptions on corrupt counts
        raise InputError(f"{where}: corrupt RLE counts ({e})") from None
