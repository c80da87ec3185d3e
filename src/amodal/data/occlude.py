"""Benchmark clips with known amodal truth from real footage: occluders painted in front of a real object.

A real clip gives frames and the mask of one object. Painting occluders over the frames *in front
of* the object turns the original mask into exact amodal ground truth and the original pixels into
exact amodal RGB ground truth, while everything else stays real footage:

- ``amodal_masks`` = the original mask;
- ``modal_masks`` = the original mask minus the painted occluders;
- ``amodal_rgb`` = the original frame inside the original mask, white (255) elsewhere;
- ``frames`` = the original frames with the occluders painted in.

A clip's frames are laid out as a timeline of **events**, one occluder each, separated by gaps
of frames without any occluder (so "do no harm" can be measured on fully visible frames). The
event kinds (:data:`OCCLUDER_KINDS`):

- ``bar``: a long straight band (a pole) sweeping across the object;
- ``disc``: a disc moving on a straight line across the object;
- ``panel``: a large rectangle sliding over the object, hiding it **entirely** for a few frames,
  then sliding off the other side;
- ``box``: a static rectangle over part of the object;
- ``flat``: a flat polygon drifting slowly over the object, one flat tone with no shading or rim
  (no depth cue).

Every occluder but ``flat`` shows either a textured solid colour taken from the scene or a patch
of another frame of the clip, with a brightness ramp and a darker rim, its texture fixed in its own
coordinates so it moves with it. :func:`occlude_clip` is a pure function of (frames, mask, config,
seed); :func:`plan_occluders` gives the same plan (kinds, frames, geometry) from the mask alone.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal.clip import Clip
from amodal.errors import InputError
from amodal.util.config import config_from_dict

OCCLUDER_KINDS: tuple[str, ...] = ("bar", "disc", "panel", "box", "flat")


@dataclass(frozen=True)
class OccludeConfig:
    """How occluders are planned and painted. Tuple fields ``(low, high)`` are ranges drawn from uniformly.

    Sizes are fractions of the object's bounding box over the occluder's frames: ``min side`` is its
    smaller side, ``sides`` its height and width.
    """

    kinds: tuple[str, ...] = OCCLUDER_KINDS  # kinds a clip's events draw from, each once before any repeats
    full_hide_rate: float = 1.0  # chance that a clip gets one panel event (hides the object entirely), if "panel" is in kinds and it fits
    hide_frames: tuple[int, int] = (2, 3)  # frames a panel hides the whole object (inclusive range)
    panel_ramp_frames: tuple[int, int] = (1, 2)  # frames a panel takes to slide onto the object, and again to slide off
    panel_slack: tuple[float, float] = (0.1, 0.5)  # how far a panel creeps while it hides the object, fraction of the object's extent
    event_frames: tuple[int, int] = (3, 6)  # frames of every other event (inclusive range); shorter leftovers stay free
    free_share: float = 0.2  # share of a clip's frames kept free of any occluder, for "do no harm"
    min_free_frames: int = 2  # but at least this many free frames (or the whole clip when it is shorter)
    bar_thickness: tuple[float, float] = (0.2, 0.45)  # bar thickness, fraction of the min side
    disc_radius: tuple[float, float] = (0.3, 0.5)  # disc radius, fraction of the min side
    box_size: tuple[float, float] = (0.4, 0.7)  # box height and width, fractions of the sides
    flat_radius: tuple[float, float] = (0.3, 0.5)  # polygon radius, fraction of the min side
    flat_drift: float = 0.05  # fastest drift of a flat shape per frame, fraction of the min side
    panel_margin: tuple[float, float] = (0.05, 0.3)  # panel extent beyond the object's box across its motion, fraction of the sides
    patch_rate: float = 0.5  # chance that a non-flat occluder shows a patch of a frame instead of a textured colour
    patch_object_share: float = 0.1  # most of the object (its area in the source frame) a patch may show; else a colour
    colour_jitter: float = 20.0  # largest shift (grey levels per channel) of a colour taken from the scene
    colour_separation: float = 90.0  # least sum over RGB of |solid colour - the object's mean colour|; closer draws are redrawn (10 tries)
    texture_amplitude: tuple[float, float] = (8.0, 30.0)  # grey levels of the value-noise texture on solid colours
    texture_cell: tuple[int, int] = (4, 16)  # cell size of that texture in pixels (inclusive range)
    noise_sigma: float = 4.0  # per-pixel noise (grey levels) on every occluder, fixed in the occluder's coordinates
    shading: float = 0.2  # strength of the brightness ramp across non-flat occluders (a depth cue)
    rim: float = 0.65  # brightness factor of the 1-pixel rim of non-flat occluders (1 = no rim)
    min_change: int = 12  # least sum over RGB of |painted - original| on a hidden object pixel; closer ones move by min_change / 3 a channel
    min_segment_frames: int = 4  # excluded frames split a clip; shorter runs of kept frames are dropped
    border_level: int = 32  # border rows / columns darker than this in every frame and off the object (letterboxing) are cropped; 0 keeps them

    def __post_init__(self) -> None:
        def fail(name: str, need: str) -> None:
            raise InputError(f"occlude config: {name} must be {need}, got {getattr(self, name)!r}")

        kinds = self.kinds
        if isinstance(kinds, str) or not isinstance(kinds, tuple) or not kinds:
            fail("kinds", f"a non-empty list drawn from {list(OCCLUDER_KINDS)}")
        if any(k not in OCCLUDER_KINDS for k in kinds) or len(set(kinds)) != len(kinds):
            fail("kinds", f"distinct names drawn from {list(OCCLUDER_KINDS)}")
        for name in ("hide_frames", "panel_ramp_frames", "event_frames", "texture_cell"):
            lo, hi = _pair(self, name, int)
            if not 1 <= lo <= hi:
                fail(name, "a range [low, high] of integers with 1 <= low <= high")
        for name in ("bar_thickness", "disc_radius", "box_size", "flat_radius", "panel_margin", "panel_slack", "texture_amplitude"):
            lo, hi = _pair(self, name, float)
            if not 0 <= lo <= hi:
                fail(name, "a range [low, high] with 0 <= low <= high")
        for name in ("full_hide_rate", "free_share", "patch_rate", "patch_object_share", "shading", "rim"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                fail(name, "in [0, 1]")
        for name in ("flat_drift", "colour_jitter", "colour_separation", "noise_sigma"):
            if not getattr(self, name) >= 0:
                fail(name, ">= 0")
        for name in ("min_free_frames", "min_change", "min_segment_frames", "border_level"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < (1 if name == "min_segment_frames" else 0):
                fail(name, "a non-negative integer" if name != "min_segment_frames" else "an integer >= 1")
        if self.min_change > 255:
            fail("min_change", "at most 255")
        if self.border_level > 255:
            fail("border_level", "at most 255")

    @classmethod
    def from_dict(cls, values: dict, where: str = "occlude config") -> "OccludeConfig":
        """Build a config from JSON-style values; unknown keys and wrong types are errors."""
        return config_from_dict(cls, values, where)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "OccludeConfig":
        """Load a config from a JSON object of fields (any subset; the rest keep their defaults)."""
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except OSError as e:
            raise InputError(f"{path}: cannot read the occlude config ({e.strerror}); check the --config path") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); fix the file") from None
        return cls.from_dict(values, where=str(path))

    def to_dict(self) -> dict:
        """All fields as JSON-ready values (tuples become lists); ``from_dict`` reads it back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


