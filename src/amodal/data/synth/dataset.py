"""Writing synthetic splits to disk in the curated SAIL-VOS clip format (see ``docs/datasets.md``).

Layout of ``<out>/<split>/``::

    generation.json                 seed, split and SynthConfig the videos were made with
    annotations.json                list of per-object clips (written last, atomically)
    summary.json                    counts and occlusion statistics (written last, atomically)
    videos/<video_id>/rgb/frame_00000.jpg
    videos/<video_id>/depth/frame_00000.png          uint16 camera z-depth in millimetres
    videos/<video_id>/amodal_rgb/<obj_id>/frame_00000.png
    videos/<video_id>/annotation.json                this video's entries of annotations.json

Each video folder is built under a hidden temporary name and renamed into
place when complete, so a folder that exists is finished: reruns skip it, and
an interrupted run leaves no half-written video visible.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import sys
import time
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amodal.clip import Clip
from amodal.errors import InputError
from amodal.util.fs import atomic_dir, mark_output, output_command, write_json
from amodal.data.synth.config import CATEGORY_NAMES, SynthConfig

FORMAT = "amodal-synth/1"  # written to generation.json; bump when the on-disk layout changes
JPEG_QUALITY = 95
PNG_COMPRESSION = 1  # zlib level: 2.5x faster than the default 6 for 20-40% larger files
DEPTH_SCALE = 1000.0  # depth PNG units per scene unit: millimetres
VISIBILITY_BINS = ("0", "(0,0.25]", "(0.25,0.5]", "(0.5,0.75]", "(0.75,1)", "1")


@dataclass(frozen=True)
class SplitDefaults:
    """The size and seed a split gets when the command line does not say."""

    videos: int  # number of videos
    seed: int  # base seed; per-video seeds also mix in the split name, so splits never share a video


# Sized so that the training split (about 4,000 object tracks) is enough for a
# small segmenter and writes in under 15 minutes with 2 workers on a 2-core
# machine even while other jobs share the cores (see docs/datasets.md).
DEFAULT_SPLITS: dict[str, SplitDefaults] = {
    "train": SplitDefaults(videos=1200, seed=0),
    "val": SplitDefaults(videos=100, seed=0),
    "test": SplitDefaults(videos=200, seed=0),
}


@dataclass(frozen=True)
class SynthSplit:
    """One split to write: where, how many videos, from which seed, with which world."""

    out: Path  # dataset root; the split is written to ``out/<split>/``
    split: str  # split name (train, val, test or any other [a-z0-9_-] name); part of every video's seed
    videos: int  # number of videos; a rerun with more videos extends the split
    seed: int  # base seed; ``video_seed(seed, split, index)`` seeds each video
    synth: SynthConfig = field(default_factory=SynthConfig)  # the world the videos come from
    workers: int = 1  # processes rendering videos in parallel

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.split):
            raise InputError(f"--split: {self.split!r} is not a split name; use lowercase letters, digits, '-' or '_'")
        if self.videos < 1:
            raise InputError(f"--videos must be at least 1, got {self.videos}")
        if self.seed < 0:
            raise InputError(f"--seed must be a non-negative integer, got {self.seed}")
        if self.workers < 1:
            raise InputError(f"--workers must be at least 1, got {self.workers}")
        object.__setattr__(self, "out", Path(self.out))

    @property
    def split_dir(self) -> Path:
        return self.out / self.split


def video_seed(seed: int, split: str, index: int) -> int:
    """The seed of video ``index`` of ``split``: a hash of all three, so videos are independent and resumable."""
    digest = hashlib.sha256(f"amodal-synth:{seed}:{split}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def video_id(split: str, index: int) -> str:
    """Folder name and ``video_id`` of video ``index``: ``<split>_<index:06d>``."""
    return f"{split}_{index:06d}"


def clip_annotations(clip: Clip, vid: str, first_image_id: int) -> list[dict]:
    """The per-object entries of ``annotations.json`` for one clip (see ``docs/datasets.md``).

    ``image_ids`` are ``first_image_id + t``; file names are relative to the split folder.
    """
    from amodal.data.io.rle import encode

    t_count = clip.num_frames
    height, width = clip.size
    images = [f"videos/{vid}/rgb/{name}.jpg" for name in clip.frame_names]
    depths = [f"videos/{vid}/depth/{name}.png" for name in clip.frame_names]
    entries = []
    for k, (obj_id, category) in enumerate(zip(clip.object_ids, clip.category_ids)):
        amodal, modal = clip.amodal_masks[k], clip.modal_masks[k]
        entries.append(
            {
                "segmentation": [encode(amodal[t]) for t in range(t_count)],
                "visible_mask": [encode(modal[t]) for t in range(t_count)],
                "bbox": [_bbox(amodal[t]) for t in range(t_count)],
                "image_ids": [first_image_id + t for t in range(t_count)],
                "obj_id": int(obj_id),
                "category_id": int(category),
                "image_file_names": images,
                "video_id": vid,
                "category_name": CATEGORY_NAMES.get(int(category), "unknown"),
                "height": height,
                "width": width,
                "fps": float(clip.fps),
                "depth_file_names": depths,
                "amodal_rgb_file_names": [f"videos/{vid}/amodal_rgb/{obj_id}/{name}.png" for name in clip.frame_names],
            }
        )
    return entries


def _bbox(mask: np.ndarray) -> list[float]:
    """Amodal ``[x, y, w, h]`` with ``w = xmax - xmin + 1``; ``[0, 0, 0, 0]`` for an empty mask."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def depth_to_png(inverse_depth: np.ndarray) -> np.ndarray:
    """``(H, W) float32`` inverse depth ``1 / z`` -> ``(H, W) uint16`` z in millimetres, in ``[1, 65535]``."""
    z_mm = np.round(DEPTH_SCALE / inverse_depth.astype(np.float64))
    return np.clip(z_mm, 1, 65535).astype(np.uint16)


