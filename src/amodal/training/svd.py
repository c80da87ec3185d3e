"""Fine-tuning the paper's architecture (the ``svd`` backbone) for either stage, as the reference trains it.

A run starts from an official Diffusion-VAS checkpoint or from a Stable Video Diffusion
image-to-video folder in diffusers layout (``model_index.json``, ``unet/``, ``vae/``,
``image_encoder/``, ``scheduler/``, ``feature_extractor/``). From SVD, the U-Net's
8-channel input convolution becomes the 12-channel one of Diffusion-VAS: its weights for
the noisy latent and condition 1 are SVD's, those for condition 2 start at zero (the
paper's zero-conv, its Table 4), so training starts from SVD's exact function.

One training step, for ``(B, T, 3, H, W)`` condition videos ``c1``, ``c2`` and target ``y``
in ``[-1, 1]`` (segmentation: modal mask, depth, amodal mask; completion: modal RGB on
white, amodal mask, the object's full RGB on white):

- ``z = s * (mu + std * n)``: a VAE posterior sample of the target, ``s`` the VAE's scaling;
- condition noise ``sigma_c ~ logN(cond_aug_mean, cond_aug_std)`` per video added to ``c1``,
  ``c2`` before the VAE, whose posterior modes (unscaled) are the condition latents, and
  given to the U-Net as its noise-augmentation time id;
- per-frame CLIP embeddings of the clean ``c1``;
- condition dropout as the reference: with ``u ~ U(0, 1)`` per video, the embeddings are
  zeroed for ``u < 2p`` and the condition latents for ``p <= u < 3p`` (so a share ``p`` of
  the videos sees neither: the unconditional branch classifier-free guidance samples);
- ``sigma ~ logN(p_mean, p_std)``, the EDM v-prediction denoiser (``sigma_data = 1``) on
  ``z + sigma n``, loss ``(1 + sigma^2) / sigma^2 * |D - z|^2`` averaged.

The frozen encoders' per-frame outputs (the target's posterior moments, condition 1's CLIP
embeddings) are cached by default (``encoder_cache``, :mod:`amodal.training.svd_cache`): the
same losses up to float rounding, the same draws, exact resume.

Only parameters whose official name contains one of ``trainable`` are optimised
(default as the reference: the temporal transformer blocks and ``conv_in2``); the EMA and
the exported weights cover exactly those, the rest stay the start folder's. The export is
an official-layout folder (see :func:`export_official`) that ``amodal segment --model``,
``amodal complete --model`` and the reference code load.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from amodal.errors import CheckpointError, InputError
from amodal.training.completion import CompletionDataConfig
from amodal.training.config import DataConfig
from amodal.training.svd_cache import EncoderCache
from amodal.util.config import config_from_dict

STAGES = ("segmentation", "completion")
PRECISIONS = ("no", "fp16", "bf16")
# The reference's trainable set: parameter names containing these (official U-Net naming).
REFERENCE_TRAINABLE = ("temporal_transformer_block", "conv_in2")
SVD_PIPELINE = "StableVideoDiffusionPipeline"
ENCODER_CACHE_MODES = ("off", "exact", "latent-noise")


@dataclass(frozen=True)
class SVDTrainConfig:
    """One fine-tuning run of the ``svd`` backbone. Every field is in the JSON file or takes this default."""

    backbone: str = "svd"  # what marks this config apart from the lite configs
    stage: str = "segmentation"  # "segmentation" (stage 1) or "completion" (stage 2)
    # The folder to start from: an official Diffusion-VAS checkpoint, an SVD image-to-video
    # folder (diffusers layout), or the export of an earlier run (the recipe's second stage).
    start_from: str = ""
    # Substrings of the official U-Net parameter names to train ("conv_in2" is the 12-channel
    # input convolution); ["*"] trains the whole U-Net. The VAE and CLIP stay frozen.
    trainable: tuple[str, ...] = REFERENCE_TRAINABLE
    # Segmentation: condition 2 is the pseudo-depth; false feeds zeros instead (the first,
    # mask-only stage of the paper's two-stage recipe).
    use_depth: bool = True
    # Training geometry (the paper's 25 x 128 x 256).
    num_frames: int = 25
    height: int = 128
    width: int = 256
    # Stage-1 windows (data.* as for the lite models) and stage-2 crops (completion_data.*).
    data: DataConfig = field(default_factory=DataConfig)
    completion_data: CompletionDataConfig = field(default_factory=CompletionDataConfig)
    completion_margin: float = 0.1  # stage 2: the object's box grows by this share before cropping
    # EDM training noise, ln(sigma) ~ N(p_mean, p_std^2), and condition noise augmentation,
    # ln(sigma_c) ~ N(cond_aug_mean, cond_aug_std^2): the reference's settings.
    p_mean: float = 0.7
    p_std: float = 1.6
    cond_aug_mean: float = -3.0
    cond_aug_std: float = 0.5
    cond_dropout: float = 0.1
    # Micro-conditioning the U-Net gets (the sampler's defaults: fps 8 gives the time id 7).
    fps: int = 8
    motion_bucket_id: int = 127
    # Optimisation: the reference's YAML learning rate is 3e-6, but its argparse default
    # (3e-5) overrides it; the value here is the one used, stated once.
    steps: int = 1000
    batch_size: int = 1
    grad_accumulation: int = 1
    lr: float = 3e-5
    warmup_steps: int = 500
    lr_final_ratio: float = 1.0  # 1 = constant after warm-up, as the reference
    weight_decay: float = 0.01
    adam_betas: tuple[float, float] = (0.9, 0.999)
    grad_clip: float = 1.0
    ema_decay: float = 0.9999
    mixed_precision: str = "no"  # "no", "fp16" or "bf16" (Accelerate autocast; weights stay float32)
    gradient_checkpointing: bool = False
    # What the frozen VAE and CLIP compute, cached per frame (amodal.training.svd_cache), keyed by
    # the frame's pixels. "exact": the target's VAE posterior moments (the latent is still drawn
    # from them each step) and the CLIP embeddings of the clean condition 1; the noise-augmented
    # conditions are still encoded each step, so the run is the uncached one up to float rounding.
    # "latent-noise": the conditions' clean latents too, with the augmentation noise added in latent
    # space (an approximation: the reference adds it to the pixels, before the VAE). "off": every
    # encoder runs every step, as in the reference.
    encoder_cache: str = "exact"
    # Memory for cached entries, least recently used dropped first: a frame at 128 x 256 holds
    # 16 KB of VAE moments and 4 KB of CLIP embedding, so 2048 MB keeps about 100,000 frames.
    encoder_cache_mb: float = 2048.0
    # Also write the entries to OUT/encoder-cache/ (safetensors, up to encoder_cache_mb) so that a
    # resumed run starts with them; keyed by the encoders' weights, the precision and the device.
    encoder_cache_disk: bool = False
    log_every: int = 10
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    validate_every: int = 500
    val_windows: int = 4
    val_steps: int = 4
    val_guidance: float = 1.5
    seed: int = 0

    def __post_init__(self) -> None:
        if self.backbone != "svd":
            raise InputError(f"backbone must be 'svd' in an svd training config, got {self.backbone!r}")
        if self.stage not in STAGES:
            raise InputError(f"stage must be one of {list(STAGES)}, got {self.stage!r}")
        if not self.start_from:
            raise InputError("start_from must name an official Diffusion-VAS or SVD image-to-video folder")
        if not self.trainable:
            raise InputError("trainable must name at least one parameter-name substring (or '*')")
        if self.mixed_precision not in PRECISIONS:
            raise InputError(f"mixed_precision must be one of {list(PRECISIONS)}, got {self.mixed_precision!r}")
        for name in ("num_frames", "height", "width", "steps", "batch_size", "grad_accumulation", "log_every",
                     "checkpoint_every", "keep_checkpoints", "val_windows", "val_steps"):
            if getattr(self, name) < 1:
                raise InputError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("cond_dropout", "ema_decay", "lr_final_ratio"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise InputError(f"{name} must be in [0, 1], got {getattr(self, name)}")
        if self.cond_dropout > 1 / 3:
            raise InputError(f"cond_dropout must be <= 1/3 (three shares of it are drawn), got {self.cond_dropout}")
        if self.encoder_cache not in ENCODER_CACHE_MODES:
            raise InputError(f"encoder_cache must be one of {list(ENCODER_CACHE_MODES)}, got {self.encoder_cache!r}")
        if self.encoder_cache_mb <= 0:
            raise InputError(f"encoder_cache_mb must be > 0, got {self.encoder_cache_mb}")
        if self.lr <= 0 or self.p_std <= 0 or self.cond_aug_std < 0 or self.validate_every < 0 or self.warmup_steps < 0:
            raise InputError("lr and p_std must be > 0; cond_aug_std, validate_every and warmup_steps >= 0")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict, where: str = "training config") -> "SVDTrainConfig":
        return config_from_dict(cls, values, where)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "SVDTrainConfig":
        return cls.from_dict(read_config_json(path), where=str(path))


def read_config_json(path: str | os.PathLike) -> dict:
    """The JSON values of a training config file, or a one-line error naming the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as e:
        raise InputError(f"{path}: cannot read the training config ({e.strerror}); check the --config path") from None
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); fix the file") from None


