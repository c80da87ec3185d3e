"""Planning a synthetic scene: camera path, light, materials and every object's trajectory.

The world is y-up with the floor at ``y = 0`` and a textured backdrop, a
vertical cylinder of radius ``BACKDROP_RADIUS`` about the origin. Objects live in
an arena of radius about ``ARENA_RADIUS`` about the origin; the camera orbits
outside it. Everything here is a pure function of the config and a NumPy
generator, so a clip is reproducible from its seed.

Occlusions are planned, not left to chance: an object chosen as an *occluder*
is steered so that, at a chosen frame, it stands on the line of sight from
the camera to an earlier *target* object, between the two. For a *full*
occlusion the occluder is a hole-free class, grown until its silhouette
(from the camera's height and the two distances) covers the target's, and
swept past it fast enough that the target shows again before the clip ends
but slowly enough that it stays hidden for a few frames meanwhile.
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, field

import numpy as np

from amodal.data.synth.config import ARTICULATED_CLASSES, SynthConfig
from amodal.data.synth.figures import ACTIONS, MOVING_ACTIONS, SIZE_FACTOR, make_figure
from amodal.data.synth.shapes import (
    RESTING_POSES,
    SOLID_OCCLUDERS,
    Part,
    Shape,
    bounding_radius,
    make_shape,
    support,
)

ARENA_RADIUS = 2.8  # objects start within this distance of the origin
BACKDROP_RADIUS = 20.0  # the backdrop cylinder; far enough to read as a distant wall
GRAVITY = 9.81  # units/s^2; scene units are metres
FLOOR_GAP = 1e-3  # objects rest this far above the floor so the floor never clips them
MIN_CAMERA_CLEARANCE = 2.5  # no object comes nearer the camera than this (it would fill the frame)
PLACEMENT_TRIES = 40  # attempts to place an object without touching the others (more rarely help)
HIDDEN_FRAMES = 3  # how long a planned full occlusion should hide its target, at least


@dataclass(frozen=True)
class Material:
    """A procedural texture: two colours mixed by a pattern of the surface point."""

    texture: str  # plain, checker, stripes or noise
    colors: np.ndarray  # (2, 3) float32 in [0, 1]: base and pattern colour
    frequency: float  # pattern cells per unit of the texture coordinates
    axis: np.ndarray  # (3,) float32 unit vector: the stripes' direction


@dataclass(frozen=True)
class Camera:
    """A pinhole camera per frame, y-up, square pixels."""

    eye: np.ndarray  # (T, 3) float64 camera centre
    look_at: np.ndarray  # (T, 3) float64 point at the image centre
    fov_degrees: float  # horizontal field of view


@dataclass(frozen=True)
class SceneObject:
    """One rigid object: shape, look and pose at each frame (local point p maps to R p + x)."""

    shape: Shape
    material: Material
    position: np.ndarray  # (T, 3) float64 world position of the shape's origin
    rotation: np.ndarray  # (T, 3, 3) float64 local-to-world rotation
    motion: str  # static, slide, fall, occluder, or for figures walk or act (for summaries and debugging)
    target: int  # index of the object it is steered in front of, -1 if none
    full_occlusion: bool  # True when planned to hide its target completely
    footprint: float = field(init=False)  # horizontal radius over all frames, for collision checks
    extent: np.ndarray = field(init=False)  # (T, 2) float64 lowest and highest y per frame

    def __post_init__(self) -> None:
        up = np.array([0.0, 1.0, 0.0])
        frame = _frames(self.shape, len(self.rotation))
        top = support(self.shape, np.einsum("tji,j->ti", self.rotation, up), frame)
        bottom = support(self.shape, np.einsum("tji,j->ti", self.rotation, -up), frame)
        object.__setattr__(self, "footprint", _horizontal_radius(self.shape, self.rotation))
        object.__setattr__(self, "extent", np.stack([self.position[:, 1] - bottom, self.position[:, 1] + top], 1))


@dataclass(frozen=True)
class Scene:
    """Everything the renderer needs for one clip."""

    camera: Camera
    light: np.ndarray  # (3,) float64 unit vector pointing towards the light
    ambient: float  # share of light that reaches every surface regardless of its normal
    floor: Material
    backdrop: Material
    objects: tuple[SceneObject, ...]
    noise_table: np.ndarray  # (512,) int64 permutation used by the value-noise texture


def plan_scene(config: SynthConfig, rng: np.random.Generator) -> Scene:
    """Draw a whole scene from ``config`` using ``rng`` (the only source of randomness)."""
    times = np.arange(config.num_frames) / config.fps
    camera = _plan_camera(config, rng, times)
    azimuth, elevation = rng.uniform(0.0, 2 * np.pi), np.deg2rad(rng.uniform(35.0, 70.0))
    light = np.array([np.cos(elevation) * np.cos(azimuth), np.sin(elevation), np.cos(elevation) * np.sin(azimuth)])
    floor = _material(rng, config.background_textures, muted=True, frequency=rng.uniform(0.8, 2.0))
    backdrop = _material(rng, config.background_textures, muted=True, frequency=rng.uniform(0.3, 0.8))
    noise_table = np.tile(rng.permutation(256), 2).astype(np.int64)

    count = int(rng.integers(config.num_objects[0], config.num_objects[1] + 1))
    objects: list[SceneObject] = []
    for _ in range(count):
        # The motion is drawn once, before placement retries, so that retries
        # (which fail more often for some motions) do not skew the configured rates.
        targets = [j for j, obj in enumerate(objects) if obj.motion in ("static", "slide", "walk", "act")]
        motion = _draw_motion(config, rng, can_occlude=bool(targets))
        candidate = None
        for attempt in range(PLACEMENT_TRIES):
            if attempt == PLACEMENT_TRIES // 2 and motion in ("occluder", "full_occluder"):
                motion = _draw_motion(config, rng, can_occlude=False)  # no room in front of anything
            target = -1
            if motion in ("occluder", "full_occluder"):
                # Two occluders of one target would fight for the same spot.
                free = [j for j in targets if all(obj.target != j for obj in objects)] or targets
                if motion == "full_occluder":  # the smallest target is the one a full occlusion can hide
                    target = min(free, key=lambda j: bounding_radius(objects[j].shape))
                else:
                    target = int(rng.choice(free))
            candidate = _plan_object(config, rng, objects, motion, target, camera, times)
            if candidate is not None and not any(_collide(candidate, other) for other in objects):
                break
        else:
            # Crowded arena: keep the object anyway rather than return fewer than
            # the configured minimum; drop it when the minimum is already met.
            if candidate is None or len(objects) >= config.num_objects[0]:
                continue
        objects.append(candidate)
    return Scene(
        camera=camera,
        light=light,
        ambient=float(rng.uniform(0.3, 0.45)),
        floor=floor,
        backdrop=backdrop,
        objects=tuple(objects),
        noise_table=noise_table,
    )


def _draw_motion(config: SynthConfig, rng: np.random.Generator, can_occlude: bool) -> str:
    """One of ``occluder``, ``full_occluder``, ``fall``, ``slide``, ``static`` with the configured rates."""
    if can_occlude and rng.uniform() < config.occlusion_rate:
        return "full_occluder" if rng.uniform() < config.full_occlusion_rate else "occluder"
    if rng.uniform() < config.fall_rate:
        return "fall"
    return "slide" if rng.uniform() < config.slide_rate else "static"


def _plan_camera(config: SynthConfig, rng: np.random.Generator, times: np.ndarray) -> Camera:
    progress = times / times[-1] if times[-1] > 0 else np.zeros_like(times)
    distance = rng.uniform(*config.camera_distance)
    height = rng.uniform(*config.camera_height)
    azimuth0 = rng.uniform(0.0, 2 * np.pi)
    look0 = np.array([rng.uniform(-0.3, 0.3), rng.uniform(0.2, 0.6), rng.uniform(-0.3, 0.3)])
    sweep = np.deg2rad(rng.uniform(-1.0, 1.0) * config.camera_orbit_degrees) if config.camera_motion else 0.0
    pan = rng.normal(size=3) * np.array([1.0, 0.3, 1.0])
    pan *= rng.uniform(0.0, config.camera_pan) / max(np.linalg.norm(pan), 1e-9) if config.camera_motion else 0.0
    azimuth = azimuth0 + sweep * progress
    eye = np.stack([distance * np.cos(azimuth), np.full_like(azimuth, height), distance * np.sin(azimuth)], axis=1)
    look_at = look0[None] + progress[:, None] * pan[None]
    return Camera(eye=eye, look_at=look_at, fov_degrees=config.fov_degrees)


def _material(
    rng: np.random.Generator, textures: tuple[str, ...], muted: bool, frequency: float
) -> Material:
    hue = rng.uniform()
    if muted:  # floors and walls: low saturation so objects stand out, as in MOVi's scenes
        base = colorsys.hsv_to_rgb(hue, rng.uniform(0.05, 0.4), rng.uniform(0.45, 0.85))
        other = colorsys.hsv_to_rgb((hue + rng.uniform(-0.1, 0.1)) % 1.0, rng.uniform(0.05, 0.4), rng.uniform(0.3, 0.7))
    else:
        base = colorsys.hsv_to_rgb(hue, rng.uniform(0.45, 0.95), rng.uniform(0.55, 0.95))
        other = colorsys.hsv_to_rgb((hue + rng.uniform(0.25, 0.75)) % 1.0, rng.uniform(0.3, 0.95), rng.uniform(0.25, 0.95))
    axis = rng.normal(size=3)
    return Material(
        texture=str(rng.choice(textures)),
        colors=np.array([base, other], dtype=np.float32),
        frequency=float(frequency),
        axis=(axis / np.linalg.norm(axis)).astype(np.float32),
    )


def _rotation_y(angle: np.ndarray) -> np.ndarray:
    """``(T,) radians -> (T, 3, 3)`` rotations about the vertical axis."""
    c, s = np.cos(angle), np.sin(angle)
    zero, one = np.zeros_like(angle), np.ones_like(angle)
    return np.stack([np.stack([c, zero, s], -1), np.stack([zero, one, zero], -1), np.stack([-s, zero, c], -1)], -2)


def _rotation_axis(axis: np.ndarray, angle: np.ndarray) -> np.ndarray:
    """Rodrigues' formula: ``(3,) unit axis, (T,) radians -> (T, 3, 3)``."""
    k = np.array([[0, -axis[2], axis[1]], [axis[2], 0, -axis[0]], [-axis[1], axis[0], 0]])
    s, c = np.sin(angle)[:, None, None], np.cos(angle)[:, None, None]
    return np.eye(3)[None] + s * k[None] + (1 - c) * (k @ k)[None]