def _pair(config: OccludeConfig, name: str, kind: type) -> tuple:
    value = getattr(config, name)
    ok = isinstance(value, tuple) and len(value) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if ok and kind is int:
        ok = all(isinstance(v, int) for v in value)
    if not ok:
        raise InputError(f"occlude config: {name} must be a pair [low, high] of {kind.__name__}s, got {value!r}")
    return value


# The plan ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Occluder:
    """One event: an occluder over frames ``[start, start + len(poses))`` of a clip.

    ``poses`` holds one geometry per frame, by ``kind``: ``bar`` ``(ny, nx, p, half)``, pixels
    with ``|y ny + x nx - p| <= half``; ``disc`` ``(cy, cx, r)``; ``panel`` and ``box``
    ``(y0, x0, y1, x1)``, inclusive pixel-centre bounds; ``flat`` ``(cy, cx)``, the centre of
    ``polygon``, its vertices ``(dy, dx)`` around that centre. ``hidden`` lists the frames a panel
    is planned to hide the object entirely.
    """

    kind: str
    start: int
    poses: tuple[tuple[float, ...], ...]
    scale: float  # the occluder's size in pixels: its shading ramp spans +-scale
    polygon: tuple[tuple[float, float], ...] = ()
    hidden: tuple[int, ...] = ()

    @property
    def stop(self) -> int:
        return self.start + len(self.poses)

    def anchor(self, t: int) -> tuple[float, float]:
        """``(y, x)`` of the occluder's reference point at clip frame ``t``: its texture moves with it."""
        pose = self.poses[t - self.start]
        if self.kind == "bar":
            ny, nx, p, _ = pose
            return p * ny, p * nx
        if self.kind in ("panel", "box"):
            y0, x0, y1, x1 = pose
            return (y0 + y1) / 2, (x0 + x1) / 2
        return pose[0], pose[1]

    def mask(self, t: int, size: tuple[int, int]) -> np.ndarray:
        """``(H, W) bool``: the pixels the occluder covers at clip frame ``t``."""
        h, w = size
        yy = np.arange(h, dtype=np.float64)[:, None]
        xx = np.arange(w, dtype=np.float64)[None, :]
        pose = self.poses[t - self.start]
        if self.kind == "bar":
            ny, nx, p, half = pose
            return np.abs(yy * ny + xx * nx - p) <= half
        if self.kind == "disc":
            cy, cx, r = pose
            return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r
        if self.kind in ("panel", "box"):
            y0, x0, y1, x1 = pose
            return (yy >= y0) & (yy <= y1) & (xx >= x0) & (xx <= x1)
        cy, cx = pose
        return _inside_polygon(yy - cy, xx - cx, self.polygon)


