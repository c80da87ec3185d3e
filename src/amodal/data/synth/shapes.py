"""Solid shapes as unions of convex parts, each with a signed distance and a support function.

A shape lives in its own local frame (y up, centred near the origin). The
renderer needs three things of it, all vectorised over points:

- ``sdf(shape, p)``: signed distance (a lower bound inside unions), for sphere tracing;
- ``support(shape, v)``: ``max over the shape of p . v``, which gives exact resting
  heights on the floor for any orientation (``-min y = support(-R^T e_y)``);
- ``bounding_radius(shape)``: a sphere around it, for ray culling and collision checks.

Parts (sizes in scene units):

- ``sphere``: radius ``r``.
- ``box``: half extents ``(bx, by, bz)`` with edges rounded by ``rr``.
- ``cylinder``: radius ``r``, half height ``h``, axis y.
- ``cone``: base radius ``r`` at ``y = -h``, apex at ``y = +h``.
- ``capsule``: segment from ``-e`` to ``+e`` (a 3-vector), radius ``r``.
- ``torus``: major radius ``R`` in the xz plane, minor radius ``r``.

A part may also be *animated*: its ``offset`` a ``(T, 3)`` array and its ``size`` a ``(T, k)``
array, one row per frame of the clip (only spheres and capsules; see
:mod:`amodal.data.synth.figures`). Then every function above takes ``frame``, the clip frame of
each point or direction (``(N,) int64``), and a shape with animated parts is *articulated*: its
silhouette changes over the clip, not only its pose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amodal.data.synth.config import CATEGORIES


@dataclass(frozen=True)
class Part:
    """One convex primitive of a shape, placed at ``offset`` in the shape's frame."""

    kind: str  # one of sphere, box, cylinder, cone, capsule, torus
    offset: tuple[float, float, float] | np.ndarray  # centre of the part in the shape's frame; (T, 3) when animated
    size: tuple[float, ...] | np.ndarray  # kind-specific sizes, see the module docstring; (T, k) when animated

    @property
    def animated(self) -> bool:
        return isinstance(self.offset, np.ndarray)

    def at(self, frame: np.ndarray | None) -> tuple:
        """``(offset, size)`` with one column per point: scalars for a rigid part, ``(N,)`` rows for an animated one."""
        if not self.animated:
            return self.offset, self.size
        if frame is None:
            raise ValueError("an animated part needs the frame of every point")
        return self.offset[frame].T, self.size[frame].T  # (3, N), (k, N)


@dataclass(frozen=True)
class Shape:
    """A solid: the union of its parts."""

    name: str  # shape class, a key of ``CATEGORIES``
    parts: tuple[Part, ...]
    scale: float  # the drawn half-size; textures are laid out in units of it

    @property
    def category_id(self) -> int:
        return CATEGORIES[self.name]

    @property
    def articulated(self) -> bool:
        """Whether some part moves relative to the others over the clip."""
        return any(part.animated for part in self.parts)


