"""Object layers for 4D reconstruction: crops, depth order, and `--export layers` on `amodal run` / `amodal complete`."""

import json

import numpy as np
import pytest
from PIL import Image

from amodal.apps import layers
from amodal.compose import depth_order
from amodal.cli import main
from test_run_cli import first_frames

pytestmark = pytest.mark.usefixtures("one_thread")


def test_crops_are_centred_square_and_one_size_for_the_clip():
    amodal = np.zeros((3, 40, 60), bool)
    amodal[0, 10:20, 10:30] = True  # 10 x 20
    amodal[1, 5:35, 40:50] = True  # 30 x 10: the largest side of the clip
    boxes = layers.crop_boxes(amodal, margin=0.0)
    assert boxes[2] is None  # nothing of the object: no crop
    assert [b[2] for b in boxes[:2]] == [30, 30] and all(b[2] == b[3] for b in boxes[:2])
    assert boxes[0] == [5, 0, 30, 30]  # centred on (15, 20)
    assert layers.crop_side(amodal, 0.1) == 36
    image = np.arange(40 * 60 * 3, dtype=np.int64).reshape(40, 60, 3) % 251
    tile = layers.cut(image.astype(np.uint8), [-5, -5, 20, 20], 255)
    assert (tile[:5] == 255).all() and (tile[5:, 5:] == image[:15, :15]).all()


def test_depth_order_from_depth_or_from_occlusion():
    modal = np.zeros((2, 1, 10, 10), bool)
    amodal = np.zeros_like(modal)
    modal[0, 0, :, :5] = True  # object 0 seen on the left
    amodal[0] = modal[0]
    modal[1, 0, :, 6:] = True  # object 1 on the right, its hidden part under object 0
    amodal[1, 0, :, 3:] = True
    assert depth_order(modal, amodal, None) == [[0, 1]]  # 0 is seen over 1's hidden part
    depth = np.zeros((1, 10, 10), np.float32)
    depth[0, :, 6:] = 5.0  # but depth says object 1 is nearer
    assert depth_order(modal, amodal, depth) == [[1, 0]]


def test_run_and_complete_export_layers(tiny_clip, tmp_path):
    frames, masks = first_frames(tiny_clip, tmp_path, 5)
    out = tmp_path / "out"
    assert main(["run", "--quiet", "--frames", str(frames), "--masks", str(masks), "--no-depth",
                 "--export", "layers", "--layer-size", "64", "--out", str(out)]) == 0
    folder = out / "layers" / "1"
    names = [p.stem for p in sorted(frames.iterdir())]
    for kind, channels in (("rgb", 3), ("rgba", 4)):
        tiles = [np.asarray(Image.open(folder / kind / f"{n}.png")) for n in names]
        assert all(t.shape == (64, 64, channels) for t in tiles)
    boxes = json.loads((folder / "boxes.json").read_text())
    assert boxes["size"] == 64 and list(boxes["frames"]) == names
    x, y, side, _ = boxes["frames"][names[0]]
    # The layer is the completed object's crop: the same pixels as completion/ at the crop, resized.
    full = np.asarray(Image.open(out / "completion" / "1" / "rgba" / f"{names[0]}.png"))
    expected = Image.fromarray(layers.cut(full, [x, y, side, side], 0)).resize((64, 64), Image.Resampling.LANCZOS)
    np.testing.assert_array_equal(np.asarray(Image.open(folder / "rgba" / f"{names[0]}.png")), np.asarray(expected))
    alpha = np.asarray(Image.open(folder / "rgba" / f"{names[0]}.png"))[..., 3]
    assert alpha[28:36, 28:36].all() and alpha.min() == 0  # the object in the centre, transparent around it
    order = json.loads((out / "layers" / "depth_order.json").read_text())
    assert order["front_to_back"] == {n: [1] for n in names} and order["from"] == "occlusion"
    again = tmp_path / "again"
    assert main(["complete", "--quiet", "--frames", str(frames), "--masks", str(out / "segmentation" / "modal"),
                 "--amodal", str(out / "segmentation" / "masks"), "--export", "layers", "--layer-size", "64",
                 "--out", str(again)]) == 0
    assert json.loads((again / "layers" / "1" / "boxes.json").read_text()) == boxes
    assert main(["run", "--quiet", "--frames", str(frames), "--masks", str(masks), "--no-depth",
                 "--export", "layers", "--layer-size", "4", "--out", str(tmp_path / "bad")]) == 2
    assert not (tmp_path / "bad").exists()