def _inside_polygon(dy: np.ndarray, dx: np.ndarray, vertices) -> np.ndarray:
    """Even-odd rule for pixel centres at offsets ``(dy, dx)`` from the polygon's centre."""
    dy, dx = np.broadcast_arrays(dy, dx)
    inside = np.zeros(dy.shape, dtype=bool)
    n = len(vertices)
    for i in range(n):
        (ay, ax), (by, bx) = vertices[i], vertices[(i + 1) % n]
        if ay == by:
            continue
        crosses = (ay > dy) != (by > dy)
        x_at = ax + (dy - ay) * (bx - ax) / (by - ay)
        inside ^= crosses & (dx < x_at)
    return inside


def _box(masks: np.ndarray) -> tuple[int, int, int, int] | None:
    """``(y0, x0, y1, x1)`` inclusive bounds of the union of ``(n, H, W)`` masks, ``None`` when empty."""
    union = masks.any(axis=0)
    rows, cols = np.flatnonzero(union.any(axis=1)), np.flatnonzero(union.any(axis=0))
    if rows.size == 0:
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]), int(cols[-1])


def free_frame_count(num_frames: int, config: OccludeConfig) -> int:
    """How many frames of a clip are kept free of any occluder."""
    return min(num_frames, max(config.min_free_frames, math.ceil(config.free_share * num_frames)))


