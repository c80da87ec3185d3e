"""The one window planner: how a video of any length is cut into windows of a model's length.

Rules, stated once, shared by the segmentation pipeline (streaming), the completion pipeline and
evaluation (``amodal eval --window``):

- Windows of ``window`` frames start every ``window - overlap`` frames. When they do not end on
  the last frame, one more window is shifted back to end exactly there, so every window is full
  whenever the video is at least one window long. A video shorter than one window is one window
  of its own length (models repeat its last frame to fill their native length).
- :func:`plan_windows` also says, for each window, the first frame no earlier window covered
  (``scored_from``), so every frame is produced, or scored, exactly once when windows are not
  blended.
- :class:`StreamingPlan` runs the same plan as frames arrive, without knowing the video length:
  it says when a window is complete and which frames no later window can touch (so they can be
  emitted and forgotten).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from amodal.errors import InputError


def _check(window: int, overlap: int) -> None:
    if window < 1:
        raise InputError(f"--window must be >= 1, got {window}")
    if not 0 <= overlap < window:
        raise InputError(f"--overlap must be in [0, window), got {overlap} for a window of {window} frames")


def window_starts(num_frames: int, window: int, overlap: int = 0) -> list[int]:
    """Start indices of the windows covering ``num_frames`` frames (rules above)."""
    _check(window, overlap)
    if num_frames <= window:
        return [0]
    stride = window - overlap
    count = math.ceil((num_frames - window) / stride) + 1
    return sorted({min(i * stride, num_frames - window) for i in range(count)})


@dataclass(frozen=True)
class Window:
    """Frames ``[start, stop)`` of a video, of which ``[scored_from, stop)`` no earlier window covered."""

    start: int  # first frame of the window
    stop: int  # one past its last frame
    scored_from: int  # first frame not covered by an earlier window


def plan_windows(num_frames: int, window: int, overlap: int = 0) -> list[Window]:
    """The windows of a ``num_frames`` video for a model window of ``window`` frames."""
    if num_frames < 1:
        raise InputError(f"a clip needs at least one frame, got {num_frames}")
    out, covered = [], 0
    for start in window_starts(num_frames, window, overlap):
        stop = min(start + window, num_frames)
        out.append(Window(start, stop, max(start, covered)))
        covered = stop
    return out


@dataclass
class StreamingPlan:
    """:func:`window_starts` for a stream of frames whose length is known only at its end.

    Feed it the number of frames seen so far; it runs the regular windows as they fill, and
    :meth:`final_start` gives the shifted-back last window once the stream ends.
    """

    window: int  # frames per window
    overlap: int  # frames shared by consecutive windows
    next_start: int = 0  # first frame of the next regular window

    def __post_init__(self) -> None:
        _check(self.window, self.overlap)

    @property
    def stride(self) -> int:
        return self.window - self.overlap

    def ready(self, frames_seen: int) -> int | None:
        """The start of the regular window that ``frames_seen`` frames complete, if any (then planned as run)."""
        if frames_seen == self.next_start + self.window:
            start = self.next_start
            self.next_start += self.stride
            return start
        return None

    def final_until(self, frames_seen: int) -> int:
        """How many leading frames no later window can cover, with the stream still open."""
        # Later regular windows start at next_start; a final shifted-back window can reach back to
        # frame frames_seen - window at the earliest.
        return max(0, min(self.next_start, frames_seen - self.window))

    def final_start(self, num_frames: int) -> int | None:
        """At the end of a ``num_frames`` stream: the start of the shifted-back last window, or ``None``."""
        last_end = self.next_start - self.stride + self.window if self.next_start > 0 else 0
        return max(0, num_frames - self.window) if last_end < num_frames else None
