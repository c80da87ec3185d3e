"""Metrics: the reference numbers to 1e-6, OpenCV's fixed-point resize, and analytic cases."""

from __future__ import annotations

import json

import numpy as np
import pytest

from amodal.evaluation import metrics
from amodal.data.datasets import index_dataset
from amodal.errors import InputError
from amodal.evaluation.reference_formats import predicted_boxes, predicted_masks, read_predictions
from amodal.evaluation.scoring import score_boxes, score_masks, summarize
from amodal.evaluation.table import FrameTable

from tiny import sailvos_predictions, write_sailvos_clip


# ----------------------------------------------------------------------------- reference numbers
def test_sailvos_reference_numbers(shared_dir):
    folder = shared_dir / "fixtures" / "official_metrics" / "sailvos"
    expected = json.loads((folder / "official_metrics.json").read_text())
    index = index_dataset("sailvos", annotations=folder / "annotations.json")
    predictions = read_predictions(folder / "predictions.json")
    tables = []
    for i in range(len(index)):
        annotation = index.annotation(i, cropped=True)
        masks = predicted_masks("sailvos", predictions, folder / "predictions.json", annotation)
        assert masks.shape[3:] == (256, 512)  # scored against 800x1280 ground truth
        tables.append(score_masks("sailvos", annotation, masks, i))
    got = summarize("sailvos", FrameTable.concat(tables))
    assert got["miou"] == pytest.approx(expected["miou"], abs=1e-6)
    assert got["miou_occ"] == pytest.approx(expected["miou_occ"], abs=1e-6)
    # The strict reading keeps frames the reference drops, so it is lower here.
    assert got["frames_occ_strict"] > got["frames_occ"] and got["miou_occ_strict"] < got["miou_occ"]


def test_sailvos_uncropped_ground_truth_gives_the_same_numbers(shared_dir):
    folder = shared_dir / "fixtures" / "official_metrics" / "sailvos"
    index = index_dataset("sailvos", annotations=folder / "annotations.json")
    predictions = read_predictions(folder / "predictions.json")
    for i in (2, 5):  # two clips with occlusion
        scores = []
        for cropped in (False, True):
            annotation = index.annotation(i, cropped=cropped)
            masks = predicted_masks("sailvos", predictions, folder / "predictions.json", annotation)
            scores.append(score_masks("sailvos", annotation, masks, i))
        for column in ("iou", "occ_iou", "occ_gt"):
            np.testing.assert_array_equal(scores[0][column], scores[1][column])


def test_sailvos_cropped_and_uncropped_ground_truth_score_alike(tmp_path):
    """As above on a clip built in code, predictions at a coarser size than the ground truth (resized when scored)."""
    path, scene = write_sailvos_clip(tmp_path, frames=6)
    guess = np.roll(scene["amodal"][0], 3, axis=-1) | scene["modal"][0]  # 3 pixels off, visible part kept
    file = tmp_path / "predictions.json"
    file.write_text(json.dumps(sailvos_predictions(guess, size=(20, 28))))
    index = index_dataset("sailvos", annotations=path)
    predictions = read_predictions(file)
    scores = []
    for cropped in (False, True):
        annotation = index.annotation(0, cropped=cropped)
        assert annotation.cropped == cropped
        assert (annotation.amodal_masks.shape[2:] != annotation.size) == cropped  # cropped to the object's box
        masks = predicted_masks("sailvos", predictions, file, annotation)
        assert masks.shape[3:] == (20, 28)
        scores.append(score_masks("sailvos", annotation, masks, 0))
    iou = np.asarray(scores[0]["iou"])
    assert 0 < iou.min() < iou.max() < 1  # neither trivially perfect nor empty
    assert np.asarray(scores[0]["occ_gt"]).any()  # some frames have hidden pixels to score
    for column in ("iou", "occ_iou", "occ_gt"):
        np.testing.assert_array_equal(scores[0][column], scores[1][column])


