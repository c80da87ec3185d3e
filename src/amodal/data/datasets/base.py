"""What every dataset adapter shares: the annotation record, the index protocol and RLE decoding.

An adapter is split in three, as in SAM 2's data code: a raw **index** read
from the annotation file alone (cheap, so evaluation can count and shard
clips), **mask decoding** into an :class:`Annotation` (no images needed: this
is all that scoring a prediction file uses), and **frame loading** into an
:class:`amodal.Clip` (needed only to run a method).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Iterator, Protocol, Sequence

import numpy as np

from amodal.clip import Clip
from amodal.data.windows import Window, plan_windows
from amodal.errors import InputError


@dataclass(frozen=True, eq=False)
class Annotation:
    """Ground truth of one dataset clip (``K`` objects over ``T`` frames), without its images.

    Attributes:
        video: the video this clip comes from; evaluation groups by ``(video, object_id)``.
        modal_masks: ``(K, T, H, W) bool`` visible masks.
        amodal_masks: ``(K, T, H, W) bool`` full masks, or ``None`` (TAO-Amodal has boxes only).
        amodal_boxes: ``(K, T, 4) float64`` amodal ``[x, y, w, h]`` boxes, or ``None``.
        object_ids: one id per object, as in :class:`amodal.Clip`.
        category_ids: one category per object (``0`` when unknown).
        object_keys: each object's id in the reference prediction format
            (SAIL-VOS ``obj_id``, TAO-Amodal relative track id, MOVi instance index).
        frame_keys: each frame's id in the reference prediction format
            (SAIL-VOS image id, TAO-Amodal file basename, MOVi frame index).
        frame_names: one name per frame (file stem), as in :class:`amodal.Clip`.
        fps: frame rate of the source.
        source: where it came from (file and entry), for error messages.
        origin: ``(y, x)`` of the masks' top-left pixel in the frame: ``(0, 0)``
            unless the masks are a window around the objects (a *cropped*
            annotation, read only for scoring).
        frame_size: ``(H, W)`` of the frame when the masks are a window, else ``None``.
    """

    video: str
    modal_masks: np.ndarray
    amodal_masks: np.ndarray | None
    amodal_boxes: np.ndarray | None
    object_ids: tuple[int, ...]
    category_ids: tuple[int, ...]
    object_keys: tuple[Any, ...]
    frame_keys: tuple[Any, ...]
    frame_names: tuple[str, ...]
    fps: float = 8.0
    source: str = ""
    origin: tuple[int, int] = (0, 0)
    frame_size: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        k, t = self.modal_masks.shape[:2]
        if self.amodal_masks is not None and self.amodal_masks.shape != self.modal_masks.shape:
            raise InputError(
                f"{self.source}: amodal masks {self.amodal_masks.shape} differ from modal {self.modal_masks.shape}"
            )
        if self.amodal_boxes is not None and self.amodal_boxes.shape != (k, t, 4):
            raise InputError(f"{self.source}: amodal boxes must have shape {(k, t, 4)}, got {self.amodal_boxes.shape}")
        for name, n in (
            ("object_ids", k),
            ("category_ids", k),
            ("object_keys", k),
            ("frame_keys", t),
            ("frame_names", t),
        ):
            if len(getattr(self, name)) != n:
                raise InputError(f"{self.source}: {len(getattr(self, name))} {name} for {n}")

    @property
    def num_frames(self) -> int:
        return int(self.modal_masks.shape[1])

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` of the frames in pixels."""
        if self.frame_size is not None:
            return int(self.frame_size[0]), int(self.frame_size[1])
        return int(self.modal_masks.shape[2]), int(self.modal_masks.shape[3])

    @property
    def cropped(self) -> bool:
        """True when the masks are a window of the frames (see ``origin``)."""
        return self.frame_size is not None

    def frame_range(self, start: int, stop: int) -> "Annotation":
        """The frames ``[start, stop)`` (a window of a longer clip)."""
        s = slice(start, stop)
        return dataclasses.replace(
            self,
            modal_masks=self.modal_masks[:, s],
            amodal_masks=None if self.amodal_masks is None else self.amodal_masks[:, s],
            amodal_boxes=None if self.amodal_boxes is None else self.amodal_boxes[:, s],
            frame_keys=self.frame_keys[s],
            frame_names=self.frame_names[s],
        )

    def to_clip(
        self, frames: np.ndarray, depth: np.ndarray | None = None, amodal_rgb: np.ndarray | None = None
    ) -> Clip:
        """This ground truth with its ``(T, H, W, 3) uint8`` frames as an :class:`amodal.Clip`."""
        if self.cropped:
            raise ValueError(
                f"{self.source}: a cropped annotation has no whole-frame masks for a Clip; read it uncropped"
            )
        return Clip(
            frames=frames,
            modal_masks=self.modal_masks,
            amodal_masks=self.amodal_masks,
            depth=depth,
            amodal_rgb=amodal_rgb,
            object_ids=self.object_ids,
            category_ids=self.category_ids,
            fps=self.fps,
            source=self.source,
            frame_names=self.frame_names,
        )


