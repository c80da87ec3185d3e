"""Training of the stage-2 models (diffusion completer and regression twin), on the same loop as stage 1.

Data, as the paper trains content completion: objects of the synthetic world with occluders
pasted over them, and the world's own occlusions, always against the object's true unoccluded
appearance (``Clip.amodal_rgb``). Each training sample is one object over one window, cropped
around its amodal box (:mod:`amodal.completion.crops`, what the pipeline does at inference).

How occlusion is drawn (:func:`paste_occluder`): with probability ``paste_share`` a window gets
an occluder pasted in front, the amodal mask of another sample moving on a straight line, placed
so that the share of the object left visible, judged against the *unoccluded* object, is near a
target drawn uniformly from ``[min_visible, max_visible]``. (The reference adds occluders until
modal/amodal IoU < 0.7 against the already occluded mask, which leaves objects that were occluded
before nearly unoccluded.) The other windows keep the world's own occlusion, so the model also
sees fully visible objects, which it must leave as they are.

The loss is focused on what the model has to invent: pixel weights ``1 + hidden_weight`` on the
hidden part, 1 on the visible part, ``background_weight`` outside the amodal mask (where the
target is white).
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from amodal.completion.crops import crop_mask, crop_rgb, object_box
from amodal.completion.model import CompleterConfig, build_completer, build_condition, save_completer
from amodal.diffusion import append_dims, sample_training_sigmas
from amodal.diffusion.loss import loss_weight
from amodal.errors import InputError
from amodal.training.config import SOURCES
from amodal.util.config import config_from_dict


OCCLUSION_RULES = ("unoccluded", "reference")
REFERENCE_KEEP = 0.7  # the reference pastes occluders until modal/amodal IoU < 0.7 (against the occluded mask)
REFERENCE_MAX_OCCLUDERS = 4


@dataclass(frozen=True)
class CompletionDataConfig:
    """Where stage-2 training clips come from and how occlusion is drawn."""

    # "generator" (amodal.data.synth.generate_clip over a seed range) or "synthetic" (a folder
    # written by `amodal data synth`); the source fields mean what they mean for stage 1.
    source: str = "generator"
    root: str = ""
    train_split: str = "train"
    val_split: str = "val"
    train_clips: int = 300
    val_clips: int = 16
    data_seed: int = 0
    synth_config: str = ""
    # Windows per object taken from each clip (start frames drawn with data_seed).
    windows_per_object: int = 1
    # Objects whose amodal area in the crop is below this share of the crop are left out (specks).
    min_area: float = 0.02
    # Share of training windows given a pasted occluder; the rest keep the world's own occlusion.
    paste_share: float = 0.7
    # Range of the visible share (of the unoccluded object) a pasted occluder aims at.
    min_visible: float = 0.3
    max_visible: float = 0.9
    # How a pasted occluder is placed: "unoccluded" aims at a visible share of the unoccluded
    # object drawn from [min_visible, max_visible]; "reference" pastes occluders until the modal
    # mask keeps less than 0.7 of what was visible before (the reference trainer's IoU < 0.7 rule,
    # judged against the already occluded mask). Kept for the ablation in docs/results.md.
    occlusion_rule: str = "unoccluded"
    # Random horizontal flips and time reversal.
    flip: bool = True
    # Validation windows (at most), each with a pasted occluder drawn once with data_seed.
    val_windows: int = 32
    # Folder for the cached crops ("" = the run folder's data/); a model and its twin can share one.
    cache_dir: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise InputError(f"data.source must be one of {list(SOURCES)}, got {self.source!r}")
        if self.source == "synthetic" and not self.root:
            raise InputError("data.root must name the dataset folder when data.source is 'synthetic'")
        if min(self.train_clips, self.val_clips, self.windows_per_object, self.val_windows) < 1:
            raise InputError("data.train_clips, val_clips, windows_per_object and val_windows must be >= 1")
        if not 0.0 <= self.min_visible <= self.max_visible <= 1.0 or not 0.0 <= self.paste_share <= 1.0:
            raise InputError("data: need 0 <= min_visible <= max_visible <= 1 and paste_share in [0, 1]")
        if self.occlusion_rule not in OCCLUSION_RULES:
            raise InputError(f"data.occlusion_rule must be one of {list(OCCLUSION_RULES)}, got {self.occlusion_rule!r}")


@dataclass(frozen=True)
class CompletionTrainConfig:
    """One training run of a stage-2 model. Every field is in the JSON file or takes this default."""

    model: CompleterConfig = field(default_factory=CompleterConfig)
    data: CompletionDataConfig = field(default_factory=CompletionDataConfig)
    # Optimiser steps in total; the learning-rate schedule spans exactly these.
    steps: int = 3000
    batch_size: int = 4
    # Peak AdamW learning rate, warm-up, cosine decay to lr_final_ratio, weight decay, clip: as stage 1.
    lr: float = 1e-3
    warmup_steps: int = 100
    lr_final_ratio: float = 0.05
    weight_decay: float = 0.01
    grad_clip: float = 1.0
    ema_decay: float = 0.999
    # ln(sigma) ~ N(p_mean, p_std^2): EDM's setting for pixel-space images with sigma_data 0.5.
    p_mean: float = -1.2
    p_std: float = 1.2
    # Probability of dropping the whole condition (classifier-free guidance). Diffusion only.
    cond_dropout: float = 0.1
    # Pixel weights of the loss (module docstring).
    hidden_weight: float = 2.0
    background_weight: float = 0.1
    log_every: int = 10
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    validate_every: int = 500
    val_steps: int = 8
    val_guidance: float = 1.5
    seed: int = 0
    bf16: bool = False
    # A completer folder (or bundled completion model name) to start from; "" = random weights.
    init_from: str = ""

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints", "val_steps"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.validate_every < 0 or self.lr <= 0 or self.p_std <= 0:
            raise InputError("validate_every must be >= 0, lr and p_std > 0")
        for name in ("cond_dropout", "ema_decay", "lr_final_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.hidden_weight < 0 or self.background_weight < 0:
            raise InputError("hidden_weight and background_weight must be >= 0")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "CompletionTrainConfig":
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except OSError as e:
            raise InputError(f"{path}: cannot read the training config ({e.strerror}); check the --config path") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); fix the file") from None
        return config_from_dict(cls, values, str(path))


# Data ------------------------------------------------------------------------------------------
@dataclass
class CropPool:
    """Object-windows at model size: ``frames``/``target`` ``(N, T, h, w, 3) uint8`` (the crop of the
    frame and of the true appearance on white), ``modal``/``amodal`` ``(N, T, h, w) bool``."""

    frames: np.ndarray
    target: np.ndarray
    modal: np.ndarray
    amodal: np.ndarray

    def __len__(self) -> int:
        return len(self.frames)


def crop_windows(clip, num_frames: int, size: tuple[int, int], margin: float, rng: np.random.Generator,
                 windows_per_object: int, min_area: float):
    """Yield ``(frames, target, modal, amodal)`` model-size crops of the objects of one clip."""
    t = clip.num_frames
    for k in range(clip.num_objects):
        for _ in range(windows_per_object):
            start = int(rng.integers(0, max(1, t - num_frames + 1)))
            span = slice(start, start + num_frames)
            amodal = clip.amodal_masks[k, span]
            box = object_box(amodal, margin, size)
            if box is None:
                continue
            crops = (
                crop_rgb(clip.frames[span], box, size),
                crop_rgb(clip.amodal_rgb[k, span], box, size),
                crop_mask(clip.modal_masks[k, span], box, size),
                crop_mask(amodal, box, size),
            )
            frames, target, modal, amodal_c = (_pad_frames(c, num_frames) for c in crops)
            amodal_c = torch.maximum(amodal_c, modal)
            if float(amodal_c.mean()) < min_area:
                continue
            yield (
                (frames.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy(),
                (target.permute(0, 2, 3, 1) * 255).round().to(torch.uint8).numpy(),
                modal.bool().numpy(),
                amodal_c.bool().numpy(),
            )


def _pad_frames(x: torch.Tensor, length: int) -> torch.Tensor:
    """Repeat the last frame (axis 0) up to ``length`` frames (clips shorter than a window)."""
    if len(x) >= length:
        return x
    return torch.cat([x, x[-1:].expand(length - len(x), *x.shape[1:])])


def open_crop_pool(config: CompletionTrainConfig, split: str, cache_dir: Path, progress: bool) -> CropPool:
    """The crops of the ``"train"`` or ``"val"`` clips, from the cache when it is current."""
    import hashlib

    from amodal.training.data import source_clips
    from amodal.util.fs import atomic_path

    m, d = config.model, config.data
    synth = Path(d.synth_config).read_text() if d.synth_config else ""
    parts = [dataclasses.asdict(d), split, m.num_frames, m.height, m.width, m.margin, synth]
    for volatile in ("cache_dir", "paste_share", "min_visible", "max_visible", "flip", "val_windows"):
        parts[0].pop(volatile)
    key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    cache = Path(cache_dir) / f"crops_{split}_{key[:16]}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            if bytes(z["key"]).decode() == key:
                return CropPool(z["frames"], z["target"], z["modal"], z["amodal"])
    clips, total = source_clips(d, split)
    if progress:
        from tqdm import tqdm

        clips = tqdm(clips, total=total, desc=f"{split} clips", unit="clip", leave=False)
    rng = np.random.default_rng([d.data_seed, 0 if split == "train" else 1])
    rows = [row for clip in clips
            for row in crop_windows(clip, m.num_frames, (m.height, m.width), m.margin, rng, d.windows_per_object, d.min_area)]
    if not rows:
        raise InputError(f"no {split} objects to complete: every clip's objects are absent or smaller than data.min_area")
    pool = CropPool(*(np.stack(column) for column in zip(*rows)))
    cache.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(cache) as tmp:
        with open(tmp, "wb") as f:
            np.savez(f, key=np.frombuffer(key.encode(), dtype=np.uint8), frames=pool.frames, target=pool.target,
                     modal=pool.modal, amodal=pool.amodal)
    return pool


def _shift(mask: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """``(h, w)`` mask moved by ``(dy, dx)`` pixels, empty where it came from outside."""
    out = np.zeros_like(mask)
    h, w = mask.shape
    if abs(dy) >= h or abs(dx) >= w:
        return out
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = mask[ys, xs]
    return out


def _moving_occluder(amodal: np.ndarray, shape: np.ndarray, rng: np.random.Generator) -> np.ndarray | None:
    """``(T, h, w) bool``: ``shape`` centred on a random point of the object, moving on a straight line."""
    t, h, w = amodal.shape
    ys, xs = np.nonzero(amodal.any(0))
    sy, sx = np.nonzero(shape)
    if len(ys) == 0 or len(sy) == 0:
        return None
    i, j = rng.integers(len(ys)), rng.integers(len(sy))
    oy, ox = int(ys[i] - sy[j]), int(xs[i] - sx[j])
    vy, vx = rng.uniform(-1.5, 1.5, size=2) * (h / 32, w / 64)
    return np.stack([_shift(shape, oy + int(round(vy * (f - t / 2))), ox + int(round(vx * (f - t / 2)))) for f in range(t)])


def paste_reference(modal: np.ndarray, amodal: np.ndarray, shapes, rng: np.random.Generator) -> np.ndarray:
    """The reference trainer's rule: paste occluders (from ``shapes``) until the modal mask keeps less
    than :data:`REFERENCE_KEEP` of its visible area (the IoU of a mask with a subset of itself), at
    most :data:`REFERENCE_MAX_OCCLUDERS`. Returns ``(T, h, w) bool``."""
    before = max(1, int(modal.sum()))
    out = modal
    for shape in shapes[:REFERENCE_MAX_OCCLUDERS]:
        occluded = _moving_occluder(amodal, shape, rng)
        if occluded is None:
            break
        out = out & ~occluded
        if out.sum() / before < REFERENCE_KEEP:
            break
    return out


def paste_occluder(modal: np.ndarray, amodal: np.ndarray, shape: np.ndarray, target_visible: float,
                   rng: np.random.Generator, tries: int = 8) -> np.ndarray:
    """``modal`` with an occluder in front: ``shape`` (an ``(h, w)`` mask) moving on a straight line.

    Of ``tries`` random placements, the one whose visible share of the unoccluded object
    (``amodal``, over the window) is nearest ``target_visible`` is kept. Returns ``(T, h, w) bool``.
    """
    area = max(1, int(amodal.sum()))
    best, best_gap = modal, abs(modal.sum() / area - target_visible)
    for _ in range(tries):
        occluded = _moving_occluder(amodal, shape, rng)
        if occluded is None:
            return modal
        candidate = modal & ~occluded
        gap = abs(candidate.sum() / area - target_visible)
        if gap < best_gap:
            best, best_gap = candidate, gap
    return best


@dataclass
class CompletionBatch:
    """``modal_rgb``/``target`` ``(B, T, 3, h, w) float32`` in ``[0, 1]``; ``modal``/``amodal`` ``(B, T, h, w)`` in ``{0, 1}``."""

    modal_rgb: torch.Tensor
    target: torch.Tensor
    modal: torch.Tensor
    amodal: torch.Tensor


def make_batch(pool: CropPool, indices, config: CompletionDataConfig, rng: np.random.Generator, paste: bool = True,
               flip: bool = True) -> CompletionBatch:
    """The samples ``indices`` of ``pool`` with occlusion drawn as the module docstring says."""
    rows = []
    for index in indices:
        frames, target, modal, amodal = pool.frames[index], pool.target[index], pool.modal[index], pool.amodal[index]
        if paste and rng.random() < config.paste_share:
            if config.occlusion_rule == "reference":
                others = [pool.amodal[int(rng.integers(len(pool)))] for _ in range(REFERENCE_MAX_OCCLUDERS)]
                modal = paste_reference(modal, amodal, [o[int(rng.integers(len(o)))] for o in others], rng)
            else:
                other = pool.amodal[int(rng.integers(len(pool)))]
                shape = other[int(rng.integers(len(other)))]
                modal = paste_occluder(modal, amodal, shape, rng.uniform(config.min_visible, config.max_visible), rng)
        if flip and config.flip:
            if rng.random() < 0.5:
                frames, target, modal, amodal = (a[:, :, ::-1] for a in (frames, target, modal, amodal))
            if rng.random() < 0.5:
                frames, target, modal, amodal = (a[::-1] for a in (frames, target, modal, amodal))
        rows.append((frames, target, modal, amodal))
    frames, target, modal, amodal = (torch.from_numpy(np.ascontiguousarray(np.stack(c))) for c in zip(*rows))
    frames = frames.permute(0, 1, 4, 2, 3).float() / 255.0
    target = target.permute(0, 1, 4, 2, 3).float() / 255.0
    modal, amodal = modal.float(), amodal.float()
    modal_rgb = torch.where(modal[:, :, None] > 0.5, frames, torch.ones_like(frames))
    return CompletionBatch(modal_rgb, target, modal, amodal)


class CropSampler:
    """The training batch of step ``s`` on process ``p``: a pure function of ``(seed, s, p)``."""

    def __init__(self, pool: CropPool, config: CompletionDataConfig, seed: int):
        self.pool, self.config, self.seed = pool, config, seed

    def batch(self, step: int, process: int, batch_size: int) -> CompletionBatch:
        rng = np.random.default_rng([self.seed, step, process, 2])
        return make_batch(self.pool, rng.integers(len(self.pool), size=batch_size), self.config, rng)


def validation_batch(pool: CropPool, config: CompletionDataConfig) -> CompletionBatch:
    """Up to ``val_windows`` windows, each with a pasted occluder drawn once with ``data_seed``."""
    rng = np.random.default_rng([config.data_seed, 3])
    count = min(len(pool), config.val_windows)
    forced = dataclasses.replace(config, paste_share=1.0)
    return make_batch(pool, np.arange(count), forced, rng, paste=True, flip=False)


# Objective -------------------------------------------------------------------------------------
def pixel_weights(batch: CompletionBatch, config: CompletionTrainConfig) -> torch.Tensor:
    """``(B, T, 1, h, w)``: ``1 + hidden_weight`` hidden, 1 visible, ``background_weight`` outside the object."""
    hidden = batch.amodal * (1.0 - batch.modal)
    weights = config.background_weight * (1.0 - batch.amodal) + batch.amodal + config.hidden_weight * hidden
    return weights[:, :, None]


def completion_loss(model, batch: CompletionBatch, config: CompletionTrainConfig, generator: torch.Generator) -> torch.Tensor:
    """Weighted squared error of the denoised (diffusion) or predicted (regression) appearance."""
    device = next(model.parameters()).device
    cond = build_condition(batch.modal_rgb, batch.amodal, batch.modal)
    x0 = batch.target * 2.0 - 1.0
    weights = pixel_weights(batch, config)
    b = x0.shape[0]
    if config.model.objective == "regression":
        cond, x0, weights = cond.to(device), x0.to(device), weights.to(device)
        return (weights * (model(cond).float() - x0) ** 2).mean()
    keep = (torch.rand(b, generator=generator) >= config.cond_dropout).float()
    cond = cond * append_dims(keep, cond.ndim)
    sigma = sample_training_sigmas(b, config.p_mean, config.p_std, generator=generator)
    noise = torch.randn(x0.shape, generator=generator)
    x0, sigma, noise, cond, weights = (t.to(device) for t in (x0, sigma, noise, cond, weights))
    denoised = model(x0 + append_dims(sigma, x0.ndim) * noise, sigma, cond).float()
    lam = append_dims(loss_weight(sigma, config.model.sigma_data), x0.ndim)
    return (lam * weights * (denoised - x0) ** 2).mean()


def hidden_psnr(pred: torch.Tensor, batch: CompletionBatch) -> torch.Tensor:
    """``(B,)`` PSNR (max 1) of ``pred (B, T, 3, h, w)`` on each window's hidden pixels; nan where none is hidden."""
    hidden = (batch.amodal * (1.0 - batch.modal))[:, :, None].expand_as(pred)
    err = ((pred - batch.target) ** 2 * hidden).flatten(1).sum(1)
    count = hidden.flatten(1).sum(1)
    mse = err / count.clamp(min=1)
    return torch.where(count > 0, -10 * torch.log10(mse.clamp(min=1e-10)), torch.nan)


