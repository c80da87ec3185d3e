"""``amodal annotate``: pseudo ground truth, amodal masks for an annotation file that bounds each object by its amodal box.

TAO-Amodal annotates amodal *boxes* but no amodal masks. Box-conditioned segmentation
(segmentation/boxes.py) turns the boxes and the modal masks into amodal masks, written back
for people and tools to use. Outputs in ``OUT`` (written to a temporary folder, renamed into
place when complete):

- ``annotations.json``: the input annotation list with the masks added, in its own format: a
  TAO-Amodal track gets ``"amodal_rles"`` (one compressed-counts string per frame, as its
  ``"rles"``); a SAIL-VOS-format entry gets its ``"segmentation"`` (its amodal field) replaced by
  the predicted RLEs. Both get ``"amodal_uncertainty"`` per frame when ``samples > 1``;
- ``coco_instances.json``: COCO instance annotations (one image per frame, one annotation per
  object and frame with an RLE ``segmentation``, ``bbox``, ``area``, ``track_id``), which
  ``pycocotools.coco.COCO`` loads;
- ``cvat/<video>.xml``: CVAT for video 1.1, one track of masks per object (frames in the order of
  the clip's file names), to import into CVAT for review and correction;
- ``review.csv``: every (video, object, frame), least certain first: the share of the pixels any
  sample marks amodal on which the samples disagree (empty with one sample);
- ``summary.json``: settings, counts, timings.
"""

from __future__ import annotations

import csv
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from xml.sax.saxutils import XMLGenerator

import numpy as np

from amodal.data.io.coco import CocoInstances, category_name
from amodal.errors import InputError
from amodal.segmentation.pipeline import SegmentationConfig

ANNOTATABLE = ("tao-amodal", "sailvos", "synthetic")  # annotation formats annotate reads and writes back


@dataclass(frozen=True)
class AnnotateConfig:
    """One ``amodal annotate`` run."""

    dataset: str  # annotation format: one of ANNOTATABLE
    annotations: Path  # the annotation file
    data: Path  # the folder its frame file names are relative to
    out: Path  # output folder (replaced atomically when the run completes)
    track_offsets: Path | None = None  # TAO-Amodal {video_id: first track id}; default beside the annotations
    model: str = "default-boxes"  # stage-1 model: a bundled name, our folder or an official checkpoint
    pipeline: SegmentationConfig = field(default_factory=lambda: SegmentationConfig(samples=3))
    limit: int | None = None  # only the first N clips
    progress: bool = True
    overwrite: bool = False  # replace an existing OUT that amodal annotate did not write

    def __post_init__(self):
        if self.dataset not in ANNOTATABLE:
            raise InputError(f"--dataset must be one of {', '.join(ANNOTATABLE)} to write masks back, got {self.dataset!r}")
        if self.limit is not None and self.limit < 1:
            raise InputError(f"--limit must be >= 1, got {self.limit}")


def object_boxes(config: AnnotateConfig, annotation, positions: tuple[int, ...]) -> np.ndarray:
    """The ``(K, T, 4)`` amodal boxes that bound each object: TAO-Amodal's, a SAIL-VOS entry's ``bbox``, else its masks'."""
    from amodal.segmentation.boxes import check_boxes, with_mask_boxes

    shape = (len(positions), annotation.num_frames)
    out = with_mask_boxes(annotation.amodal_boxes, annotation.amodal_masks, shape)
    for k, position in enumerate(positions):
        if np.isnan(out[k]).all():
            raise InputError(f"{config.annotations}: entry [{position}] has no 'bbox' and no amodal masks: "
                             "nothing bounds its amodal extent")
    return check_boxes(out, len(positions), f"{config.annotations}")


def disagreement(frequency: np.ndarray | None) -> np.ndarray | None:
    """``(K, T, H, W)`` share of samples per pixel -> ``(K, T)``: share of the marked pixels the samples disagree on."""
    if frequency is None:
        return None
    marked = (frequency > 0).sum(axis=(2, 3))
    split = ((frequency > 0) & (frequency < 1)).sum(axis=(2, 3))
    return np.where(marked > 0, split / np.maximum(marked, 1), 0.0)


