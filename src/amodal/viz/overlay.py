"""Overlays that show modal and amodal masks over frames, side-by-side panels and heat maps.

Colour legend of :func:`overlay_frame` (each object has its own hue, see
:data:`OBJECT_COLORS`):

- **visible part** (modal mask): the object's colour, semi-transparent fill and
  a solid 2 px outline;
- **hidden part** (amodal minus modal): diagonal hatching in the object's
  colour over a faint fill, and an outline in a lighter tint of it around
  the full amodal extent.

A legend naming the objects and the two styles sits in a strip below the picture, never over
it. Frames under :data:`DISPLAY_HEIGHT` pixels high are enlarged by an integer factor
(nearest neighbour, :func:`display_scale`) before anything is drawn, so that outlines,
hatching and text stay readable on small videos.

Uncertainty videos (:func:`uncertainty_frame`) show ``4 f (1 - f)`` of the share ``f`` of
samples that mark a pixel: 0 where the samples agree, 1 where they split evenly, with a
labelled colour bar in a strip below the picture.
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


def object_color(object_id: int) -> tuple[int, int, int]:
    """The RGB colour of the object with id ``object_id`` (ids 1, 2, ... take :data:`OBJECT_COLORS` in order, cycling).

    Colours follow ids, not rows, so an object keeps its colour in every picture of a clip,
    also in one that shows only some of its objects.
    """
    return OBJECT_COLORS[(int(object_id) - 1) % len(OBJECT_COLORS)]


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
    object_ids: Sequence[int] | None = None,  # legend names and colours (object_color); default 1..K
    legend: bool = True,  # add the legend strip below the frame (the frame itself is never covered)
) -> np.ndarray:
    """Draw ``K`` objects' modal and amodal masks over one frame.

    Args:
        frame: ``(H, W, 3) uint8`` RGB.
        modal: ``(K, H, W) bool`` (or ``(H, W)`` for one object), the visible parts.
        amodal: ``(K, H, W) bool`` full extents, or ``None`` to draw modal only.

    Returns:
        ``(H, W, 3) uint8`` RGB: modal parts filled and outlined in each
        object's colour, hidden parts (amodal and not modal) hatched with a
        lighter outline around the amodal extent; with ``legend``,
        ``(H + strip, W, 3)``: the legend strip (:func:`legend_strip`) below.
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
    colors = [object_color(oid) for oid in ids]
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
    if legend:
        image = below(image, legend_strip(image.shape[1], ids, hidden=amodal is not None, size=text_size(image.shape[0])))
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


STRIP_BACKGROUND = (24, 24, 24)  # legend and colour-bar strips, and the gaps between panels
DISPLAY_HEIGHT = 256  # frames shorter than this are enlarged for display (nearest neighbour)
MAX_DISPLAY_SCALE = 8  # ... by at most this factor