def validate_completion(model, batch: CompletionBatch, config: CompletionTrainConfig, accelerator) -> dict:
    """Complete the validation windows with ``model`` (EMA weights): mean hidden-region PSNR, and the copy-modal baseline's."""
    index, count = accelerator.process_index, accelerator.num_processes
    shard = CompletionBatch(*(t[index::count] for t in dataclasses.astuple(batch)))
    size = math.ceil(batch.target.shape[0] / count)
    scores = torch.full((size, 2), torch.nan)
    if shard.target.shape[0]:
        generator = torch.Generator().manual_seed(config.seed)
        pred = model.samples(shard.modal_rgb, shard.amodal, shard.modal, 1, steps=config.val_steps,
                             guidance=config.val_guidance, generator=generator)[:, 0].cpu()
        pred = torch.where(shard.modal[:, :, None] > 0.5, shard.modal_rgb, pred)  # visible pixels as given
        scores[: shard.target.shape[0], 0] = hidden_psnr(pred, shard)
        scores[: shard.target.shape[0], 1] = hidden_psnr(shard.modal_rgb, shard)  # white hidden pixels
    gathered = accelerator.gather(scores.to(accelerator.device)).cpu().numpy()
    return {"psnr_occ": float(np.nanmean(gathered[:, 0])), "psnr_occ_copy_modal": float(np.nanmean(gathered[:, 1])),
            "windows": int(batch.target.shape[0])}