def _rest_height(shape: Shape, rotation: np.ndarray) -> np.ndarray:
    """Height of the shape's origin when its lowest point touches the floor: ``(T, 3, 3) -> (T,)``."""
    down_local = np.einsum("tji,j->ti", rotation, np.array([0.0, -1.0, 0.0]))  # R^T (-e_y)
    return support(shape, down_local, _frames(shape, len(rotation))) + FLOOR_GAP


def _frames(shape: Shape, count: int) -> np.ndarray | None:
    """Frame indices ``0 .. count-1`` for an articulated shape's per-frame rows; ``None`` for a rigid one."""
    return np.arange(count) if shape.articulated else None


def _scaled(shape: Shape, factor: float) -> Shape:
    def scale(values):
        if isinstance(values, np.ndarray):
            return (values * np.float32(factor)).astype(np.float32)
        return tuple(float(factor * v) for v in values)

    parts = tuple(Part(p.kind, scale(p.offset), scale(p.size)) for p in shape.parts)
    return Shape(name=shape.name, parts=parts, scale=shape.scale * factor)


def _plan_object(
    config: SynthConfig,
    rng: np.random.Generator,
    placed: list[SceneObject],
    motion: str,
    target: int,
    camera: Camera,
    times: np.ndarray,
) -> SceneObject | None:
    """One object's shape and trajectory; ``None`` when the draw is unusable (caller retries).

    Occluders are steered in front of ``placed[target]``.
    """
    full = motion == "full_occluder"
    classes = config.shape_classes
    if full:
        solid = tuple(c for c in classes if c in SOLID_OCCLUDERS)
        classes = solid or classes
    name = str(rng.choice(classes))
    if name in ARTICULATED_CLASSES:
        return _plan_figure(config, rng, placed, motion, target, camera, times, name)
    shape = make_shape(name, 1.0, rng)
    scale = rng.uniform(*config.object_scale)
    poses = RESTING_POSES[name]
    pose = poses[int(rng.integers(len(poses)))]
    spin = np.deg2rad(rng.uniform(-1.0, 1.0) * config.max_spin_degrees)
    yaw = _rotation_y(rng.uniform(0.0, 2 * np.pi) + spin * times)
    material = _material(rng, config.object_textures, muted=False, frequency=rng.uniform(1.2, 2.5))

    if motion in ("occluder", "full_occluder"):
        return _plan_occluder(config, rng, shape, scale, yaw @ pose, material, placed, target, full, camera, times)

    shape = _scaled(shape, scale)
    if motion == "fall":
        # Dropped from rest with a tumble that unwinds by the time it lands.
        axis = np.array([*rng.normal(size=1), 0.0, *rng.normal(size=1)])
        axis /= max(np.linalg.norm(axis), 1e-9)
        rest = float(_rest_height(shape, (yaw @ pose)[-1:])[0])
        drop = rng.uniform(1.0, 2.5)
        landing = np.sqrt(2.0 * drop / GRAVITY)
        tumble = _rotation_axis(axis, np.deg2rad(rng.uniform(60.0, 180.0)) * np.clip(1.0 - times / landing, 0.0, 1.0))
        rotation = yaw @ tumble @ pose
        floor = _rest_height(shape, rotation)
        height = np.maximum(rest + drop - 0.5 * GRAVITY * times**2, floor)
        start = _uniform_disk(rng, ARENA_RADIUS * 0.8)
        position = np.stack([np.full_like(times, start[0]), height, np.full_like(times, start[1])], 1)
    else:
        rotation = yaw @ pose[None]
        height = _rest_height(shape, rotation)
        start = _uniform_disk(rng, ARENA_RADIUS)
        if motion == "slide":
            # Head for a point near the middle so that sliders cross the arena
            # (and each other's lines of sight) instead of leaving it.
            heading = _uniform_disk(rng, 1.5) - start
            heading /= max(np.linalg.norm(heading), 1e-9)
            speed = rng.uniform(0.3, 1.0) * config.max_speed
            friction = rng.uniform(0.0, 0.4)  # fraction of the speed lost per second
            travel = speed * np.where(
                times < 1.0 / max(friction, 1e-9), times - 0.5 * friction * times**2, 0.5 / max(friction, 1e-9)
            )
            xz = start[None] + travel[:, None] * heading[None]
        else:
            xz = np.repeat(start[None], len(times), 0)
        if np.hypot(xz[:, 0], xz[:, 1]).max() > ARENA_RADIUS + 0.7:
            return None
        position = np.stack([xz[:, 0], height, xz[:, 1]], 1)
    return SceneObject(shape, material, position, rotation, motion, -1, False)


