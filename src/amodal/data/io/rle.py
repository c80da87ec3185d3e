"""COCO run-length encoding of binary masks (the format of the reference annotations).

RLEs are dicts ``{"size": [H, W], "counts": str}`` with the compressed counts
string, as ``pycocotools.mask.encode`` writes them and the reference evaluation
reads them. Masks here are ``(H, W) bool``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np

from amodal.errors import InputError

# The largest mask decoded, in pixels: Pillow's Image.MAX_IMAGE_PIXELS, the largest image the frame
# readers open. A compressed RLE of a few characters can claim any size.
MAX_MASK_PIXELS = 89_478_485


def encode(mask: np.ndarray) -> dict:
    """Encode one ``(H, W) bool`` mask as a JSON-ready COCO RLE."""
    from pycocotools import mask as mask_utils

    if mask.ndim != 2:
        raise InputError(f"RLE encoding needs a (H, W) mask, got shape {mask.shape}")
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(rle["size"][0]), int(rle["size"][1])], "counts": rle["counts"].decode("ascii")}


def size_of(rle, where: str = "RLE") -> tuple[int, int]:
    """``(H, W)`` of a COCO RLE, checked without decoding it.

    Both must be positive integers and ``H * W`` at most :data:`MAX_MASK_PIXELS`,
    so that a tiny entry cannot claim a mask of gigabytes.
    """
    if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
        raise InputError(f"{where}: not a COCO RLE (needs 'size' and 'counts'), got {_show(rle)}")
    size = rle["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(_is_int(s) and s >= 1 for s in size)):
        raise InputError(f"{where}: RLE 'size' must be [height, width], two positive integers, got {_show(size)}")
    if size[0] * size[1] > MAX_MASK_PIXELS:
        raise InputError(
            f"{where}: RLE size {size[1]}x{size[0]} (width x height) is over {MAX_MASK_PIXELS} pixels; "
            "masks must have their frames' size"
        )
    return int(size[0]), int(size[1])


def check(rle, where: str = "RLE") -> tuple[int, int]:
    """``(H, W)`` of a COCO RLE whose ``size`` (see :func:`size_of`) and ``counts`` have the right types.

    Cheap (nothing is decoded, the runs are not added up): ``counts`` must be a
    string of COCO digits (``0`` to ``o``) or a list of integers ``>= 0``.
    """
    size = size_of(rle, where)
    counts = rle["counts"]
    if isinstance(counts, str):
        ok = counts.isascii() and counts != "" and "0" <= min(counts) and max(counts) <= "o"
    else:
        ok = isinstance(counts, list) and all(_is_int(r) and r >= 0 for r in counts)
    if not ok:
        raise InputError(f"{where}: corrupt RLE counts (need a COCO compressed string or a list of run lengths >= 0)")
    return size


def decode(rle: dict, where: str = "RLE") -> np.ndarray:
    """Decode a COCO RLE (compressed string or uncompressed list counts) to ``(H, W) bool``.

    ``where`` names the entry in error messages (a file and key). The runs must
    cover the mask exactly: pycocotools leaves the pixels of short counts unset.
    """
    from pycocotools import mask as mask_utils

    h, w = check(rle, where)
    counts = rle["counts"]
    runs = _string_runs(counts) if isinstance(counts, str) else counts
    if runs is None or any(r < 0 for r in runs):
        raise InputError(f"{where}: corrupt RLE counts (not a COCO compressed string)")
    if sum(runs) != h * w:
        raise InputError(f"{where}: corrupt RLE counts (runs cover {sum(runs)} pixels, the mask has {h * w})")
    try:
        if isinstance(counts, list):
            rle = mask_utils.frPyObjects({"size": [h, w], "counts": counts}, h, w)
        else:
            rle = {"size": [h, w], "counts": counts.encode("ascii")}
        with warnings.catch_warnings():
            # pycocotools' Cython arrays predate NumPy 2's __array__(copy=) protocol; harmless.
            warnings.simplefilter("ignore", DeprecationWarning)
            return mask_utils.decode(rle).astype(bool)
    except Exception as e:  # pycocotools raises bare exceptions on corrupt counts
        raise InputError(f"{where}: corrupt RLE counts ({e})") from None


def _string_runs(counts: str) -> list[int] | None:
    """The run lengths of a COCO compressed counts string (as pycocotools' ``rleFrString``), ``None`` if corrupt.

    Each run is a little-endian group of 5-bit digits (characters ``48 + digit``; bit
    0x20: more digits follow; bit 0x10 of the last digit: negative), stored from the
    fourth run on as the difference to the run two places before.
    """
    runs: list[int] = []
    digits = [ord(c) - 48 for c in counts]  # 0 to 63: check() has seen the characters
    if digits[-1] & 0x20:  # the string ends inside a run
        return None
    value, shift = 0, 0
    for d in digits:
        value |= (d & 0x1F) << shift
        shift += 5
        if d & 0x20:
            continue
        if d & 0x10:
            value -= 1 << shift
        runs.append(value + (runs[-2] if len(runs) > 2 else 0))
        value, shift = 0, 0
    return runs


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _show(value) -> str:
    """A short one-line rendering of a JSON value for messages."""
    text = json.dumps(value, default=repr)
    return text if len(text) <= 60 else text[:57] + "..."