def write_video(split_dir: Path, split: str, index: int, seed: int, config: SynthConfig) -> None:
    """Generate video ``index`` of a split and write it, complete or not at all, to ``videos/<video_id>``."""
    from PIL import Image

    from amodal.data.synth.generate import generate_clip

    vid = video_id(split, index)
    clip = generate_clip(config, video_seed(seed, split, index))
    entries = clip_annotations(clip, vid, first_image_id=index * config.num_frames)
    with atomic_dir(split_dir / "videos" / vid) as tmp:
        (tmp / "rgb").mkdir()
        (tmp / "depth").mkdir()
        for t, name in enumerate(clip.frame_names):
            Image.fromarray(clip.frames[t]).save(tmp / "rgb" / f"{name}.jpg", quality=JPEG_QUALITY, subsampling=0)
            Image.fromarray(depth_to_png(clip.depth[t])).save(tmp / "depth" / f"{name}.png", compress_level=PNG_COMPRESSION)
        for k, obj_id in enumerate(clip.object_ids):
            folder = tmp / "amodal_rgb" / str(obj_id)
            folder.mkdir(parents=True)
            for t, name in enumerate(clip.frame_names):
                Image.fromarray(clip.amodal_rgb[k, t]).save(folder / f"{name}.png", compress_level=PNG_COMPRESSION)
        with open(tmp / "annotation.json", "w") as f:
            json.dump(entries, f)


def _write_video_job(job: tuple) -> int:
    write_video(*job)
    return job[2]


def write_split(job: SynthSplit, progress: bool = True) -> dict:
    """Write (or finish) one split; returns the summary also written to ``summary.json``.

    Videos already on disk are skipped, so an interrupted run resumes where it
    stopped. A split folder made with a different seed or config is an error.
    """
    split_dir = job.split_dir
    split_dir.mkdir(parents=True, exist_ok=True)
    if output_command(job.out) is None:
        mark_output(job.out, "data synth")  # so a later run resumes or adds splits here without --overwrite
    _claim_split(job)
    videos_dir = split_dir / "videos"
    videos_dir.mkdir(parents=True, exist_ok=True)
    for stale in videos_dir.glob(".*"):  # temporary folders of an interrupted run
        shutil.rmtree(stale, ignore_errors=True)
    todo = [i for i in range(job.videos) if not (videos_dir / video_id(job.split, i)).is_dir()]

    from tqdm import tqdm

    bar = tqdm(
        total=job.videos, initial=job.videos - len(todo), desc=f"synth {job.split}", unit="video",
        file=sys.stderr, disable=not progress, dynamic_ncols=True,
    )
    start = time.perf_counter()
    jobs = [(split_dir, job.split, i, job.seed, job.synth) for i in todo]
    with bar:
        if job.workers == 1 or len(jobs) <= 1:
            for args in jobs:
                _write_video_job(args)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=job.workers) as pool:
                pending = {pool.submit(_write_video_job, args) for args in jobs}
                try:
                    while pending:
                        finished, pending = wait(pending, return_when=FIRST_COMPLETED)
                        for future in finished:
                            future.result()  # re-raise a worker's error here
                            bar.update()
                except BaseException:
                    for future in pending:
                        future.cancel()
                    raise
    seconds = time.perf_counter() - start

    entries = []
    for i in range(job.videos):
        with open(videos_dir / video_id(job.split, i) / "annotation.json") as f:
            entries.extend(json.load(f))
    write_json(split_dir / "annotations.json", entries, indent=None)
    summary = summarize(entries, job.videos, job.synth.num_frames)
    summary.update(
        split=job.split,
        generated_this_run=len(todo),
        seconds_this_run=round(seconds, 2),
        clips_per_minute=round(60.0 * len(todo) / seconds, 2) if todo and seconds > 0 else None,
        workers=job.workers,
    )
    write_json(split_dir / "summary.json", summary)
    return summary