def train_completion(config: CompletionTrainConfig, out_dir: str | Path, *, stop_at: int | None = None,
                     progress: bool = True):
    """Train (or resume) one stage-2 model in ``out_dir``; the run folder is laid out as stage 1's."""
    from amodal.training.loop import Task, run_training

    def build(accelerator, main: bool) -> Task:
        mcfg = config.model
        start = _initial_state(config.init_from, mcfg) if config.init_from else None
        cache_dir = Path(config.data.cache_dir) if config.data.cache_dir else Path(out_dir) / "data"
        with accelerator.main_process_first():
            train_pool = open_crop_pool(config, "train", cache_dir, progress and main)
            val_pool = open_crop_pool(config, "val", cache_dir, progress and main)
        sampler = CropSampler(train_pool, config.data, config.seed)
        val = validation_batch(val_pool, config.data)
        model = build_completer(mcfg)
        if start is not None:
            from amodal.checkpoints.safetensors import load_state_strict

            load_state_strict(model.backbone, start, config.init_from)
        return Task(
            name=f"completion {mcfg.objective}",
            command="train completion",
            model=model,
            eval_model=build_completer(mcfg).to(accelerator.device).eval(),
            batch=sampler.batch,
            loss=lambda m, batch, generator: completion_loss(m, batch, config, generator),
            validate=lambda m, acc: validate_completion(m, val, config, acc),
            describe=lambda s: f"val psnr_occ {s['psnr_occ']:.2f} dB (copy-modal {s['psnr_occ_copy_modal']:.2f})",
            save=lambda folder, state: save_completer(folder, mcfg, state),
        )

    return run_training(build, config, out_dir, stop_at=stop_at, progress=progress)


