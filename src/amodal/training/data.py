"""Training data: clips at the model's native size, and random windows drawn from them.

Three steps, kept apart:

1. *source*: clips come from :func:`amodal.data.synth.generate_clip` over a seed range
   or from a SAIL-VOS-format folder via :func:`amodal.data.datasets.open_dataset`;
2. *pool*: each clip is letterboxed once to the native ``(height, width)`` and
   split into per-object tracks (:class:`WindowPool`), cached in the run folder;
3. *sampling*: every batch is a pure function of ``(seed, step, process)``, so a
   resumed run draws exactly the batches an uninterrupted one would.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from amodal.clip import Clip
from amodal.depth.normalize import normalize_depth
from amodal.errors import InputError
from amodal.data.geometry import letterbox, to_model
from amodal.training.config import DataConfig, TrainConfig


@dataclass
class WindowPool:
    """Per-object tracks at native size, ready to window.

    Attributes:
        depth: one ``(T_c, h, w) float16`` inverse-depth array per clip (raw
            scale, normalised per window when sampled), ``nan`` on letterbox
            margins; ``None`` for clips without depth.
        modal: one ``(T_c, h, w) bool`` array per track.
        amodal: one ``(T_c, h, w) bool`` array per track.
        clip_of: ``(N,) int64``, the clip of each track.
    """

    depth: list[np.ndarray | None]
    modal: list[np.ndarray]
    amodal: list[np.ndarray]
    clip_of: np.ndarray

    def __len__(self) -> int:
        return len(self.modal)

    def hidden_frames(self, track: int, occluded_below: float) -> np.ndarray:
        """``(T_c,) bool``: frames where the track is present but less than ``occluded_below`` of it is visible."""
        area = self.amodal[track].reshape(len(self.amodal[track]), -1).sum(1)
        visible = self.modal[track].reshape(len(self.modal[track]), -1).sum(1)
        return (area > 0) & (visible < occluded_below * area)

    def visible_frames(self, track: int) -> np.ndarray:
        """``(T_c,) bool``: frames where some of the track is visible."""
        return self.modal[track].reshape(len(self.modal[track]), -1).any(1)


def clip_to_native(clip: Clip, height: int, width: int):
    """Letterbox one clip to ``height x width``.

    Returns ``(depth, modal, amodal)``: ``(T, h, w) float16`` raw inverse depth
    with ``nan`` margins (or ``None``), and ``(K, T, h, w) bool`` masks
    (area-averaged, then thresholded at 0.5).
    """
    if clip.amodal_masks is None:
        raise InputError(f"{clip.source or 'clip'}: training needs amodal masks (ground truth)")
    box = letterbox(clip.size, (height, width))
    modal = to_model(torch.from_numpy(clip.modal_masks).float(), box) > 0.5
    amodal = to_model(torch.from_numpy(clip.amodal_masks).float(), box) > 0.5
    depth = None
    if clip.depth is not None:
        depth = to_model(torch.from_numpy(clip.depth).float(), box, fill=float("nan")).to(torch.float16).numpy()
    return depth, modal.numpy(), amodal.numpy()


def box_crops(clip: Clip, height: int, width: int, margin: float):
    """Each object of ``clip`` seen through its amodal boxes (the union over the clip plus ``margin``).

    Yields ``(depth, modal, amodal)`` per object as :func:`clip_to_native` gives them for a clip,
    ``(T, h, w)``; objects never present are skipped.
    """
    from amodal.segmentation.boxes import boxes_of_masks, crop, window_region

    if clip.amodal_masks is None:
        raise InputError(f"{clip.source or 'clip'}: training needs amodal masks (ground truth)")
    boxes = boxes_of_masks(clip.amodal_masks)
    for k in range(clip.num_objects):
        region = window_region(boxes[k], (height, width), margin)
        if region is None:
            continue
        modal = crop(torch.from_numpy(clip.modal_masks[k]), region, (height, width)) > 0.5
        amodal = crop(torch.from_numpy(clip.amodal_masks[k]), region, (height, width)) > 0.5
        depth = None
        if clip.depth is not None:
            depth = crop(torch.from_numpy(clip.depth), region, (height, width), fill=float("nan")).to(torch.float16).numpy()
        yield depth, modal.numpy(), amodal.numpy()


def build_pool(clips: Iterable[Clip], height: int, width: int, box_crop_margin: float | None = None) -> WindowPool:
    """Letterbox every clip and split it into tracks (objects never visible in the clip are skipped).

    With ``box_crop_margin`` every track is its object's box crop instead (:func:`box_crops`).
    """
    depth, modal, amodal, clip_of = [], [], [], []
    for index, clip in enumerate(clips):
        if box_crop_margin is not None:
            for d, m, a in box_crops(clip, height, width, box_crop_margin):
                if m.any():
                    depth.append(d)
                    modal.append(m)
                    amodal.append(a)
                    clip_of.append(len(depth) - 1)
            continue
        d, m, a = clip_to_native(clip, height, width)
        depth.append(d)
        for k in range(m.shape[0]):
            if m[k].any():
                modal.append(m[k])
                amodal.append(a[k])
                clip_of.append(index)
    if not modal:
        raise InputError("the training data has no object with a visible modal mask")
    return WindowPool(depth, modal, amodal, np.asarray(clip_of, dtype=np.int64))


def save_pool(path: Path, pool: WindowPool, key: str) -> None:
    """Cache a pool as one ``.npz`` (masks bit-packed), written atomically."""
    from amodal.util.fs import atomic_path

    arrays = {"clip_of": pool.clip_of, "key": np.frombuffer(key.encode(), dtype=np.uint8)}
    for i, d in enumerate(pool.depth):
        if d is not None:
            arrays[f"depth_{i}"] = d
    arrays["num_clips"] = np.asarray(len(pool.depth))
    for i, (m, a) in enumerate(zip(pool.modal, pool.amodal)):
        arrays[f"modal_{i}"] = np.packbits(m, axis=-1)
        arrays[f"amodal_{i}"] = np.packbits(a, axis=-1)
        arrays[f"shape_{i}"] = np.asarray(m.shape)
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)


def load_pool(path: Path, key: str) -> WindowPool | None:
    """The cached pool at ``path`` if it was built with the same ``key``, else ``None``."""
    if not path.is_file():
        return None
    with np.load(path) as z:
        if bytes(z["key"]).decode() != key:
            return None
        clip_of = z["clip_of"]
        depth = [z[f"depth_{i}"] if f"depth_{i}" in z else None for i in range(int(z["num_clips"]))]
        modal, amodal = [], []
        for i in range(len(clip_of)):
            shape = tuple(z[f"shape_{i}"])
            modal.append(np.unpackbits(z[f"modal_{i}"], axis=-1, count=shape[-1]).astype(bool))
            amodal.append(np.unpackbits(z[f"amodal_{i}"], axis=-1, count=shape[-1]).astype(bool))
    return WindowPool(depth, modal, amodal, clip_of)


def _generated_clips(config: DataConfig, split: str, count: int) -> Iterator[Clip]:
    """The first ``count`` videos of ``split``, as `amodal data synth --seed data_seed` makes them."""
    from amodal.data.synth.config import SynthConfig
    from amodal.data.synth.dataset import video_seed
    from amodal.data.synth.generate import generate_clip

    synth = SynthConfig.from_json(config.synth_config) if config.synth_config else SynthConfig()
    for i in range(count):
        yield generate_clip(synth, video_seed(config.data_seed, split, i))


def _dataset_clips(config: DataConfig, split: str) -> Iterator[Clip]:
    from amodal.data.datasets import open_dataset

    yield from open_dataset("synthetic", config.root, split=split)


def source_clips(config, split: str) -> tuple[Iterator[Clip], int | None]:
    """The ``"train"`` or ``"val"`` clips a data config names, and how many (``None``: unknown until read).

    ``config`` is any data config with the source fields of :class:`DataConfig` (both stages' are).
    """
    name = config.train_split if split == "train" else config.val_split
    if config.source == "generator":
        total = config.train_clips if split == "train" else config.val_clips
        return _generated_clips(config, name, total), total
    return _dataset_clips(config, name), None


def pool_key(config: DataConfig, split: str, height: int, width: int) -> str:
    """What a cached pool depends on: the source settings, the split and the native size."""
    synth = Path(config.synth_config).read_text() if config.synth_config else ""
    name = config.train_split if split == "train" else config.val_split
    parts = [config.source, config.root, name, str(height), str(width), synth]
    if config.source == "generator":
        parts += [str(config.data_seed), str(config.train_clips if split == "train" else config.val_clips)]
    margin = getattr(config, "box_crop_margin", None)
    if margin is not None:
        parts.append(f"box_crop_margin={margin}")
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()


def open_pool(config: DataConfig, split: str, height: int, width: int, cache_dir: Path | None, progress: bool = True) -> WindowPool:
    """The ``"train"`` or ``"val"`` pool for ``config``, from the cache when it is current."""
    key = pool_key(config, split, height, width)
    cache = None if cache_dir is None else Path(cache_dir) / f"pool_{split}_{key[:16]}.npz"
    if cache is not None:
        pool = load_pool(cache, key)
        if pool is not None:
            return pool
    clips, total = source_clips(config, split)
    if progress:
        from tqdm import tqdm

        clips = tqdm(clips, total=total, desc=f"{split} clips", unit="clip", leave=False)
    pool = build_pool(clips, height, width, getattr(config, "box_crop_margin", None))
    if cache is not None:
        save_pool(cache, pool, key)
    return pool



def _window(array: np.ndarray, start: int, length: int) -> np.ndarray:
    """``length`` frames from ``start``; a clip shorter than ``length`` repeats its last frame."""
    out = array[start : start + length]
    if len(out) < length:
        out = np.concatenate([out, np.repeat(out[-1:], length - len(out), axis=0)])
    return out


def crop_around(masks: np.ndarray, size: tuple[int, int], rng: np.random.Generator) -> tuple[slice, slice]:
    """A ``size`` crop of ``(T, H, W)`` frames centred on the masks' box over all frames.

    The centre is jittered by up to a quarter of the crop each way and the crop
    is kept inside the frame. Returns ``(rows, cols)`` slices.
    """
    height, width = masks.shape[1:]
    ch, cw = size
    ys, xs = np.nonzero(masks.any(axis=0))
    cy, cx = ((ys.min() + ys.max()) / 2, (xs.min() + xs.max()) / 2) if len(ys) else (height / 2, width / 2)
    cy += rng.uniform(-ch / 4, ch / 4)
    cx += rng.uniform(-cw / 4, cw / 4)
    top = int(np.clip(round(cy - ch / 2), 0, height - ch))
    left = int(np.clip(round(cx - cw / 2), 0, width - cw))
    return slice(top, top + ch), slice(left, left + cw)


@dataclass(frozen=True)
class Batch:
    """A training batch at native size.

    ``modal`` and ``amodal``: ``(B, T, h, w) float32`` in ``{0, 1}``; ``depth``:
    ``(B, T, h, w) float32`` in ``[-1, 1]``; ``has_depth``: ``(B,) bool``.
    """

    modal: torch.Tensor
    amodal: torch.Tensor
    depth: torch.Tensor
    has_depth: torch.Tensor


def step_rng(seed: int, step: int, process: int, stream: int) -> np.random.Generator:
    """The NumPy generator of one step of one process: a pure function of its arguments."""
    return np.random.default_rng(np.random.SeedSequence([seed, step, process, stream]))


class WindowSampler:
    """Draws training windows from a pool; batch ``step`` depends only on ``(seed, step, process)``.

    The sampler's *position* is the step itself: there is no hidden iterator state
    to save, so resuming at step ``s`` continues the exact sequence of batches.
    """

    def __init__(self, pool: WindowPool, config: DataConfig, num_frames: int, seed: int):
        self.pool = pool
        self.config = config
        self.num_frames = num_frames
        self.seed = seed
        self.hidden = [pool.hidden_frames(i, config.occluded_below) for i in range(len(pool))]
        self.visible = [pool.visible_frames(i) for i in range(len(pool))]
        self.occluded_tracks = np.flatnonzero([h.any() for h in self.hidden])

    def _starts(self, frames: np.ndarray) -> np.ndarray:
        """Window starts whose window contains one of ``frames`` (``(T_c,) bool``)."""
        length = len(frames)
        last = max(0, length - self.num_frames)
        ok = [frames[s : s + self.num_frames].any() for s in range(last + 1)]
        return np.flatnonzero(ok)

    def draw(
        self, rng: np.random.Generator, paint_rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """One window: ``(modal, amodal, depth)`` as ``(T, h, w)`` arrays (depth normalised, or ``None``).

        ``paint_rng`` draws the painted occluders (``data.painted_share``) from a stream of its own,
        so the windows themselves do not depend on that setting.
        """
        cfg = self.config
        if len(self.occluded_tracks) and rng.random() < cfg.occluded_share:
            track = int(rng.choice(self.occluded_tracks))
            starts = self._starts(self.hidden[track])
        else:
            track = int(rng.integers(len(self.pool)))
            starts = self._starts(self.visible[track])
        start = int(rng.choice(starts))
        modal = _window(self.pool.modal[track], start, self.num_frames)
        amodal = _window(self.pool.amodal[track], start, self.num_frames)
        raw = self.pool.depth[int(self.pool.clip_of[track])]
        depth = None if raw is None else normalize_depth(_window(raw, start, self.num_frames))
        if cfg.painted_share and paint_rng is not None and paint_rng.random() < cfg.painted_share:
            modal = modal & ~painted_occluders(amodal, int(paint_rng.integers(2**62)))
        if cfg.crop:
            rows, cols = crop_around(amodal, cfg.crop, rng)
            modal, amodal = modal[:, rows, cols], amodal[:, rows, cols]
            depth = None if depth is None else depth[:, rows, cols]
        if cfg.flip:
            if rng.random() < 0.5:  # mirror left-right
                modal, amodal = modal[:, :, ::-1], amodal[:, :, ::-1]
                depth = None if depth is None else depth[:, :, ::-1]
            if rng.random() < 0.5:  # play backwards
                modal, amodal = modal[::-1], amodal[::-1]
                depth = None if depth is None else depth[::-1]
        return modal, amodal, depth

    def batch(self, step: int, process: int, size: int) -> Batch:
        """The ``size`` windows of ``step`` for ``process``."""
        rng = step_rng(self.seed, step, process, 0)
        paint_rng = step_rng(self.seed, step, process, 1)
        modal, amodal, depth, has_depth = [], [], [], []
        for _ in range(size):
            m, a, d = self.draw(rng, paint_rng)
            modal.append(np.ascontiguousarray(m))
            amodal.append(np.ascontiguousarray(a))
            has_depth.append(d is not None)
            depth.append(np.ascontiguousarray(d) if d is not None else np.zeros(m.shape, np.float32))
        return Batch(
            modal=torch.from_numpy(np.stack(modal)).float(),
            amodal=torch.from_numpy(np.stack(amodal)).float(),
            depth=torch.from_numpy(np.stack(depth)),
            has_depth=torch.tensor(has_depth),
        )


def painted_occluders(amodal: np.ndarray, seed: int) -> np.ndarray:
    """``(T, h, w) bool``: the pixels that occluders painted over an object with masks ``amodal (T, h, w)`` cover.

    The events of :func:`amodal.data.occlude.plan_occluders` (the real-shape benchmark's own
    construction), planned from the object's masks, so they cross it wherever it goes.
    """
    from amodal.data.occlude import plan_occluders

    covered = np.zeros(amodal.shape, dtype=bool)
    for occluder in plan_occluders(amodal, seed=seed):
        for t in range(occluder.start, occluder.stop):
            covered[t] |= occluder.mask(t, amodal.shape[1:])
    return covered


def validation_windows(pool: WindowPool, config: DataConfig, num_frames: int) -> Batch:
    """Fixed validation windows: for each track that is hidden somewhere, the window centred on its most hidden frame.

    At most ``config.val_windows`` windows, in track order (deterministic).
    """
    modal, amodal, depth, has_depth = [], [], [], []
    for track in range(len(pool)):
        if len(modal) >= config.val_windows:
            break
        area = pool.amodal[track].reshape(len(pool.amodal[track]), -1).sum(1)
        visible = pool.modal[track].reshape(len(pool.modal[track]), -1).sum(1)
        hidden = np.where(area > 0, 1.0 - visible / np.maximum(area, 1), 0.0)
        if hidden.max() <= 1.0 - config.occluded_below:
            continue
        length = len(area)
        start = int(np.clip(int(hidden.argmax()) - num_frames // 2, 0, max(0, length - num_frames)))
        modal.append(_window(pool.modal[track], start, num_frames))
        amodal.append(_window(pool.amodal[track], start, num_frames))
        raw = pool.depth[int(pool.clip_of[track])]
        has_depth.append(raw is not None)
        depth.append(normalize_depth(_window(raw, start, num_frames)) if raw is not None else np.zeros(modal[-1].shape, np.float32))
    if not modal:
        raise InputError("the validation data has no partly hidden object; use more validation clips")
    return Batch(
        modal=torch.from_numpy(np.stack(modal)).float(),
        amodal=torch.from_numpy(np.stack(amodal)).float(),
        depth=torch.from_numpy(np.stack(depth)),
        has_depth=torch.tensor(has_depth),
    )


def config_validation_windows(config: TrainConfig, cache_dir: str | Path | None, progress: bool = False) -> Batch:
    """The fixed validation windows a training run of ``config`` validates on (its val split, native size)."""
    m = config.model
    pool = open_pool(config.data, "val", m.height, m.width, None if cache_dir is None else Path(cache_dir), progress)
    return validation_windows(pool, config.data, m.num_frames)
