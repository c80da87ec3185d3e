"""The synthetic world: determinism, mask and depth consistency, occlusions, shapes, config."""

from __future__ import annotations

import json

import numpy as np
import pytest

from amodal import Clip, InputError
from amodal.data.io.rle import decode
from amodal.data.synth import CATEGORIES, SynthConfig, generate_clip
from amodal.data.synth.config import RIGID_CLASSES
from amodal.data.synth.dataset import clip_annotations, depth_to_png, visibility_histogram
from amodal.data.synth.render import camera_rays, render_background, render_scene
from amodal.data.synth.scene import Camera, Material, Scene, SceneObject, plan_scene
from amodal.data.synth.shapes import bounding_radius, make_shape, sdf, support

TINY = SynthConfig(height=32, width=64, num_frames=6)


@pytest.fixture(scope="module")
def clips() -> list[Clip]:
    return [generate_clip(TINY, seed) for seed in range(4)]


def _fields(clip: Clip) -> list[np.ndarray]:
    return [clip.frames, clip.modal_masks, clip.amodal_masks, clip.depth, clip.amodal_rgb]


def test_same_seed_same_bytes_other_seed_differs():
    a, b, c = generate_clip(TINY, 7), generate_clip(TINY, 7), generate_clip(TINY, 8)
    for x, y in zip(_fields(a), _fields(b)):
        assert x.dtype == y.dtype and x.shape == y.shape and x.tobytes() == y.tobytes()
    assert (a.object_ids, a.category_ids, a.fps, a.source) == (b.object_ids, b.category_ids, b.fps, b.source)
    assert a.frames.tobytes() != c.frames.tobytes()


def test_clip_layout(clips):
    for clip in clips:
        k = clip.num_objects
        assert TINY.num_objects[0] <= k <= TINY.num_objects[1]
        assert clip.frames.shape == (6, 32, 64, 3) and clip.frames.dtype == np.uint8
        assert clip.amodal_masks.shape == (k, 6, 32, 64) and clip.amodal_masks.dtype == np.bool_
        assert clip.amodal_rgb.shape == (k, 6, 32, 64, 3)
        assert clip.depth.dtype == np.float32 and np.all(clip.depth > 0) and np.all(np.isfinite(clip.depth))
        assert clip.object_ids == tuple(range(1, k + 1))
        assert set(clip.category_ids) <= set(CATEGORIES.values())
        assert clip.fps == TINY.fps
        assert clip.amodal_masks.any(axis=(2, 3)).any(axis=1).all()  # every object shows up at some point


def test_modal_inside_amodal_and_disjoint(clips):
    for clip in clips:
        assert not np.any(clip.modal_masks & ~clip.amodal_masks)
        assert clip.modal_masks.sum(axis=0).max() <= 1
        # Any pixel some object covers is visible for exactly one of them.
        np.testing.assert_array_equal(clip.amodal_masks.any(axis=0), clip.modal_masks.any(axis=0))


def test_amodal_rgb_matches_frames_where_visible(clips):
    for clip in clips:
        for k in range(clip.num_objects):
            visible = clip.modal_masks[k]
            np.testing.assert_array_equal(clip.amodal_rgb[k][visible], clip.frames[visible])
            assert np.all(clip.amodal_rgb[k][~clip.amodal_masks[k]] == 255)


def test_depth_follows_occlusion_order():
    config = TINY.replace(occlusion_rate=1.0, fall_rate=0.0, num_objects=(3, 4))
    checked = 0
    for seed in range(3):
        scene = plan_scene(config, np.random.Generator(np.random.PCG64(seed)))
        out = render_scene(scene, config.height, config.width)
        for a in range(len(scene.objects)):
            for b in range(len(scene.objects)):
                if a != b:  # where A is seen inside B's amodal mask, B lies behind A
                    overlap = out.modal_masks[a] & out.amodal_masks[b]
                    assert np.all(out.object_depth[b][overlap] > out.object_depth[a][overlap])
                    checked += int(overlap.sum())
            # The depth map is the visible object's own depth.
            visible = out.modal_masks[a]
            np.testing.assert_array_equal(out.depth[visible], out.object_depth[a][visible])
        # Objects stand in front of the floor and backdrop they cover, up to
        # rays that graze an object's base within a fraction of a pixel.
        _, floor_depth = render_background(scene, camera_rays(scene.camera, config.height, config.width), False)
        for a in range(len(scene.objects)):
            covered = out.amodal_masks[a]
            in_front = out.object_depth[a][covered] < floor_depth[covered]
            assert in_front.mean() > 0.95
    assert checked > 0, "scenes planned with occlusion_rate=1 should have occlusions"