def display_scale(height: int, target: int = DISPLAY_HEIGHT) -> int:
    """The integer factor that brings a frame ``height`` pixels high to at least ``target`` (1 if it is already).

    Capped at :data:`MAX_DISPLAY_SCALE`: a 128-pixel-high video is shown at 2x, a 64-pixel one at 4x.
    """
    return int(min(MAX_DISPLAY_SCALE, max(1, -(-int(target) // max(1, int(height))))))


def enlarge(array: np.ndarray, factor: int, axes: tuple[int, int] = (0, 1)) -> np.ndarray:
    """``array`` repeated ``factor`` times along both ``axes`` (nearest neighbour): crisp masks and pixels."""
    if factor == 1:
        return array
    return np.repeat(np.repeat(array, factor, axis=axes[0]), factor, axis=axes[1])


def text_size(height: int) -> int:
    """Font size of legends and labels for a picture ``height`` pixels high."""
    return int(np.clip(height // 22, 11, 20))


def below(image: np.ndarray, strip: np.ndarray | None) -> np.ndarray:
    """``image`` with ``strip`` (same width) under it; ``image`` itself when there is no strip."""
    if strip is None:
        return image
    return np.concatenate([image, strip], axis=0)


def _flow(items: list[tuple[int, object]], width: int, pad: int) -> list[list[tuple[int, object]]]:
    """Break ``(item width, item)`` pairs into rows no wider than ``width`` (an item wider than it gets a row alone)."""
    rows: list[list[tuple[int, object]]] = [[]]
    used = pad
    for w, item in items:
        if rows[-1] and used + w + pad > width:
            rows.append([])
            used = pad
        rows[-1].append((w, item))
        used += w + 2 * pad
    return rows


def legend_strip(width: int, object_ids: Sequence[int], *, hidden: bool = True, size: int = 12) -> np.ndarray:
    """The colour legend as a ``(h, width, 3) uint8`` strip to put below a picture.

    One swatch per object (``object <id>`` in its :func:`object_color`) and, with
    ``hidden``, the two styles (``visible (modal)`` filled, ``hidden (amodal only)``
    hatched), laid out left to right in as many rows as ``width`` needs.
    """
    from PIL import Image, ImageDraw

    size = int(size)
    pad, sw = max(3, size // 2), size
    font = _font(size)
    entries: list[tuple[str, tuple[int, int, int], bool]] = [
        (f"object {oid}", object_color(oid), False) for oid in object_ids
    ]
    if hidden:
        entries += [("visible (modal)", (200, 200, 200), False), ("hidden (amodal only)", (200, 200, 200), True)]
    items = [(sw + pad + int(font.getlength(text)), entry) for entry in entries for text in [entry[0]]]
    rows = _flow(items, width, pad)
    row_h = size + pad
    strip = np.empty((pad + len(rows) * row_h, width, 3), dtype=np.uint8)
    strip[:] = STRIP_BACKGROUND
    places = []
    for r, row in enumerate(rows):
        x, y = pad, pad + r * row_h
        for w, (text, color, hatched) in row:
            tile = _swatch(sw, color, hatched)[:, : max(0, min(sw, width - x))]
            strip[y : y + sw, x : x + tile.shape[1]] = tile
            places.append((x + sw + pad, y + sw // 2, text))
            x += w + 2 * pad
    canvas = Image.fromarray(strip)
    draw = ImageDraw.Draw(canvas)
    for x, y, text in places:
        draw.text((x, y), text, fill=(240, 240, 240), font=font, anchor="lm")
    return np.asarray(canvas)


def colorbar_strip(width: int, label: str | None = None, *, cmap: str = "inferno", size: int = 12) -> np.ndarray:
    """A ``(h, width, 3) uint8`` strip with a colour bar from 0 to 1 and, below it, ``label``.

    The bar spans the strip between a ``0`` and a ``1`` at its ends; ``label`` (what the
    values mean) is wrapped onto as many lines as ``width`` needs.
    """
    from PIL import Image, ImageDraw

    size = int(size)
    pad = max(3, size // 2)
    font = _font(size)
    lines: list[str] = []
    for word in (label or "").split():
        if lines and font.getlength(lines[-1] + " " + word) <= width - 2 * pad:
            lines[-1] += " " + word
        else:
            lines.append(word)
    ends = int(max(font.getlength("0"), font.getlength("1"))) + pad
    bar_h = max(6, size - 2)
    strip = np.empty((pad + bar_h + pad + len(lines) * (size + pad // 2) + (pad if lines else 0), width, 3), np.uint8)
    strip[:] = STRIP_BACKGROUND
    x0, x1 = pad + ends, max(pad + ends + 2, width - pad - ends)
    lut = _colormap(cmap)
    ramp = lut[np.linspace(0, 255, x1 - x0).astype(np.intp)].astype(np.uint8)
    strip[pad : pad + bar_h, x0:x1] = ramp[None]
    canvas = Image.fromarray(strip)
    draw = ImageDraw.Draw(canvas)
    middle = pad + bar_h // 2
    draw.text((x0 - pad // 2, middle), "0", fill=(240, 240, 240), font=font, anchor="rm")
    draw.text((x1 + pad // 2, middle), "1", fill=(240, 240, 240), font=font, anchor="lm")
    y = pad + bar_h + pad
    for line in lines:
        draw.text((width // 2, y), line, fill=(240, 240, 240), font=font, anchor="mt")
        y += size + pad // 2
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
    alpha: float = 0.75,  # opacity where the value is 1; it fades linearly to 0 where the value is 0
    cmap: str = "inferno",  # perceptually uniform, readable in gray print
    colorbar: bool = True,  # a 0..1 colour bar in a strip below the frame
    label: str | None = None,  # what the values mean, written under the colour bar
) -> np.ndarray:
    """Colour a per-pixel value in ``[0, 1]`` over a frame.

    Args:
        frame: ``(H, W, 3) uint8`` RGB.
        frequency: ``(H, W) float`` in ``[0, 1]``, e.g. the share of samples
            marking a pixel, or :func:`uncertainty` of it.

    Returns:
        ``(H, W, 3) uint8``: the frame where the value is 0, the colour map
        blended in proportion to the value elsewhere; with ``colorbar``,
        ``(H + strip, W, 3)``: the colour bar and ``label`` below the frame.
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
    if colorbar:
        image = below(image, colorbar_strip(image.shape[1], label, cmap=cmap, size=text_size(image.shape[0])))
    return image


UNCERTAINTY_LABEL = "uncertainty: 0 = samples agree, 1 = samples split evenly"


def uncertainty(frequency: np.ndarray) -> np.ndarray:
    """``4 f (1 - f)`` of the share ``f`` of samples marking each pixel: 0 where all agree, 1 at an even split.

    ``frequency``: any shape, values in ``[0, 1]``; returns ``float32`` of the same shape in ``[0, 1]``.
    """
    f = np.asarray(frequency, dtype=np.float32)
    return np.clip(4.0 * f * (1.0 - f), 0.0, 1.0)


def uncertainty_frame(frame: np.ndarray, frequency: np.ndarray, *, colorbar: bool = True,
                      cmap: str = "inferno") -> np.ndarray:
    """The uncertainty of ``K`` objects' sampled masks over one frame, bright where the samples disagree.

    Args:
        frame: ``(H, W, 3) uint8`` RGB.
        frequency: ``(K, H, W)`` (or ``(H, W)``) share of samples marking each pixel
            as part of each object, in ``[0, 1]``.

    Returns:
        ``(H, W, 3) uint8`` (``(H + strip, W, 3)`` with ``colorbar``): the largest
        :func:`uncertainty` over the objects as a heat map, the labelled colour bar below.
    """
    frequency = np.asarray(frequency, dtype=np.float32)
    if not np.isfinite(frequency).all() or (frequency.size and (frequency.min() < 0 or frequency.max() > 1)):
        raise InputError("frequency must hold finite values in [0, 1]")
    if frequency.ndim == 3:
        frequency = uncertainty(frequency).max(axis=0) if len(frequency) else np.zeros(frequency.shape[1:], np.float32)
    elif frequency.ndim == 2:
        frequency = uncertainty(frequency)
    else:
        raise InputError(f"frequency must be (K, H, W) or (H, W), got shape {frequency.shape}")
    return heatmap_frame(frame, frequency, cmap=cmap, colorbar=colorbar, label=UNCERTAINTY_LABEL)


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
    scale: int | None = None,
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
        legend: one colour legend in a strip below the picture (never over it).
        scale: enlarge frames and masks by this integer factor (nearest
            neighbour) before drawing; ``None``: :func:`display_scale` of the
            clip's height (2 for a 128-pixel-high clip, 1 from 256 pixels up).
    """
    if pred_amodal is not None:
        pred_amodal = np.asarray(pred_amodal)
        if pred_amodal.shape != clip.modal_masks.shape:
            raise InputError(
                f"pred_amodal must have the clip's mask shape {clip.modal_masks.shape}, got {pred_amodal.shape}"
            )
        pred_amodal = pred_amodal.astype(bool, copy=False)
    factor = display_scale(clip.size[0]) if scale is None else int(scale)
    if factor < 1:
        raise InputError(f"scale must be a positive integer, got {scale}")
    gt = clip.amodal_masks
    ids = clip.object_ids
    with_hidden = pred_amodal is not None or gt is not None
    strip = None
    for t in range(clip.num_frames):
        frame, modal = enlarge(clip.frames[t], factor), enlarge(clip.modal_masks[:, t], factor, (1, 2))

        def draw(amodal):
            amodal = None if amodal is None else enlarge(amodal, factor, (1, 2))
            return overlay_frame(frame, modal, amodal, object_ids=ids, legend=False)

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
        if legend:
            if strip is None:  # the same for every frame
                strip = legend_strip(image.shape[1], ids, hidden=with_hidden, size=text_size(frame.shape[0]))
            image = below(image, strip)
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
    scale: int | None = None,
    progress: bool = True,
) -> Path:
    """Render the overlays of :func:`overlay_frames` straight into a ``.gif`` or video file.

    Frames are drawn and encoded one at a time (with ``progress``, a bar shows on a
    terminal); the file appears only once complete. ``fps`` defaults to the
    clip's. Returns ``path``.
    """
    from tqdm import tqdm

    from amodal.data.io.writers import write_animation

    frames = overlay_frames(clip, pred_amodal, panels=panels, max_width=max_width, legend=legend, scale=scale)
    progress = tqdm(
        frames, total=clip.num_frames, desc=f"writing {Path(path).name}", unit="frame", leave=False,
        disable=None if progress else True,
    )
    write_animation(path, progress, fps or clip.fps)
    return Path(path)