def _plan_occluder(
    config: SynthConfig,
    rng: np.random.Generator,
    unit_shape: Shape,
    scale: float,
    rotation: np.ndarray,
    material: Material,
    placed: list[SceneObject],
    target_index: int,
    full: bool,
    camera: Camera,
    times: np.ndarray,
) -> SceneObject | None:
    """An object that crosses the line of sight to ``placed[target_index]`` at a chosen frame."""
    target = placed[target_index]
    frames = len(times)
    crossing = int(round(rng.uniform(0.3, 0.7) * (frames - 1)))
    target_xz = target.position[crossing, [0, 2]]
    sight = target_xz - camera.eye[crossing, [0, 2]]
    target_distance = float(np.linalg.norm(sight))
    sight /= target_distance
    across = np.array([-sight[1], sight[0]])
    target_radius = target.footprint
    at_crossing = None if not target.shape.articulated else [crossing]
    target_top = float(target.position[crossing, 1] + support(target.shape, target.rotation[crossing].T @ [0, 1, 0], at_crossing)[0])

    # Unit-scale extents of the occluder in its (spinning) pose: height, and the
    # narrowest half-width it shows the camera while spinning.
    first = None if not unit_shape.articulated else [0]
    unit_height = float(support(unit_shape, rotation[0].T @ [0, 1, 0], first)[0] + support(unit_shape, rotation[0].T @ [0, -1, 0], first)[0])
    unit_half_width = _horizontal_radius(unit_shape, rotation, narrowest=True)
    unit_radius = _horizontal_radius(unit_shape, rotation)

    # The point of the line of sight that the occluder crosses moves with the
    # camera and the target; the occluder moves with it plus a sweep across it.
    def sight_velocity(gap: float) -> np.ndarray:
        if frames < 2:
            return np.zeros(2)
        near = (target_distance - gap) / target_distance
        eye_velocity = np.gradient(camera.eye[:, [0, 2]], times, axis=0)[crossing]
        target_velocity = np.gradient(target.position[:, [0, 2]], times, axis=0)[crossing]
        return (1.0 - near) * eye_velocity + near * target_velocity

    # Aim the occluder's top above the ray to (a point of) the target: all of
    # it for a full occlusion, its lower part at least otherwise. A low object
    # near the camera would otherwise pass under the line of sight.
    aim = target_top if full else target_top * rng.uniform(0.3, 0.9)
    extra_gap = 0.0 if full else rng.uniform(0.0, 1.0)  # partial crossings may pass nearer the camera
    time_left = max(min(times[crossing], times[-1] - times[crossing]), 1.0 / config.fps)
    sweep = rng.uniform(0.2, 0.6) * config.max_speed  # slower than free sliders, which hit everything
    for _ in range(4):  # the gap depends on the occluder's size, and the size on the gap
        gap = scale * unit_radius + target_radius + 0.1 + extra_gap
        # The target's near side is nearer than its centre: measure from there.
        ratio = (target_distance - gap) / (target_distance - target_radius)
        need_top = camera.eye[crossing, 1] * (1.0 - ratio) + ratio * aim + 0.05
        grow = need_top / unit_height
        if full:
            # Sweep fast enough that the target shows again before the clip
            # ends (both edges of the occluder pass it), and be wide enough to
            # keep it hidden for HIDDEN_FRAMES meanwhile.
            sweep = (scale * unit_radius + ratio * target_radius + 0.15) / time_left
            need_half = ratio * target_radius + sweep * HIDDEN_FRAMES / (2 * config.fps) + 0.05
            grow = max(grow, need_half / unit_half_width)
        elif grow > scale and extra_gap > 0:
            extra_gap = 0.0  # come closer to the target before growing
            continue
        scale = min(max(scale, grow), 1.0)
    gap = scale * unit_radius + target_radius + 0.1 + extra_gap
    ratio = (target_distance - gap) / (target_distance - target_radius)
    reaches = scale * unit_height >= camera.eye[crossing, 1] * (1.0 - ratio) + ratio * aim
    if gap > target_distance - MIN_CAMERA_CLEARANCE or not (full or reaches):
        return None
    offset = 0.0 if full else rng.uniform(-0.5, 0.5) * target_radius  # how squarely it crosses
    shape = _scaled(unit_shape, scale)
    height = _rest_height(shape, rotation)
    meet = target_xz - sight * gap + across * offset
    side = rng.choice([-1.0, 1.0])
    candidate = None
    for direction in (side, -side):  # sweep the other way if the first way runs into something
        velocity = sight_velocity(gap) + across * sweep * direction
        xz = meet[None] + (times - times[crossing])[:, None] * velocity[None]
        clearance = np.linalg.norm(xz - camera.eye[:, [0, 2]], axis=1) - scale * unit_radius
        if clearance.min() < MIN_CAMERA_CLEARANCE:
            continue
        position = np.stack([xz[:, 0], height, xz[:, 1]], 1)
        candidate = SceneObject(shape, material, position, rotation, "occluder", target_index, full)
        if not any(_collide(candidate, other) for other in placed):
            break
    return candidate