def is_svd_config(values: dict) -> bool:
    """Whether a training config's JSON values are for the ``svd`` backbone (``"backbone": "svd"`` at the top)."""
    return isinstance(values, dict) and values.get("backbone") == "svd"


# Start folders -----------------------------------------------------------------------------------
def _official_name(name: str) -> str:
    """A ``unet.*`` weight name of the svd backbone as the official U-Net names it (``conv_in`` -> ``conv_in2``)."""
    from amodal.checkpoints.official.adapter import CONDITION_CONV, LEFTOVER_CONV

    return CONDITION_CONV + name[len(LEFTOVER_CONV):] if name.split(".")[0] == LEFTOVER_CONV else name


def is_trainable(name: str, patterns: tuple[str, ...]) -> bool:
    """Whether U-Net weight ``name`` (svd-backbone naming) is trained under ``patterns`` (official naming)."""
    official = _official_name(name)
    return any(p == "*" or p in official for p in patterns)


def read_start(path: str | Path, config: SVDTrainConfig):
    """``(OfficialConfig, weights, leftover)`` of a start folder: the networks' weights in svd-backbone naming
    (12-channel ``unet.conv_in``) and the official layout's unused 8-channel ``conv_in`` to export beside them.

    Raises:
        InputError: no such folder. CheckpointError: not an official or SVD image-to-video folder.
    """
    from amodal.checkpoints.official import adapter
    from amodal.checkpoints.safetensors import read_safetensors

    root = Path(path)
    if not (root / "model_index.json").is_file():
        raise InputError(
            f"start_from {path}: no model_index.json; pass an official Diffusion-VAS checkpoint or a Stable Video "
            "Diffusion image-to-video folder in diffusers layout"
        )
    official = adapter.read_config(root, num_frames=config.num_frames, height=config.height, width=config.width)
    if has_condition_conv(root):
        return official, adapter.read_weights(root), leftover_conv(root)
    unet = read_safetensors(adapter.weight_files(root, "unet"))
    conv = "conv_in"
    # SVD image-to-video: widen conv_in from 8 to 12 input channels, the new ones at zero.
    old = unet.get(f"{conv}.weight")
    latent = official.svd.vae.latent_channels
    if old is None or old.shape[1] != 2 * latent:
        raise CheckpointError(
            f"{root / 'unet'}: conv_in.weight must take {2 * latent} channels (an SVD image-to-video U-Net), "
            f"got {None if old is None else tuple(old.shape)}"
        )
    leftover = {f"{conv}.weight": old.clone(), f"{conv}.bias": unet[f"{conv}.bias"].clone()}
    wide = torch.zeros(old.shape[0], 3 * latent, *old.shape[2:], dtype=old.dtype)
    wide[:, : 2 * latent] = old
    unet[f"{conv}.weight"] = wide
    weights = {f"unet.{k}": v for k, v in unet.items()}
    for component in ("vae", "image_encoder"):
        tensors = read_safetensors(adapter.weight_files(root, component))
        weights.update({f"{component}.{k}": v for k, v in tensors.items()})
    for name in adapter.IGNORED_WEIGHTS:
        weights.pop(name, None)
    return official, weights, leftover


