"""A vectorised NumPy renderer: analytic floor and backdrop, sphere-traced objects, depth compositing.

Each object is rendered *alone* (which gives its amodal mask, amodal RGB and
depth), then the objects are composited by depth (which gives the frames, the
modal masks and the depth map). Objects never cast or receive light from each
other, so an object's colour at a pixel is the same alone and in the scene:
the amodal RGB equals the frame wherever the object is visible.

Work is vectorised over rays. Per object and frame only the pixels inside
the projection of its bounding sphere are traced, starting where each ray
enters the sphere, and converged rays leave the working set at every step.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from amodal.data.synth.scene import BACKDROP_RADIUS, Camera, Material, Scene
from amodal.data.synth.shapes import bounding_radius, sdf

WHITE = 255  # amodal RGB background, as the completion stage expects


@dataclass(frozen=True)
class Rendered:
    """The rendered arrays of one scene (the fields of :class:`amodal.Clip`)."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    modal_masks: np.ndarray  # (K, T, H, W) bool
    amodal_masks: np.ndarray  # (K, T, H, W) bool
    depth: np.ndarray  # (T, H, W) float32 camera z-depth in scene units (not inverted)
    amodal_rgb: np.ndarray  # (K, T, H, W, 3) uint8, white outside each amodal mask
    object_depth: np.ndarray  # (K, T, H, W) float32 z-depth of each object alone, inf outside its amodal mask


def camera_basis(camera: Camera) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Right, up and forward unit vectors per frame, each ``(T, 3) float64``."""
    forward = camera.look_at - camera.eye
    forward /= np.linalg.norm(forward, axis=1, keepdims=True)
    right = np.cross(forward, np.array([0.0, 1.0, 0.0]))
    right /= np.linalg.norm(right, axis=1, keepdims=True)
    up = np.cross(right, forward)
    return right, up, forward


def camera_rays(camera: Camera, height: int, width: int) -> np.ndarray:
    """Unit ray directions through pixel centres: ``(3, T, H, W) float32``, one row per axis."""
    right, up, forward = (b.astype(np.float32) for b in camera_basis(camera))
    tan_x = np.tan(np.deg2rad(camera.fov_degrees) / 2)
    tan_y = tan_x * height / width
    x = (((np.arange(width) + 0.5) / width * 2 - 1) * tan_x).astype(np.float32)  # (W,)
    y = ((1 - (np.arange(height) + 0.5) / height * 2) * tan_y).astype(np.float32)  # (H,)
    dirs = (
        forward.T[:, :, None, None]
        + x[None, None, None, :] * right.T[:, :, None, None]
        + y[None, None, :, None] * up.T[:, :, None, None]
    )  # (3, T, H, W)
    dirs *= 1.0 / np.sqrt(dirs[0] ** 2 + dirs[1] ** 2 + dirs[2] ** 2)
    return dirs


def value_noise(p: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Smooth lattice noise of points ``p (D, N)``: ``(N,) float32`` in ``[0, 1]``, two octaves."""
    total = np.zeros(p.shape[1], dtype=np.float32)
    for octave, weight in ((1.0, 0.65), (2.03, 0.35)):
        q = p * np.float32(octave)
        cell = np.floor(q)
        f = q - cell
        f = f * f * (3 - 2 * f)  # smoothstep: no creases at cell borders
        index = cell.astype(np.int64)
        value = np.zeros(p.shape[1], dtype=np.float32)
        for corner in range(2 ** len(p)):
            bits = [(corner >> d) & 1 for d in range(len(p))]
            h = table[(index[0] + bits[0]) & 255]
            w = f[0] if bits[0] else 1 - f[0]
            for d in range(1, len(p)):
                h = table[(h + index[d] + bits[d]) & 255]
                w = w * (f[d] if bits[d] else 1 - f[d])
            value += w * h.astype(np.float32)
        total += np.float32(weight / 255.0) * value
    return total