def _plan_figure(
    config: SynthConfig,
    rng: np.random.Generator,
    placed: list[SceneObject],
    motion: str,
    target: int,
    camera: Camera,
    times: np.ndarray,
    name: str,
) -> SceneObject | None:
    """An articulated figure: it walks (turning slowly) or stands and moves its parts; it never tumbles.

    A figure drawn to occlude crosses in front of its target as any occluder does, walking the
    way it goes; one drawn to fall or slide walks instead, one drawn to stay acts in place.
    """
    moving = motion in ("slide", "fall", "occluder", "full_occluder")
    actions = [a for a in ACTIONS[name] if (a in MOVING_ACTIONS) == moving] or list(ACTIONS[name])
    figure = make_figure(name, times, rng, action=str(rng.choice(actions)))
    scale = rng.uniform(*config.object_scale) * SIZE_FACTOR[name]
    material = _material(rng, config.object_textures, muted=False, frequency=rng.uniform(1.2, 2.5))
    turn = np.deg2rad(rng.uniform(-1.0, 1.0) * min(config.max_spin_degrees, 40.0))  # people turn slowly
    if motion in ("occluder", "full_occluder"):
        yaw = _rotation_y(np.full_like(times, rng.uniform(0.0, 2 * np.pi)))
        occluder = _plan_occluder(config, rng, figure.shape, scale, yaw, material, placed, target, False, camera, times)
        if occluder is None:
            return None
        # Face the way it crosses, so that it walks forwards.
        step = occluder.position[-1, [0, 2]] - occluder.position[0, [0, 2]]
        heading = _rotation_y(np.full_like(times, -np.arctan2(step[1], step[0])))
        return SceneObject(occluder.shape, material, occluder.position, heading, "occluder", target, False)
    shape = _scaled(figure.shape, scale)
    start = _uniform_disk(rng, ARENA_RADIUS)
    angle0 = rng.uniform(0.0, 2 * np.pi)
    if figure.speed > 0:
        aim = _uniform_disk(rng, 1.5) - start  # head for the middle, as sliders do
        angle0 = -np.arctan2(aim[1], aim[0])
    angle = angle0 + turn * times
    rotation = _rotation_y(angle)
    heading = np.stack([np.cos(angle), -np.sin(angle)], 1)  # R_y(angle) e_x, in (x, z)
    dt = np.diff(times, prepend=times[0])
    xz = start[None] + np.cumsum(heading * (figure.speed * scale * dt)[:, None], axis=0)
    if np.hypot(xz[:, 0], xz[:, 1]).max() > ARENA_RADIUS + 0.7:
        return None
    position = np.stack([xz[:, 0], _rest_height(shape, rotation), xz[:, 1]], 1)
    return SceneObject(shape, material, position, rotation, "walk" if figure.speed > 0 else "act", -1, False)