def test_high_occlusion_rate_hides_objects_completely():
    config = SynthConfig(height=48, width=96, num_frames=12, occlusion_rate=1.0, full_occlusion_rate=1.0, num_objects=(3, 4))
    hidden = 0
    for seed in range(3):
        clip = generate_clip(config, seed)
        seen = clip.amodal_masks.any(axis=(2, 3))
        shown = clip.modal_masks.any(axis=(2, 3))
        hidden += int(np.sum(seen & ~shown))
        # Hidden for a stretch, not for good: every object is visible on some frame.
        assert shown.any(axis=1).all()
    assert hidden > 0


def test_zero_rates_give_static_scenes():
    config = TINY.replace(occlusion_rate=0.0, fall_rate=0.0, slide_rate=0.0)
    for seed in range(3):
        scene = plan_scene(config, np.random.Generator(np.random.PCG64(seed)))
        assert all(obj.motion == "static" and obj.target == -1 for obj in scene.objects)


def _facing_scene(name: str, pose: np.ndarray) -> Scene:
    """One object of class ``name`` at the origin, seen from the front at its own height."""
    shape = make_shape(name, 0.8, np.random.Generator(np.random.PCG64(0)))
    material = Material("plain", np.array([[0.8, 0.2, 0.2], [0.8, 0.2, 0.2]], np.float32), 1.0, np.array([1, 0, 0], np.float32))
    obj = SceneObject(shape, material, np.array([[0.0, 1.0, 0.0]]), pose[None], "static", -1, False)
    camera = Camera(eye=np.array([[0.0, 1.0, 6.0]]), look_at=np.array([[0.0, 1.0, 0.0]]), fov_degrees=40.0)
    return Scene(camera, np.array([0.0, 1.0, 0.0]), 0.4, material, material, (obj,), np.arange(512) % 256)


def _hull_ratio(mask: np.ndarray) -> float:
    from scipy.spatial import ConvexHull

    ys, xs = np.nonzero(mask)
    corners = np.concatenate([np.stack([xs + dx, ys + dy], 1) for dx in (0, 1) for dy in (0, 1)])
    return float(mask.sum() / ConvexHull(corners).volume)


@pytest.mark.parametrize(
    "name, pose, low, high",
    [
        ("torus", np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]]), 0.5, 0.85),  # standing, hole towards the camera
        ("l_shape", np.eye(3), 0.5, 0.85),
        ("u_shape", np.eye(3), 0.5, 0.85),
        ("sphere", np.eye(3), 0.9, 1.0),
    ],
)
def test_nonconvex_classes_are_nonconvex(name, pose, low, high):
    out = render_scene(_facing_scene(name, pose), 64, 128)
    mask = out.amodal_masks[0, 0]
    assert mask.sum() > 300
    assert low < _hull_ratio(mask) < high