def cvat_rle(mask: np.ndarray) -> tuple[str, int, int, int, int]:
    """A ``(H, W) bool`` mask as CVAT writes one: runs over its tight box, row by row, from a run of zeros.

    Returns ``(rle, left, top, width, height)``; an empty mask is one zero pixel at the origin.
    """
    ys, xs = np.nonzero(mask)
    if not len(ys):
        return "1", 0, 0, 1, 1
    top, left = int(ys.min()), int(xs.min())
    crop = mask[top : ys.max() + 1, left : xs.max() + 1].reshape(-1)
    edges = np.flatnonzero(np.diff(crop.astype(np.int8))) + 1
    runs = np.diff(np.concatenate([[0], edges, [crop.size]]))
    if crop[0]:
        runs = np.concatenate([[0], runs])
    height, width = int(ys.max() + 1 - top), int(xs.max() + 1 - left)
    return ", ".join(str(int(r)) for r in runs), left, top, width, height


def write_cvat_video(path: Path, name: str, masks: np.ndarray, modal: np.ndarray, labels: list[str]) -> None:
    """One CVAT-for-video 1.1 file: ``masks`` ``(K, T, H, W) bool``, one track per object, labelled ``labels[k]``."""
    k, t, h, w = masks.shape
    with open(path, "w", encoding="utf-8") as f:
        xml = XMLGenerator(f, "utf-8", short_empty_elements=True)
        xml.startDocument()
        xml.startElement("annotations", {})

        def text(tag: str, value) -> None:
            xml.startElement(tag, {})
            xml.characters(str(value))
            xml.endElement(tag)

        text("version", "1.1")
        xml.startElement("meta", {})
        xml.startElement("task", {})
        for tag, value in (("name", name), ("size", t), ("mode", "interpolation"), ("overlap", 0),
                           ("start_frame", 0), ("stop_frame", t - 1)):
            text(tag, value)
        xml.startElement("labels", {})
        for label in sorted(set(labels)):
            xml.startElement("label", {})
            text("name", label)
            text("type", "mask")
            xml.endElement("label")
        xml.endElement("labels")
        xml.startElement("original_size", {})
        text("width", w)
        text("height", h)
        xml.endElement("original_size")
        xml.endElement("task")
        xml.endElement("meta")
        xml.ignorableWhitespace("\n")
        for i in range(k):
            xml.startElement("track", {"id": str(i), "label": labels[i], "source": "auto"})
            for f_index in range(t):
                rle, left, top, width, height = cvat_rle(masks[i, f_index])
                xml.startElement("mask", {
                    "frame": str(f_index), "keyframe": "1", "outside": str(int(not masks[i, f_index].any())),
                    "occluded": str(int(bool((masks[i, f_index] & ~modal[i, f_index]).any()))),
                    "rle": rle, "left": str(left), "top": str(top), "width": str(width), "height": str(height),
                    "z_order": "0",
                })
                xml.endElement("mask")
                xml.ignorableWhitespace("\n")
            xml.endElement("track")
            xml.ignorableWhitespace("\n")
        xml.endElement("annotations")
        xml.endDocument()


