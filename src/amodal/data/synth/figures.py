"""Articulated and non-rigid figures: people, four-legged animals, worms and blobs that move their parts.

Real videos are full of objects whose silhouette changes while they move: legs swing, arms
wave, a back bends, a neck dips to graze. A model that has only seen rigid solids learns that a
hidden part continues the visible one rigidly, which is wrong for all of them. Each figure here
is a union of spheres and capsules whose placements are keyed per frame (animated
:class:`~amodal.data.synth.shapes.Part`), driven by a few joint angles that follow an *action*.

Every figure is built at unit size in its own frame (y up, facing and walking along +x, its
width along z), about 2 units tall (people) or 2 units long (animals); the scene planner scales
it, turns it about the vertical axis and stands it on the floor frame by frame (the rest height
follows the feet, so a walker bobs as it should). :func:`make_figure` is a pure function of its
arguments.

Actions (:data:`ACTIONS`), each with its speed along +x at unit size:

- person: ``walk``, ``run`` (bent arms, longer stride), ``wave`` (stands, one arm raised and
  swinging), ``bend`` (stands, leans forward and back up), ``squat`` (knees bend, arms reach
  forward);
- animal: ``walk``, ``trot`` (diagonal legs together), ``graze`` (stands, neck down to the
  ground and up);
- worm: ``crawl`` (a travelling wave along the body lifts it in arches);
- blob: ``pulse`` (lobes drift about the centre and swell).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amodal.data.synth.shapes import Part, Shape

FIGURES: tuple[str, ...] = ("person", "animal", "worm", "blob")
ACTIONS: dict[str, tuple[str, ...]] = {
    "person": ("walk", "run", "wave", "bend", "squat"),
    "animal": ("walk", "trot", "graze"),
    "worm": ("crawl",),
    "blob": ("pulse",),
}
MOVING_ACTIONS: tuple[str, ...] = ("walk", "run", "trot", "crawl")  # the rest stay where they stand
# Drawn size relative to the world's object_scale: thin figures need more height than a solid
# of the same half-size to cover as many pixels (a person then stands about 1-2 units tall).
SIZE_FACTOR: dict[str, float] = {"person": 1.6, "animal": 1.3, "worm": 1.0, "blob": 1.0}


@dataclass(frozen=True)
class Figure:
    """An articulated shape and how it moves at unit size."""

    shape: Shape  # animated parts, one row per frame
    action: str  # one of ACTIONS[shape.name]
    speed: float  # forward speed along the figure's +x, units per second at unit size (0 for standing actions)


def _limb(start: np.ndarray, angle: np.ndarray, length: float) -> np.ndarray:
    """End points ``(T, 3)`` of segments from ``start (T, 3)`` at ``angle (T,)`` radians from straight down, towards +x."""
    return start + length * np.stack([np.sin(angle), -np.cos(angle), np.zeros_like(angle)], 1)


def _capsule(a: np.ndarray, b: np.ndarray, radius: float | np.ndarray) -> Part:
    """An animated capsule from ``a`` to ``b`` (both ``(T, 3)``)."""
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(a),))
    size = np.concatenate([(b - a) / 2, radius[:, None]], 1)
    return Part("capsule", ((a + b) / 2).astype(np.float32), size.astype(np.float32))


def _sphere(centre: np.ndarray, radius: float | np.ndarray) -> Part:
    radius = np.broadcast_to(np.asarray(radius, dtype=np.float64), (len(centre),))
    return Part("sphere", centre.astype(np.float32), radius[:, None].astype(np.float32))


def _const(times: np.ndarray, point) -> np.ndarray:
    return np.repeat(np.asarray(point, dtype=np.float64)[None], len(times), 0)


def _person(times: np.ndarray, action: str, rng: np.random.Generator) -> tuple[list[Part], float]:
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    thigh, shin = u(0.42, 0.5), u(0.4, 0.46)
    torso_length, torso_radius = u(0.5, 0.62), u(0.11, 0.16)
    upper_arm, forearm = u(0.28, 0.33), u(0.25, 0.3)
    limb_radius, head_radius = u(0.04, 0.055), u(0.1, 0.13)
    hip_y = -1.0 + thigh + shin + 0.05
    phase = rng.uniform(0, 2 * np.pi)
    zero = np.zeros_like(times)

    lean, arm_l, arm_r, elbow_l, elbow_r = zero, zero, zero, zero, zero
    thigh_l = thigh_r = knee_l = knee_r = zero
    speed = 0.0
    if action in ("walk", "run"):
        freq = u(1.4, 1.9) if action == "walk" else u(2.2, 2.8)  # gait cycles per second
        swing = np.deg2rad(u(22, 32) if action == "walk" else u(35, 45))
        cycle = phase + 2 * np.pi * freq * times
        thigh_l, thigh_r = swing * np.sin(cycle), -swing * np.sin(cycle)
        bend = np.deg2rad(45 if action == "walk" else 80)
        knee_l = bend * np.clip(-np.cos(cycle), 0, None)  # the knee folds while the leg swings forward
        knee_r = bend * np.clip(np.cos(cycle), 0, None)
        arm_swing = np.deg2rad(u(15, 30) if action == "walk" else u(35, 50))
        arm_l, arm_r = -arm_swing * np.sin(cycle), arm_swing * np.sin(cycle)
        fold = np.deg2rad(u(10, 30) if action == "walk" else u(70, 95))
        elbow_l = elbow_r = np.full_like(times, fold)
        lean = np.full_like(times, np.deg2rad(u(0, 6) if action == "walk" else u(8, 15)))
        speed = 2.0 * (thigh + shin) * float(np.sin(swing)) * freq
    elif action == "wave":
        wave = np.deg2rad(u(20, 40)) * np.sin(phase + 2 * np.pi * u(1.0, 2.0) * times)
        arm_l = np.deg2rad(u(140, 170)) + wave  # raised overhead
        elbow_l = np.deg2rad(u(10, 40)) + 0.5 * wave
        arm_r = np.full_like(times, np.deg2rad(u(-10, 15)))
    elif action == "bend":
        depth = np.deg2rad(u(40, 80))
        lean = depth * 0.5 * (1 - np.cos(phase + 2 * np.pi * u(0.4, 0.8) * times))
        arm_l = arm_r = lean * u(0.6, 1.0)  # arms hang down as the back bends
    elif action == "squat":
        depth = np.deg2rad(u(50, 90)) * 0.5 * (1 - np.cos(phase + 2 * np.pi * u(0.4, 0.8) * times))
        thigh_l = thigh_r = depth
        knee_l = knee_r = 2 * depth  # shin swings back as far as the thigh swings forward: feet stay put
        lean = 0.5 * depth
        arm_l = arm_r = np.deg2rad(u(40, 80)) * depth / max(depth.max(), 1e-6)

    parts = []
    for side, hip_angle, knee in ((-1, thigh_l, knee_l), (1, thigh_r, knee_r)):
        hip = _const(times, (0.0, hip_y, side * 0.08))
        knee_point = _limb(hip, hip_angle, thigh)
        foot = _limb(knee_point, hip_angle - knee, shin)
        parts += [_capsule(hip, knee_point, limb_radius * 1.25), _capsule(knee_point, foot, limb_radius * 1.05)]
    hip = _const(times, (0.0, hip_y, 0.0))
    neck = hip + torso_length * np.stack([np.sin(lean), np.cos(lean), zero], 1)
    head = neck + (head_radius + 0.06) * np.stack([np.sin(lean), np.cos(lean), zero], 1)
    parts += [_capsule(hip, neck, torso_radius), _sphere(head, head_radius)]
    for side, shoulder_angle, elbow in ((-1, arm_l, elbow_l), (1, arm_r, elbow_r)):
        # Shoulder angles are measured from the torso, which leans by ``lean``.
        shoulder = neck - 0.06 * np.stack([np.sin(lean), np.cos(lean), zero], 1)
        shoulder = shoulder + np.array([0.0, 0.0, side * (torso_radius + limb_radius + 0.01)])
        elbow_point = _limb(shoulder, shoulder_angle + lean, upper_arm)
        hand = _limb(elbow_point, shoulder_angle + lean + elbow, forearm)
        parts += [_capsule(shoulder, elbow_point, limb_radius), _capsule(elbow_point, hand, limb_radius * 0.9)]
    return parts, speed


def _animal(times: np.ndarray, action: str, rng: np.random.Generator) -> tuple[list[Part], float]:
    u = lambda lo, hi: float(rng.uniform(lo, hi))  # noqa: E731
    half_body, body_radius = u(0.5, 0.65), u(0.17, 0.26)
    upper, lower = u(0.3, 0.38), u(0.28, 0.36)
    leg_radius = u(0.045, 0.07)
    neck_length, head_radius = u(0.35, 0.55), u(0.1, 0.14)
    body_y = -1.0 + upper + lower + 0.04 + body_radius * 0.6
    phase = rng.uniform(0, 2 * np.pi)
    zero = np.zeros_like(times)
    neck_angle = np.full_like(times, np.deg2rad(u(35, 60)))  # from the horizontal, up
    speed = 0.0
    swings = [zero] * 4
    if action in ("walk", "trot"):
        freq = u(1.2, 1.6) if action == "walk" else u(2.0, 2.6)
        swing = np.deg2rad(u(18, 28) if action == "walk" else u(28, 38))
        cycle = phase + 2 * np.pi * freq * times
        # Legs front-left, front-right, hind-left, hind-right; a trot moves diagonal pairs together,
        # a walk puts each leg a quarter cycle after the one before.
        offsets = (0.0, np.pi, np.pi, 0.0) if action == "trot" else (0.0, np.pi, 1.5 * np.pi, 0.5 * np.pi)
        swings = [swing * np.sin(cycle + o) for o in offsets]
        speed = 2.0 * (upper + lower) * float(np.sin(swing)) * freq
    elif action == "graze":
        dip = 0.5 * (1 - np.cos(phase + 2 * np.pi * u(0.3, 0.6) * times))
        neck_angle = neck_angle - dip * (neck_angle + np.deg2rad(u(30, 55)))

    parts = [_capsule(_const(times, (-half_body, body_y, 0.0)), _const(times, (half_body, body_y, 0.0)), body_radius)]
    for (x, z), angle in zip(((half_body, -1), (half_body, 1), (-half_body, -1), (-half_body, 1)), swings):
        hip = _const(times, (x * 0.9, body_y, z * body_radius * 0.6))
        knee_point = _limb(hip, angle, upper)
        bend = np.deg2rad(20) * np.clip(np.sin(angle * 3), 0, None)
        foot = _limb(knee_point, angle - bend, lower)
        parts += [_capsule(hip, knee_point, leg_radius * 1.2), _capsule(knee_point, foot, leg_radius)]
    withers = _const(times, (half_body + body_radius * 0.3, body_y + body_radius * 0.4, 0.0))
    head = withers + neck_length * np.stack([np.cos(neck_angle), np.sin(neck_angle), zero], 1)
    snout = head + head_radius * 1.4 * np.stack([np.cos(neck_angle - 1.2), np.sin(neck_angle - 1.2), zero], 1)
    tail_angle = np.deg2rad(u(20, 50)) + np.deg2rad(u(10, 25)) * np.sin(phase + 2 * np.pi * u(1.0, 2.0) * times)
    tail_root = _const(times, (-half_body - body_radius * 0.5, body_y + body_radius * 0.3, 0.0))
    tail_tip = tail_root + u(0.3, 0.5) * np.stack([-np.cos(tail_angle), -np.sin(tail_angle), zero], 1)
    parts += [
        _capsule(withers, head, body_radius * u(0.35, 0.5)),
        _capsule(head, snout, head_radius * 0.6),
        _sphere(head, head_radius),
        _capsule(tail_root, tail_tip, leg_radius * 0.6),
    ]
    return parts, speed


def _worm(times: np.ndarray, action: str, rng: np.random.Generator) -> tuple[list[Part], float]:
    count = int(rng.integers(6, 10))
    radius = rng.uniform(0.1, 0.17)
    wavelength, height = rng.uniform(0.8, 1.6), rng.uniform(0.15, 0.45)
    speed = rng.uniform(0.3, 0.6)  # the wave travels back along the body as the body moves forward
    phase = rng.uniform(0, 2 * np.pi)
    along = np.linspace(-1.0, 1.0, count)
    rise = height * 0.5 * (1 + np.sin(2 * np.pi * (along[None] / wavelength) - 2 * np.pi * 1.5 * times[:, None] + phase))
    centres = np.stack([np.repeat(along[None], len(times), 0), -1.0 + radius + rise, np.zeros_like(rise)], -1)  # (T, n, 3)
    parts = [_capsule(centres[:, i], centres[:, i + 1], radius) for i in range(count - 1)]
    return parts, float(speed)


def _blob(times: np.ndarray, action: str, rng: np.random.Generator) -> tuple[list[Part], float]:
    count = int(rng.integers(3, 6))
    parts = [_sphere(_const(times, (0.0, -0.3, 0.0)), rng.uniform(0.45, 0.6))]
    for _ in range(count):
        direction = rng.normal(size=3)
        direction[1] = abs(direction[1])
        direction /= np.linalg.norm(direction)
        freq, phase = rng.uniform(0.4, 1.2), rng.uniform(0, 2 * np.pi)
        swell = 0.5 * (1 + np.sin(phase + 2 * np.pi * freq * times))  # (T,)
        centre = np.array([0.0, -0.3, 0.0]) + direction[None] * (0.35 + 0.4 * swell[:, None])
        parts.append(_sphere(centre, rng.uniform(0.2, 0.35) * (0.7 + 0.5 * swell)))
    return parts, 0.0


_BUILDERS = {"person": _person, "animal": _animal, "worm": _worm, "blob": _blob}


def make_figure(name: str, times: np.ndarray, rng: np.random.Generator, action: str | None = None) -> Figure:
    """A figure of class ``name`` (one of :data:`FIGURES`) posed at each of ``times (T,)`` seconds.

    ``action`` is drawn from :data:`ACTIONS` when not given. Unit size: about 2 units tall
    (people, blobs) or long (animals, worms); the lowest point over the clip sits near ``y = -1``.
    """
    if name not in _BUILDERS:
        raise ValueError(f"unknown figure {name!r}; known: {list(FIGURES)}")
    action = action if action is not None else str(rng.choice(ACTIONS[name]))
    if action not in ACTIONS[name]:
        raise ValueError(f"a {name} cannot {action!r}; it can {list(ACTIONS[name])}")
    times = np.asarray(times, dtype=np.float64)
    parts, speed = _BUILDERS[name](times, action, rng)
    return Figure(shape=Shape(name=name, parts=tuple(parts), scale=1.0), action=action, speed=float(speed))