@dataclass(frozen=True, eq=False)
class DatasetItem:
    """One clip of a dataset: the :class:`amodal.Clip` a method sees and the ground truth it is scored on."""

    clip: Clip
    annotation: Annotation

    def frame_range(self, start: int, stop: int) -> "DatasetItem":
        """The frames ``[start, stop)`` of both."""
        return DatasetItem(self.clip.frame_range(start, stop), self.annotation.frame_range(start, stop))


class DatasetIndex(Protocol):
    """A dataset read as far as its annotation file: clips can be counted and loaded one by one."""

    kind: str  # one of amodal.data.datasets.DATASET_KINDS

    def __len__(self) -> int: ...

    def annotation(self, index: int, cropped: bool = False) -> Annotation:
        """Ground truth of clip ``index``, decoded from annotations alone (no images read).

        ``cropped=True`` may return masks of only the window around the
        objects (faster; for scoring), with ``origin`` and ``frame_size`` set.
        """
        ...

    def item(self, index: int) -> DatasetItem:
        """Clip ``index`` with its frames (and depth, amodal RGB where the dataset has them)."""
        ...


# ----------------------------------------------------------------------------- files
def check_size(array: np.ndarray, size: tuple[int, int], where: str | os.PathLike) -> np.ndarray:
    """``InputError`` naming ``where`` unless ``array`` is ``size = (H, W)`` pixels."""
    if tuple(array.shape[:2]) != tuple(size):
        raise InputError(
            f"{where}: image is {array.shape[1]}x{array.shape[0]} but the annotations say "
            f"{size[1]}x{size[0]} (width x height); pass the frames the annotations were made on"
        )
    return array


# ----------------------------------------------------------------------------- RLE
def _segmented_cumsum(values: np.ndarray, segments: np.ndarray) -> np.ndarray:
    """Running sums of ``values`` restarting wherever the non-decreasing ``segments`` id changes."""
    if values.size == 0:
        return values
    total = np.cumsum(values)
    first = np.flatnonzero(np.concatenate([[True], segments[1:] != segments[:-1]]))
    base = np.concatenate([[0], total[first[1:] - 1]])
    return total - np.repeat(base, np.diff(np.concatenate([first, [values.size]])))