def annotate(config: AnnotateConfig) -> dict:
    """Run box-conditioned stage 1 over the annotation file and write every output; returns the summary."""
    from tqdm import tqdm

    from amodal.checkpoints.registry import model_inputs, resolve
    from amodal.data.datasets import index_dataset
    from amodal.data.io import rle as rle_codec
    from amodal.segmentation.pipeline import AmodalSegmentationPipeline
    from amodal.util.fs import atomic_dir, check_output, load_json

    start = time.perf_counter()
    out = check_output(
        config.out, command="annotate", overwrite=config.overwrite,
        inputs=(config.annotations, config.data, config.track_offsets, *model_inputs(config.model)),
    )
    resolve(config.model, "segmentation", flag="--model")
    index = index_dataset(config.dataset, config.data, annotations=config.annotations, track_offsets=config.track_offsets)
    raw = load_json(config.annotations, "annotation file")  # a fresh copy: the masks are added to it
    pipe = AmodalSegmentationPipeline.from_pretrained(config.model, config.pipeline)
    count = len(index) if config.limit is None else min(len(index), config.limit)
    tao = config.dataset == "tao-amodal"
    coco = CocoInstances(f"amodal masks from {config.annotations} (amodal annotate, model {config.model})")
    review, cvat = [], []
    timings = {"segmentation": 0.0}
    for i in tqdm(range(count), desc="annotate", unit="clip", disable=not config.progress, leave=False):
        item = index.item(i)
        clip, annotation = item.clip, item.annotation
        positions = index.positions(i)
        boxes = object_boxes(config, annotation, positions)
        t0 = time.perf_counter()
        result = pipe(clip, amodal_boxes=boxes)
        timings["segmentation"] += time.perf_counter() - t0
        masks = result.amodal_masks
        doubt = disagreement(result.frequency)
        files = raw[positions[0]]["file_names" if tao else "image_file_names"]
        image_ids = [coco.add_image(name, clip.size[0], clip.size[1], video_id=annotation.video, frame_index=t)
                     for t, name in enumerate(files)]
        for k, position in enumerate(positions):
            entry = raw[position]
            rles = [rle_codec.encode(m) for m in masks[k]]
            if tao:
                entry["amodal_rles"] = [r["counts"] for r in rles]
            else:
                entry["segmentation"] = rles
            if doubt is not None:
                entry["amodal_uncertainty"] = [round(float(v), 6) for v in doubt[k]]
            for t, rle in enumerate(rles):
                review.append({
                    "uncertainty": "" if doubt is None else f"{doubt[k, t]:.6f}",
                    "video": annotation.video, "object_id": clip.object_ids[k], "frame_index": t,
                    "file_name": files[t], "amodal_pixels": int(masks[k, t].sum()),
                    "modal_pixels": int(clip.modal_masks[k, t].sum()),
                })
                coco.add_mask(image_ids[t], clip.category_ids[k], masks[k, t], rle, track_id=int(clip.object_ids[k]),
                              modal_area=int(clip.modal_masks[k, t].sum()),
                              **({} if doubt is None else {"uncertainty": round(float(doubt[k, t]), 6)}))
        labels = [category_name(c) for c in clip.category_ids]
        cvat.append((str(annotation.video), masks, clip.modal_masks, labels))
    if config.pipeline.samples > 1:
        review.sort(key=lambda row: -float(row["uncertainty"]))
    summary = {
        "annotations": str(config.annotations),
        "dataset": config.dataset,
        "model": config.model,
        "clips": count,
        "objects": sum(len(index.positions(i)) for i in range(count)),
        "frames": len(coco.images),
        "masks": len(coco.annotations),
        "settings": json.loads(json.dumps(asdict(config), default=str)),
        "sampling": {"steps": pipe.steps, "guidance": pipe.guidance, "samples": config.pipeline.samples,
                     "box_mode": pipe.box_mode},
        "timings_s": {**{k: round(v, 3) for k, v in timings.items()}, "total": round(time.perf_counter() - start, 3)},
    }
    with atomic_dir(out, command="annotate") as tmp:
        (tmp / "annotations.json").write_text(json.dumps(raw) + "\n")
        (tmp / "coco_instances.json").write_text(json.dumps(coco.to_dict()) + "\n")
        (tmp / "cvat").mkdir()
        written = set()
        for video, masks, modal, labels in cvat:
            safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in video)
            name = safe if safe not in written else f"{safe}_{len(written)}"  # two frame lists of one video
            written.add(name)
            write_cvat_video(tmp / "cvat" / f"{name}.xml", video, masks, modal, labels)
        with open(tmp / "review.csv", "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(review[0]) if review else ["uncertainty"])
            writer.writeheader()
            writer.writerows(review)
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