def albedo(material: Material, p: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Surface colour of ``material`` at texture coordinates ``p (D, N)`` (D = 2 or 3): ``(N, 3) float32`` in ``[0, 1]``."""
    q = p * np.float32(material.frequency)
    if material.texture == "plain":
        mix = np.zeros(p.shape[1], dtype=np.float32)
    elif material.texture == "checker":
        mix = (np.floor(q).astype(np.int64).sum(axis=0) & 1).astype(np.float32)
    elif material.texture == "stripes":
        along = sum(material.axis[d] * q[d] for d in range(len(q)))
        mix = (np.sin(np.float32(np.pi) * along) > 0).astype(np.float32)
    elif material.texture == "noise":
        mix = np.clip((value_noise(q, table) - 0.3) * 2.5, 0.0, 1.0)
    else:
        raise ValueError(f"unknown texture {material.texture!r}")
    colors = material.colors
    return colors[0][None] + mix[:, None] * (colors[1] - colors[0])[None]


def _to_uint8(color: np.ndarray) -> np.ndarray:
    return np.clip(np.round(color * 255.0), 0, 255).astype(np.uint8)


def render_background(scene: Scene, dirs: np.ndarray, shadows: bool) -> tuple[np.ndarray, np.ndarray]:
    """Floor and backdrop for rays ``dirs (3, T, H, W)``: ``(T, H, W, 3) uint8`` colours, ``(T, H, W) float32`` z-depth."""
    dx, dy, dz = dirs
    eye = scene.camera.eye.astype(np.float32)
    ex, ey, ez = (eye[:, i, None, None] for i in range(3))  # (T, 1, 1) each
    _, _, forward = camera_basis(scene.camera)
    # Backdrop: the far root of |eye_xz + t d_xz| = R (the camera is inside the cylinder).
    a = dx * dx + dz * dz
    b = ex * dx + ez * dz
    c = ex * ex + ez * ez - np.float32(BACKDROP_RADIUS**2)
    t_wall = (-b + np.sqrt(np.maximum(b * b - a * c, 0.0))) / np.maximum(a, 1e-9)
    with np.errstate(divide="ignore", invalid="ignore"):
        t_floor = np.where(dy < 0, -ey / dy, np.inf)
    on_floor = t_floor < t_wall
    t_hit = np.where(on_floor, t_floor, t_wall).astype(np.float32)
    px, py, pz = ex + t_hit * dx, ey + t_hit * dy, ez + t_hit * dz  # (T, H, W) each

    floor = on_floor.reshape(-1)
    color = np.empty((floor.size, 3), dtype=np.float32)
    light = scene.light.astype(np.float32)
    fx, fz = px.reshape(-1)[floor], pz.reshape(-1)[floor]
    shade = scene.ambient + (1 - scene.ambient) * max(float(light[1]), 0.0)
    color[floor] = albedo(scene.floor, np.stack([fx, fz]), scene.noise_table) * np.float32(shade)

    wall = ~floor
    wx, wy, wz = px.reshape(-1)[wall], py.reshape(-1)[wall], pz.reshape(-1)[wall]
    arc = np.arctan2(wz, wx) * np.float32(BACKDROP_RADIUS)
    facing = -(wx * light[0] + wz * light[2]) / np.float32(BACKDROP_RADIUS)  # inward normal . light
    lit = scene.ambient + (1 - scene.ambient) * np.maximum(facing, 0.0)
    fade = 0.8 + 0.2 * np.clip(wy / 8.0, 0.0, 1.0)  # a hint of sky towards the top
    color[wall] = albedo(scene.backdrop, np.stack([arc, wy]), scene.noise_table) * (lit * fade)[:, None]

    color = color.reshape(*on_floor.shape, 3)
    if shadows and scene.objects:
        color *= _contact_shadows(scene, px, pz, on_floor)[..., None]
    fw = forward.astype(np.float32)
    z = t_hit * (dx * fw[:, 0, None, None] + dy * fw[:, 1, None, None] + dz * fw[:, 2, None, None])
    return _to_uint8(color), z


def _contact_shadows(scene: Scene, px: np.ndarray, pz: np.ndarray, on_floor: np.ndarray) -> np.ndarray:
    """Soft dark blobs on the floor where each object would shade it: ``(T, H, W) float32`` in ``(0, 1]``."""
    light = scene.light
    factor = np.ones(px.shape, dtype=np.float32)
    for obj in scene.objects:
        radius = 0.8 * bounding_radius(obj.shape)
        # Where the light ray through the object's centre meets the floor.
        along = obj.position[:, 1] / max(light[1], 0.2)
        centre = (obj.position[:, [0, 2]] - along[:, None] * light[[0, 2]][None]).astype(np.float32)  # (T, 2)
        strength = 0.5 * np.exp(-np.maximum(obj.position[:, 1] - radius, 0.0) / 0.8)  # fades as it rises
        d2 = (px - centre[:, 0, None, None]) ** 2 + (pz - centre[:, 1, None, None]) ** 2
        blob = np.exp(d2 * np.float32(-1.0 / (radius * radius)))
        factor *= 1 - strength.astype(np.float32)[:, None, None] * blob * on_floor
    return factor


def _pixel_window(
    centre: np.ndarray, radius: float, basis: tuple, eye: np.ndarray, tan_x: float, tan_y: float, height: int, width: int
) -> tuple[int, int, int, int]:
    """Pixel rows/cols ``(r0, r1, c0, c1)`` that can see a sphere (conservative, half-open)."""
    right, up, forward = basis
    rel = centre - eye
    x, y, z = rel @ right, rel @ up, rel @ forward

    def span(lateral: float, tan_half: float, size: int, flip: bool) -> tuple[int, int]:
        reach = np.hypot(lateral, z)
        if reach <= radius * 1.001:
            return 0, size
        angle, half = np.arctan2(lateral, z), np.arcsin(radius / reach)
        lo, hi = angle - half, angle + half
        if lo <= -np.pi / 2 or hi >= np.pi / 2:
            return 0, size
        ndc = np.array([np.tan(lo), np.tan(hi)]) / tan_half  # in [-1, 1] across the image
        pix = ((-ndc if flip else ndc) + 1) / 2 * size - 0.5
        start = int(np.floor(pix.min())) - 1
        stop = int(np.ceil(pix.max())) + 2
        return max(start, 0), min(stop, size)

    c0, c1 = span(x, tan_x, width, flip=False)
    r0, r1 = span(y, tan_y, height, flip=True)
    return r0, r1, c0, c1


def render_object(scene: Scene, index: int, dirs: np.ndarray, max_steps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sphere-trace object ``index`` alone for rays ``dirs (3, T, H, W)``.

    Returns flat ray indices into ``(T * H * W)`` of the pixels it covers
    ``(N,) int64``, their z-depth ``(N,) float32`` and shaded colour ``(N, 3) float32``
    in ``[0, 1]``.
    """
    obj = scene.objects[index]
    _, t_count, height, width = dirs.shape
    basis = camera_basis(scene.camera)
    tan_x = np.tan(np.deg2rad(scene.camera.fov_degrees) / 2)
    tan_y = tan_x * height / width
    pixel_angle = np.float32(2 * tan_x / width)  # angular size of one pixel at the image centre
    radius = bounding_radius(obj.shape) * 1.01

    # Rays of each frame inside the object's pixel window, moved into its local frame.
    ray_ids, origins, directions, frame_of = [], [], [], []
    for t in range(t_count):
        r0, r1, c0, c1 = _pixel_window(
            obj.position[t], radius, tuple(b[t] for b in basis), scene.camera.eye[t], tan_x, tan_y, height, width
        )
        if r0 >= r1 or c0 >= c1:
            continue
        window = dirs[:, t, r0:r1, c0:c1].reshape(3, -1)
        rows, cols = np.meshgrid(np.arange(r0, r1), np.arange(c0, c1), indexing="ij")
        ray_ids.append((t * height + rows.reshape(-1)) * width + cols.reshape(-1))
        directions.append(obj.rotation[t].T.astype(np.float32) @ window)  # R^T d
        origin = obj.rotation[t].T @ (scene.camera.eye[t] - obj.position[t])  # R^T (eye - x)
        origins.append(np.repeat(origin[:, None].astype(np.float32), window.shape[1], 1))
        frame_of.append(np.full(window.shape[1], t, dtype=np.int64))
    if not ray_ids:
        return np.zeros(0, np.int64), np.zeros(0, np.float32), np.zeros((0, 3), np.float32)
    ray_ids, frame_of = np.concatenate(ray_ids), np.concatenate(frame_of)
    o, d = np.concatenate(origins, axis=1), np.concatenate(directions, axis=1)  # (3, N) each

    # Enter and leave the bounding sphere.
    b = o[0] * d[0] + o[1] * d[1] + o[2] * d[2]
    c = o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - np.float32(radius**2)
    disc = b * b - c
    root = np.sqrt(np.maximum(disc, 0.0))
    t_far = -b + root
    keep = np.flatnonzero((disc > 0) & (t_far > 0))
    ray_ids, frame_of, o, d = ray_ids[keep], frame_of[keep], o[:, keep], d[:, keep]
    t_far = t_far[keep]
    t_ray = np.maximum(-b[keep] - root[keep], 0.0)

    # Sphere tracing; a ray stops when the distance falls below a quarter pixel.
    hit = np.zeros(len(t_ray), dtype=bool)
    last = np.full(len(t_ray), np.inf, dtype=np.float32)
    active = np.arange(len(t_ray))
    ao, ad, at, af = o, d, t_ray.copy(), t_far
    articulated = obj.shape.articulated  # its parts move: every point needs its frame
    for _ in range(max_steps):
        if active.size == 0:
            break
        dist = sdf(obj.shape, ao + at * ad, frame_of[active] if articulated else None)
        done = dist < 0.25 * pixel_angle * at
        hit[active[done]] = True
        t_ray[active[done]] = at[done]
        at = at + dist
        going = np.flatnonzero(~done & (at < af))
        last[active] = dist
        active, ao, ad, at, af = active[going], ao[:, going], ad[:, going], at[going], af[going]
    # Rays still marching at the step limit graze the surface: count near misses as hits.
    t_ray[active] = at
    hit[active] = last[active] < pixel_angle * at

    ray_ids, frame_of, o, d, t_ray = ray_ids[hit], frame_of[hit], o[:, hit], d[:, hit], t_ray[hit]
    local = o + t_ray * d  # (3, N)
    normal_local = _normal(obj.shape, local, frame_of if articulated else None)
    # World normal n = R n_local; shading needs only n . light = n_local . (R^T light).
    light_local = np.einsum("tji,j->ti", obj.rotation, scene.light).astype(np.float32)[frame_of]  # (N, 3)
    facing = np.einsum("in,ni->n", normal_local, light_local)
    lit = scene.ambient + (1 - scene.ambient) * np.maximum(facing, 0.0)
    color = albedo(obj.material, local * np.float32(1.0 / obj.shape.scale), scene.noise_table) * lit[:, None]
    forward = basis[2].astype(np.float32)[frame_of]  # (N, 3)
    world_dirs = dirs.reshape(3, -1)[:, ray_ids]
    z = t_ray * np.einsum("in,ni->n", world_dirs, forward)
    return ray_ids, z.astype(np.float32), color


def _normal(shape, p: np.ndarray, frame: np.ndarray | None = None) -> np.ndarray:
    """Unit outward normals ``(3, N) float32`` at points ``p (3, N)``, from the SDF gradient (tetrahedral differences)."""
    h = np.float32(1e-3)
    grad = np.zeros_like(p)
    for k in ((1, -1, -1), (-1, -1, 1), (-1, 1, -1), (1, 1, 1)):
        k = np.asarray(k, dtype=np.float32)[:, None]
        grad += k * sdf(shape, p + h * k, frame)[None]
    return grad / np.maximum(np.sqrt(grad[0] ** 2 + grad[1] ** 2 + grad[2] ** 2), 1e-12)


def composite(
    background: np.ndarray, rgb: np.ndarray, z: np.ndarray, z_background: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """The world's one compositing rule: at each pixel the nearest object, else the background.

    ``background`` ``(T, H, W, 3) uint8``; ``rgb`` ``(K, T, H, W, 3) uint8`` each object alone;
    ``z`` ``(K, T, H, W)`` its z-depth, ``inf`` outside it; ``z_background`` ``(T, H, W)`` or
    ``None``. Returns the frames, the ``(K, T, H, W) bool`` modal masks and the z-depth (or ``None``).
    """
    count = len(rgb)
    frames = background.copy()
    depth = None if z_background is None else z_background.copy()
    modal = np.zeros(z.shape, dtype=bool)
    if count:
        inside = np.isfinite(z)
        winner = z.argmin(axis=0)  # (T, H, W)
        covered = inside.any(axis=0)
        t_idx, y_idx, x_idx = np.nonzero(covered)
        k_idx = winner[covered]
        modal[k_idx, t_idx, y_idx, x_idx] = True
        frames[covered] = rgb[k_idx, t_idx, y_idx, x_idx]
        if depth is not None:
            depth[covered] = z[k_idx, t_idx, y_idx, x_idx]
    return frames, modal, depth


def render_plate(scene: Scene, height: int, width: int) -> np.ndarray:
    """The floor and backdrop alone, ``(T, H, W, 3) uint8``, without objects or their shadows."""
    return render_background(scene, camera_rays(scene.camera, height, width), shadows=False)[0]


def render_scene(scene: Scene, height: int, width: int, max_steps: int = 64, shadows: bool = True) -> Rendered:
    """Render every frame of ``scene`` at ``height x width``."""
    dirs = camera_rays(scene.camera, height, width)
    t_count = dirs.shape[1]
    background, z_background = render_background(scene, dirs, shadows)
    count = len(scene.objects)
    rays = t_count * height * width
    z_objects = np.full((count, rays), np.inf, dtype=np.float32)
    amodal_rgb = np.full((count, rays, 3), WHITE, dtype=np.uint8)
    for k in range(count):
        ids, z, color = render_object(scene, k, dirs, max_steps)
        z_objects[k, ids] = z
        amodal_rgb[k, ids] = _to_uint8(color)

    shape4 = (count, t_count, height, width)
    frames, modal, depth = composite(background, amodal_rgb.reshape(*shape4, 3), z_objects.reshape(shape4), z_background)
    return Rendered(
        frames=frames,
        modal_masks=modal,
        amodal_masks=np.isfinite(z_objects).reshape(shape4),
        depth=depth,
        amodal_rgb=amodal_rgb.reshape(*shape4, 3),
        object_depth=z_objects.reshape(shape4),
    )