def _claim_split(job: SynthSplit) -> None:
    """Record the split's seed and config, or check that an existing split was made with the same."""
    record = {"format": FORMAT, "split": job.split, "seed": job.seed, "config": job.synth.to_dict()}
    path = job.split_dir / "generation.json"
    if path.exists():
        try:
            existing = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise InputError(f"{path}: unreadable ({e}); delete the split folder and run again") from None
        if existing != record:
            changed = sorted(k for k in record if existing.get(k) != record[k])
            if existing.get("config") != record["config"] and isinstance(existing.get("config"), dict):
                changed += sorted(k for k in record["config"] if existing["config"].get(k) != record["config"][k])
            raise InputError(
                f"{job.split_dir}: was generated with a different {', '.join(changed)}; "
                "use another --out or delete that split folder"
            )
        return
    write_json(path, record)


def summarize(entries: list[dict], videos: int, num_frames: int) -> dict:
    """Counts and visibility statistics of a split from its ``annotations.json`` entries.

    Visible fraction = modal area / amodal area per object-frame; object-frames
    with an empty amodal mask (the object is outside the image) are counted
    apart and left out of the histogram.
    """
    from pycocotools import mask as mask_utils

    per_class: dict[str, int] = {}
    histogram = np.zeros(len(VISIBILITY_BINS), dtype=np.int64)
    out_of_view = 0
    for entry in entries:
        name = entry["category_name"]
        per_class[name] = per_class.get(name, 0) + 1
        amodal = mask_utils.area([_rle(r) for r in entry["segmentation"]]).astype(np.float64)
        modal = mask_utils.area([_rle(r) for r in entry["visible_mask"]]).astype(np.float64)
        seen = amodal > 0
        out_of_view += int((~seen).sum())
        histogram += visibility_histogram(modal[seen] / amodal[seen])
    in_view = int(histogram.sum())
    return {
        "videos": videos,
        "objects": len(entries),
        "frames": videos * num_frames,
        "objects_per_class": dict(sorted(per_class.items())),
        "visible_fraction_histogram": dict(zip(VISIBILITY_BINS, histogram.tolist())),
        "object_frames_in_view": in_view,
        "object_frames_out_of_view": out_of_view,
        "fully_hidden_share": round(float(histogram[0]) / in_view, 4) if in_view else 0.0,
    }


def visibility_histogram(fractions: np.ndarray) -> np.ndarray:
    """Counts of visible fractions in the bins of ``VISIBILITY_BINS``: ``(6,) int64``.

    Bins: exactly 0, (0, 0.25], (0.25, 0.5], (0.5, 0.75], (0.75, 1), exactly 1.
    """
    f = np.asarray(fractions, dtype=np.float64)
    inner = f[(f > 0) & (f < 1)]
    middle = np.searchsorted(np.array([0.25, 0.5, 0.75]), inner, side="left")  # 0..3
    counts = np.bincount(middle, minlength=4)
    return np.concatenate([[np.sum(f == 0)], counts, [np.sum(f == 1)]]).astype(np.int64)


def _rle(rle: dict) -> dict:
    return {"size": rle["size"], "counts": rle["counts"].encode("ascii")}


def format_summary(summary: dict, split_dir: Path) -> str:
    """A few human-readable lines about a written split."""
    hist = ", ".join(f"{k}: {v}" for k, v in summary["visible_fraction_histogram"].items())
    classes = ", ".join(f"{k} {v}" for k, v in summary["objects_per_class"].items())
    speed = summary["clips_per_minute"]
    return "\n".join(
        [
            f"{split_dir}: {summary['videos']} videos, {summary['objects']} objects, {summary['frames']} frames",
            f"objects per class: {classes}",
            f"visible fraction of in-view object-frames: {hist}",
            f"fully hidden object-frames: {100 * summary['fully_hidden_share']:.1f}%",
            f"generated this run: {summary['generated_this_run']} videos in {summary['seconds_this_run']} s"
            + (f" ({speed} clips/min, {summary['workers']} worker{'s' if summary['workers'] > 1 else ''})" if speed else ""),
        ]
    )
