"""``amodal annotate``: amodal masks written back from amodal boxes, and the COCO / CVAT / review exports."""

import csv
import hashlib
import json
import xml.etree.ElementTree as ET

import numpy as np
import pytest

from amodal.apps.annotate import cvat_rle
from amodal.cli import main
from amodal.data.datasets import index_dataset
from amodal.data.io import rle as rle_codec
from amodal.segmentation.boxes import boxes_of_masks, rasterize
from test_datasets import write_synthetic_split
from test_eval_cli import _write_tao_split

pytestmark = pytest.mark.usefixtures("one_thread")


def cvat_decode(element, size):
    """A CVAT ``<mask>`` element back to a ``(H, W) bool`` mask (the inverse of ``cvat_rle``)."""
    runs = [int(v) for v in element.get("rle").split(",")]
    left, top, width, height = (int(element.get(k)) for k in ("left", "top", "width", "height"))
    flat = np.repeat(np.arange(len(runs)) % 2 == 1, runs)
    out = np.zeros(size, bool)
    out[top : top + height, left : left + width] = flat.reshape(height, width)
    return out


def test_cvat_rle_round_trip():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = rng.random((9, 13)) > 0.6
        rle, left, top, width, height = cvat_rle(mask)
        element = ET.fromstring(f'<mask rle="{rle}" left="{left}" top="{top}" width="{width}" height="{height}"/>')
        np.testing.assert_array_equal(cvat_decode(element, mask.shape), mask)
    assert cvat_rle(np.zeros((4, 4), bool)) == ("1", 0, 0, 1, 1)


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_annotate_a_synthetic_split(tmp_path, capsys):
    from pycocotools.coco import COCO

    records = write_synthetic_split(tmp_path / "data", videos=2, frames=5)
    annotations = tmp_path / "data" / "test" / "annotations.json"
    before = digest(annotations)
    out = tmp_path / "out"
    assert main(["annotate", "--quiet", "--dataset", "synthetic", "--annotations", str(annotations),
                 "--data", str(tmp_path / "data" / "test"), "--samples", "2", "--out", str(out)]) == 0
    assert "amodal masks for" in capsys.readouterr().out
    assert digest(annotations) == before  # the input is never touched

    truth = index_dataset("synthetic", annotations=annotations, root=tmp_path / "data" / "test")
    written = index_dataset("synthetic", annotations=out / "annotations.json", root=tmp_path / "data" / "test")
    coco = COCO(str(out / "coco_instances.json"))
    assert len(coco.imgs) == sum(truth.annotation(i).num_frames for i in range(len(truth)))
    raw = json.loads((out / "annotations.json").read_text())
    image_ids = {(img["video_id"], img["frame_index"]): img["id"] for img in coco.imgs.values()}
    for i in range(len(truth)):
        gt, pred = truth.annotation(i), written.annotation(i)
        masks = pred.amodal_masks
        assert not (gt.modal_masks & ~masks).any()  # the visible part is kept
        boxes = boxes_of_masks(gt.amodal_masks)  # a synthetic entry's 'bbox' is its true amodal box
        inside = np.stack([rasterize(boxes[:, t], gt.size) for t in range(gt.num_frames)], axis=1)
        assert not (masks & ~(inside | gt.modal_masks)).any()  # never outside the box
        for k, position in enumerate(truth.positions(i)):
            assert len(raw[position]["amodal_uncertainty"]) == gt.num_frames
            for t in range(gt.num_frames):
                anns = coco.loadAnns(coco.getAnnIds(imgIds=image_ids[(gt.video, t)]))
                mine = [a for a in anns if a["track_id"] == gt.object_ids[k]]
                if masks[k, t].any():
                    np.testing.assert_array_equal(coco.annToMask(mine[0]).astype(bool), masks[k, t])
                else:
                    assert not mine
        tree = ET.parse(out / "cvat" / f"{gt.video}.xml")
        tracks = tree.getroot().findall("track")
        assert len(tracks) == len(gt.object_ids)
        for k, track in enumerate(tracks):
            for element in track.findall("mask"):
                t = int(element.get("frame"))
                np.testing.assert_array_equal(cvat_decode(element, gt.size) & masks[k, t].any(), masks[k, t])
    with open(out / "review.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == sum(len(truth.positions(i)) * truth.annotation(i).num_frames for i in range(len(truth)))
    doubts = [float(r["uncertainty"]) for r in rows]
    assert doubts == sorted(doubts, reverse=True)
    assert records  # the split was written


def test_annotate_tao_amodal_writes_amodal_rles(tmp_path):
    _write_tao_split(tmp_path / "tao")
    out = tmp_path / "out"
    assert main(["annotate", "--quiet", "--dataset", "tao-amodal", "--annotations", str(tmp_path / "tao" / "annotations.json"),
                 "--data", str(tmp_path / "tao"), "--samples", "1", "--out", str(out)]) == 0
    track = json.loads((out / "annotations.json").read_text())[0]
    assert "amodal_uncertainty" not in track  # one sample: no uncertainty
    masks = np.stack([rle_codec.decode({"size": [track["height"], track["width"]], "counts": c}) for c in track["amodal_rles"]])
    inside = np.stack([rasterize(np.array([b]), masks.shape[1:])[0] for b in track["amodal_bboxes"]])
    modal = np.stack([rle_codec.decode({"size": [track["height"], track["width"]], "counts": c}) for c in track["rles"]])
    assert not (masks & ~(inside | modal)).any() and not (modal & ~masks).any()
    index_dataset("tao-amodal", annotations=out / "annotations.json", root=tmp_path / "tao",
                  track_offsets=tmp_path / "tao" / "track_ids_abs2rel.json")  # still a TAO-Amodal file


def test_annotate_errors_are_one_line(tmp_path, capsys):
    write_synthetic_split(tmp_path / "data", videos=1, frames=3)
    annotations = tmp_path / "data" / "test" / "annotations.json"
    raw = json.loads(annotations.read_text())
    for entry in raw:
        entry.pop("bbox", None)
        entry["segmentation"] = [None] * len(entry["segmentation"])
    bare = tmp_path / "bare.json"
    bare.write_text(json.dumps(raw))
    cases = [
        (["--dataset", "movi", "--annotations", str(annotations)], "invalid choice"),
        (["--dataset", "synthetic", "--annotations", str(bare)], "has no 'bbox' and no amodal masks"),
        (["--dataset", "synthetic", "--annotations", str(annotations), "--out", str(annotations), "--overwrite"], "input"),
    ]
    for args, message in cases:
        argv = ["annotate", "--quiet", "--data", str(tmp_path / "data" / "test"), *args]
        if "--out" not in args:
            argv += ["--out", str(tmp_path / "out")]
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err.strip().splitlines()[-1], err
        assert not (tmp_path / "out").exists()
    assert json.loads(annotations.read_text())[0]["obj_id"] == raw[0]["obj_id"]  # the input survived --out == input