def rle_runs(counts: Sequence[str | bytes | Sequence[int]], names: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Run lengths of many COCO RLE ``counts`` at once, uncompressed and checked (no image decoded).

    A compressed string stores each run as a little-endian group of 5-bit
    digits (characters ``48 + digit``; bit 0x20: more digits follow; bit 0x10
    of the last digit: negative) and, from the fourth run on, as the
    difference to the run two places before. Lists of ints are taken as they are.

    Args:
        counts: one ``counts`` per RLE.
        names: one name per RLE for errors (the file and key).

    Returns:
        ``runs``: ``(R,) int64`` all runs, RLE after RLE, each starting with a
        run of zeros; ``starts``: ``(N + 1,) int64`` where each RLE's runs start.
    """
    pieces: list[np.ndarray] = []
    strings = [
        (i, c.encode("ascii", "replace") if isinstance(c, str) else bytes(c))
        for i, c in enumerate(counts)
        if not isinstance(c, (list, tuple))
    ]
    parsed: dict[int, np.ndarray] = {}
    if strings:
        sizes = np.array([len(raw) for _, raw in strings])
        digits = np.frombuffer(b"".join(raw for _, raw in strings), dtype=np.uint8).astype(np.int64) - 48
        string_end = np.cumsum(sizes)  # exclusive end of each string in digits
        owner = np.repeat(np.arange(len(strings)), sizes)
        bad = set(owner[(digits < 0) | (digits > 63)].tolist()) | set(np.flatnonzero(sizes == 0).tolist())
        if bad:
            raise InputError(f"{names[strings[min(bad)][0]]}: corrupt RLE counts (not a COCO compressed string)")
        more = (digits & 0x20) != 0
        if more[string_end - 1].any():
            first = int(np.argmax(more[string_end - 1]))
            raise InputError(f"{names[strings[first][0]]}: corrupt RLE counts (the string ends inside a run)")
        ends = np.flatnonzero(~more)  # last digit of every run; runs never span two strings
        group = np.repeat(np.arange(ends.size), np.diff(np.concatenate([[-1], ends])))
        position = np.arange(digits.size) - np.concatenate([[0], ends[:-1] + 1])[group]
        runs = np.bincount(group, weights=(digits & 0x1F) << (5 * position), minlength=ends.size).astype(np.int64)
        negative = (digits[ends] & 0x10) != 0
        runs = np.where(negative, runs - (1 << (5 * (position[ends] + 1))), runs)
        run_owner = owner[ends]
        run_start = np.concatenate([[0], np.cumsum(np.bincount(run_owner, minlength=len(strings)))[:-1]])
        index = np.arange(runs.size) - run_start[run_owner]  # index of each run within its RLE
        # From the fourth run on, runs 1, 3, 5, ... and runs 2, 4, 6, ... are running sums.
        for parity in (1, 2):
            sel = np.flatnonzero((index >= parity) & ((index - parity) % 2 == 0))
            runs[sel] = _segmented_cumsum(runs[sel], run_owner[sel])
        bounds = np.concatenate([run_start, [runs.size]])
        for j, (i, _) in enumerate(strings):
            parsed[i] = runs[bounds[j] : bounds[j + 1]]
    for i, c in enumerate(counts):
        piece = parsed[i] if i in parsed else np.asarray(c, dtype=np.int64).reshape(-1)
        if piece.size == 0 or (piece[1:] < 1).any() or piece[0] < 0:
            raise InputError(f"{names[i]}: corrupt RLE counts (a run of length <= 0)")
        pieces.append(piece)
    starts = np.concatenate([[0], np.cumsum([p.size for p in pieces])]).astype(np.int64)
    return (np.concatenate(pieces) if pieces else np.zeros(0, np.int64)), starts


@dataclass(frozen=True, eq=False)
class RleStack:
    """COCO RLEs of one frame size, validated and ready to decode (``None`` entries are empty masks).

    Build with :meth:`parse`; :meth:`box` finds where the set pixels are
    without decoding, and :meth:`decode` decodes everything or only a window.
    """

    size: tuple[int, int]  # (H, W) of every mask
    present: tuple  # indices of the masks that are not None
    runs: np.ndarray  # (R,) int64 run lengths of the present masks, one after another
    starts: np.ndarray  # (len(present) + 1,) where each present mask's runs start in ``runs``
    coco: tuple  # the present masks as pycocotools takes them
    count: int  # number of masks, None entries included

    @classmethod
    def parse(
        cls, rles: Sequence[Any], size: tuple[int, int] | None, where: str, names: Sequence[str] | None = None
    ) -> "RleStack":
        """Check every RLE: it needs ``size`` and ``counts``, its size must agree with
        ``size`` (or with the first RLE when ``size`` is ``None``) and its runs must
        add up to ``H * W``. ``where`` names the file and entry in errors, followed by
        ``names[i]`` (default ``[i]``) of the first bad RLE.
        """
        from pycocotools import mask as mask_utils

        present, counts, labels = [], [], []
        for i, rle in enumerate(rles):
            if rle is None:
                continue
            at = f"{where} {names[i]}" if names is not None else f"{where}[{i}]"
            if not isinstance(rle, dict) or "size" not in rle or "counts" not in rle:
                raise InputError(f"{at}: not a COCO RLE (needs 'size' and 'counts')")
            try:
                rle_size = (int(rle["size"][0]), int(rle["size"][1]))
            except (TypeError, ValueError, IndexError):
                raise InputError(f"{at}: RLE 'size' must be [height, width], got {rle['size']!r}") from None
            if size is None:
                size = rle_size
            if rle_size != tuple(size):
                raise InputError(
                    f"{at}: mask is {rle_size[1]}x{rle_size[0]} but expected {size[1]}x{size[0]} (width x height)"
                )
            if not isinstance(rle["counts"], (str, bytes, list)):
                raise InputError(f"{at}: RLE 'counts' must be a string or a list of run lengths")
            present.append(i)
            counts.append(rle["counts"])
            labels.append(at)
        if size is None:
            raise InputError(f"{where}: every mask is null, so the frame size is unknown")
        size = (int(size[0]), int(size[1]))
        runs, starts = rle_runs(counts, labels)
        covered = np.add.reduceat(runs, starts[:-1]) if counts else np.zeros(0, np.int64)
        wrong = np.flatnonzero(covered != size[0] * size[1])
        if wrong.size:
            j = int(wrong[0])
            raise InputError(
                f"{labels[j]}: corrupt RLE counts "
                f"(runs cover {int(covered[j])} pixels, the mask has {size[0] * size[1]})"
            )
        coco = []
        for c in counts:
            if isinstance(c, list):
                coco.append(mask_utils.frPyObjects({"size": list(size), "counts": c}, size[0], size[1]))
            else:
                coco.append({"size": list(size), "counts": c.encode("ascii") if isinstance(c, str) else c})
        return cls(size, tuple(present), runs, starts, tuple(coco), len(rles))

    def __len__(self) -> int:
        return self.count

    def box(self) -> tuple[int, int, int, int] | None:
        """Half-open ``(y0, y1, x0, x1)`` around the set pixels of all masks, or ``None`` when all are empty."""
        from pycocotools import mask as mask_utils

        if not self.coco:
            return None
        boxes = mask_utils.toBbox(list(self.coco))[mask_utils.area(list(self.coco)) > 0]
        if boxes.size == 0:
            return None
        x0, y0 = boxes[:, 0].min(), boxes[:, 1].min()
        x1, y1 = (boxes[:, 0] + boxes[:, 2]).max(), (boxes[:, 1] + boxes[:, 3]).max()
        return int(y0), int(y1), int(x0), int(x1)

    def decode(self, window: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """``(N, H, W) bool``, or only the half-open ``window = (y0, y1, x0, x1)``: ``(N, y1 - y0, x1 - x0) bool``.

        The whole frame is decoded by pycocotools in one call. A window is
        painted straight from the run lengths, touching only its columns:
        scoring needs the objects, not the empty rest of an 800x1280 frame.
        RLEs are column-major; the result is made C-contiguous once here, as
        every later operation is faster on it.
        """
        from pycocotools import mask as mask_utils

        h, w = self.size
        y0, y1, x0, x1 = window if window is not None else (0, h, 0, w)
        if not self.present:
            return np.zeros((len(self), y1 - y0, x1 - x0), dtype=bool)
        if window is None:
            decoded = mask_utils.decode(list(self.coco)).transpose(2, 0, 1)
        else:
            # The present masks, laid end to end column-major, form one long run
            # sequence; keep the part of each run inside its mask's columns x0..x1.
            owner = np.repeat(np.arange(len(self.present)), np.diff(self.starts))
            ends = np.cumsum(self.runs)
            low = owner * (h * w) + x0 * h
            high = owner * (h * w) + x1 * h
            lengths = np.clip(ends, low, high) - np.clip(ends - self.runs, low, high)
            values = ((np.arange(self.runs.size) - self.starts[owner]) % 2).astype(bool)  # 0, 1, 0, ... per mask
            columns = np.repeat(values, lengths).reshape(len(self.present), x1 - x0, h)
            decoded = columns[:, :, y0:y1].transpose(0, 2, 1)
        if len(self.present) == len(self):
            return np.ascontiguousarray(decoded).view(bool)
        out = np.zeros((len(self), y1 - y0, x1 - x0), dtype=bool)
        out[list(self.present)] = decoded
        return out


def decode_rles(
    rles: Sequence[Any], size: tuple[int, int] | None, where: str, names: Sequence[str] | None = None
) -> np.ndarray:
    """Decode COCO RLEs (``None`` = empty mask) into ``(N, H, W) bool``, checked as in :meth:`RleStack.parse`."""
    return RleStack.parse(rles, size, where, names).decode()


def stack_objects(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Stack per-object arrays on a new first axis; a single object is a view, not a copy."""
    return arrays[0][None] if len(arrays) == 1 else np.stack(arrays)


def to_int(value: Any, where: str) -> int:
    """An integer field, accepting integer-valued strings; ``InputError`` naming ``where`` otherwise."""
    try:
        if isinstance(value, bool):
            raise ValueError
        if isinstance(value, float) and not value.is_integer():
            raise ValueError
        return int(value)
    except (TypeError, ValueError):
        raise InputError(f"{where}: expected an integer, got {value!r}") from None


def split_item(item: DatasetItem, window: int | None) -> Iterator[tuple[DatasetItem, Window]]:
    """Each window of ``item`` as its own item, with the window it came from (``None``: the whole clip)."""
    t = item.clip.num_frames
    if window is None or window >= t:
        yield item, Window(0, t, 0)
        return
    for w in plan_windows(t, window):
        yield item.frame_range(w.start, w.stop), w
