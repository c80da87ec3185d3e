"""Baselines (modal, convex, temporal) and the method registry."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from amodal import Clip
from amodal.evaluation import metrics
from amodal.segmentation import baselines
from amodal.errors import InputError
from amodal.evaluation import methods as registry
from amodal.evaluation.methods import (
    MethodOptions,
    Prediction,
    get_method,
    method_names,
    pipeline_method,
    register_method,
)

from tiny import tiny_scene


def _clip(scene: dict, with_depth: bool = True) -> Clip:
    return Clip(
        frames=scene["frames"],
        modal_masks=scene["modal"],
        amodal_masks=scene["amodal"],
        depth=(1000.0 / scene["depth"]).astype(np.float32) if with_depth else None,
    )


def _iou(pred: np.ndarray, gt: np.ndarray) -> float:
    return float(metrics.mask_iou(pred, gt).mean())


def test_modal_baseline_copies_the_visible_mask():
    clip = _clip(tiny_scene(6))
    out = baselines.modal_baseline(clip)
    np.testing.assert_array_equal(out, clip.modal_masks)
    assert out is not clip.modal_masks


def test_convex_hull_fills_dents_and_keeps_empty_frames_empty():
    m = np.zeros((3, 20, 20), bool)
    m[0, 2:12, 2:5] = True  # an L: vertical bar ...
    m[0, 9:12, 2:15] = True  # ... and horizontal foot
    m[1, 5, 3:9] = True  # one row: the hull is the segment itself
    hull = baselines.convex_hull_masks(m)
    assert (hull >= m).all()
    assert not hull[2].any()
    np.testing.assert_array_equal(hull[1], m[1])
    # The triangle between the L's arms: (x=4, y=3) is outside, (x=6, y=8) inside.
    assert not hull[0, 3, 6] and hull[0, 8, 6]
    # Every hull pixel's centre lies in the convex hull of the mask's pixel centres.
    from scipy.spatial import ConvexHull

    ys, xs = np.nonzero(m[0])
    eq = ConvexHull(np.stack([xs, ys], 1)).equations
    gy, gx = np.mgrid[0:20, 0:20]
    inside = (np.stack([gx.ravel(), gy.ravel()], 1) @ eq[:, :2].T + eq[:, 2] <= 1e-9).all(1).reshape(20, 20)
    np.testing.assert_array_equal(hull[0], inside)


def test_convex_baseline_recovers_a_square_cut_by_a_thin_bar():
    amodal = np.zeros((1, 1, 30, 30), bool)
    amodal[0, 0, 5:25, 5:25] = True
    modal = amodal.copy()
    modal[0, 0, :, 14:16] = False  # a 2 px bar across the middle
    clip = Clip(frames=np.zeros((1, 30, 30, 3), np.uint8), modal_masks=modal, amodal_masks=amodal)
    np.testing.assert_array_equal(baselines.convex_baseline(clip), amodal)


def test_align_masks_keeps_velocity_behind_an_occluder():
    scene = tiny_scene(8)
    modal = scene["modal"][0]
    track = baselines.object_track(modal)
    # The square moves 4 px right per frame, also while the bar hides part of it.
    np.testing.assert_array_equal(np.diff(track[:, 1]), np.full(7, 4.0))
    np.testing.assert_array_equal(track[:, 0], np.zeros(8))
    a = np.zeros((20, 20), bool)
    a[5:9, 5:9] = True
    assert baselines.align_masks(a, baselines.shift_mask(a, 3, -2)) == (3, -2)


def test_temporal_baseline_beats_modal_and_convex_behind_the_bar():
    scene = tiny_scene(8)
    clip = _clip(scene)
    gt = scene["amodal"][0]
    temporal = baselines.temporal_baseline(clip)
    assert (temporal >= clip.modal_masks).all()
    iou = {
        "modal": _iou(clip.modal_masks[0], gt),
        "convex": _iou(baselines.convex_baseline(clip)[0], gt),
        "temporal": _iou(temporal[0], gt),
    }
    assert iou["temporal"] > iou["convex"] > iou["modal"]
    assert iou["temporal"] > 0.99
    # The bar (object 2) is fully visible: nothing is added to it.
    np.testing.assert_array_equal(temporal[1], clip.modal_masks[1])


def test_temporal_depth_gate_rejects_pixels_showing_farther_surfaces():
    scene = tiny_scene(8)
    modal = scene["modal"][0]
    # Depth says the bar is far behind the square: the square cannot be hidden there.
    depth = np.full(modal.shape, 0.2, np.float32)
    depth[modal] = 0.5
    gated = baselines.temporal_union(modal, depth)
    np.testing.assert_array_equal(gated, modal)
    ungated = baselines.temporal_union(modal, None)
    assert ungated.sum() > modal.sum()


def test_temporal_fills_frames_where_the_object_is_not_visible():
    modal = np.zeros((5, 20, 30), bool)
    for t in (0, 1, 3, 4):
        modal[t, 5:10, 2 + 4 * t : 8 + 4 * t] = True
    out = baselines.temporal_union(modal, None, radius=1)
    expected = np.zeros((20, 30), bool)
    expected[5:10, 10:16] = True  # neighbours moved to where constant velocity puts the object
    assert (out[2] == expected).all()
    assert not baselines.temporal_union(np.zeros((3, 8, 8), bool)).any()


# ----------------------------------------------------------------------------- registry
def test_registry_builds_the_baselines():
    assert {"modal", "convex", "temporal"} <= set(method_names())
    clip = _clip(tiny_scene(4))
    for name in ("modal", "convex", "temporal"):
        prediction = get_method(name)(clip)
        assert isinstance(prediction, Prediction)
        assert prediction.samples.shape == (1, 2, 4, 48, 64) and prediction.samples.dtype == bool
    with pytest.raises(InputError, match="unknown method 'nope'; choose one of modal, convex, temporal, default, default-regression"):
        get_method("nope")


def test_model_folders_are_recognised_by_the_checkpoint_registry(tmp_path):
    from amodal.errors import CheckpointError

    with pytest.raises(CheckpointError, match="not a model folder"):
        get_method(str(tmp_path))
    with pytest.raises(InputError, match="unknown method"):
        get_method(str(tmp_path / "missing"))
    assert {"default", "default-regression"} <= set(method_names())


def test_pipeline_method_crops_the_border_and_keeps_samples(monkeypatch):
    monkeypatch.setattr(registry, "_ADDED", dict(registry._ADDED))  # registrations stay local to this test
    clip = _clip(tiny_scene(3))
    k, t, h, w = clip.modal_masks.shape

    def pipeline(c, return_samples):
        assert return_samples
        samples = np.zeros((2, k, t, h + 8, w + 6), bool)
        samples[:, :, :, 4 : 4 + h, 3 : 3 + w] = c.modal_masks
        samples[1, :, :, 0, 0] = True  # outside the frame: cropped off
        return SimpleNamespace(samples=samples, amodal_masks=samples[0], border=(4, 3))

    register_method("test-pipeline", lambda options: pipeline_method(pipeline))
    out = get_method("test-pipeline")(clip)
    assert out.samples.shape == (2, k, t, h, w)
    np.testing.assert_array_equal(out.samples[1], clip.modal_masks)


def test_prediction_rejects_wrong_layouts():
    with pytest.raises(InputError, match=r"\(S, K, T, H, W\) bool"):
        Prediction(np.zeros((2, 3, 4, 5), bool))
    with pytest.raises(InputError, match=r"\(S, K, T, H, W\) bool"):
        Prediction(np.zeros((1, 2, 3, 4, 5), np.float32))