@pytest.mark.parametrize("name", list(RIGID_CLASSES))
def test_support_and_bounds_enclose_the_shape(name):
    shape = make_shape(name, 0.5, np.random.Generator(np.random.PCG64(1)))
    radius = bounding_radius(shape)
    grid = np.linspace(-radius, radius, 41, dtype=np.float32)
    points = np.stack(np.meshgrid(grid, grid, grid, indexing="ij")).reshape(3, -1)
    inside = points[:, sdf(shape, points) < 0]
    assert inside.shape[1] > 100
    assert np.sqrt((inside**2).sum(axis=0)).max() <= radius
    directions = np.random.Generator(np.random.PCG64(2)).normal(size=(32, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    reach = support(shape, directions)  # (32,)
    sampled = (directions @ inside).max(axis=1)
    step = float(grid[1] - grid[0])
    assert np.all(sampled <= reach + 1e-5)
    assert np.all(sampled >= reach - 2 * step)  # tight, up to the grid spacing


def test_objects_rest_on_the_floor():
    scene = plan_scene(TINY.replace(fall_rate=0.0), np.random.Generator(np.random.PCG64(5)))
    for obj in scene.objects:
        lowest = obj.position[:, 1] - support(obj.shape, np.einsum("tji,j->ti", obj.rotation, [0.0, -1.0, 0.0]))
        np.testing.assert_allclose(lowest, 1e-3, atol=1e-9)


def test_annotations_round_trip(clips):
    clip = clips[0]
    entries = clip_annotations(clip, "val_000003", first_image_id=18)
    assert [e["obj_id"] for e in entries] == list(clip.object_ids)
    for k, entry in enumerate(entries):
        assert entry["image_ids"] == list(range(18, 24))
        for t in range(clip.num_frames):
            np.testing.assert_array_equal(decode(entry["segmentation"][t]), clip.amodal_masks[k, t])
            np.testing.assert_array_equal(decode(entry["visible_mask"][t]), clip.modal_masks[k, t])
            x, y, w, h = entry["bbox"][t]
            ys, xs = np.nonzero(clip.amodal_masks[k, t])
            if len(xs):
                assert (x, y, w, h) == (xs.min(), ys.min(), xs.max() - xs.min() + 1, ys.max() - ys.min() + 1)
            else:
                assert (x, y, w, h) == (0, 0, 0, 0)
    json.dumps(entries)  # JSON-ready


def test_depth_png_is_millimetres_never_zero():
    inverse = np.array([[1 / 2.5, 1 / 0.0001], [1 / 70.0, 1 / 1.2344]], dtype=np.float32)
    png = depth_to_png(inverse)
    assert png.dtype == np.uint16
    np.testing.assert_array_equal(png, [[2500, 1], [65535, 1234]])


def test_visibility_histogram_bins():
    counts = visibility_histogram(np.array([0.0, 0.1, 0.25, 0.26, 0.5, 0.75, 0.9, 0.999, 1.0, 1.0]))
    np.testing.assert_array_equal(counts, [1, 2, 2, 1, 2, 2])


def test_config_from_json(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"height": 16, "width": 32, "num_objects": [1, 2], "camera_distance": [6, 8]}))
    config = SynthConfig.from_json(path)
    assert (config.height, config.num_objects, config.camera_distance) == (16, (1, 2), (6.0, 8.0))
    assert SynthConfig.from_dict(config.to_dict()) == config


@pytest.mark.parametrize(
    "values, needle",
    [
        ({"height": 16, "colour": 1, "speed": 2}, "unknown keys ['colour', 'speed']"),
        ({"height": "16"}, "height must be an integer"),
        ({"shape_classes": ["sphere", "teapot"]}, "unknown: ['teapot']"),
        ({"occlusion_rate": 1.5}, "occlusion_rate must be in [0, 1]"),
        ({"num_objects": [3, 2]}, "num_objects must be a range"),
        ([1, 2], "expected a JSON object"),
    ],
)
def test_config_from_json_rejects_bad_files(tmp_path, values, needle):
    path = tmp_path / "c.json"
    path.write_text(json.dumps(values))
    with pytest.raises(InputError) as info:
        SynthConfig.from_json(path)
    message = str(info.value)
    assert needle in message and str(path) in message and "\n" not in message


def test_config_from_json_missing_and_corrupt(tmp_path):
    with pytest.raises(InputError, match="cannot read"):
        SynthConfig.from_json(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text("{height: 3")
    with pytest.raises(InputError, match="not valid JSON"):
        SynthConfig.from_json(tmp_path / "bad.json")
