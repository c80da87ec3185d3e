"""Splitting dataset clips into windows of ``N`` frames for evaluation.

Rules, stated once:

- **Windows.** A clip of ``T`` frames is cut into windows starting at
  ``0, N, 2N, ...``. When ``T`` is not a multiple of ``N`` the last window is
  shifted back to end at the last frame (so every window is full whenever the
  clip is at least ``N`` frames long); it repeats frames of the window before
  it, and only its frames not covered before are scored, so every frame is
  scored exactly once. A clip shorter than ``N`` is one window of ``T`` frames.
- **Empty modal masks.** A frame where an object is not visible stays in its
  window and is passed to the method like any other (the baselines predict an
  empty mask there, or carry the object over from neighbouring frames); it is
  scored as the protocol says: SAIL-VOS and TAO-Amodal score every annotated
  frame, as the reference does, MOVi skips frames where the object is not
  visible. An object invisible in a whole window is kept too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from amodal.data.datasets.base import DatasetItem
from amodal.errors import InputError
from amodal.data.geometry import window_starts


@dataclass(frozen=True)
class Window:
    """Frames ``[start, stop)`` of a clip, of which ``[scored_from, stop)`` are scored."""

    start: int  # first frame of the window
    stop: int  # one past its last frame
    scored_from: int  # first frame scored here; earlier ones were scored by the window before


def plan_windows(num_frames: int, window: int) -> list[Window]:
    """The windows of a ``num_frames`` clip for a model window of ``window`` frames (rules above)."""
    if window < 1:
        raise InputError(f"--window must be >= 1, got {window}")
    if num_frames < 1:
        raise InputError(f"a clip needs at least one frame, got {num_frames}")
    out, covered = [], 0
    for start in window_starts(num_frames, window, overlap=0):
        stop = min(start + window, num_frames)
        out.append(Window(start, stop, max(start, covered)))
        covered = stop
    return out


def split_item(item: DatasetItem, window: int | None) -> Iterator[tuple[DatasetItem, Window]]:
    """Each window of ``item`` as its own item, with the window it came from (``None``: the whole clip)."""
    t = item.clip.num_frames
    if window is None or window >= t:
        yield item, Window(0, t, 0)
        return
    for w in plan_windows(t, window):
        yield item.frame_range(w.start, w.stop), w
