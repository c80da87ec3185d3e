"""Speed of the SAIL-VOS metric: amodal.evaluation.metrics against a plain per-frame implementation of the same protocol.

    python benchmarks/bench_metrics.py                 # the 8 reference clips of the shared fixture, 3 rounds
    python benchmarks/bench_metrics.py --rounds 5

Both implementations score the same 25-frame 800x1280 clips (256x512
predictions) in this process, from the RLEs to per-frame IoUs: decoding,
resizing, union with the modal mask, IoU, 5x5 erosion of the occluded parts
and their IoU. The plain one loops over frames with ``pycocotools`` decoding,
a Pillow bilinear resize and ``scipy.ndimage`` erosion, as one would write it
from the protocol's description. Each round times every clip once with each
implementation; the best round counts.

The library path is the one ``amodal eval --predictions`` runs: ground truth
decoded only around the objects, predictions checked and decoded, then
:func:`amodal.evaluation.metrics.sailvos_frame_scores`.

Prints one JSON object: seconds per clip of each, their ratio, and the
metrics each gives (the plain one's Pillow resize rounds differently from the
reference's OpenCV resize, so its numbers differ slightly; the library's match
the reference).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from amodal.evaluation import metrics
from amodal.data.datasets.sailvos import SailvosIndex
from amodal.evaluation.reference_formats import predicted_masks
from amodal.evaluation.scoring import score_masks

from common import make_parser, print_json, shared_dir


def plain_clip_scores(clip: dict, predictions: dict) -> tuple[list, list, list]:
    """The SAIL-VOS protocol written frame by frame, the straightforward way."""
    from PIL import Image
    from pycocotools import mask as mask_utils
    from scipy import ndimage

    square = np.ones((5, 5), dtype=bool)
    ious, occ_ious, occ_gts = [], [], []
    for t, image_id in enumerate(clip["image_ids"]):
        amodal = mask_utils.decode(_bytes_rle(clip["segmentation"][t])).astype(bool)
        modal = mask_utils.decode(_bytes_rle(clip["visible_mask"][t])).astype(bool)
        small = mask_utils.decode(_bytes_rle(predictions[str((image_id, clip["obj_id"]))]["diffvas_res_rle"]))
        h, w = amodal.shape
        resized = Image.fromarray(small * 255).resize((w, h), Image.Resampling.BILINEAR)
        pred = (np.asarray(resized) >= 128) | modal
        ious.append((pred & amodal).sum() / ((pred | amodal).sum() + metrics.EPS))
        occ_gt = ndimage.binary_erosion(amodal & ~modal, square, border_value=1)
        occ_pred = ndimage.binary_erosion(pred & ~modal, square, border_value=1)
        occ_ious.append((occ_gt & occ_pred).sum() / ((occ_gt | occ_pred).sum() + metrics.EPS))
        occ_gts.append(bool(occ_gt.any()))
    return ious, occ_ious, occ_gts


def library_clip_scores(index, position: int, predictions: dict, predictions_path: Path) -> tuple:
    """The same as ``amodal eval --predictions`` computes it: cropped ground truth, vectorised metric."""
    annotation = index.annotation(position, cropped=True)
    pred = predicted_masks("sailvos", predictions, predictions_path, annotation)
    table = score_masks("sailvos", annotation, pred, position)
    return table["iou"][:, 0], table["occ_iou"][:, 0], table["occ_gt"]


def _bytes_rle(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


def _time(calls) -> tuple[float, list]:
    start = time.perf_counter()
    out = [call() for call in calls]
    return (time.perf_counter() - start) / len(calls), out


def _summary(outs) -> dict:
    iou, occ, gt = (np.concatenate([np.asarray(o[i], dtype=float if i < 2 else bool) for o in outs]) for i in range(3))
    return metrics.sailvos_summary(iou, occ, gt)


def build_parser():
    parser = make_parser(__doc__)
    parser.add_argument(
        "--data",
        type=Path,
        default=shared_dir() / "fixtures" / "official_metrics" / "sailvos",
        help="folder with annotations.json and predictions.json in the SAIL-VOS reference format",
    )
    parser.add_argument("--rounds", type=int, default=3, help="timing rounds; the best counts")
    return parser


def main() -> None:
    args = build_parser().parse_args()
    clips = json.loads((args.data / "annotations.json").read_text())
    predictions_path = args.data / "predictions.json"
    predictions = json.loads(predictions_path.read_text())
    index = SailvosIndex(args.data / "annotations.json")  # parsing the files is not timed, for either
    plain_calls = [lambda c=c: plain_clip_scores(c, predictions) for c in clips]
    library_calls = [
        lambda i=i: library_clip_scores(index, i, predictions, predictions_path) for i in range(len(index))
    ]

    library_calls[0]()  # warm-up: imports, first calls
    plain_calls[0]()
    plain_times, library_times = [], []
    for _ in range(args.rounds):
        seconds, plain_out = _time(plain_calls)
        plain_times.append(seconds)
        seconds, library_out = _time(library_calls)
        library_times.append(seconds)
    plain, library = min(plain_times), min(library_times)
    frames = len(clips[0]["image_ids"])
    height, width = clips[0]["segmentation"][0]["size"]
    print_json(
        {
            "clips": len(clips),
            "clip": f"{frames} frames of {width}x{height}",
            "plain_seconds_per_clip": round(plain, 4),
            "library_seconds_per_clip": round(library, 4),
            "speedup": round(plain / library, 2),
            "plain_metrics": {k: round(v, 6) for k, v in _summary(plain_out).items() if k.startswith("miou")},
            "library_metrics": {k: round(v, 6) for k, v in _summary(library_out).items() if k.startswith("miou")},
            "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, numpy {np.__version__}",
        }
    )


if __name__ == "__main__":
    main()
