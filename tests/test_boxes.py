"""Amodal boxes as a stage-1 prior: the crop geometry, the box file, the pipeline and `eval --amodal-boxes`."""

import json

import numpy as np
import pytest
import torch

from amodal.errors import InputError
from amodal.segmentation import boxes as bx
from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig
from test_pipeline import FakeSegmenter, make_clip


def run(clip, seg, boxes=None, **cfg):
    return AmodalSegmentationPipeline(seg, SegmentationConfig(progress=False, **cfg))(clip, amodal_boxes=boxes)


def test_window_region_is_the_union_with_margin_at_the_canvas_aspect():
    boxes = np.array([[10, 20, 10, 10], [30, 20, 10, 10], [np.nan] * 4])
    region = bx.window_region(boxes, (32, 64), 0.0)  # union 30x10 at x 10..40, y 20..30, widened to 2:1 height
    assert (region.height, region.width) == (15, 30)
    assert (region.top, region.left) == (18, 10)  # centred on the union (centre y 25, x 25), rounded
    wider = bx.window_region(boxes, (32, 64), 0.5)  # half the size again per side: 60 wide
    assert (wider.height, wider.width) == (30, 60)
    assert bx.window_region(np.full((3, 4), np.nan), (32, 64), 0.1) is None


def test_crop_and_uncrop_are_inverse_and_fill_past_the_frame():
    x = torch.zeros(1, 40, 60)
    x[0, 10:20, 20:30] = 1
    region = bx.Region(5, 15, 20, 40)
    same = bx.crop(x, region, (20, 40))  # no resizing: an exact cut
    torch.testing.assert_close(same[0], x[0, 5:25, 15:55])
    back = bx.uncrop(same, region, (40, 60))
    torch.testing.assert_close(back[0, 5:25, 15:55], x[0, 5:25, 15:55])
    assert back[0, :5].sum() == 0 and back[0, :, :15].sum() == 0  # zero outside the region
    past = bx.crop(torch.ones(1, 10, 10), bx.Region(-5, -5, 20, 20), (20, 20), fill=float("nan"))
    assert torch.isnan(past[0, :5]).all() and not torch.isnan(past[0, 5:15, 5:15]).any()
    assert bx.uncrop(torch.ones(1, 20, 20), bx.Region(-5, -5, 20, 20), (10, 10)).sum() == 100


def test_rasterize_and_boxes_of_masks_agree():
    masks = np.zeros((2, 1, 12, 16), bool)
    masks[0, 0, 2:5, 3:9] = True
    boxes = bx.boxes_of_masks(masks)
    np.testing.assert_array_equal(boxes[0, 0], [3, 2, 6, 3])
    assert np.isnan(boxes[1, 0]).all()  # an empty mask has no box
    inside = bx.rasterize(boxes[:, 0], (12, 16))
    np.testing.assert_array_equal(inside[0], masks[0, 0])  # the tight box of a box is itself
    assert inside[1].all()  # no box: nothing is cut
    shifted = bx.rasterize(boxes[:1, 0], (16, 20), border=(2, 2))
    assert shifted[0, 4:7, 5:11].all() and shifted[0].sum() == 18


@pytest.mark.parametrize("mode", ["clip", "crop"])
def test_output_never_leaves_the_box_and_keeps_the_modal_mask(mode):
    clip = make_clip(t=12, h=40, w=80)
    modal = clip.modal_masks
    boxes = bx.boxes_of_masks(modal).copy()
    boxes[..., 2:] += 2  # a little room past the visible part
    boxes[0, 3] = np.nan  # a frame without a box is not cut
    out = run(clip, FakeSegmenter(grow=3), boxes, window=8, overlap=2, box_mode=mode)
    inside = np.stack([bx.rasterize(boxes[:, t], clip.size) for t in range(clip.num_frames)], axis=1)
    assert not (out.amodal_masks & ~(inside | modal)).any()
    assert not (modal & ~out.amodal_masks).any()
    free = run(clip, FakeSegmenter(grow=3), window=8, overlap=2)
    assert out.amodal_masks.sum() < free.amodal_masks.sum()  # the dilation is cut back to the boxes


def test_clip_mode_with_whole_frame_boxes_is_the_pipeline_without_boxes():
    clip = make_clip(t=10, h=30, w=100)
    whole = np.tile(np.array([0, 0, 100, 30], float), (2, 10, 1))
    seg = FakeSegmenter(grow=1, noise=0.2)
    kwargs = dict(samples=2, seed=3, overlap=2)
    with_boxes = run(clip, seg, whole, box_mode="clip", **kwargs)
    without = run(clip, seg, **kwargs)
    np.testing.assert_array_equal(with_boxes.amodal_masks, without.amodal_masks)
    np.testing.assert_array_equal(with_boxes.frequency, without.frequency)


def test_crop_mode_zooms_into_the_box():
    clip = make_clip(t=8, h=64, w=128, k=1)
    boxes = bx.boxes_of_masks(clip.modal_masks)
    seg = FakeSegmenter()
    run(clip, seg, boxes, box_margin=0.0, box_mode="crop")
    assert seg.calls[-1][0][-2:] == (32, 64)  # the model still sees its canvas ...
    # ... but a 6x6 object now fills it: a 1-pixel dilation on the canvas is under a pixel of input
    grown = run(clip, FakeSegmenter(grow=1), boxes, box_margin=0.0, box_mode="crop").amodal_masks.sum()
    letterboxed = run(clip, FakeSegmenter(grow=1)).amodal_masks.sum()
    assert grown <= letterboxed


