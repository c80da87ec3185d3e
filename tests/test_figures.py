"""The articulated world: figures whose parts move, their geometry, the scenes they walk in, and painted occluders."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from amodal.data.synth import SynthConfig, generate_clip
from amodal.data.synth.config import ARTICULATED_CLASSES, CATEGORIES
from amodal.data.synth.figures import ACTIONS, FIGURES, MOVING_ACTIONS, make_figure
from amodal.data.synth.render import render_scene
from amodal.data.synth.scene import FLOOR_GAP, plan_scene
from amodal.data.synth.shapes import bounding_radius, sdf, support
from amodal.evaluation.metrics import visible_harm
from amodal.training.data import painted_occluders

ROOT = Path(__file__).resolve().parents[1]
TIMES = np.arange(12) / 12.0
SMALL = SynthConfig(height=48, width=96, num_frames=12, max_march_steps=24)


def _rng(seed: int) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def _cases():
    return [(name, action) for name in FIGURES for action in ACTIONS[name]]


def test_every_figure_is_a_category_and_every_action_is_listed():
    assert set(FIGURES) == set(ARTICULATED_CLASSES) <= set(CATEGORIES)
    assert set(MOVING_ACTIONS) <= {a for actions in ACTIONS.values() for a in actions}


@pytest.mark.parametrize("name,action", _cases())
def test_figures_are_pure_and_change_shape_over_the_clip(name, action):
    a = make_figure(name, TIMES, _rng(3), action=action)
    b = make_figure(name, TIMES, _rng(3), action=action)
    assert a.action == action and a.shape.articulated
    for pa, pb in zip(a.shape.parts, b.shape.parts, strict=True):
        np.testing.assert_array_equal(pa.offset, pb.offset)
        np.testing.assert_array_equal(pa.size, pb.size)
    assert (a.speed > 0) == (action in MOVING_ACTIONS)
    # The silhouette changes: some point is inside the figure in one frame and outside in another.
    grid = np.linspace(-1.6, 1.6, 33, dtype=np.float32)
    points = np.stack(np.meshgrid(grid, grid, grid, indexing="ij")).reshape(3, -1)
    inside = np.stack([sdf(a.shape, points, np.full(points.shape[1], t)) < 0 for t in range(len(TIMES))])
    assert inside.sum(1).min() > 20
    assert (inside.any(0) & ~inside.all(0)).sum() > 5


@pytest.mark.parametrize("name", FIGURES)
def test_support_and_bounds_enclose_the_figure_in_every_frame(name):
    shape = make_figure(name, TIMES, _rng(5)).shape
    radius = bounding_radius(shape)
    grid = np.linspace(-radius, radius, 41, dtype=np.float32)
    points = np.stack(np.meshgrid(grid, grid, grid, indexing="ij")).reshape(3, -1)
    directions = _rng(6).normal(size=(16, 3))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    step = float(grid[1] - grid[0])
    for t in (0, 5, 11):
        inside = points[:, sdf(shape, points, np.full(points.shape[1], t)) < 0]
        assert np.sqrt((inside**2).sum(axis=0)).max() <= radius
        reach = support(shape, directions, np.full(len(directions), t))
        sampled = (directions @ inside).max(axis=1)
        assert np.all(sampled <= reach + 1e-4)
        assert np.all(sampled >= reach - 2 * step)


def test_a_rigid_shape_ignores_frames_and_an_animated_one_needs_them():
    figure = make_figure("person", TIMES, _rng(1))
    with pytest.raises(ValueError, match="frame"):
        sdf(figure.shape, np.zeros((3, 4), np.float32))


def test_figures_stand_on_the_floor_in_every_frame():
    config = SMALL.replace(shape_classes=ARTICULATED_CLASSES, fall_rate=0.0)
    for seed in range(3):
        scene = plan_scene(config, _rng(seed))
        assert any(obj.shape.articulated for obj in scene.objects)
        for obj in scene.objects:
            frames = np.arange(len(obj.rotation)) if obj.shape.articulated else None
            down = np.einsum("tji,j->ti", obj.rotation, [0.0, -1.0, 0.0])
            lowest = obj.position[:, 1] - support(obj.shape, down, frames)
            np.testing.assert_allclose(lowest, FLOOR_GAP, atol=1e-6)


def test_walkers_move_and_actors_stay():
    config = SMALL.replace(shape_classes=("person",), occlusion_rate=0.0, num_objects=(4, 4))
    motions = {}
    for seed in range(4):
        for obj in plan_scene(config, _rng(seed)).objects:
            travel = np.linalg.norm(obj.position[-1, [0, 2]] - obj.position[0, [0, 2]])
            motions.setdefault(obj.motion, []).append(travel)
    assert set(motions) <= {"walk", "act"} and motions.get("walk") and motions.get("act")
    assert min(motions["walk"]) > 0.05 and max(motions["act"]) < 1e-9


def test_the_articulated_world_renders_figures_with_hidden_parts():
    config = SynthConfig.from_json(ROOT / "configs/synth/articulated.json").replace(
        height=48, width=96, num_frames=12, max_march_steps=24, occlusion_rate=1.0
    )
    figures, hidden = 0, 0
    for seed in range(4):
        clip = generate_clip(config, seed)
        assert np.all(clip.modal_masks <= clip.amodal_masks)
        is_figure = np.isin(clip.category_ids, [CATEGORIES[n] for n in ARTICULATED_CLASSES])
        figures += int(is_figure.sum())
        hidden += int((clip.amodal_masks & ~clip.modal_masks)[is_figure].sum())
        # amodal RGB equals the frame where the object shows
        for k in range(len(clip.object_ids)):
            np.testing.assert_array_equal(clip.amodal_rgb[k][clip.modal_masks[k]], clip.frames[clip.modal_masks[k]])
    assert figures >= 4 and hidden > 0


def test_a_figure_alone_renders_a_changing_silhouette():
    config = SMALL.replace(shape_classes=("person",), num_objects=(1, 1), camera_motion=False)
    scene = plan_scene(config, _rng(2))
    masks = render_scene(scene, 48, 96, max_steps=24).amodal_masks[0]  # (T, H, W)
    assert masks.sum((1, 2)).min() > 10
    changed = [(masks[t] ^ masks[0]).sum() for t in range(1, len(masks))]
    assert max(changed) > 5


def test_the_shipped_world_configs_load():
    for path in sorted((ROOT / "configs/synth").glob("*.json")):
        config = SynthConfig.from_json(path)
        assert set(config.shape_classes) <= set(CATEGORIES), path
        json.loads(path.read_text())


def test_painted_occluders_cut_the_object_and_nothing_else():
    amodal = np.zeros((16, 32, 64), dtype=bool)
    amodal[:, 8:24, 20:40] = True
    covered = painted_occluders(amodal, seed=4)
    assert covered.shape == amodal.shape
    hidden = covered & amodal
    assert hidden.any() and (~hidden.reshape(16, -1).any(1)).any()  # some frames hidden, some left free
    np.testing.assert_array_equal(covered, painted_occluders(amodal, seed=4))
    assert not np.array_equal(covered, painted_occluders(amodal, seed=5))


def test_visible_harm_is_the_false_area_of_fully_visible_frames():
    iou = np.array([1.0, 0.5, 0.8, 0.25])
    visible = np.array([True, True, False, False])
    out = visible_harm(iou, visible)
    assert out["frames_visible"] == 2
    assert out["visible_miou"] == pytest.approx(0.75)
    assert out["visible_false_area"] == pytest.approx(0.5)  # (0 + (1 / 0.5 - 1)) / 2
    assert out["visible_false_area_median"] == pytest.approx(0.5)
    assert np.isnan(visible_harm(iou, np.zeros(4, bool))["visible_miou"])


def test_training_windows_get_painted_occluders_at_the_configured_share():
    from amodal.training.config import DataConfig
    from amodal.training.data import WindowSampler, build_pool

    clips = [generate_clip(SMALL.replace(num_frames=16), seed) for seed in range(2)]
    pool = build_pool(clips, 32, 64)
    plain = WindowSampler(pool, DataConfig(flip=False), 16, seed=0).batch(0, 0, 8)
    painted = WindowSampler(pool, DataConfig(flip=False, painted_share=1.0), 16, seed=0).batch(0, 0, 8)
    # same windows (the paint draws after the window), less visible, same truth and depth
    np.testing.assert_array_equal(plain.amodal.numpy(), painted.amodal.numpy())
    np.testing.assert_array_equal(plain.depth.numpy(), painted.depth.numpy())
    assert np.all(painted.modal.numpy() <= plain.modal.numpy())
    assert painted.modal.sum() < plain.modal.sum()