def _horizontal_radius(shape: Shape, rotation: np.ndarray, narrowest: bool = False) -> float:
    """Largest (or, with ``narrowest``, smallest) horizontal half-extent over frames and directions.

    ``rotation`` is ``(T, 3, 3)``; 16 horizontal directions per frame.
    """
    angles = np.linspace(0.0, 2 * np.pi, 16, endpoint=False)
    directions = np.stack([np.cos(angles), np.zeros_like(angles), np.sin(angles)], 1)  # (16, 3)
    local = np.einsum("tji,dj->tdi", rotation, directions).reshape(-1, 3)  # R^T v
    frame = None if not shape.articulated else np.repeat(np.arange(len(rotation)), len(angles))
    extent = support(shape, local, frame).reshape(len(rotation), len(angles))
    if narrowest:
        # Half-width seen across a direction = average of the support on both sides.
        both = 0.5 * (extent + np.roll(extent, len(angles) // 2, axis=1))
        return float(both.min())
    return float(extent.max()) * 1.03  # 16 directions underestimate the true maximum slightly


def _collide(a: SceneObject, b: SceneObject) -> bool:
    """Whether two objects' bounding volumes (vertical cylinders around them) ever overlap."""
    gap = np.linalg.norm(a.position[:, [0, 2]] - b.position[:, [0, 2]], axis=1)
    vertical = (a.extent[:, 0] < b.extent[:, 1]) & (b.extent[:, 0] < a.extent[:, 1])
    return bool(np.any((gap < a.footprint + b.footprint) & vertical))


def _uniform_disk(rng: np.random.Generator, radius: float) -> np.ndarray:
    r = radius * np.sqrt(rng.uniform())
    a = rng.uniform(0.0, 2 * np.pi)
    return np.array([r * np.cos(a), r * np.sin(a)])
