"""``amodal overlay``: read a clip and its masks, draw them, write one GIF or video."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from amodal.util.checks import check_positive
from amodal.util.fs import check_output


@dataclass(frozen=True)
class OverlayConfig:
    """What ``amodal overlay`` renders: inputs as for :func:`amodal.data.io.loader.load_clip`, and the output."""

    out: str  # .gif or a video suffix (.mp4, .mov, .mkv, .avi); the suffix picks the writer
    frames: str | None = None  # folder of frames; exactly one of frames / video
    video: str | None = None  # video file
    masks: str | None = None  # folder of modal masks; exactly one of masks / rle
    rle: str | None = None  # COCO RLE JSON of modal masks (a SAIL-VOS file also brings amodal ones)
    amodal: str | None = None  # amodal masks (e.g. a model's output) drawn as hidden parts: a folder or an RLE JSON
    mask_mode: str = "luminance"  # how mask folders are read: "luminance" (one object) or "index"
    object_ids: tuple[int, ...] | None = None  # objects to show; None shows all
    fps: float | None = None  # output rate; None keeps the input's (8 for a folder)
    panels: bool = False  # labelled input | modal | amodal panels instead of one overlay
    max_width: int | None = None  # shrink wider output to this width; keeps GIFs small
    legend: bool = True  # draw the colour legend
    overwrite: bool = False  # replace an existing file at out (never an input)


def render_overlay_files(config: OverlayConfig) -> Path:
    """Load the inputs named by ``config`` and render their overlay to ``config.out``; returns the path.

    ``config.amodal`` is drawn as the amodal masks; amodal ground truth that
    comes with ``config.rle`` (SAIL-VOS) is drawn beside it.
    """
    from amodal.data.io.loader import load_clip, read_amodal_masks
    from amodal.data.io.writers import check_animation_path
    from amodal.viz.overlay import render_overlay_video

    check_animation_path(config.out)  # before the inputs are read, not after
    check_positive(config.fps, "--fps")
    check_positive(config.max_width, "--max-width")
    out = check_output(
        config.out, command="overlay", kind="file", overwrite=config.overwrite,
        inputs=(config.frames, config.video, config.masks, config.rle, config.amodal),
    )
    clip = load_clip(
        frames=config.frames,
        video=config.video,
        masks=config.masks,
        rle=config.rle,
        mask_mode=config.mask_mode,
        object_ids=config.object_ids,
        fps=config.fps,
    )
    amodal = None
    if config.amodal is not None:
        amodal = read_amodal_masks(
            config.amodal, clip.frame_names, clip.size, config.mask_mode, clip.object_ids, frames_dir=config.frames
        )
    return render_overlay_video(
        clip, out, amodal, panels=config.panels, fps=config.fps, max_width=config.max_width, legend=config.legend
    )
