"""Overlays that show modal and amodal masks over frames, side-by-side panels and heat maps.

Colour legend of :func:`overlay_frame` (each object has its own hue, see
:data:`OBJECT_COLORS`):

- **visible part** (modal mask): the object's colour, semi-transparent fill and
  a solid 2 px outline;
- **hidden part** (amodal minus modal): diagonal hatching in the object's
  colour over a faint fill, and an outline in a lighter tint of it around
  the full amodal extent.

A small legend in the emptiest corner names the objects and the two styles.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from amodal.clip import Clip
from amodal.errors import InputError

# Hues picked to stay apart from each other and from foliage, sky and skin.
OBJECT_COLORS: tuple[tuple[int, int, int], ...] = (
    (0, 160, 255),  # azure
    (255, 60, 160),  # magenta
    (255, 170, 0),  # amber
    (60, 210, 80),  # green
    (170, 90, 255),  # violet
    (255, 80, 40),  # vermilion
    (0, 215, 200),  # teal
    (235, 235, 40),  # yellow
)


def object_color(index: int) -> tuple[int, int, int]:
    """The RGB colour of the ``index``-th object (cycling through :data:`OBJECT_COLORS`)."""
    return OBJECT_COLORS[index % len(OBJECT_COLORS)]


def erode(mask: np.ndarray) -> np.ndarray:
    """``(H, W) bool`` mask shrunk by one pixel (4-neighbourhood); the image border does not erode."""
    out = mask.copy()
    out[1:] &= mask[:-1]
    out[:-1] &= mask[1:]
    out[:, 1:] &= mask[:, :-1]
    out[:, :-1] &= mask[:, 1:]
    return out


def boundary(mask: np.ndarray, width: int = 2) -> np.ndarray:
    """``(H, W) bool``: the pixels of ``mask`` within ``width`` pixels of its edge."""
    inner = mask
    for _ in range(width):
        inner = erode(inner)
    return mask & ~inner


def _diagonals(shape: tuple[int, int], period: int, width: int) -> np.ndarray:
    """``(H, W) bool`` stripes along the anti-diagonal, ``width`` of every ``period`` pixels on."""
    h, w = shape
    return np.add.outer(np.arange(h), np.arange(w)) % period < width


def _blend(image: np.ndarray, where: np.ndarray, color, alpha: float) -> None:
    """In place: ``image[where] = (1 - alpha) * image[where] + alpha * color`` (float32 image)."""
    image[where] = (1.0 - alpha) * image[where] + alpha * np.asarray(color, dtype=np.float32)


def _check_masks(masks: np.ndarray, frame: np.ndarray, name: str) -> np.ndarray:
    masks = np.asarray(masks)
    if masks.ndim == 2:
        masks = masks[None]
    if masks.ndim != 3 or masks.shape[1:] != frame.shape[:2]:
        raise InputError(f"{name} must be (K, H, W) with (H, W) = {frame.shape[:2]}, got shape {masks.shape}")
    return masks.astype(bool, copy=False)


def overlay_frame(
    frame: np.ndarray,
    modal: np.ndarray,
    amodal: np.ndarray | None = None,
    *,
    alpha: float = 0.45,  # modal fill opacity: the object stays recognisable underneath
    outline: int = 2,  # outline width in pixels
    object_ids: Sequence[int] | None = None,  # legend names; default 1..K
    legend: bool = True,  # draw the legend (skipped on frames under 96 px high)
    legend_avoid: np.ndarray | None = None,  # (H, W) bool the legend should not cover; default: these masks
) -> np.ndarray:
    """Draw ``K`` objects' modal and amodal masks over one frame.

    Args:
        frame: ``(H, W, 3) uint8`` RGB.
        modal: ``(K, H, W) bool`` (or ``(H, W)`` for one object), the visible parts.
        amodal: ``(K, H, W) bool`` full extents, or ``None`` to draw modal only.

    Returns:
        ``(H, W, 3) uint8`` RGB: modal parts filled and outlined in each
        object's colour, hidden parts (amodal and not modal) hatched with a
        lighter outline around the amodal extent.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise InputError(f"frame must be (H, W, 3) uint8, got {frame.dtype} {frame.shape}")
    modal = _check_masks(modal, frame, "modal")
    if amodal is not None:
        amodal = _check_masks(amodal, frame, "amodal")
        if amodal.shape[0] != modal.shape[0]:
            raise InputError(f"amodal has {amodal.shape[0]} objects but modal has {modal.shape[0]}")
    ids = list(object_ids) if object_ids is not None else list(range(1, modal.shape[0] + 1))
    if len(ids) != modal.shape[0]:
        raise InputError(f"{len(ids)} object ids for {modal.shape[0]} objects")

    out = frame.astype(np.float32)
    colors = [object_color(k) for k in range(modal.shape[0])]
    if amodal is not None:
        hatch = _diagonals(frame.shape[:2], period=8, width=2)
        for k, color in enumerate(colors):
            hidden = amodal[k] & ~modal[k]
            _blend(out, hidden, color, 0.2)
            _blend(out, hidden & hatch, color, 0.85)
    for k, color in enumerate(colors):
        _blend(out, modal[k], color, alpha)
    for k, color in enumerate(colors):
        if amodal is not None:
            tint = tuple(0.45 * c + 0.55 * 255 for c in color)
            out[boundary(amodal[k], outline)] = tint
        out[boundary(modal[k], outline)] = color
    image = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    if legend and frame.shape[0] >= 96:
        if legend_avoid is None:
            legend_avoid = modal.any(0) if amodal is None else amodal.any(0) | modal.any(0)
        image = _draw_legend(image, ids, colors, amodal is not None, legend_avoid)
    return image