def _part_sdf(part: Part, p: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
    """Signed distance of points ``p (3, N) float32`` (one row per axis) to one part: ``(N,) float32``."""
    offset, s = part.at(frame)
    x, y, z = p[0] - offset[0], p[1] - offset[1], p[2] - offset[2]
    if part.kind == "sphere":
        return np.sqrt(x * x + y * y + z * z) - s[0]
    if part.kind == "box":
        rr = s[3]
        dx, dy, dz = np.abs(x) - (s[0] - rr), np.abs(y) - (s[1] - rr), np.abs(z) - (s[2] - rr)
        ox, oy, oz = np.maximum(dx, 0.0), np.maximum(dy, 0.0), np.maximum(dz, 0.0)
        inside = np.minimum(np.maximum(np.maximum(dx, dy), dz), 0.0)
        return np.sqrt(ox * ox + oy * oy + oz * oz) + inside - rr
    if part.kind == "cylinder":
        r, h = s
        dx = np.sqrt(x * x + z * z) - r
        dy = np.abs(y) - h
        return np.minimum(np.maximum(dx, dy), 0.0) + np.hypot(np.maximum(dx, 0.0), np.maximum(dy, 0.0))
    if part.kind == "cone":
        # Intersection of the slanted side and the base plane: the max of two
        # plane distances is a valid (conservative) bound for sphere tracing.
        r, h = s
        radial = np.sqrt(x * x + z * z)
        side = (radial * (2.0 * h) + (y - h) * r) * (1.0 / np.sqrt(4.0 * h * h + r * r))
        return np.maximum(side, -y - h)
    if part.kind == "capsule":
        ex, ey, ez, r = s
        along = np.clip((x * ex + y * ey + z * ez) * (1.0 / (ex * ex + ey * ey + ez * ez)), -1.0, 1.0)
        x, y, z = x - along * ex, y - along * ey, z - along * ez
        return np.sqrt(x * x + y * y + z * z) - r
    if part.kind == "torus":
        big, small = s
        ring = np.sqrt(x * x + z * z) - big
        return np.sqrt(ring * ring + y * y) - small
    raise ValueError(f"unknown part kind {part.kind!r}")


def sdf(shape: Shape, p: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
    """Signed distance from points ``p (3, N) float32`` (shape frame, one row per axis): ``(N,) float32``.

    Negative inside. Exact outside for single parts; a lower bound elsewhere,
    which is all sphere tracing needs. Rows rather than ``(N, 3)`` keep every
    operation on contiguous memory. ``frame`` ``(N,) int64``: each point's clip
    frame, needed by articulated shapes only.
    """
    dist = _part_sdf(shape.parts[0], p, frame)
    for part in shape.parts[1:]:
        dist = np.minimum(dist, _part_sdf(part, p, frame))
    return dist


def _part_support(part: Part, v: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
    """``max over the part of p . v`` for directions ``v (N, 3)``: ``(N,)``."""
    length = np.linalg.norm(v, axis=-1)
    if part.animated:
        offset, s = part.at(frame)  # (3, N), (k, N)
        if part.kind == "sphere":
            local = s[0] * length
        elif part.kind == "capsule":
            local = np.abs(np.einsum("ni,in->n", v, s[:3])) + s[3] * length
        else:
            raise ValueError(f"animated parts are spheres or capsules, got {part.kind!r}")
        return np.einsum("ni,in->n", v, offset) + local
    s = part.size
    horizontal = np.hypot(v[:, 0], v[:, 2])
    if part.kind == "sphere":
        local = s[0] * length
    elif part.kind == "box":
        rr = s[3]
        local = np.abs(v) @ (np.asarray(s[:3]) - rr) + rr * length
    elif part.kind == "cylinder":
        local = s[0] * horizontal + s[1] * np.abs(v[:, 1])
    elif part.kind == "cone":
        r, h = s
        local = np.maximum(h * v[:, 1], -h * v[:, 1] + r * horizontal)
    elif part.kind == "capsule":
        local = np.abs(v @ np.asarray(s[:3])) + s[3] * length
    elif part.kind == "torus":
        local = s[0] * horizontal + s[1] * length
    else:
        raise ValueError(f"unknown part kind {part.kind!r}")
    return v @ np.asarray(part.offset) + local


def support(shape: Shape, v: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
    """Support function ``max over the shape of p . v`` for directions ``v (N, 3)``: ``(N,) float64``.

    ``frame`` ``(N,) int64``: the clip frame of each direction, needed by articulated shapes only.
    """
    v = np.atleast_2d(np.asarray(v, dtype=np.float64))
    if frame is not None:
        frame = np.broadcast_to(np.asarray(frame, dtype=np.int64), (len(v),))
    return np.max([_part_support(part, v, frame) for part in shape.parts], axis=0)


def bounding_radius(shape: Shape) -> float:
    """Radius of a sphere about the shape's origin that contains the whole shape (in every frame)."""
    radii = []
    for part in shape.parts:
        if part.animated:
            reach = np.linalg.norm(part.offset, axis=1)
            local = part.size[:, 0] if part.kind == "sphere" else np.linalg.norm(part.size[:, :3], axis=1) + part.size[:, 3]
            radii.append(float((reach + local).max()))
            continue
        s = part.size
        if part.kind == "sphere":
            local = s[0]
        elif part.kind == "box":
            local = float(np.linalg.norm(s[:3]))
        elif part.kind in ("cylinder", "cone"):
            local = float(np.hypot(s[0], s[1]))
        elif part.kind == "capsule":
            local = float(np.linalg.norm(s[:3])) + s[3]
        else:  # torus
            local = s[0] + s[1]
        radii.append(float(np.linalg.norm(part.offset)) + local)
    return max(radii)


def make_shape(name: str, scale: float, rng: np.random.Generator) -> Shape:
    """Draw a shape of class ``name`` with half-size about ``scale``; proportions vary with ``rng``."""
    s = float(scale)
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    o = (0.0, 0.0, 0.0)
    if name == "sphere":
        parts = [Part("sphere", o, (s,))]
    elif name == "box":
        half = tuple(s * u(0.55, 1.0) for _ in range(3))
        parts = [Part("box", o, (*half, 0.08 * min(half)))]
    elif name == "cylinder":
        parts = [Part("cylinder", o, (s * u(0.6, 1.0), s * u(0.5, 1.0)))]
    elif name == "cone":
        parts = [Part("cone", o, (s * u(0.7, 1.0), s * u(0.7, 1.1)))]
    elif name == "capsule":
        parts = [Part("capsule", o, (0.0, s * u(0.5, 0.8), 0.0, s * u(0.35, 0.5)))]
    elif name == "dumbbell":
        ball = s * u(0.4, 0.5)
        reach = s * u(0.7, 0.85)
        parts = [
            Part("sphere", (-reach, 0.0, 0.0), (ball,)),
            Part("sphere", (reach, 0.0, 0.0), (ball,)),
            Part("capsule", o, (reach, 0.0, 0.0, 0.4 * ball)),
        ]
    elif name == "torus":
        big = s * u(0.65, 0.8)
        parts = [Part("torus", o, (big, big * u(0.28, 0.4)))]
    elif name in ("l_shape", "u_shape"):
        # Bars of thickness c in the xy plane, extruded by +-depth along z.
        a, c, depth = s, 2.0 * s * u(0.3, 0.38), s * u(0.3, 0.5)
        rr = 0.05 * c
        foot = Part("box", (0.0, -a + c / 2, 0.0), (a, c / 2, depth, rr))
        post = lambda x: Part("box", (x, 0.0, 0.0), (c / 2, a, depth, rr))  # noqa: E731
        parts = [post(-a + c / 2), foot] if name == "l_shape" else [post(-a + c / 2), post(a - c / 2), foot]
    else:
        raise ValueError(f"unknown shape class {name!r}")
    return Shape(name=name, parts=tuple(parts), scale=s)


def _rot_x(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_z(deg: float) -> np.ndarray:
    a = np.deg2rad(deg)
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


# Orientations each class can rest in on the floor (applied before the spin
# about the vertical axis). Lying and upside-down poses change the silhouette
# far more than spinning does.
RESTING_POSES: dict[str, tuple[np.ndarray, ...]] = {
    "sphere": (np.eye(3),),
    "box": (np.eye(3), _rot_x(90), _rot_z(90)),
    "cylinder": (np.eye(3), _rot_x(90)),
    "cone": (np.eye(3),),
    "capsule": (np.eye(3), _rot_z(90)),
    "dumbbell": (np.eye(3),),
    "torus": (np.eye(3), _rot_x(90)),
    "l_shape": (np.eye(3), _rot_x(90)),
    "u_shape": (np.eye(3), _rot_x(90), _rot_z(180)),
}

# Classes whose silhouette has no holes from any view: the ones a full
# occlusion can rely on to hide what is behind them.
SOLID_OCCLUDERS: tuple[str, ...] = ("sphere", "box", "cylinder", "capsule")