def _initial_state(name_or_path: str, config: CompleterConfig) -> dict[str, torch.Tensor]:
    """Backbone weights of a completer (folder or bundled name) to start from; its backbone must equal ``config``'s."""
    from amodal.checkpoints.formats import OURS
    from amodal.checkpoints.registry import resolve
    from amodal.completion.model import load_completer_folder

    found = resolve(name_or_path, "completion", flag="init_from")
    if found.kind != OURS:
        raise InputError(f"init_from {name_or_path}: pass a completer folder written by `amodal train completion`")
    start = load_completer_folder(found.path)
    if start.config.backbone != config.backbone:
        raise InputError(f"init_from {name_or_path}: its backbone config differs from this run's model.backbone")
    old = start.config
    if old.objective == "regression" and config.objective == "diffusion":
        if config.noise_input != "log_snr":
            raise InputError(
                f"init_from {name_or_path}: a regression twin can only start a diffusion completer with "
                'model.noise_input "log_snr" (the twin\'s noise input at infinite noise); set it in the config'
            )
        from amodal.checkpoints.surgery import completer_from_regression

        return completer_from_regression(start.backbone.state_dict(), config.backbone, config.sigma_data)
    if (old.objective, old.noise_input, old.sigma_data) != (config.objective, config.noise_input, config.sigma_data):
        raise InputError(
            f"init_from {name_or_path}: a {old.objective} completer (noise_input {old.noise_input}, sigma_data "
            f"{old.sigma_data}) cannot start a {config.objective} one (noise_input {config.noise_input}, sigma_data "
            f"{config.sigma_data}); only a regression twin can start a diffusion completer"
        )
    return start.backbone.state_dict()


def export_completion(
    run_dir: str | Path,
    out: str | Path,
    checkpoint: str | Path | None = None,
    sampling_steps: int | None = None,  # record a measured best setting in the model's config; None = the run's
    sampling_guidance: float | None = None,
) -> Path:
    """Export the EMA weights of a completion run's newest (or the given) checkpoint as a model folder."""
    from amodal.checkpoints.safetensors import load_state_strict, read_safetensors
    from amodal.training.checkpoint import pick_checkpoint

    run_dir = Path(run_dir)
    config = CompletionTrainConfig.from_json(run_dir / "config.json")
    checkpoint = pick_checkpoint(run_dir, checkpoint)
    model = build_completer(config.model)
    load_state_strict(model.backbone, read_safetensors(Path(checkpoint) / "ema.safetensors"), str(checkpoint))
    from amodal.training.loop import with_sampling

    save_completer(out, with_sampling(config.model, sampling_steps, sampling_guidance), model.backbone.state_dict())
    return Path(out)