def has_condition_conv(root: Path) -> bool:
    """Whether a start folder's U-Net already has the official 12-channel ``conv_in2`` (read from the file headers)."""
    from safetensors import safe_open

    from amodal.checkpoints.official.adapter import CONDITION_CONV, weight_files

    for f in weight_files(Path(root), "unet"):
        with safe_open(str(f), "pt") as handle:
            if f"{CONDITION_CONV}.weight" in handle.keys():
                return True
    return False


def leftover_conv(root: Path) -> dict[str, torch.Tensor]:
    """The U-Net's 8-channel ``conv_in`` (the official layout's unused one, or an SVD folder's own), read alone."""
    from safetensors import safe_open

    from amodal.checkpoints.official.adapter import weight_files

    out = {}
    for f in weight_files(Path(root), "unet"):
        with safe_open(str(f), "pt") as handle:
            out.update({k: handle.get_tensor(k) for k in ("conv_in.weight", "conv_in.bias") if k in handle.keys()})
    return out


# The model being trained -------------------------------------------------------------------------
class SVDTrainee(nn.Module):
    """The U-Net being fine-tuned (``backbone``, an :class:`~amodal.backbones.svd.SVDBackbone`) beside the frozen VAE
    and CLIP encoder; ``forward`` is the EDM denoiser, the only call gradients flow through."""

    def __init__(self, official, unet: nn.Module, vae: nn.Module, image_encoder: nn.Module, trainable: tuple[str, ...]):
        super().__init__()
        from amodal.backbones.svd import SVDBackbone

        self.official = official  # the OfficialConfig (geometry, schedule, networks)
        self.backbone = SVDBackbone(unet)
        self.vae = vae.eval().requires_grad_(False)
        self.image_encoder = image_encoder.eval().requires_grad_(False)
        names = []
        for name, p in self.backbone.named_parameters():
            p.requires_grad_(is_trainable(name.removeprefix("unet."), trainable))
            if p.requires_grad:
                names.append(name)
        if not names:
            raise InputError(f"trainable {list(trainable)}: matches no U-Net parameter; see docs/training-svd.md for names")
        self.trained_names = tuple(names)

    def train(self, mode: bool = True):
        super().train(mode)
        self.vae.eval()
        self.image_encoder.eval()
        return self

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond_latents: torch.Tensor, context: torch.Tensor,
                time_ids: torch.Tensor) -> torch.Tensor:
        """``D(x; sigma)`` for ``(B, T, C, h, w)`` noisy latents, ``(B,)`` sigma: the denoised latents, float32."""
        from amodal.diffusion import Denoiser

        return Denoiser(self.backbone, sigma_data=1.0)(x, sigma, cond_latents=cond_latents, context=context,
                                                       added_time_ids=time_ids)