def test_tao_amodal_reference_numbers(shared_dir):
    folder = shared_dir / "fixtures" / "official_metrics" / "tao_amodal"
    expected = json.loads((folder / "official_metrics.json").read_text())
    index = index_dataset(
        "tao-amodal", annotations=folder / "annotations.json", track_offsets=folder / "track_ids_abs2rel.json"
    )
    predictions = read_predictions(folder / "predictions.json")
    tables = [
        score_boxes(
            index.annotation(i), predicted_boxes(predictions, folder / "predictions.json", index.annotation(i)), i
        )
        for i in range(len(index))
    ]
    got = summarize("tao-amodal", FrameTable.concat(tables))
    for key in ("miou", "ap25", "ap50", "ap75"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6), key


# ----------------------------------------------------------------------------- OpenCV's resize
def _opencv_resize_scalar(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """OpenCV's 8-bit INTER_LINEAR written out pixel by pixel (an independent check of the vectorised one)."""
    h, w = mask.shape
    out = np.zeros(size, dtype=bool)
    for dy in range(size[0]):
        fy = np.float32((dy + 0.5) * (1.0 / (size[0] / h)) - 0.5)
        sy = int(np.floor(fy))
        fy = np.float32(fy - sy)
        b0, b1 = int(np.rint((np.float32(1) - fy) * np.float32(2048))), int(np.rint(fy * np.float32(2048)))
        r0, r1 = min(max(sy, 0), h - 1), min(max(sy + 1, 0), h - 1)
        for dx in range(size[1]):
            fx = np.float32((dx + 0.5) * (1.0 / (size[1] / w)) - 0.5)
            sx = int(np.floor(fx))
            fx = np.float32(fx - sx)
            if sx < 0:
                fx, sx = np.float32(0), 0
            if sx >= w - 1:
                fx, sx = np.float32(0), w - 1
            a0, a1 = int(np.rint((np.float32(1) - fx) * np.float32(2048))), int(np.rint(fx * np.float32(2048)))
            x1 = min(sx + 1, w - 1)
            s0 = int(mask[r0, sx]) * a0 + int(mask[r0, x1]) * a1
            s1 = int(mask[r1, sx]) * a0 + int(mask[r1, x1]) * a1
            out[dy, dx] = ((((b0 * (s0 >> 4)) >> 16) + ((b1 * (s1 >> 4)) >> 16) + 2) >> 2) > 0
    return out


@pytest.mark.parametrize("src, dst", [((8, 16), (25, 40)), ((13, 7), (29, 31)), ((20, 20), (9, 13))])
def test_reference_resize_matches_the_scalar_formula(src, dst):
    rng = np.random.default_rng(sum(src + dst))
    masks = rng.random((2, *src)) < 0.5
    got = metrics.resize_masks_reference(masks, dst)
    for t in range(2):
        np.testing.assert_array_equal(got[t], _opencv_resize_scalar(masks[t], dst))


def _bilinear(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Exact float bilinear values (same pixel-centre alignment and border clamping)."""
    h, w = mask.shape
    fy = np.clip((np.arange(size[0]) + 0.5) * h / size[0] - 0.5, 0, h - 1)
    fx = np.clip((np.arange(size[1]) + 0.5) * w / size[1] - 0.5, 0, w - 1)
    y0, x0 = np.floor(fy).astype(int), np.floor(fx).astype(int)
    y1, x1 = np.minimum(y0 + 1, h - 1), np.minimum(x0 + 1, w - 1)
    wy, wx = (fy - y0)[:, None], (fx - x0)[None, :]
    m = mask.astype(float)
    top = m[y0][:, x0] * (1 - wx) + m[y0][:, x1] * wx
    bottom = m[y1][:, x0] * (1 - wx) + m[y1][:, x1] * wx
    return top * (1 - wy) + bottom * wy


def test_reference_resize_is_not_rounded_bilinear():
    # The reference's 256x512 -> 800x1280 ratios: the fixed-point truncations
    # only lose value, so some pixels whose exact bilinear value is 0.5 to 0.7
    # stay clear; everything else agrees with rounding.
    rng = np.random.default_rng(0)
    mask = rng.random((32, 64)) < 0.5
    got = metrics.resize_masks_reference(mask[None], (100, 160))[0]
    value = _bilinear(mask, (100, 160))
    differ = got != (value >= 0.5)
    assert differ.any()
    assert not got[differ].any()
    assert (value[differ] >= 0.5).all() and (value[differ] < 0.75).all()
    assert metrics.resize_masks_reference(np.ones((1, 4, 6), bool), (13, 15)).all()
    assert not metrics.resize_masks_reference(np.zeros((1, 4, 6), bool), (13, 15)).any()
    np.testing.assert_array_equal(metrics.resize_masks_reference(mask[None], (32, 64))[0], mask)


# ----------------------------------------------------------------------------- analytic cases
def test_iou_perfect_and_disjoint():
    a = np.zeros((2, 10, 10), bool)
    a[:, 2:6, 2:6] = True
    b = np.zeros_like(a)
    b[:, 6:9, 6:9] = True
    assert metrics.mask_iou(a, a) == pytest.approx([1.0, 1.0], abs=1e-6)
    assert (metrics.mask_iou(a, b) == 0).all()
    assert (metrics.mask_iou(b & a, b & a) == 0).all()  # both empty: 0 / eps, as the reference gives
    with pytest.raises(InputError, match="does not match"):
        metrics.mask_iou(a, a[:, :5])


def test_erosion_with_a_5x5_square():
    m = np.zeros((3, 12, 12), bool)
    m[0, 3:8, 3:8] = True  # 5x5: one pixel survives
    m[1, 3:7, 3:7] = True  # 4x4: nothing survives
    m[2, 0:5, 0:5] = True  # touching the corner: the image border does not erode (OpenCV default)
    out = metrics.erode(m)
    assert out[0].sum() == 1 and out[0, 5, 5]
    assert not out[1].any()
    assert out[2].sum() == 9 and out[2, :3, :3].all()


def _occluded_object(frames: int = 3):
    """A 20x20 object whose right half is hidden."""
    amodal = np.zeros((frames, 40, 40), bool)
    amodal[:, 10:30, 10:30] = True
    modal = amodal.copy()
    modal[:, :, 20:] = False
    return amodal, modal


def test_perfect_prediction_scores_one_everywhere():
    amodal, modal = _occluded_object()
    iou, occ, occ_gt = metrics.sailvos_frame_scores(amodal, amodal, modal)
    assert iou == pytest.approx(1.0, abs=1e-6) and occ == pytest.approx(1.0, abs=1e-6) and occ_gt.all()


def test_strict_and_reference_occlusion_differ_when_the_hidden_part_is_missed():
    amodal, modal = _occluded_object()
    # The modal mask as prediction: the hidden part is missed entirely.
    iou, occ, occ_gt = metrics.sailvos_frame_scores(modal, amodal, modal)
    assert (occ == 0).all() and occ_gt.all()
    assert iou == pytest.approx(0.5, abs=1e-6)
    summary = metrics.sailvos_summary(iou, occ, occ_gt)
    assert summary["frames_occ"] == 0 and np.isnan(summary["miou_occ"])  # the reference drops every frame
    assert summary["miou_occ_strict"] == 0.0 and summary["frames_occ_strict"] == 3
    # Half of the hidden part found: both readings agree on these frames.
    half = modal.copy()
    half[:, 10:30, 20:25] = True
    _, occ_half, _ = metrics.sailvos_frame_scores(half, amodal, modal)
    mixed = metrics.sailvos_summary(np.ones(4), np.r_[occ_half[:2], 0.0, 0.0], np.ones(4, bool))
    assert mixed["miou_occ"] == pytest.approx(occ_half[0]) and mixed["miou_occ_strict"] == pytest.approx(
        occ_half[0] / 2
    )


def test_sailvos_window_ground_truth_matches_whole_frames():
    amodal, modal = _occluded_object()
    pred = np.zeros((3, 16, 16), bool)
    pred[:, 3:13, 3:14] = True  # low resolution, resized to 40x40
    whole = metrics.sailvos_frame_scores(pred, amodal, modal)
    window = metrics.sailvos_frame_scores(
        pred, amodal[:, 8:32, 9:31], modal[:, 8:32, 9:31], origin=(8, 9), size=(40, 40)
    )
    for a, b in zip(whole, window, strict=True):
        np.testing.assert_array_equal(a, b)


def test_boxes_and_box_iou():
    m = np.zeros((2, 10, 10), bool)
    m[0, 2:5, 3:7] = True
    boxes = metrics.boxes_from_masks(m)
    np.testing.assert_array_equal(boxes[0], [3, 2, 4, 3])  # w = x_max - x_min + 1
    assert np.isnan(boxes[1]).all()
    a = np.array([[0.0, 0.0, 2.0, 1.0], [0.0, 0.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]])
    b = np.array([[1.0, 0.0, 2.0, 1.0], [5.0, 5.0, 1.0, 1.0], [np.nan] * 4])
    np.testing.assert_allclose(metrics.box_iou_xywh(a, b), [1 / 3, 0.0, 0.0])
    union = metrics.box_union_xywh(a[:1], b[:1])
    np.testing.assert_array_equal(union, [[0.0, 0.0, 3.0, 1.0]])


def test_tao_ap_counts_strictly_above_the_threshold():
    summary = metrics.tao_summary(np.array([0.25, 0.5, 0.75, 0.8]))
    assert summary["ap25"] == 0.75 and summary["ap50"] == 0.5 and summary["ap75"] == 0.25
    assert summary["miou"] == pytest.approx(0.575)


def test_movi_crop_and_visible_frames():
    amodal, modal = _occluded_object(frames=2)
    modal[1] = False  # object not visible in frame 1: not scored
    boxes = metrics.movi_crop_boxes(modal)
    # Modal box x 10..19, y 10..29 (w 10, h 20), centre (15, 20): 2x is x 5..25, y 0..40.
    np.testing.assert_array_equal(boxes[0], [0, 40, 5, 25])
    np.testing.assert_array_equal(boxes[1], [0, 40, 0, 40])
    pred = modal.copy()
    pred[0, 10:30, 20:40] = True  # the hidden half plus a wrong strip beyond the object (x 30..39)
    whole = metrics.movi_frame_scores(pred, amodal, modal)
    crop = metrics.movi_frame_scores(pred, amodal, modal, cropped=True)
    assert whole["visible"].tolist() == [True, False] and whole["occluded"].tolist() == [True, False]
    assert whole["iou"][0] == pytest.approx(400 / 600, abs=1e-6)  # the strip counts on the whole frame
    assert crop["iou"][0] == pytest.approx(300 / 300, abs=1e-6)  # but lies outside the crop (x < 25)
    soft = metrics.movi_frame_scores(pred.astype(np.float32) * 0.6, amodal, modal)
    np.testing.assert_array_equal(soft["iou"], whole["iou"])  # soft masks are thresholded at 0.5
    summary = metrics.movi_summary(
        whole["iou"], whole["occ_iou"], whole["visible"], whole["occluded"], np.zeros(2, int)
    )
    assert summary["frames"] == 1 and summary["miou"] == pytest.approx(whole["iou"][0])


def test_best_of_k_picks_per_group():
    scores = np.array([[0.2, 0.9, 0.5], [0.4, 0.1, 0.5], [0.9, 0.3, 0.1], [0.7, 0.3, 0.2]])
    groups = np.array([0, 0, 1, 1])
    np.testing.assert_array_equal(metrics.best_of_k(scores, groups, 1), [0, 0, 0, 0])
    # Group 0 means: 0.3, 0.5, 0.5 -> sample 1 (first of the tie); group 1: 0.8, 0.3, 0.15 -> sample 0.
    np.testing.assert_array_equal(metrics.best_of_k(scores, groups, 3), [1, 1, 0, 0])
    np.testing.assert_array_equal(metrics.best_of_k(scores, groups, 2), [1, 1, 0, 0])
    valid = np.array([False, True, True, True])  # group 0 judged on row 1 only: sample 2 wins
    np.testing.assert_array_equal(metrics.best_of_k(scores, groups, 3, valid), [2, 2, 0, 0])