def _schedule(num_frames: int, config: OccludeConfig, rng: np.random.Generator) -> list[tuple[str, int, int, int]]:
    """Events ``(kind, start, length, hide)`` in time order; ``hide`` is a panel's fully hidden frames."""
    budget = num_frames - free_frame_count(num_frames, config)
    events: list[tuple[str, int, int]] = []  # (kind, length, hide)
    others = [k for k in config.kinds if k != "panel"]
    if "panel" in config.kinds and rng.random() < config.full_hide_rate:
        hide = int(rng.integers(config.hide_frames[0], config.hide_frames[1] + 1))
        ramp = int(rng.integers(config.panel_ramp_frames[0], config.panel_ramp_frames[1] + 1))
        ramp = max(1, min(ramp, (budget - hide) // 2))
        hide = min(hide, budget - 2 * ramp)
        if hide >= 1:
            events.append(("panel", hide + 2 * ramp, hide))
            budget -= hide + 2 * ramp
    pool: list[str] = []
    lo, hi = config.event_frames
    while budget >= lo and (others or "panel" in config.kinds):
        if not pool:
            pool = [str(k) for k in rng.permutation(others or ["panel"])]
        kind = pool.pop()
        length = min(int(rng.integers(lo, hi + 1)), budget)
        hide = 0
        if kind == "panel":
            if length < 3:
                break
            hide = max(1, min(config.hide_frames[1], length - 2))
        events.append((kind, length, hide))
        budget -= length
    order = rng.permutation(len(events))
    free = num_frames - sum(length for _, length, _ in events)
    gaps = rng.multinomial(free, np.full(len(events) + 1, 1.0 / (len(events) + 1)))
    out, cursor = [], int(gaps[0])
    for i, index in enumerate(order):
        kind, length, hide = events[index]
        out.append((kind, cursor, length, hide))
        cursor += length + int(gaps[i + 1])
    return out


def plan_occluders(masks: np.ndarray, config: OccludeConfig = OccludeConfig(), seed: int = 0) -> tuple[Occluder, ...]:
    """The occluders of a clip whose object has the ``(T, H, W) bool`` masks ``masks``, in time order.

    A pure function of its arguments; events whose frames all have an empty mask are left out.
    """
    masks = np.asarray(masks, dtype=bool)
    if masks.ndim != 3:
        raise InputError(f"plan_occluders: masks must be (T, H, W), got shape {masks.shape}")
    if not 0 <= int(seed) < 2**63:
        raise InputError(f"plan_occluders: seed must be in [0, 2**63), got {seed}")
    rng = np.random.default_rng([int(seed), 0])
    occluders = []
    for kind, start, length, hide in _schedule(len(masks), config, rng):
        span = masks[start : start + length]
        box = _box(span)
        if box is None:
            continue
        areas = span.reshape(length, -1).sum(axis=1)
        middle = span[int(np.argmax(areas))] if not span[length // 2].any() else span[length // 2]
        occluders.append(_PLANNERS[kind](config, rng, start, length, hide, box, middle))
    return tuple(occluders)


def _sides(box) -> tuple[float, float]:
    y0, x0, y1, x1 = box
    return float(y1 - y0 + 1), float(x1 - x0 + 1)


def _point_on(mask: np.ndarray, rng: np.random.Generator) -> tuple[float, float]:
    ys, xs = np.nonzero(mask)
    i = int(rng.integers(len(ys)))
    return float(ys[i]), float(xs[i])


def _lerp(a: float, b: float, length: int) -> np.ndarray:
    return np.linspace(a, b, length) if length > 1 else np.array([(a + b) / 2])


def _plan_bar(config, rng, start, length, hide, box, middle) -> Occluder:
    low = min(_sides(box))
    half = max(1.5, rng.uniform(*config.bar_thickness) * low / 2)
    if rng.random() < 0.5:  # mostly upright poles, some at any angle
        angle = rng.uniform(-0.26, 0.26)
    else:
        angle = rng.uniform(0, np.pi)
    ny, nx = math.sin(angle), math.cos(angle)
    y0, x0, y1, x1 = box
    p = [y * ny + x * nx for y in (y0, y1) for x in (x0, x1)]
    ends = (min(p) - half - 1, max(p) + half + 1)
    if rng.random() < 0.5:
        ends = ends[::-1]
    poses = tuple((ny, nx, float(q), half) for q in _lerp(*ends, length))
    return Occluder("bar", start, poses, scale=half)


def _plan_disc(config, rng, start, length, hide, box, middle) -> Occluder:
    h, w = _sides(box)
    r = max(2.0, rng.uniform(*config.disc_radius) * min(h, w))
    cy, cx = _point_on(middle, rng)
    angle = rng.uniform(0, 2 * np.pi)
    dy, dx = math.sin(angle), math.cos(angle)
    reach = (abs(dy) * h + abs(dx) * w) / 2 + r  # from the middle to just past the box along the line
    ys, xs = _lerp(cy - reach * dy, cy + reach * dy, length), _lerp(cx - reach * dx, cx + reach * dx, length)
    return Occluder("disc", start, tuple((float(y), float(x), r) for y, x in zip(ys, xs)), scale=r)


def _plan_panel(config, rng, start, length, hide, box, middle) -> Occluder:
    """A rectangle that slides over ``box``, covers it whole on ``hide`` frames, and slides off the far side.

    Along the motion (coordinate ``u``; the box spans ``[a0, a1]``, extent ``e = a1 - a0 + 2m``
    with margin ``m``) the panel is ``e + slack`` long. Its leading edge moves from ``a0 - m``
    (not touching) to ``a1 + m`` over the ``ramp`` frames in; while hiding, the panel creeps by
    ``slack``, so its trailing edge is at ``a0 - m`` on the last hidden frame; then the trailing
    edge moves on to ``a1 + m`` by the last frame, and the object is in view again.
    """
    h, w = _sides(box)
    y0, x0, y1, x1 = (float(v) for v in box)
    vertical = bool(rng.random() < 0.3)
    backwards = bool(rng.random() < 0.5)
    a0, a1, b0, b1, along, across = (y0, y1, x0, x1, h, w) if vertical else (x0, x1, y0, y1, w, h)
    if backwards:  # move towards smaller u: mirror, plan, mirror back
        a0, a1 = -a1, -a0
    ramp = (length - hide) // 2
    out = length - ramp - hide
    m = max(2.0, rng.uniform(*config.panel_margin) * along / 4)
    extent = a1 - a0 + 2 * m
    slack = rng.uniform(*config.panel_slack) * extent
    depth = extent + slack
    side = (rng.uniform(*config.panel_margin) * across, rng.uniform(*config.panel_margin) * across)
    c0, c1 = b0 - max(1.0, side[0]), b1 + max(1.0, side[1])
    last_hidden = ramp + hide - 1
    poses, hidden = [], []
    for k in range(length):
        if k <= ramp:
            lead = a0 - m + extent * k / max(ramp, 1)
        elif k <= last_hidden:
            lead = a1 + m + slack * (k - ramp) / max(hide - 1, 1)
        else:
            lead = a0 - m + depth + extent * (k - last_hidden) / max(out, 1)
        u0, u1 = lead - depth, lead
        if backwards:
            u0, u1 = -u1, -u0
        poses.append((c0, u0, c1, u1) if not vertical else (u0, c0, u1, c1))
        if ramp <= k <= last_hidden:
            hidden.append(start + k)
    return Occluder("panel", start, tuple(poses), scale=max(depth, across) / 2, hidden=tuple(hidden))


def _plan_box(config, rng, start, length, hide, box, middle) -> Occluder:
    h, w = _sides(box)
    cy, cx = _point_on(middle, rng)
    bh, bw = max(2.0, rng.uniform(*config.box_size) * h), max(2.0, rng.uniform(*config.box_size) * w)
    pose = (cy - bh / 2, cx - bw / 2, cy + bh / 2, cx + bw / 2)
    return Occluder("box", start, (pose,) * length, scale=max(bh, bw) / 2)


def _plan_flat(config, rng, start, length, hide, box, middle) -> Occluder:
    low = min(_sides(box))
    r = max(2.0, rng.uniform(*config.flat_radius) * low)
    n = int(rng.integers(5, 10))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = r * rng.uniform(0.55, 1.0, n)
    polygon = tuple((float(a * math.sin(t)), float(a * math.cos(t))) for a, t in zip(radii, angles))
    cy, cx = _point_on(middle, rng)
    speed = rng.uniform(0, config.flat_drift) * low
    heading = rng.uniform(0, 2 * np.pi)
    steps = np.arange(length) - (length - 1) / 2
    poses = tuple((float(cy + s * speed * math.sin(heading)), float(cx + s * speed * math.cos(heading))) for s in steps)
    return Occluder("flat", start, poses, scale=r, polygon=polygon)


_PLANNERS = {"bar": _plan_bar, "disc": _plan_disc, "panel": _plan_panel, "box": _plan_box, "flat": _plan_flat}


# Painting ---------------------------------------------------------------------------------------
def _value_noise(shape: tuple[int, int], cell: int, rng: np.random.Generator) -> np.ndarray:
    """``shape`` float64 in ``[-1, 1]``: random values on a grid of ``cell`` pixels, bilinearly interpolated."""
    h, w = shape
    grid = rng.uniform(-1, 1, (h // cell + 2, w // cell + 2))
    y = np.arange(h) / cell
    x = np.arange(w) / cell
    iy, ix = y.astype(int), x.astype(int)
    fy, fx = (y - iy)[:, None], (x - ix)[None, :]
    g00, g01 = grid[iy][:, ix], grid[iy][:, ix + 1]
    g10, g11 = grid[iy + 1][:, ix], grid[iy + 1][:, ix + 1]
    return (g00 * (1 - fx) + g01 * fx) * (1 - fy) + (g10 * (1 - fx) + g11 * fx) * fy


def _texture(
    occluder: Occluder,
    frames: np.ndarray,
    masks: np.ndarray,
    local_box: tuple[int, int, int, int],
    object_colour,
    config: OccludeConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, str]:
    """A ``(2H, 2W, 3) float64`` texture, indexed by pixel - anchor + ``(H, W)`` modulo its size, and its appearance.

    ``local_box`` ``(y0, y1, x0, x1)`` bounds the occluder's pixels relative to its (rounded)
    anchor over all its frames; ``object_colour`` is the object's mean RGB over those frames
    (``None`` when unseen). A patch is a window of one frame, taken whole (no seam), with as little
    of the object as 12 tries find; an occluder larger than the frame, or one whose best window
    holds more than ``patch_object_share`` of the object's area, gets a solid colour instead.
    """
    t_count, h, w, _ = frames.shape
    size = (2 * h, 2 * w)
    y0, y1, x0, x1 = local_box
    fits = y1 - y0 < h and x1 - x0 < w
    patch = occluder.kind != "flat" and rng.random() < config.patch_rate and fits
    if patch:
        t_src = int(rng.integers(t_count))
        best, best_share = (0, 0), np.inf
        for _ in range(12):  # texture row = pixel row - anchor + oy must stay in [0, H): oy in [-y0, H - 1 - y1]
            oy = int(rng.integers(-y0, h - y1))
            ox = int(rng.integers(-x0, w - x1))
            inside = int(masks[t_src, y0 + oy : y1 + oy + 1, x0 + ox : x1 + ox + 1].sum())
            share = inside / max(int(masks[t_src].sum()), 1)
            if share < best_share:
                best, best_share = (oy, ox), share
        patch = best_share <= config.patch_object_share
    if patch:
        source = frames[t_src].astype(np.float64)
        tiled = np.concatenate([source, source[:, ::-1]], axis=1)
        tiled = np.concatenate([tiled, tiled[::-1]], axis=0)
        tex = np.roll(tiled, (h - best[0], w - best[1]), axis=(0, 1))  # tex[r - anchor + (H, W)] = source[r - anchor + o]
        appearance = "patch"
    else:
        best_colour, best_gap = None, -1.0
        for _ in range(10):  # a colour from the scene, but not the object's own
            frame = frames[int(rng.integers(t_count))]
            y, x = int(rng.integers(max(h - 7, 1))), int(rng.integers(max(w - 7, 1)))
            colour = frame[y : y + 8, x : x + 8].reshape(-1, 3).mean(axis=0)
            colour = np.clip(colour + rng.uniform(-config.colour_jitter, config.colour_jitter, 3), 0, 255)
            gap = float(np.abs(colour - object_colour).sum()) if object_colour is not None else np.inf
            if gap > best_gap:
                best_colour, best_gap = colour, gap
            if gap >= config.colour_separation:
                break
        tex = np.broadcast_to(best_colour, (*size, 3)).copy()
        appearance = "flat" if occluder.kind == "flat" else "solid"
        if occluder.kind != "flat":
            cell = int(rng.integers(config.texture_cell[0], config.texture_cell[1] + 1))
            amplitude = rng.uniform(*config.texture_amplitude)
            tint = rng.uniform(0.6, 1.0, 3)  # the texture varies brightness mostly, hue a little
            tex += amplitude * _value_noise(size, cell, rng)[..., None] * tint
    sigma = config.noise_sigma * (0.5 if occluder.kind == "flat" else 1.0)
    if sigma > 0:
        tex += rng.normal(0, sigma, tex.shape)
    return tex, appearance


def _rim(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a 4-neighbour outside it (the frame border counts as inside)."""
    inner = mask.copy()
    inner[1:] &= mask[:-1]
    inner[:-1] &= mask[1:]
    inner[:, 1:] &= mask[:, :-1]
    inner[:, :-1] &= mask[:, 1:]
    return mask & ~inner


def paint_occluders(
    frames: np.ndarray, masks: np.ndarray, occluders, config: OccludeConfig = OccludeConfig(), seed: int = 0
) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """Paint ``occluders`` into ``(T, H, W, 3) uint8`` frames in front of the object ``masks`` ``(T, H, W) bool``.

    Returns the painted frames, the ``(T, H, W) bool`` union of occluder pixels per frame, and each
    occluder's appearance (``"solid"``, ``"patch"``, ``"flat"``, or ``"none"`` when it never enters the frame).
    """
    t_count, h, w, _ = frames.shape
    out = frames.copy()
    covered = np.zeros((t_count, h, w), dtype=bool)
    yy, xx = np.mgrid[0:h, 0:w]
    appearances = []
    for index, occluder in enumerate(occluders):
        rng = np.random.default_rng([int(seed), 1, index])
        frames_on = []  # (t, cover, anchor, rounded anchor) of the frames it is in view
        local = [h, -1, w, -1]  # bounds of its pixels relative to the rounded anchor: y0, y1, x0, x1
        for t in range(occluder.start, occluder.stop):
            cover = occluder.mask(t, (h, w))
            if not cover.any():
                continue
            ay, ax = occluder.anchor(t)
            ry, rx = round(ay), round(ax)
            rows, cols = np.flatnonzero(cover.any(axis=1)), np.flatnonzero(cover.any(axis=0))
            local = [
                min(local[0], rows[0] - ry), max(local[1], rows[-1] - ry),
                min(local[2], cols[0] - rx), max(local[3], cols[-1] - rx),
            ]
            frames_on.append((t, cover, (ay, ax), (ry, rx)))
        if not frames_on:
            appearances.append("none")
            continue
        seen = masks[occluder.start : occluder.stop]
        object_colour = frames[occluder.start : occluder.stop][seen].mean(axis=0) if seen.any() else None
        tex, appearance = _texture(occluder, frames, masks, tuple(int(v) for v in local), object_colour, config, rng)
        appearances.append(appearance)
        angle = rng.uniform(0, 2 * np.pi)
        ramp_dir = (math.sin(angle), math.cos(angle))
        for t, cover, (ay, ax), (ry, rx) in frames_on:
            ys, xs = yy[cover], xx[cover]
            colour = tex[(ys - ry + h) % (2 * h), (xs - rx + w) % (2 * w)]  # the anchor at the texture's middle: no seam
            if occluder.kind != "flat":
                ramp = ((ys - ay) * ramp_dir[0] + (xs - ax) * ramp_dir[1]) / max(occluder.scale, 1.0)
                colour = colour * (1 + config.shading * np.clip(ramp, -1, 1))[:, None]
                colour = np.where(_rim(cover)[cover][:, None], colour * config.rim, colour)
            painted = np.clip(np.round(colour), 0, 255).astype(np.int16)
            original = frames[t][cover].astype(np.int16)
            close = masks[t][cover] & (np.abs(painted - original).sum(axis=1) < config.min_change)
            if close.any():  # a hidden object pixel must really change: nudge it off the original, no more
                step = -(-config.min_change // 3)
                painted[close] = original[close] + np.where(original[close] < 128, step, -step)
            out[t][cover] = painted.astype(np.uint8)
            covered[t] |= cover
    return out, covered, tuple(appearances)


@dataclass(frozen=True, eq=False)
class Occlusion:
    """What :func:`occlude` made: the benchmark clip, the occluders painted into it and their appearances."""

    clip: Clip  # one object: amodal = the original mask, modal = it minus the occluders, amodal RGB on white
    occluders: tuple[Occluder, ...]  # in time order, as plan_occluders gives them
    appearances: tuple[str, ...]  # per occluder: "solid", "patch", "flat" ("none": it never entered the frame)

    @property
    def kinds(self) -> tuple[str | None, ...]:
        """Per frame, the kind of the occluder planned on it, or ``None`` on a free frame."""
        return occluder_kinds(self.occluders, self.clip.num_frames)


def occlude(
    frames: np.ndarray,
    mask: np.ndarray,
    config: OccludeConfig = OccludeConfig(),
    seed: int = 0,
    *,
    fps: float = 8.0,
    source: str = "",
    frame_names=(),
    category_id: int = 0,
) -> Occlusion:
    """:func:`occlude_clip` with the occluders and their appearances."""
    frames = np.asarray(frames)
    mask = np.asarray(mask, dtype=bool)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"{source or 'occlude_clip'}: frames must be (T, H, W, 3) uint8, got {frames.dtype} {frames.shape}")
    if mask.shape != frames.shape[:3]:
        raise InputError(f"{source or 'occlude_clip'}: mask must be (T, H, W) = {frames.shape[:3]}, got {mask.shape}")
    occluders = plan_occluders(mask, config, seed)
    painted, covered, appearances = paint_occluders(frames, mask, occluders, config, seed)
    amodal_rgb = np.where(mask[..., None], frames, np.uint8(255))
    clip = Clip(
        frames=painted,
        modal_masks=(mask & ~covered)[None],
        amodal_masks=mask[None].copy(),
        amodal_rgb=amodal_rgb[None],
        object_ids=(1,),
        category_ids=(int(category_id),),
        fps=float(fps),
        source=source,
        frame_names=tuple(frame_names),
    )
    return Occlusion(clip, occluders, appearances)


def occlude_clip(
    frames: np.ndarray,
    mask: np.ndarray,
    config: OccludeConfig = OccludeConfig(),
    seed: int = 0,
    *,
    fps: float = 8.0,
    source: str = "",
    frame_names=(),
    category_id: int = 0,
) -> Clip:
    """A benchmark clip from real ``(T, H, W, 3) uint8`` frames and the ``(T, H, W) bool`` mask of one object.

    The result has ``amodal_masks`` = ``mask``, ``modal_masks`` = ``mask`` minus the painted
    occluders, ``amodal_rgb`` = the original pixels inside ``mask`` on white, and the painted
    ``frames`` (see the module docstring). Deterministic: the same arguments give the same bytes.
    """
    return occlude(
        frames, mask, config, seed, fps=fps, source=source, frame_names=frame_names, category_id=category_id
    ).clip


def occluder_kinds(occluders, num_frames: int) -> tuple[str | None, ...]:
    """Per frame, the kind of the occluder planned on it, or ``None`` on a free frame."""
    kinds: list[str | None] = [None] * num_frames
    for occluder in occluders:
        for t in range(occluder.start, min(occluder.stop, num_frames)):
            kinds[t] = occluder.kind
    return tuple(kinds)


# Clip preparation -------------------------------------------------------------------------------
def kept_segments(num_frames: int, excluded, min_frames: int = 1) -> list[tuple[int, int]]:
    """Runs ``[start, stop)`` of frames not in ``excluded``, at least ``min_frames`` long, in order."""
    drop = {int(t) for t in excluded}
    runs, start = [], None
    for t in range(num_frames + 1):
        keep = t < num_frames and t not in drop
        if keep and start is None:
            start = t
        elif not keep and start is not None:
            if t - start >= min_frames:
                runs.append((start, t))
            start = None
    return runs


def content_box(frames: np.ndarray, mask: np.ndarray, level: int) -> tuple[int, int, int, int]:
    """``(y0, y1, x0, x1)``, the frames without their black borders (letterboxing): the border rows and
    columns whose pixels are all at most ``level`` in every frame and where the mask is empty."""
    t_count, h, w, _ = frames.shape
    if level <= 0:
        return 0, h, 0, w
    dark = (frames.max(axis=(0, 3)) <= level) & ~mask.any(axis=0)  # (H, W)
    rows, cols = np.flatnonzero(~dark.all(axis=1)), np.flatnonzero(~dark.all(axis=0))
    if rows.size == 0:
        return 0, h, 0, w
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


def fit_size(size: tuple[int, int], limit: tuple[int, int]) -> tuple[int, int]:
    """The largest ``(H, W)`` with the aspect ratio of ``size`` inside ``limit`` (never enlarged beyond it)."""
    h, w = size
    scale = min(limit[0] / h, limit[1] / w)
    return max(1, round(h * scale)), max(1, round(w * scale))


def resize_clip(frames: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """``(T, H, W, 3) uint8`` frames (Lanczos) and ``(T, H, W) bool`` mask (area average > 1/2) at ``size`` ``(H', W')``."""
    from PIL import Image

    h, w = size
    if frames.shape[1:3] == (h, w):
        return frames, mask
    out_frames = np.stack([np.asarray(Image.fromarray(f).resize((w, h), Image.Resampling.LANCZOS)) for f in frames])
    out_mask = np.stack(
        [np.asarray(Image.fromarray(m.astype(np.uint8) * 255).resize((w, h), Image.Resampling.BOX)) > 127 for m in mask]
    )
    return out_frames, out_mask