@functools.lru_cache(maxsize=8)
def _font(size: int):
    from PIL import ImageFont

    return ImageFont.load_default(size=size)


def _swatch(size: int, color, hatched: bool) -> np.ndarray:
    """A ``(size, size, 3) uint8`` legend swatch: solid, or hatched like hidden parts."""
    tile = np.full((size, size, 3), 40, dtype=np.float32)
    full = np.ones((size, size), dtype=bool)
    if hatched:
        _blend(tile, full, color, 0.2)
        _blend(tile, _diagonals((size, size), 8, 3), color, 0.85)
    else:
        _blend(tile, full, color, 0.75)
    tile[boundary(full, 1)] = color
    return tile.astype(np.uint8)


def _draw_legend(image: np.ndarray, ids, colors, with_hidden: bool, occupied: np.ndarray) -> np.ndarray:
    """Draw the legend box in the corner that covers the fewest mask pixels."""
    from PIL import Image, ImageDraw

    h, w = image.shape[:2]
    size = int(np.clip(h // 28, 10, 20))  # font size scaled to the frame
    pad, sw = size // 2, size
    rows: list[tuple[str, tuple[int, int, int], bool]] = [(f"object {oid}", c, False) for oid, c in zip(ids, colors)]
    if with_hidden:
        rows += [("visible (modal)", (200, 200, 200), False), ("hidden (amodal only)", (200, 200, 200), True)]
    font = _font(size)
    text_w = max(int(font.getlength(text)) for text, _, _ in rows)
    box_w, box_h = pad * 3 + sw + text_w, pad + len(rows) * (size + pad)
    if box_w > w - 4 or box_h > h - 4:
        return image
    corners = [(2, 2), (w - box_w - 2, 2), (2, h - box_h - 2), (w - box_w - 2, h - box_h - 2)]
    x0, y0 = min(corners, key=lambda c: occupied[c[1] : c[1] + box_h, c[0] : c[0] + box_w].sum())
    region = image[y0 : y0 + box_h, x0 : x0 + box_w].astype(np.float32)
    image = image.copy()
    image[y0 : y0 + box_h, x0 : x0 + box_w] = (0.35 * region + 0.65 * 20).astype(np.uint8)  # dark translucent box
    for r, (_, color, hatched) in enumerate(rows):
        y = y0 + pad + r * (size + pad)
        image[y : y + sw, x0 + pad : x0 + pad + sw] = _swatch(sw, color, hatched)
    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    for r, (text, _, _) in enumerate(rows):
        y = y0 + pad + r * (size + pad) + size // 2
        draw.text((x0 + 2 * pad + sw, y), text, fill=(245, 245, 245), font=font, anchor="lm")
    return np.asarray(canvas)


def _as_panel(panel: np.ndarray, index: int) -> np.ndarray:
    """A panel as ``(H, W, 3) uint8``: bool masks white on black, floats in [0, 1] as gray."""
    panel = np.asarray(panel)
    if panel.ndim == 2:
        if panel.dtype == np.bool_:
            panel = panel.astype(np.uint8) * 255
        elif np.issubdtype(panel.dtype, np.floating):
            panel = np.clip(np.rint(panel * 255), 0, 255).astype(np.uint8)
        panel = np.repeat(panel[..., None], 3, axis=-1)
    if panel.ndim != 3 or panel.shape[-1] != 3 or panel.dtype != np.uint8:
        raise InputError(f"panel {index} must be (H, W, 3) uint8 or an (H, W) mask, got {panel.dtype} {panel.shape}")
    return panel


def side_by_side(
    panels: Sequence[np.ndarray],
    labels: Sequence[str],
    *,
    gap: int = 4,  # pixels between panels
    background: tuple[int, int, int] = (24, 24, 24),  # the gaps and the label strip
) -> np.ndarray:
    """Put panels in a row, each under its label.

    Args:
        panels: ``(H, W, 3) uint8`` images, ``(H, W) bool`` masks (white on
            black) or ``(H, W) float`` maps in ``[0, 1]`` (gray); heights may
            differ (shorter panels are centred).
        labels: one label per panel.

    Returns:
        ``(label_h + max H, sum W + gaps, 3) uint8``.
    """
    from PIL import Image, ImageDraw

    if len(panels) != len(labels) or not panels:
        raise InputError(f"side_by_side needs one label per panel, got {len(panels)} panels and {len(labels)} labels")
    panels = [_as_panel(p, i) for i, p in enumerate(panels)]
    height = max(p.shape[0] for p in panels)
    size = int(np.clip(height // 22, 10, 22))
    label_h = size + size // 2 + 4
    width = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    canvas = np.empty((label_h + height, width, 3), dtype=np.uint8)
    canvas[:] = background
    x = 0
    for p in panels:
        y = label_h + (height - p.shape[0]) // 2
        canvas[y : y + p.shape[0], x : x + p.shape[1]] = p
        x += p.shape[1] + gap
    image = Image.fromarray(canvas)
    draw = ImageDraw.Draw(image)
    font = _font(size)
    x = 0
    for p, label in zip(panels, labels):
        draw.text((x + p.shape[1] // 2, label_h // 2), str(label), fill=(240, 240, 240), font=font, anchor="mm")
        x += p.shape[1] + gap
    return np.asarray(image)


@functools.lru_cache(maxsize=4)
def _colormap(name: str) -> np.ndarray:
    """``(256, 3) float32`` RGB lookup table of a Matplotlib colour map."""
    import matplotlib

    try:
        cmap = matplotlib.colormaps[name]
    except KeyError:
        raise InputError(f"unknown colour map {name!r}; use a Matplotlib name such as 'inferno'") from None
    return (cmap(np.linspace(0.0, 1.0, 256))[:, :3] * 255).astype(np.float32)


def heatmap_frame(
    frame: np.ndarray,
    frequency: np.ndarray,
    *,
    alpha: float = 0.75,  # opacity where frequency is 1; it fades linearly to 0 where frequency is 0
    cmap: str = "inferno",  # perceptually uniform, readable in gray print
    colorbar: bool = True,  # a small 0..1 bar in the corner (frames at least 96 px high)
) -> np.ndarray:
    """Colour a per-pixel frequency (how often a pixel was in the mask) over a frame.

    Args:
        frame: ``(H, W, 3) uint8`` RGB.
        frequency: ``(H, W) float`` in ``[0, 1]``, e.g. the mean of several
            sampled binary masks: near 0.5 is uncertain.

    Returns:
        ``(H, W, 3) uint8``: the frame where the frequency is 0, the colour
        map blended in proportion to the frequency elsewhere.
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[-1] != 3 or frame.dtype != np.uint8:
        raise InputError(f"frame must be (H, W, 3) uint8, got {frame.dtype} {frame.shape}")
    frequency = np.asarray(frequency, dtype=np.float32)
    if frequency.shape != frame.shape[:2]:
        raise InputError(f"frequency must be (H, W) = {frame.shape[:2]}, got shape {frequency.shape}")
    if not np.isfinite(frequency).all() or frequency.min() < 0 or frequency.max() > 1:
        raise InputError("frequency must hold finite values in [0, 1]")
    lut = _colormap(cmap)
    colors = lut[np.rint(frequency * 255).astype(np.intp)]
    weight = (alpha * frequency)[..., None]
    out = (1.0 - weight) * frame.astype(np.float32) + weight * colors
    image = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    h, w = image.shape[:2]
    if colorbar and h >= 96:
        bar_h, bar_w = max(8, h // 40), max(40, w // 6)
        ramp = lut[np.linspace(0, 255, bar_w).astype(np.intp)].astype(np.uint8)
        y0, x0 = h - bar_h - 6, w - bar_w - 6
        image[y0 - 1 : y0 + bar_h + 1, x0 - 1 : x0 + bar_w + 1] = 255
        image[y0 : y0 + bar_h, x0 : x0 + bar_w] = ramp[None]
        image = _label_colorbar(image, x0, y0, bar_w, bar_h)
    return image


def _label_colorbar(image: np.ndarray, x0: int, y0: int, bar_w: int, bar_h: int) -> np.ndarray:
    """Write ``0`` and ``1`` above the ends of the colour bar, white on a dark halo."""
    from PIL import Image, ImageDraw

    canvas = Image.fromarray(image)
    draw = ImageDraw.Draw(canvas)
    font = _font(max(10, 2 * bar_h))
    for x, text in ((x0, "0"), (x0 + bar_w, "1")):
        draw.text(
            (x, y0 - 3), text, fill=(255, 255, 255), font=font, anchor="mb", stroke_width=2, stroke_fill=(0, 0, 0)
        )
    return np.asarray(canvas)


def _resize(image: np.ndarray, max_width: int | None) -> np.ndarray:
    if max_width is None or image.shape[1] <= max_width:
        return image
    from PIL import Image

    h, w = image.shape[:2]
    new_h = max(1, round(h * max_width / w))
    return np.asarray(Image.fromarray(image).resize((max_width, new_h), Image.Resampling.LANCZOS))


def overlay_frames(
    clip: Clip,
    pred_amodal: np.ndarray | None = None,
    *,
    panels: bool = False,
    max_width: int | None = None,
    legend: bool = True,
) -> Iterator[np.ndarray]:
    """Yield one ``(H', W', 3) uint8`` overlay per frame of ``clip``, rendered as it is consumed.

    Args:
        clip: frames and modal masks, plus ground-truth amodal masks if it has them.
        pred_amodal: ``(K, T, H, W) bool`` predicted amodal masks, or ``None``.
        panels: labelled panels ``input | modal | amodal | ground truth``
            (those that exist) instead of one overlay; without it, one overlay
            of ``pred_amodal`` (or of the ground truth when there is no
            prediction), or ``amodal | ground truth`` when there are both.
        max_width: shrink wider frames to this width (aspect kept).
        legend: draw the colour legend.
    """
    if pred_amodal is not None:
        pred_amodal = np.asarray(pred_amodal)
        if pred_amodal.shape != clip.modal_masks.shape:
            raise InputError(
                f"pred_amodal must have the clip's mask shape {clip.modal_masks.shape}, got {pred_amodal.shape}"
            )
        pred_amodal = pred_amodal.astype(bool, copy=False)
    gt = clip.amodal_masks
    ids = clip.object_ids
    # One legend corner for the whole clip: the one that any mask of any frame covers least.
    avoid = clip.modal_masks.any(axis=(0, 1))
    for extra in (pred_amodal, gt):
        if extra is not None:
            avoid = avoid | extra.any(axis=(0, 1))
    for t in range(clip.num_frames):
        frame, modal = clip.frames[t], clip.modal_masks[:, t]

        def draw(amodal):
            return overlay_frame(frame, modal, amodal, object_ids=ids, legend=legend, legend_avoid=avoid)

        if panels:
            views, labels = [frame, draw(None)], ["input", "modal"]
            if pred_amodal is not None:
                views.append(draw(pred_amodal[:, t]))
                labels.append("amodal")
            if gt is not None:
                views.append(draw(gt[:, t]))
                labels.append("ground truth")
            image = side_by_side(views, labels)
        elif pred_amodal is not None and gt is not None:
            image = side_by_side([draw(pred_amodal[:, t]), draw(gt[:, t])], ["amodal", "ground truth"])
        else:
            image = draw(pred_amodal[:, t] if pred_amodal is not None else gt[:, t] if gt is not None else None)
        yield _resize(image, max_width)


def render_overlay_video(
    clip: Clip,
    path: str | os.PathLike,
    pred_amodal: np.ndarray | None = None,
    *,
    panels: bool = False,
    fps: float | None = None,
    max_width: int | None = None,
    legend: bool = True,
) -> Path:
    """Render the overlays of :func:`overlay_frames` straight into a ``.gif`` or video file.

    Frames are drawn and encoded one at a time (a progress bar shows on a
    terminal); the file appears only once complete. ``fps`` defaults to the
    clip's. Returns ``path``.
    """
    from tqdm import tqdm

    from amodal.data.io.writers import write_animation

    frames = overlay_frames(clip, pred_amodal, panels=panels, max_width=max_width, legend=legend)
    progress = tqdm(
        frames, total=clip.num_frames, desc=f"writing {Path(path).name}", unit="frame", leave=False, disable=None
    )
    write_animation(path, progress, fps or clip.fps)
    return Path(path)