def build_trainee(config: SVDTrainConfig) -> tuple[SVDTrainee, dict[str, torch.Tensor]]:
    """The trainee from ``config.start_from`` (float32 weights) and the leftover ``conv_in`` to export."""
    from amodal.checkpoints.official.model import build_networks

    official, weights, leftover = read_start(config.start_from, config)
    nets = build_networks(official, weights, Path(config.start_from), torch.float32)
    trainee = SVDTrainee(official, nets["unet"], nets["vae"], nets["image_encoder"], config.trainable)
    if config.gradient_checkpointing:
        nets["unet"].enable_gradient_checkpointing()
    return trainee, leftover


# Batches ------------------------------------------------------------------------------------------
def stage_videos(batch, config: SVDTrainConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(c1, c2, target)``, each ``(B, T, 3, H, W)`` in ``[-1, 1]``, of a stage-1 :class:`~amodal.training.data.Batch`
    or a stage-2 :class:`~amodal.training.completion.CompletionBatch`."""

    def three(x):  # (B, T, H, W) -> (B, T, 3, H, W)
        return x[:, :, None].expand(-1, -1, 3, -1, -1)

    if config.stage == "segmentation":
        depth = batch.depth if config.use_depth else torch.zeros_like(batch.depth)
        return three(batch.modal * 2 - 1), three(depth.clamp(-1, 1)), three(batch.amodal * 2 - 1)
    return batch.modal_rgb * 2 - 1, three(batch.amodal * 2 - 1), batch.target * 2 - 1


@torch.no_grad()
def encode_conditions(trainee: SVDTrainee, c1: torch.Tensor, c2: torch.Tensor, sigma_c: torch.Tensor,
                      generator: torch.Generator, zero_second: bool, cache: EncoderCache | None = None,
                      latent_gain: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(cond_latents (B, T, 2C, h, w), context (B, T, 1, D))``: noise-augmented condition latents, clean CLIP embeddings.

    ``c1``, ``c2`` on the CPU (``cache`` hashes them) or, without a cache, anywhere. With
    ``latent_gain`` ``(2, C)`` (:func:`~amodal.training.svd_cache.latent_noise_gain` of each
    condition) the noise is added to the clean conditions' cached latents instead of their
    pixels: the ``"latent-noise"`` approximation, which draws latent-sized noise.
    """
    from amodal.backbones.svd import encode_mode, image_embeddings
    from amodal.checkpoints.official import adapter

    device = next(trainee.backbone.parameters()).device
    batch, frames = c1.shape[:2]
    if cache is None:
        pixels = adapter.clip_pixels(c1.flatten(0, 1).to(device), trainee.official.svd.image_encoder)
        context = image_embeddings(trainee.image_encoder, pixels)
    else:
        context = cache.clip_embeddings(c1.flatten(0, 1), device)
    context = context.reshape(batch, frames, 1, -1)
    scale = sigma_c.reshape(-1, 1, 1, 1, 1).to(device)
    if latent_gain is not None:
        if cache is None:
            raise ValueError("latent_gain (the 'latent-noise' approximation) needs the encoder cache")
        clean = [cache.vae_moments(c.flatten(0, 1), device)[0] for c in ((c1,) if zero_second else (c1, c2))]
        clean = [z.reshape(batch, frames, *z.shape[1:]) for z in clean]
        gain = latent_gain.to(device).reshape(2, 1, 1, -1, 1, 1)
        noise1 = torch.randn(clean[0].shape, generator=generator).to(device)
        noise2 = torch.randn(clean[0].shape, generator=generator).to(device)
        latents1 = clean[0] + gain[0] * scale * noise1
        latents2 = torch.zeros_like(latents1) if zero_second else clean[1] + gain[1] * scale * noise2
        return torch.cat([latents1, latents2], dim=2), context
    c1, c2 = c1.to(device), c2.to(device)
    noisy1 = c1 + scale * torch.randn(c1.shape, generator=generator).to(device)
    noisy2 = c2 + scale * torch.randn(c2.shape, generator=generator).to(device)
    latents1 = encode_mode(trainee.vae, noisy1)
    latents2 = torch.zeros_like(latents1) if zero_second else encode_mode(trainee.vae, noisy2)
    return torch.cat([latents1, latents2], dim=2), context


@torch.no_grad()
def target_latents(trainee: SVDTrainee, target: torch.Tensor, generator: torch.Generator,
                   cache: EncoderCache | None = None) -> torch.Tensor:
    """A VAE posterior sample of each target frame, times the VAE's scaling factor: the latents the U-Net denoises.

    With ``cache`` (``target`` on the CPU) the posterior moments come from it; the sample is drawn
    here either way, with the same draw from ``generator``.
    """
    from amodal.backbones.svd import vae_dtype

    device = next(trainee.backbone.parameters()).device
    batch, frames = target.shape[:2]
    if cache is None:
        dist = trainee.vae.encode(target.flatten(0, 1).to(device, vae_dtype(trainee.vae))).latent_dist
        mean, std = dist.mean.float(), dist.std.float()
    else:
        mean, std = cache.vae_moments(target.flatten(0, 1), device)
    z = mean + std * torch.randn(mean.shape, generator=generator).to(mean.device)
    z = z * trainee.official.svd.vae.scaling_factor
    return z.reshape(batch, frames, *z.shape[1:])


def svd_loss(model, batch, config: SVDTrainConfig, generator: torch.Generator, sigma: torch.Tensor | None = None,
             cache: EncoderCache | None = None, latent_gain: torch.Tensor | None = None) -> torch.Tensor:
    """The mean training loss of one batch (module docstring); ``model`` the (possibly wrapped) :class:`SVDTrainee`.

    Every random draw comes from ``generator`` (CPU) in a fixed order; ``sigma`` ``(B,)`` fixes the
    noise levels (validation) instead of drawing them. ``cache`` supplies what the frozen encoders
    compute of the target and the clean condition 1 (the same loss up to float rounding, the same
    draws); ``latent_gain`` (with ``cache``) switches to the ``"latent-noise"`` approximation
    (see :func:`encode_conditions`).
    """
    trainee = model.module if hasattr(model, "module") else model
    device = next(trainee.backbone.parameters()).device
    c1, c2, target = (v.float() for v in stage_videos(batch, config))  # on the CPU, where the cache hashes them
    b = c1.shape[0]
    z0 = target_latents(trainee, target, generator, cache)
    sigma_c = torch.exp(config.cond_aug_mean + config.cond_aug_std * torch.randn(b, generator=generator))
    zero_second = config.stage == "segmentation" and not config.use_depth
    cond_latents, context = encode_conditions(trainee, c1, c2, sigma_c, generator, zero_second, cache, latent_gain)
    u = torch.rand(b, generator=generator)
    p = config.cond_dropout
    keep_context = (u >= 2 * p).float().to(device)
    keep_latents = 1.0 - ((u >= p) & (u < 3 * p)).float().to(device)
    context = context * keep_context.reshape(-1, 1, 1, 1)
    cond_latents = cond_latents * keep_latents.reshape(-1, 1, 1, 1, 1)
    time_ids = torch.stack(
        [torch.full((b,), float(config.fps - 1)), torch.full((b,), float(config.motion_bucket_id)), sigma_c], dim=1
    ).to(device)
    if sigma is None:
        sigma = torch.exp(config.p_mean + config.p_std * torch.randn(b, generator=generator))
    noise = torch.randn(z0.shape, generator=generator).to(device)
    sigma = sigma.to(device)
    x = z0 + sigma.reshape(-1, 1, 1, 1, 1) * noise
    denoised = model(x, sigma, cond_latents, context, time_ids)
    weight = ((1 + sigma**2) / sigma**2).reshape(-1, 1, 1, 1, 1)
    return (weight * (denoised.float() - z0) ** 2).mean()


def build_encoder_cache(trainee: SVDTrainee, config: SVDTrainConfig, folder: str | Path | None = None,
                        process: int = 0, device: str = "cpu") -> EncoderCache | None:
    """The run's :class:`~amodal.training.svd_cache.EncoderCache` (``None`` when ``encoder_cache`` is ``"off"``).

    ``folder``: the run folder, whose ``encoder-cache/`` holds the entries when ``encoder_cache_disk``
    is set, in a subfolder named after the encoders' weights, the precision and ``device``'s type
    (entries from other encoders or another kind of device are never read).
    """
    from amodal.training.svd_cache import EncoderCache, encoder_fingerprint

    if config.encoder_cache == "off":
        return None
    where = None
    if config.encoder_cache_disk and folder is not None:
        fingerprint = encoder_fingerprint(trainee.vae, trainee.image_encoder, config.mixed_precision,
                                          torch.device(device).type, repr(trainee.official.svd.image_encoder))
        where = Path(folder) / "encoder-cache" / fingerprint
    return EncoderCache(trainee.vae, trainee.image_encoder, trainee.official.svd.image_encoder, config.encoder_cache_mb,
                        where, process)


def condition_gains(trainee: SVDTrainee, batch, config: SVDTrainConfig) -> torch.Tensor:
    """``(2, C)``: :func:`~amodal.training.svd_cache.latent_noise_gain` of conditions 1 and 2 of ``batch`` at the
    median augmentation ``exp(cond_aug_mean)``, with a generator seeded by the run's seed (deterministic)."""
    from amodal.training.svd_cache import latent_noise_gain

    device = next(trainee.backbone.parameters()).device
    c1, c2, _ = (v.float().flatten(0, 1).to(device) for v in stage_videos(batch, config))
    sigma = float(np.exp(config.cond_aug_mean))
    g = torch.Generator().manual_seed(config.seed)
    return torch.stack([latent_noise_gain(trainee.vae, c, sigma, g) for c in (c1, c2)])


def _crop_config(config: SVDTrainConfig):
    """What :func:`~amodal.training.completion.open_crop_pool` reads of a stage-2 run: the data and the crop geometry."""
    from types import SimpleNamespace

    model = SimpleNamespace(num_frames=config.num_frames, height=config.height, width=config.width,
                            margin=config.completion_margin)
    return SimpleNamespace(model=model, data=config.completion_data)


def open_batches(config: SVDTrainConfig, cache_dir: Path, progress: bool):
    """``(batch(step, process, batch_size), validation batch)`` of this run's stage."""
    if config.stage == "segmentation":
        from amodal.training.data import WindowSampler, open_pool, validation_windows

        pools = [open_pool(config.data, split, config.height, config.width, cache_dir, progress) for split in ("train", "val")]
        sampler = WindowSampler(pools[0], config.data, config.num_frames, config.seed)
        val = validation_windows(pools[1], config.data, config.num_frames)
        n = min(config.val_windows, val.modal.shape[0])
        val = dataclasses.replace(val, **{f.name: getattr(val, f.name)[:n] for f in dataclasses.fields(val)})
        return sampler.batch, val
    from amodal.training.completion import CropSampler, open_crop_pool, validation_batch

    crop = _crop_config(config)
    train_pool = open_crop_pool(crop, "train", cache_dir, progress)
    val_pool = open_crop_pool(crop, "val", cache_dir, progress)
    val = validation_batch(val_pool, config.completion_data)
    n = min(config.val_windows, val.modal.shape[0])
    val = dataclasses.replace(val, **{f.name: getattr(val, f.name)[:n] for f in dataclasses.fields(val)})
    return CropSampler(train_pool, config.completion_data, config.seed).batch, val


# Validation ---------------------------------------------------------------------------------------
VAL_SIGMAS = (0.1, 0.5, 1.0, 2.0, 5.0, 10.0)  # fixed noise levels of the validation loss


def sampling_model(trainee: SVDTrainee):
    """An :class:`~amodal.checkpoints.official.model.OfficialModel` over the trainee's own networks (no copy)."""
    from amodal.checkpoints.official.config import RuntimeConfig
    from amodal.checkpoints.official.model import OfficialModel

    device = next(trainee.backbone.parameters()).device
    runtime = RuntimeConfig(device=str(device), dtype="float32")
    return OfficialModel(trainee.official, trainee.backbone.unet, trainee.vae, trainee.image_encoder, runtime, place=False)


@torch.no_grad()
def validate_svd(trainee: SVDTrainee, val, config: SVDTrainConfig, cache: EncoderCache | None = None) -> dict:
    """Validation loss at fixed noise levels and the stage's score of a short guided sample.

    The loss is the reference's, conditions noised in pixel space, in every ``encoder_cache`` mode;
    ``cache`` only saves encoding the targets and the clean condition 1 again.
    """
    from amodal.checkpoints.official.config import GenerationConfig

    trainee.eval()
    try:
        losses = []
        for i, s in enumerate(VAL_SIGMAS):
            g = torch.Generator().manual_seed(config.seed * 1000 + i)
            sigma = torch.full((val.modal.shape[0],), s)
            losses.append(float(svd_loss(trainee, val, config, g, sigma=sigma, cache=cache)))
        settings = GenerationConfig(steps=config.val_steps, min_guidance=config.val_guidance,
                                    max_guidance=config.val_guidance, fps=config.fps,
                                    motion_bucket_id=config.motion_bucket_id, noise_aug_strength=0.02,
                                    decode_chunk_size=8)
        c1, c2, target = (v.float().to(next(trainee.backbone.parameters()).device) for v in stage_videos(val, config))
        frames = sampling_model(trainee).generate(c1, c2, settings, generator=torch.Generator().manual_seed(config.seed),
                                                  progress=False)  # (B, T, H, W, 3) in [0, 1]
        metrics = {"loss": float(np.mean(losses))}
        if config.stage == "segmentation":
            from amodal.segmentation.official import MASK_THRESHOLD

            pred = frames.mean(-1).cpu() > MASK_THRESHOLD
            pred = pred | (val.modal > 0.5)
            truth = val.amodal > 0.5
            inter = (pred & truth).flatten(1).sum(1).float()
            union = (pred | truth).flatten(1).sum(1).clamp(min=1).float()
            metrics["mIoU"] = float((inter / union).mean())
        else:
            hidden = (val.amodal > 0.5) & ~(val.modal > 0.5)
            err = ((frames.cpu().permute(0, 1, 4, 2, 3) - (target.cpu() + 1) / 2) ** 2).mean(2)
            mse = float(err[hidden].mean()) if hidden.any() else float("nan")
            metrics["psnr_occ"] = float(-10 * np.log10(max(mse, 1e-10)))
        return metrics
    finally:
        trainee.train()


# Export ---------------------------------------------------------------------------------------------
OFFICIAL_INDEX = {
    "_class_name": "DiffusionVASPipeline",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "unet": ["models.diffusion_vas.unet_diffusion_vas", "UNetSpatioTemporalConditionModel"],
    "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
}


def export_official(out: str | Path, config: SVDTrainConfig, unet_state: dict[str, torch.Tensor],
                    leftover: dict[str, torch.Tensor], command: str = "train segmentation") -> Path:
    """Write an official-layout folder: the start folder's components with the trained U-Net.

    ``unet_state`` is the svd backbone's U-Net state (``conv_in`` 12 channels), stored as the
    official ``conv_in2`` beside the leftover 8-channel ``conv_in``; ``meta.json`` records the
    training geometry and stage, which amodal's loader reads as the model's native geometry.
    """
    from diffusers import __version__ as diffusers_version
    from safetensors.torch import save_file

    from amodal.util.fs import atomic_dir

    start = Path(config.start_from)
    with atomic_dir(Path(out), command=command) as tmp:
        for component in ("vae", "image_encoder", "scheduler", "feature_extractor"):
            shutil.copytree(start / component, tmp / component)
        (tmp / "unet").mkdir()
        unet_config = json.loads((start / "unet" / "config.json").read_text())
        unet_config["num_frames"] = config.num_frames
        (tmp / "unet" / "config.json").write_text(json.dumps(unet_config, indent=2) + "\n")
        tensors = {_official_name(k): v.detach().cpu().float().contiguous() for k, v in unet_state.items()}
        tensors.update({k: v.detach().cpu().contiguous() for k, v in leftover.items()})
        save_file(tensors, str(tmp / "unet" / "diffusion_pytorch_model.safetensors"), metadata={"format": "pt"})
        index = {**OFFICIAL_INDEX, "_diffusers_version": diffusers_version}
        (tmp / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
        meta = {"num_frames": config.num_frames, "height": config.height, "width": config.width, "stage": config.stage,
                "trained_from": str(start), "trainable": list(config.trainable), "use_depth": config.use_depth}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n")
    return Path(out)


# The run ----------------------------------------------------------------------------------------------
def train_svd(config: SVDTrainConfig, out_dir: str | Path, *, stop_at: int | None = None, progress: bool = True):
    """Train (or resume) one ``svd`` fine-tuning run in ``out_dir``; the run folder is laid out as the lite runs'
    (``model/`` is an official-layout folder)."""
    from amodal.training.loop import Task, run_training

    command = f"train {config.stage}"

    caches = []  # the run's encoder cache, written to disk (encoder_cache_disk) when the run stops

    def build(accelerator, main: bool) -> Task:
        trainee, leftover = build_trainee(config)
        cache_dir = Path(config.data.cache_dir or config.completion_data.cache_dir or Path(out_dir) / "data")
        with accelerator.main_process_first():
            batches, val = open_batches(config, cache_dir, progress and main)
        cache = build_encoder_cache(trainee, config, out_dir, accelerator.process_index, str(accelerator.device))
        caches.append(cache)
        gains = []  # "latent-noise": measured at the first step, on the run's device and precision

        def loss(model, batch, generator):
            if config.encoder_cache == "latent-noise" and not gains:
                gains.append(condition_gains(trainee, val, config))
            return svd_loss(model, batch, config, generator, cache=cache, latent_gain=gains[0] if gains else None)

        @contextlib.contextmanager
        def with_ema(state):
            params = dict(trainee.backbone.named_parameters())
            saved = {k: params[k].detach().clone() for k in state}
            with torch.no_grad():
                for k, v in state.items():
                    params[k].copy_(v)
            try:
                yield
            finally:
                with torch.no_grad():
                    for k, v in saved.items():
                        params[k].copy_(v)

        def save(folder, state):
            unet = {k.removeprefix("unet."): v for k, v in trainee.backbone.state_dict().items()}
            unet.update({k.removeprefix("unet."): v for k, v in state.items()})
            export_official(folder, config, unet, leftover, command)

        describe = (lambda m: f"val loss {m['loss']:.4f} mIoU {m['mIoU']:.4f}") if config.stage == "segmentation" else (
            lambda m: f"val loss {m['loss']:.4f} psnr_occ {m['psnr_occ']:.2f} dB")
        return Task(
            name=f"svd {config.stage}",
            command=command,
            model=trainee,
            eval_model=None,
            batch=batches,
            loss=loss,
            validate=lambda _m, acc: validate_svd(trainee, val, config, cache),
            describe=describe,
            save=save,
            ema_names=trainee.trained_names,
            with_ema=with_ema,
        )

    try:
        return run_training(build, config, out_dir, stop_at=stop_at, progress=progress)
    finally:
        if caches and caches[0] is not None:
            caches[0].save()


def export_svd_run(run_dir: str | Path, out: str | Path, checkpoint: str | Path | None = None) -> Path:
    """Export the EMA weights of an svd run's newest (or the given) checkpoint as an official-layout folder."""
    from amodal.checkpoints.safetensors import read_safetensors
    from amodal.training.checkpoint import pick_checkpoint

    run_dir = Path(run_dir)
    config = SVDTrainConfig.from_json(run_dir / "config.json")
    checkpoint = pick_checkpoint(run_dir, checkpoint)
    fix = "pick another checkpoint with --checkpoint"
    weights = read_safetensors(checkpoint / "model.safetensors", fix=fix)
    ema = read_safetensors(checkpoint / "ema.safetensors", fix=fix)
    start = Path(config.start_from)
    leftover = leftover_conv(start)  # the 8-channel conv_in: official's leftover, or SVD's own
    unet = {k.removeprefix("unet."): v for k, v in {**weights, **ema}.items()}
    return export_official(out, config, unet, leftover, "train export")
