"""``amodal data occlude``: benchmark splits with known amodal truth from real clip folders.

Each input clip (``<name>/rgbs/*`` frames and ``<name>/masks/*`` luminance masks of one object) is
read, cropped of black borders, optionally shrunk, and cut around its excluded frames into
segments; each segment is occluded ``variants`` times by :func:`amodal.data.occlude.occlude` with a
seed hashed from (``--seed``, clip name, segment start, variant). The split is written in the
synthetic set format (``docs/datasets.md``), without depth, to ``OUT/<split>/`` atomically: the
old split stays until the new one is complete.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amodal.data.occlude import OccludeConfig, Occlusion, content_box, fit_size, kept_segments, occlude, resize_clip
from amodal.data.synth.dataset import VISIBILITY_BINS, visibility_histogram
from amodal.errors import InputError
from amodal.util.fs import atomic_dir, check_output, mark_output, output_command, write_json

FORMAT = "amodal-occlude/1"  # written to generation.json; bump when the on-disk layout changes
PNG_COMPRESSION = 1  # zlib level, as the synthetic writer uses


@dataclass(frozen=True)
class OccludeJob:
    """One split to build from real clip folders."""

    clips: tuple[Path, ...]  # clip folders (with rgbs/ and masks/) or folders of clip folders
    out: Path  # dataset root; the split is written to out/<split>/
    split: str = "test"  # split name ([a-z0-9_-]): the folder out/<split>/ (seeds do not depend on it)
    seed: int = 0  # base seed; video seeds hash it with the clip name, the segment's first frame and the variant
    exclude: tuple[tuple[str, tuple[int, ...]], ...] = ()  # (clip name, 0-based frame indices) never used
    size: tuple[int, int] | None = None  # (H, W) the frames are shrunk to fit, keeping their aspect ratio; None keeps them
    variants: int = 1  # occluded versions of each segment, with independent seeds (same footage, other occluders)
    config: OccludeConfig = field(default_factory=OccludeConfig)  # how occluders are planned and painted
    overwrite: bool = False  # replace an existing --out that amodal data occlude did not write

    def __post_init__(self) -> None:
        if not re.fullmatch(r"[a-z0-9][a-z0-9_-]*", self.split):
            raise InputError(f"--split: {self.split!r} is not a split name; use lowercase letters, digits, '-' or '_'")
        if not self.clips:
            raise InputError("--clips: give at least one clip folder")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"--seed must be in [0, 2**63), got {self.seed}")
        if self.size is not None and (len(self.size) != 2 or min(self.size) < 8):
            raise InputError(f"--size must be HxW with both at least 8, got {self.size}")
        if self.variants < 1:
            raise InputError(f"--variants must be at least 1, got {self.variants}")
        object.__setattr__(self, "clips", tuple(Path(c) for c in self.clips))
        object.__setattr__(self, "out", Path(self.out))


def parse_exclude(text: str) -> tuple[str, tuple[int, ...]]:
    """``"horse:10-18"`` or ``"horse:3,10-18"`` -> ``("horse", (3, 10, ..., 18))``; ranges are inclusive, 0-based."""
    name, sep, spec = text.rpartition(":")
    if not sep or not name or not spec:
        raise InputError(f"--exclude {text!r}: expected CLIP:FRAMES, e.g. horse:10-18 or birdcage:0-3,22-24")
    frames: set[int] = set()
    for part in spec.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", part)
        if not match:
            raise InputError(f"--exclude {text!r}: {part!r} is not a frame N or a range A-B")
        a = int(match.group(1))
        b = int(match.group(2)) if match.group(2) is not None else a
        if b < a:
            raise InputError(f"--exclude {text!r}: range {part!r} ends before it starts")
        frames.update(range(a, b + 1))
    return name, tuple(sorted(frames))


def parse_size(text: str) -> tuple[int, int]:
    """``"180x320"`` -> ``(180, 320)`` (height x width)."""
    match = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", text)
    if not match:
        raise InputError(f"--size {text!r}: expected HxW in pixels, e.g. 180x320")
    return int(match.group(1)), int(match.group(2))


@dataclass(frozen=True, eq=False)
class _Video:
    """One written video: a kept segment of a source clip, occluded."""

    vid: str  # video_id and folder name: the clip name, or <clip>_<first>-<last> for a segment
    clip_name: str  # the source clip
    original: tuple[int, ...]  # the source clip's 0-based frame indices
    made: Occlusion


def _is_clip(folder: Path) -> bool:
    return (folder / "rgbs").is_dir() and (folder / "masks").is_dir()


def find_clips(folders) -> list[tuple[str, Path]]:
    """``(name, folder)`` of every clip: a folder with ``rgbs/`` and ``masks/``, or each such subfolder, by name."""
    found: list[tuple[str, Path]] = []
    for given in folders:
        folder = Path(given)
        if not folder.is_dir():
            raise InputError(f"--clips {given}: folder not found; pass a clip folder (rgbs/, masks/) or a folder of them")
        if _is_clip(folder):
            found.append((folder.resolve().name, folder))
            continue
        inner = sorted((p for p in folder.iterdir() if p.is_dir() and _is_clip(p)), key=lambda p: p.name)
        if not inner:
            raise InputError(f"--clips {given}: holds no rgbs/ and masks/ folders, nor subfolders that do")
        found.extend((p.name, p) for p in inner)
    names = [name for name, _ in found]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"--clips: two clips are named {', '.join(repeated)}; clip names must be unique")
    return found


def segment_seed(seed: int, clip: str, start: int, variant: int = 0) -> int:
    """The seed of variant ``variant`` of the segment of ``clip`` starting at original frame ``start``."""
    digest = hashlib.sha256(f"amodal-occlude:{seed}:{clip}:{start}:{variant}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def _bbox(mask: np.ndarray) -> list[float]:
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size == 0:
        return [0.0, 0.0, 0.0, 0.0]
    return [float(cols[0]), float(rows[0]), float(cols[-1] - cols[0] + 1), float(rows[-1] - rows[0] + 1)]


def write_occluded_split(job: OccludeJob) -> dict:
    """Build and write the split of ``job``; returns the summary also written to ``summary.json``."""
    from PIL import Image

    from amodal.data.io.loader import load_clip
    from amodal.data.io.rle import encode

    check_output(job.out, command="data occlude", inputs=job.clips, overwrite=job.overwrite)
    clips = find_clips(job.clips)
    names = {name for name, _ in clips}
    excluded: dict[str, set[int]] = {}
    for name, frames in job.exclude:
        if name not in names:
            raise InputError(f"--exclude {name}:...: no clip named {name!r}; the clips are {', '.join(sorted(names))}")
        excluded.setdefault(name, set()).update(frames)

    videos: list[_Video] = []
    per_clip = {}
    for name, folder in clips:
        clip = load_clip(frames=folder / "rgbs", masks=folder / "masks")  # luminance masks: one object
        t_count = clip.num_frames
        bad = sorted(t for t in excluded.get(name, ()) if t >= t_count)
        if bad:
            raise InputError(f"--exclude {name}:...: frame {bad[0]} is past the clip's last frame {t_count - 1}")
        frames, mask = clip.frames, clip.modal_masks[0]
        y0, y1, x0, x1 = content_box(frames, mask, job.config.border_level)
        frames, mask = frames[:, y0:y1, x0:x1], mask[:, y0:y1, x0:x1]
        if job.size is not None:
            frames, mask = resize_clip(frames, mask, fit_size(frames.shape[1:3], job.size))
        segments = kept_segments(t_count, excluded.get(name, ()), job.config.min_segment_frames)
        drop = set(excluded.get(name, ()))
        per_clip[name] = {
            "frames": t_count,
            "excluded_frames": len(drop),
            "dropped_short_runs": t_count - len(drop) - sum(b - a for a, b in segments),
            "videos": len(segments) * job.variants,
            "cropped_borders": [y0, clip.size[0] - y1, x0, clip.size[1] - x1],
            "size": list(frames.shape[1:3]),
        }
        for start, stop in segments:
            base = name if (start, stop) == (0, t_count) else f"{name}_{start:03d}-{stop - 1:03d}"
            for variant in range(job.variants):
                vid = base if job.variants == 1 else f"{base}_v{variant}"
                made = occlude(
                    frames[start:stop], mask[start:stop], job.config, segment_seed(job.seed, name, start, variant),
                    fps=clip.fps, source=f"{folder} frames {start}-{stop - 1}", frame_names=clip.frame_names[start:stop],
                )
                videos.append(_Video(vid, name, tuple(range(start, stop)), made))
    if not videos:
        raise InputError("every frame of every clip is excluded (or in a run shorter than min_segment_frames); nothing to write")

    out = Path(job.out)
    out.mkdir(parents=True, exist_ok=True)
    if output_command(out) is None:
        mark_output(out, "data occlude")
    entries = []
    image_id = 0
    with atomic_dir(out / job.split) as tmp:
        for video in videos:
            vid, clip, kinds = video.vid, video.made.clip, video.made.kinds
            folder = tmp / "videos" / vid
            for sub in ("rgb", f"amodal_rgb/{clip.object_ids[0]}"):
                (folder / sub).mkdir(parents=True)
            for t, frame_name in enumerate(clip.frame_names):
                Image.fromarray(clip.frames[t]).save(folder / "rgb" / f"{frame_name}.png", compress_level=PNG_COMPRESSION)
                Image.fromarray(clip.amodal_rgb[0, t]).save(
                    folder / "amodal_rgb" / str(clip.object_ids[0]) / f"{frame_name}.png", compress_level=PNG_COMPRESSION
                )
            height, width = clip.size
            amodal, modal = clip.amodal_masks[0], clip.modal_masks[0]
            entries.append(
                {
                    "segmentation": [encode(amodal[t]) for t in range(clip.num_frames)],
                    "visible_mask": [encode(modal[t]) for t in range(clip.num_frames)],
                    "bbox": [_bbox(amodal[t]) for t in range(clip.num_frames)],
                    "image_ids": list(range(image_id, image_id + clip.num_frames)),
                    "obj_id": int(clip.object_ids[0]),
                    "category_id": int(clip.category_ids[0]),
                    "category_name": "unknown",
                    "image_file_names": [f"videos/{vid}/rgb/{n}.png" for n in clip.frame_names],
                    "amodal_rgb_file_names": [
                        f"videos/{vid}/amodal_rgb/{clip.object_ids[0]}/{n}.png" for n in clip.frame_names
                    ],
                    "video_id": vid,
                    "height": height,
                    "width": width,
                    "fps": float(clip.fps),
                    "source_clip": video.clip_name,
                    "source_frames": list(video.original),
                    "occluder_kinds": list(kinds),
                }
            )
            image_id += clip.num_frames
        summary = summarize(videos, per_clip)
        summary["split"] = job.split
        write_json(tmp / "annotations.json", entries, indent=None)
        write_json(tmp / "summary.json", summary)
        write_json(
            tmp / "generation.json",
            {
                "format": FORMAT,
                "split": job.split,
                "seed": job.seed,
                "clips": {name: str(folder) for name, folder in clips},
                "exclude": {name: sorted(frames) for name, frames in sorted(excluded.items())},
                "size": list(job.size) if job.size is not None else None,
                "variants": job.variants,
                "config": job.config.to_dict(),
            },
        )
    return summary


def summarize(videos: list[_Video], per_clip: dict) -> dict:
    """Counts and visibility statistics of a built split."""
    fractions, kinds_frames, visible_by_kind = [], {}, {}
    events: dict[str, int] = {}
    appearances: dict[str, int] = {}
    hidden_planned = 0
    frames = 0
    for video in videos:
        clip, kinds, plan, looks = video.made.clip, video.made.kinds, video.made.occluders, video.made.appearances
        fraction = clip.visible_fraction()[0]
        fractions.append(fraction[~np.isnan(fraction)])
        frames += clip.num_frames
        for occluder, look in zip(plan, looks):
            events[occluder.kind] = events.get(occluder.kind, 0) + 1
            appearances[look] = appearances.get(look, 0) + 1
            hidden_planned += len(occluder.hidden)
        for t, kind in enumerate(kinds):
            key = kind or "none"
            kinds_frames[key] = kinds_frames.get(key, 0) + 1
            if not np.isnan(fraction[t]):
                visible_by_kind.setdefault(key, []).append(float(fraction[t]))
    f = np.concatenate(fractions) if fractions else np.zeros(0)
    histogram = visibility_histogram(f).tolist()
    return {
        "videos": len(videos),
        "objects": len(videos),
        "frames": frames,
        "clips": per_clip,
        "visible_fraction_histogram": dict(zip(VISIBILITY_BINS, histogram)),
        "object_frames_in_view": int(f.size),
        "fully_hidden_share": round(histogram[0] / f.size, 4) if f.size else 0.0,
        "fully_visible_share": round(histogram[-1] / f.size, 4) if f.size else 0.0,
        "mean_visible_fraction": round(float(f.mean()), 4) if f.size else None,
        "occluder_events": dict(sorted(events.items())),
        "occluder_appearances": dict(sorted(appearances.items())),
        "frames_per_occluder_kind": dict(sorted(kinds_frames.items())),
        "mean_visible_fraction_per_kind": {
            k: round(float(np.mean(v)), 4) for k, v in sorted(visible_by_kind.items())
        },
        "panel_hidden_frames_planned": hidden_planned,
    }


def format_summary(summary: dict, split_dir: Path) -> str:
    """A few human-readable lines about a written split."""
    hist = ", ".join(f"{k}: {v}" for k, v in summary["visible_fraction_histogram"].items())
    clips = "; ".join(
        f"{name} {c['frames'] - c['excluded_frames'] - c['dropped_short_runs']}/{c['frames']} frames "
        f"in {c['videos']} video{'s' if c['videos'] != 1 else ''} at {c['size'][0]}x{c['size'][1]}"
        for name, c in summary["clips"].items()
    )
    events = ", ".join(f"{k} {v}" for k, v in summary["occluder_events"].items())
    return "\n".join(
        [
            f"{split_dir}: {summary['videos']} videos, {summary['frames']} frames",
            f"clips: {clips}",
            f"occluders: {events}",
            f"visible fraction of object-frames: {hist}",
            f"fully hidden {100 * summary['fully_hidden_share']:.1f}%, fully visible {100 * summary['fully_visible_share']:.1f}%, "
            f"mean visible fraction {summary['mean_visible_fraction']}",
        ]
    )