@pytest.mark.parametrize("mode", ["clip", "crop"])
def test_boxes_work_with_pad_depth_and_are_deterministic(mode):
    clip = make_clip(t=9, h=32, w=64)
    boxes = bx.boxes_of_masks(clip.modal_masks)
    boxes[..., :2] -= 3  # reaching past the frame on the top-left
    boxes[..., 2:] += 6
    seg = FakeSegmenter(grow=2, noise=0.3)
    a = run(clip, seg, boxes, pad=0.25, samples=2, seed=1, box_mode=mode)
    b = run(clip, seg, boxes, pad=0.25, samples=2, seed=1, box_mode=mode)
    np.testing.assert_array_equal(a.amodal_masks, b.amodal_masks)
    assert a.amodal_masks.shape[-2:] == (48, 96) and seg.calls[-1][1] is True
    inside = np.stack([bx.rasterize(boxes[:, t], (48, 96), border=(8, 16)) for t in range(9)], axis=1)
    assert not (a.amodal_masks & ~inside).any()
    assert a.amodal_masks[..., :8, :].any() or a.amodal_masks[..., :, :16].any()  # it may leave the frame


def test_bad_boxes_are_named():
    clip = make_clip(t=4)
    with pytest.raises(InputError, match=r"\(2, T, 4\)"):
        run(clip, FakeSegmenter(), np.zeros((1, 4, 4)))
    with pytest.raises(InputError, match="width and height >= 0"):
        run(clip, FakeSegmenter(), np.full((2, 4, 4), -1.0))
    with pytest.raises(InputError, match="cover 2 frames"):
        run(clip, FakeSegmenter(), np.ones((2, 2, 4)))
    with pytest.raises(InputError, match="--box-mode"):
        SegmentationConfig(box_mode="zoom")


def test_read_boxes_file(tmp_path):
    path = tmp_path / "boxes.json"
    path.write_text(json.dumps({"2": [[1, 2, 3, 4], None, [0, 0, 5, 5]]}))
    boxes = bx.read_boxes(path, (1, 2), 3)
    assert np.isnan(boxes[0]).all() and np.isnan(boxes[1, 1]).all()
    np.testing.assert_array_equal(boxes[1, 0], [1, 2, 3, 4])
    for text, message in (
        ("{", "not valid JSON"),
        ("[]", "expected"),
        ('{"7": [null, null, null]}', "object id\\(s\\) 7 are not in the masks"),
        ('{"1": [null]}', "one entry per frame \\(3\\), got 1"),
        ('{"1": [[1, 2, 3], null, null]}', "frame 0: expected"),
        ('{"1": [[1, 2, -1, 3], null, null]}', "width and height >= 0"),
    ):
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            bx.read_boxes(path, (1, 2), 3)
    with pytest.raises(InputError, match="not found"):
        bx.read_boxes(tmp_path / "missing.json", (1,), 3)


def test_the_model_s_own_box_mode_is_the_default():
    clip = make_clip(t=8, h=64, w=128, k=1)
    boxes = bx.boxes_of_masks(clip.modal_masks)
    seg = FakeSegmenter(grow=1)
    seg.default_box_mode = "crop"  # as a model trained on box crops records it
    own = AmodalSegmentationPipeline(seg, SegmentationConfig(progress=False, box_margin=0.0))
    told = AmodalSegmentationPipeline(seg, SegmentationConfig(progress=False, box_margin=0.0, box_mode="clip"))
    assert own.box_mode == "crop" and told.box_mode == "clip"
    np.testing.assert_array_equal(own(clip, amodal_boxes=boxes).amodal_masks,
                                  run(clip, FakeSegmenter(grow=1), boxes, box_margin=0.0, box_mode="crop").amodal_masks)
    assert AmodalSegmentationPipeline(FakeSegmenter()).box_mode == "clip"  # a model that says nothing


def test_bundled_default_boxes_crops_by_default():
    from amodal.checkpoints.registry import load_segmenter

    assert load_segmenter("default-boxes").default_box_mode == "crop"
    assert load_segmenter("default").default_box_mode == "clip"


@pytest.mark.parametrize("mode", ["clip", "crop"])
def test_a_zero_size_box_keeps_only_the_visible_part(mode):
    clip = make_clip(t=6)
    boxes = np.zeros((2, 6, 4))  # no extent anywhere
    out = run(clip, FakeSegmenter(grow=2), boxes, box_mode=mode)
    np.testing.assert_array_equal(out.amodal_masks, clip.modal_masks)


def test_sailvos_format_bbox_is_the_annotation_s_boxes(tmp_path):
    from amodal.data.datasets import index_dataset
    from test_datasets import write_synthetic_split

    write_synthetic_split(tmp_path / "data", videos=1, frames=4)
    index = index_dataset("synthetic", tmp_path / "data", "test")
    annotation = index.annotation(0)
    from_masks = bx.boxes_of_masks(annotation.amodal_masks)
    present = ~np.isnan(from_masks).any(axis=2)
    np.testing.assert_array_equal(annotation.amodal_boxes[present], from_masks[present])
    assert (annotation.amodal_boxes[~present][:, 2:] == 0).all()  # an absent object's box has no size
    cropped = index.annotation(0, cropped=True)
    shift = np.array([cropped.origin[1], cropped.origin[0], 0, 0])
    np.testing.assert_array_equal(cropped.amodal_boxes + shift, annotation.amodal_boxes)
