"""Training settings: frozen dataclasses loaded strictly from one JSON file."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from amodal.errors import InputError
from amodal.segmentation.model import SegmenterConfig
from amodal.util.config import config_from_dict

SOURCES = ("generator", "synthetic")
# The noise level of TrainConfig.infinite_share: far above any sampling schedule, finite so that x0 + sigma n stays a number.
INFINITE_SIGMA = 1e8


@dataclass(frozen=True)
class DataConfig:
    """Where training and validation clips come from and how windows are drawn."""

    # "generator": clips from amodal.data.synth.generate_clip over a seed range, made at
    # start-up and cached in the run folder; "synthetic": a SAIL-VOS-format folder
    # written by `amodal data synth`, read with amodal.data.datasets.open_dataset.
    source: str = "generator"
    # The folder of a "synthetic" source (unused by "generator").
    root: str = ""
    # Split names. The generator source makes the first videos of these splits
    # exactly as `amodal data synth --split NAME --seed data_seed` would (same
    # per-video seeds), so training never sees a video of the test split.
    train_split: str = "train"
    val_split: str = "val"
    # Generator source: number of training videos (indices 0 .. train_clips - 1 of train_split).
    train_clips: int = 400
    # Generator source: number of validation videos (indices 0 .. val_clips - 1 of val_split).
    val_clips: int = 16
    # Base seed of the generator source (the --seed of `amodal data synth`).
    data_seed: int = 0
    # A SynthConfig JSON for the generator source ("" = the generator's defaults).
    synth_config: str = ""
    # Share of training windows drawn from objects that are partly hidden in the
    # window; the rest are drawn from all objects, so the model also learns to
    # leave fully visible objects alone.
    occluded_share: float = 0.75
    # An object counts as hidden in a frame when less than this share of its amodal area is visible.
    occluded_below: float = 0.95
    # Random horizontal flips and time reversal (both leave the task's physics valid).
    flip: bool = True
    # Validation windows (at most); each is the window centred on an object's most hidden frame.
    val_windows: int = 32
    # Train on (height, width) crops of the native-size frames, centred on the
    # object (with jitter), instead of whole frames; () = whole frames. Objects
    # keep their scale, the network is fully convolutional, and a 32x64 crop
    # costs a quarter of a 64x128 frame: a cheap curriculum stage before
    # fine-tuning on whole frames. Validation always uses whole frames.
    crop: tuple[int, ...] = ()
    # Share of training windows whose object gets occluders painted over it
    # (amodal.data.occlude: bars, discs, panels that hide it entirely, static boxes, flat
    # shapes), which cut its modal mask and leave the depth as it was: occlusions with no
    # depth cue and no occluder mask, as in real footage where the occluder is not annotated.
    painted_share: float = 0.0
    # Amodal boxes as input (segmentation/boxes.py, box_mode "crop"): each track is seen through the
    # union of its true amodal boxes over the clip plus this margin per side, at the canvas's aspect,
    # instead of the whole frame (validation too). None = whole frames.
    box_crop_margin: float | None = None
    # Folder for the cached native-size pools ("" = the run folder's data/); runs
    # with the same data settings (a model and its regression twin) can share one.
    cache_dir: str = ""

    def __post_init__(self) -> None:
        if self.source not in SOURCES:
            raise InputError(f"data.source must be one of {list(SOURCES)}, got {self.source!r}")
        if self.source == "synthetic" and not self.root:
            raise InputError("data.root must name the dataset folder when data.source is 'synthetic'")
        if self.train_clips < 1 or self.val_clips < 1:
            raise InputError(f"data.train_clips and data.val_clips must be >= 1, got {self.train_clips}, {self.val_clips}")
        if self.box_crop_margin is not None and not 0 <= self.box_crop_margin <= 4:
            raise InputError(f"data.box_crop_margin must be in [0, 4] or null, got {self.box_crop_margin}")
        if not 0.0 <= self.occluded_share <= 1.0:
            raise InputError(f"data.occluded_share must be in [0, 1], got {self.occluded_share}")
        if not 0.0 <= self.painted_share <= 1.0:
            raise InputError(f"data.painted_share must be in [0, 1], got {self.painted_share}")
        if self.crop and (len(self.crop) != 2 or min(self.crop) < 1):
            raise InputError(f"data.crop must be [] or [height, width], got {list(self.crop)}")


@dataclass(frozen=True)
class TrainConfig:
    """One training run of a stage-1 model. Every field is in the JSON file or takes this default."""

    # The model to train (objective, backbone widths, native geometry, sampling schedule).
    model: SegmenterConfig = field(default_factory=SegmenterConfig)
    # The data.
    data: DataConfig = field(default_factory=DataConfig)
    # A model folder to start from (curriculum: fine-tune a model pretrained on an
    # easier distribution), or a bundled model name ("default", "default-regression":
    # fine-tune the shipped weights); "" starts from random weights.
    init_from: str = ""
    # Optimiser steps in total; the learning-rate schedule spans exactly these.
    steps: int = 3000
    # Windows per step per process (the global batch is this times the process count).
    batch_size: int = 4
    # Peak AdamW learning rate; 1e-3 suits a few-million-parameter U-Net with GroupNorm.
    lr: float = 1e-3
    # Linear warm-up steps before the peak, then cosine decay to lr_final_ratio * lr.
    warmup_steps: int = 100
    lr_final_ratio: float = 0.05
    # AdamW weight decay (decoupled).
    weight_decay: float = 0.01
    # Gradient-norm clip; diffusion losses at tiny sigma spike otherwise.
    grad_clip: float = 1.0
    # EMA decay of the exported weights (ramped up as (1 + step) / (10 + step) early on).
    ema_decay: float = 0.999
    # Mean and std of ln(sigma) for training noise levels. SVD fine-tuning uses
    # 0.7 / 1.6; binary masks lose their information at lower noise (see docs/results.md).
    p_mean: float = 0.7
    p_std: float = 1.6
    # Share of windows trained at (in effect) infinite noise, sigma = INFINITE_SIGMA, where
    # the denoiser's inputs are the one-step regression's (see amodal.diffusion.binary_scalings)
    # and its answer decides the hidden shape: a point mass added to the log-normal.
    infinite_share: float = 0.0
    # Probability of dropping the whole condition (zeros), which trains the
    # unconditional branch used by classifier-free guidance. Diffusion only.
    cond_dropout: float = 0.1
    # Probability of dropping the depth (zeros and flag 0), so one model runs with or without depth.
    depth_dropout: float = 0.3
    # Largest std of the Gaussian noise added to the modal and depth inputs (each
    # window draws its std uniformly in [0, cond_noise]): robustness to noisy
    # modal masks and depth from real estimators.
    cond_noise: float = 0.1
    # Share of windows whose self-conditioning input is the model's own first estimate
    # (no gradient through it) instead of zeros; only for models with self_condition.
    self_condition_rate: float = 0.5
    # Guidance distillation (Meng et al., "On Distillation of Guided Diffusion Models", 2023):
    # a diffusion model folder or bundled name whose *guided* estimate, at scale
    # distill_guidance, this diffusion model learns to give in one conditional pass, at every
    # noise level. The distilled model then samples with guidance 1: half the network
    # evaluations for the same answer. "" = ordinary training. The teacher must have this
    # run's condition layout (priors, self-conditioning) and the "logit" parameterisation.
    distill_from: str = ""
    distill_guidance: float = 1.5
    # Extra loss weight on hidden pixels (amodal and not modal): they are a few
    # percent of the frame but the whole point of the task.
    hidden_weight: float = 0.0
    # Extra loss weight on pixels a prior channel marks but the amodal truth leaves out: the gap
    # between a walker's legs inside the convex hull, the trail of a moving object in the temporal
    # union. There the hand-made priors mislead, and a model that trusts them adds area to objects
    # nothing hides ("do no harm"). 0 = off.
    false_fill_weight: float = 0.0
    # Steps between log lines (loss, lr) in log.jsonl.
    log_every: int = 10
    # Steps between checkpoints (resumable state), and how many to keep.
    checkpoint_every: int = 100
    keep_checkpoints: int = 2
    # Steps between validations (0 = only at the end), and the sampling used there.
    validate_every: int = 500
    val_steps: int = 8
    val_guidance: float = 1.5
    # Seed of everything random in the run: initial weights, batches, noise.
    seed: int = 0
    # bf16 autocast (faster on GPUs and recent CPUs; off by default on CPUs without bf16 units).
    bf16: bool = False

    def __post_init__(self) -> None:
        if self.data.crop:
            m, f = self.model, self.model.backbone.spatial_factor
            h, w = self.data.crop
            if h > m.height or w > m.width or h % f or w % f:
                raise InputError(
                    f"data.crop {list(self.data.crop)} must fit in {m.height}x{m.width} and be multiples of {f}"
                )
        for name in ("steps", "batch_size", "log_every", "checkpoint_every", "keep_checkpoints", "val_steps"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.validate_every < 0:
            raise InputError(f"validate_every must be >= 0, got {self.validate_every}")
        for name in ("cond_dropout", "depth_dropout", "ema_decay", "lr_final_ratio", "self_condition_rate", "infinite_share"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.distill_from and (self.model.objective != "diffusion" or self.model.parameterization != "logit"):
            raise InputError("distill_from needs a diffusion model with parameterization 'logit'")
        if self.distill_guidance < 1.0:
            raise InputError(f"distill_guidance must be >= 1, got {self.distill_guidance}")
        if self.lr <= 0 or self.p_std <= 0 or self.cond_noise < 0 or self.hidden_weight < 0 or self.false_fill_weight < 0:
            raise InputError("lr and p_std must be > 0; cond_noise, hidden_weight and false_fill_weight must be >= 0")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["model"] = self.model.to_dict()
        return d

    @classmethod
    def from_dict(cls, values: dict, where: str = "training config") -> "TrainConfig":
        """Build from JSON values; unknown keys and wrong types raise :class:`InputError`."""
        return config_from_dict(cls, values, where)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "TrainConfig":
        """Load a training config file (any subset of fields; the rest keep their defaults)."""
        path = Path(path)
        try:
            values = json.loads(path.read_text())
        except OSError as e:
            raise InputError(f"{path}: cannot read the training config ({e.strerror}); check the --config path") from None
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); fix the file") from None
        return cls.from_dict(values, where=str(path))

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)
