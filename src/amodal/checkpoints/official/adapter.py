"""The one module that knows the official Diffusion-VAS checkpoint layout and conventions.

An official checkpoint (``diffusion-vas-amodal-segmentation``,
``diffusion-vas-content-completion``) is a diffusers pipeline folder::

    model_index.json            component names (the U-Net names a module of the
                                reference code: it is never imported)
    unet/config.json            UNetSpatioTemporalConditionModel config
    unet/diffusion_pytorch_model.safetensors
    vae/config.json             AutoencoderKLTemporalDecoder config
    vae/diffusion_pytorch_model.safetensors
    image_encoder/config.json   transformers CLIPVisionModelWithProjection config
    image_encoder/model.safetensors
    feature_extractor/preprocessor_config.json   CLIP mean / std
    scheduler/scheduler_config.json              EulerDiscreteScheduler, Karras, v-prediction

What differs from stock Stable Video Diffusion, and how it enters the library:

- The U-Net holds two input convolutions. ``conv_in`` (8 channels) is left
  over and unused; ``conv_in2`` (12 channels: noisy latent, condition-1 latent,
  condition-2 latent) is the real one. It becomes the ``svd`` backbone's
  ``conv_in``; the old one is dropped.
- Cross-attention sees one CLIP image embedding **per frame**, computed from
  condition 1 of that frame (:func:`clip_pixels`), instead of one per video.
- Condition latents are the VAE posterior mode, not multiplied by the scaling
  factor.
- With guidance > 1 the reference pairs embeddings and latents in a mixed-up
  order (:func:`guidance_contexts`); ``embedding_order="reference"`` reproduces
  it, ``"corrected"`` does what was meant.

Weights are read from ``.safetensors`` files only; a component shipped as a
pickle (``.bin``) is refused with a message saying to convert it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn.functional as F

from amodal.checkpoints.safetensors import read_safetensors
from amodal.errors import CheckpointError
from amodal.checkpoints.official.config import NoiseSchedule, OfficialConfig
from amodal.backbones.svd import ImageEncoderConfig, SVDConfig, UNetConfig, VAEConfig, down_block_types, up_block_types

# Component folder -> the class model_index.json must name for it. The U-Net's
# class is checked by name only: its module is the reference code's, never imported.
COMPONENTS = {
    "unet": "UNetSpatioTemporalConditionModel",
    "vae": "AutoencoderKLTemporalDecoder",
    "image_encoder": "CLIPVisionModelWithProjection",
    "feature_extractor": "CLIPImageProcessor",
    "scheduler": "EulerDiscreteScheduler",
}
WEIGHT_COMPONENTS = ("unet", "vae", "image_encoder")
# Weight file names diffusers and transformers write, in order of preference.
WEIGHT_FILES = {
    "unet": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"),
    "vae": ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors"),
    "image_encoder": ("model.safetensors", "model.fp16.safetensors"),
}
CONFIG_FILES = {
    "unet": "config.json",
    "vae": "config.json",
    "image_encoder": "config.json",
    "feature_extractor": "preprocessor_config.json",
    "scheduler": "scheduler_config.json",
}
REQUIRED_KEYS = {
    "unet": (
        "block_out_channels",
        "layers_per_block",
        "num_attention_heads",
        "cross_attention_dim",
        "addition_time_embed_dim",
        "projection_class_embeddings_input_dim",
        "down_block_types",
        "up_block_types",
        "out_channels",
        "num_frames",
    ),
    "vae": ("block_out_channels", "layers_per_block", "latent_channels", "scaling_factor"),
    "image_encoder": (
        "hidden_size",
        "intermediate_size",
        "num_hidden_layers",
        "num_attention_heads",
        "patch_size",
        "image_size",
        "projection_dim",
    ),
    "feature_extractor": ("image_mean", "image_std"),
    "scheduler": ("sigma_min", "sigma_max", "prediction_type", "use_karras_sigmas", "timestep_spacing"),
}
# Non-weight buffers older transformers versions saved with the CLIP encoder; skipped when present.
IGNORED_WEIGHTS = ("image_encoder.vision_model.embeddings.position_ids",)
CONDITION_CONV = "conv_in2"  # the official U-Net's real input convolution
LEFTOVER_CONV = "conv_in"  # Stable Video Diffusion's 8-channel one, unused by the official model



def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise CheckpointError(f"{path}: missing; an official checkpoint folder needs this file")
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: not valid JSON ({e}); re-download the checkpoint") from None
    if not isinstance(data, dict):
        raise CheckpointError(f"{path}: expected a JSON object")
    return data


def _require(data: Mapping[str, Any], keys, where: Path) -> None:
    missing = [k for k in keys if k not in data]
    if missing:
        raise CheckpointError(f"{where}: missing config keys {missing}; this is not an official-layout checkpoint")


def _one_int(value, name: str, where: Path) -> int:
    """diffusers allows per-level lists where the official configs use one int."""
    if isinstance(value, (list, tuple)):
        if len(set(value)) != 1:
            raise CheckpointError(f"{where}: per-level {name} {value} is not supported; expected one value")
        value = value[0]
    return int(value)


def read_config(path: str | Path, *, num_frames: int | None = None, height: int | None = None, width: int | None = None) -> OfficialConfig:
    """Parse and check the JSON files of an official checkpoint folder (no weights read, nothing imported).

    The native geometry is ``num_frames`` (default: the U-Net config's
    ``num_frames``) by ``height`` x ``width`` (default: a ``meta.json`` with
    ``height``/``width`` inside the folder or beside it, as the reference test
    vectors have, else the reference's 256x512).

    Raises ``CheckpointError`` listing missing files, components or config keys.
    """
    root = Path(path)
    if not root.is_dir():
        raise CheckpointError(f"{root}: checkpoint folder not found")
    index = _read_json(root / "model_index.json")
    missing = [name for name in COMPONENTS if name not in index]
    unexpected = sorted(k for k in index if not k.startswith("_") and k not in COMPONENTS)
    if missing or unexpected:
        raise CheckpointError(
            f"{root / 'model_index.json'}: missing components {missing}, unexpected components {unexpected}; "
            f"expected exactly {sorted(COMPONENTS)}"
        )
    for name, klass in COMPONENTS.items():
        entry = index[name]
        if not (isinstance(entry, list) and len(entry) == 2 and entry[1] == klass):
            raise CheckpointError(f"{root / 'model_index.json'}: component {name!r} is {entry!r}; expected class {klass}")

    configs = {}
    for name, filename in CONFIG_FILES.items():
        where = root / name / filename
        configs[name] = _read_json(where)
        _require(configs[name], REQUIRED_KEYS[name], where)

    unet, where = configs["unet"], root / "unet" / "config.json"
    levels = len(unet["block_out_channels"])
    if tuple(unet["down_block_types"]) != down_block_types(levels) or tuple(unet["up_block_types"]) != up_block_types(levels):
        raise CheckpointError(
            f"{where}: block types {unet['down_block_types']} / {unet['up_block_types']} differ from Stable Video "
            f"Diffusion's layout {list(down_block_types(levels))} / {list(up_block_types(levels))}"
        )
    if unet["projection_class_embeddings_input_dim"] != 3 * unet["addition_time_embed_dim"]:
        raise CheckpointError(f"{where}: projection_class_embeddings_input_dim must be 3 x addition_time_embed_dim")
    heads = unet["num_attention_heads"]
    heads = tuple(heads) if isinstance(heads, (list, tuple)) else (int(heads),) * levels
    vae_cfg = configs["vae"]
    unet_config = UNetConfig(
        in_channels=3 * int(vae_cfg["latent_channels"]),
        out_channels=int(unet["out_channels"]),
        block_out_channels=tuple(unet["block_out_channels"]),
        layers_per_block=_one_int(unet["layers_per_block"], "layers_per_block", where),
        num_attention_heads=heads,
        transformer_layers_per_block=_one_int(unet.get("transformer_layers_per_block", 1), "transformer_layers_per_block", where),
        cross_attention_dim=_one_int(unet["cross_attention_dim"], "cross_attention_dim", where),
        addition_time_embed_dim=int(unet["addition_time_embed_dim"]),
        num_frames=int(unet["num_frames"]),
    )
    vae_config = VAEConfig(
        block_out_channels=tuple(vae_cfg["block_out_channels"]),
        layers_per_block=int(vae_cfg["layers_per_block"]),
        latent_channels=int(vae_cfg["latent_channels"]),
        scaling_factor=float(vae_cfg["scaling_factor"]),
        force_upcast=bool(vae_cfg.get("force_upcast", True)),
    )
    clip, fx = configs["image_encoder"], configs["feature_extractor"]
    encoder_config = ImageEncoderConfig(
        hidden_size=int(clip["hidden_size"]),
        intermediate_size=int(clip["intermediate_size"]),
        num_hidden_layers=int(clip["num_hidden_layers"]),
        num_attention_heads=int(clip["num_attention_heads"]),
        patch_size=int(clip["patch_size"]),
        image_size=int(clip["image_size"]),
        projection_dim=int(clip["projection_dim"]),
        hidden_act=str(clip.get("hidden_act", "quick_gelu")),
        layer_norm_eps=float(clip.get("layer_norm_eps", 1e-5)),
        image_mean=tuple(float(v) for v in fx["image_mean"]),
        image_std=tuple(float(v) for v in fx["image_std"]),
    )
    try:
        svd = SVDConfig(unet=unet_config, vae=vae_config, image_encoder=encoder_config)
    except ValueError as e:
        raise CheckpointError(f"{root}: inconsistent component configs: {e}") from None

    schedule = schedule_from_config(configs["scheduler"], root / "scheduler" / "scheduler_config.json")
    meta = _geometry_meta(root)
    return OfficialConfig(
        svd=svd,
        schedule=schedule,
        num_frames=int(num_frames or meta.get("num_frames", unet_config.num_frames)),
        height=int(height or meta.get("height", OfficialConfig.height)),
        width=int(width or meta.get("width", OfficialConfig.width)),
    )


def _geometry_meta(root: Path) -> dict[str, Any]:
    for candidate in (root / "meta.json", root.parent / "meta.json"):
        if candidate.is_file():
            meta = _read_json(candidate)
            if "height" in meta and "width" in meta:
                return meta
    return {}


def schedule_from_config(scheduler: Mapping[str, Any], where: Path | str = "scheduler_config.json") -> NoiseSchedule:
    """The noise schedule of an ``EulerDiscreteScheduler`` config; ``CheckpointError`` for settings the sampler does not reproduce."""
    checks = {
        "prediction_type": "v_prediction",
        "use_karras_sigmas": True,
        "timestep_type": "continuous",
    }
    for key, want in checks.items():
        got = scheduler.get(key, want)
        if got != want:
            raise CheckpointError(f"{where}: {key} is {got!r}; the official models use {want!r}")
    sigma_min, sigma_max = float(scheduler["sigma_min"]), float(scheduler["sigma_max"])
    spacing = scheduler["timestep_spacing"]
    if spacing not in ("leading", "linspace", "trailing"):
        raise CheckpointError(f"{where}: unknown timestep_spacing {spacing!r}")
    # diffusers' init_noise_sigma: sigma_max for linspace/trailing, sqrt(sigma_max^2 + 1) otherwise.
    init = sigma_max if spacing in ("linspace", "trailing") else math.sqrt(sigma_max**2 + 1)
    return NoiseSchedule(sigma_min=sigma_min, sigma_max=sigma_max, init_noise_sigma=init)


def weight_files(root: Path, component: str) -> list[Path]:
    """The safetensors file(s) of one component folder (one file or the shards of an index); pickles are refused."""
    folder = root / component
    for name in WEIGHT_FILES[component]:
        if (folder / name).is_file():
            return [folder / name]
    index_files = sorted(folder.glob("*.safetensors.index.json"))
    if index_files:
        index = _read_json(index_files[0])
        shards = sorted(set(index.get("weight_map", {}).values()))
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing or not shards:
            raise CheckpointError(f"{index_files[0]}: shards missing: {missing or 'none listed'}")
        return [folder / s for s in shards]
    pickles = sorted(p.name for p in folder.glob("*.bin")) + sorted(p.name for p in folder.glob("*.pt*"))
    if pickles:
        raise CheckpointError(
            f"{folder}: weights only as pickle ({', '.join(pickles)}), which amodal never loads; convert them to "
            f"safetensors first (diffusers/transformers save_pretrained(..., safe_serialization=True))"
        )
    raise CheckpointError(f"{folder}: no weights found; expected {WEIGHT_FILES[component][0]}")




def read_weights(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights of an official folder in the ``svd`` backbone's naming: ``unet.*``, ``vae.*``, ``image_encoder.*``.

    The U-Net's ``conv_in2`` becomes ``conv_in``; its leftover ``conv_in`` is
    dropped. Raises ``CheckpointError`` when ``conv_in2`` is missing (a stock
    Stable Video Diffusion folder, not an official Diffusion-VAS one).
    """
    root = Path(path)
    weights: dict[str, torch.Tensor] = {}
    for component in WEIGHT_COMPONENTS:
        tensors = read_safetensors(weight_files(root, component))
        if component == "unet":
            tensors = adapt_unet_weights(tensors, root / "unet")
        weights.update({f"{component}.{k}": v for k, v in tensors.items()})
    for name in IGNORED_WEIGHTS:
        weights.pop(name, None)
    return weights


def adapt_unet_weights(tensors: Mapping[str, torch.Tensor], where: Path | str = "unet") -> dict[str, torch.Tensor]:
    """Official U-Net weight names -> the ``svd`` backbone's: ``conv_in2.*`` -> ``conv_in.*``, old ``conv_in.*`` dropped."""
    names = {f"{CONDITION_CONV}.weight", f"{CONDITION_CONV}.bias"}
    missing = sorted(names - set(tensors))
    if missing:
        raise CheckpointError(
            f"{where}: missing weights {missing}; an official Diffusion-VAS U-Net has a 12-channel {CONDITION_CONV}"
        )
    adapted = {}
    for key, value in tensors.items():
        if key.startswith(LEFTOVER_CONV + "."):
            continue
        if key.startswith(CONDITION_CONV + "."):
            key = LEFTOVER_CONV + key[len(CONDITION_CONV) :]
        adapted[key] = value
    return adapted




def resize_antialiased(images: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Gaussian blur then bicubic resize, as Stable Video Diffusion prepares CLIP inputs.

    The blur's sigma per axis is ``max((scale - 1) / 2, 0.001)`` for a
    downscale by ``scale``, its kernel ``2 * 2 * sigma`` wide (at least 3, odd),
    reflect-padded; the resize is bicubic with ``align_corners=True``.

    Args:
        images: ``(N, C, H, W)`` float.
        size: ``(height, width)`` of the output.

    Returns:
        ``(N, C, height, width)``, same dtype.
    """
    height, width = images.shape[-2:]
    sigma_h = max((height / size[0] - 1.0) / 2.0, 0.001)
    sigma_w = max((width / size[1] - 1.0) / 2.0, 0.001)
    channels = images.shape[1]
    blurred = images
    # Width first, then height, as the reference filters.
    for axis, sigma in ((-1, sigma_w), (-2, sigma_h)):
        taps = int(max(4.0 * sigma, 3))
        taps += 1 - taps % 2  # odd, centred
        offsets = torch.arange(taps, dtype=images.dtype, device=images.device) - taps // 2
        kernel = torch.exp(-(offsets**2) / (2 * torch.tensor(sigma, dtype=images.dtype, device=images.device) ** 2))
        kernel = kernel / kernel.sum()
        half = taps // 2
        if axis == -1:
            weight = kernel.reshape(1, 1, 1, taps).expand(channels, 1, 1, taps)
            padded = F.pad(blurred, (half, half, 0, 0), mode="reflect")
        else:
            weight = kernel.reshape(1, 1, taps, 1).expand(channels, 1, taps, 1)
            padded = F.pad(blurred, (0, 0, half, half), mode="reflect")
        blurred = F.conv2d(padded, weight, groups=channels)
    return F.interpolate(blurred, size=size, mode="bicubic", align_corners=True)


def clip_pixels(images: torch.Tensor, config: ImageEncoderConfig) -> torch.Tensor:
    """CLIP inputs from condition-1 frames.

    Resized with :func:`resize_antialiased` while still in ``[-1, 1]`` (as
    Stable Video Diffusion does), then mapped to ``[0, 1]`` and normalised with
    the CLIP mean and std.

    Args:
        images: ``(N, 3, H, W)`` float in ``[-1, 1]``.

    Returns:
        ``(N, 3, image_size, image_size)`` float.
    """
    resized = resize_antialiased(images, (config.image_size, config.image_size))
    unit = (resized + 1.0) / 2.0
    mean = torch.tensor(config.image_mean, dtype=unit.dtype, device=unit.device).reshape(1, 3, 1, 1)
    std = torch.tensor(config.image_std, dtype=unit.dtype, device=unit.device).reshape(1, 3, 1, 1)
    return (unit - mean) / std


def added_time_ids(fps: int, motion_bucket_id: int, noise_aug_strength: float, batch: int, device=None) -> torch.Tensor:
    """``(batch, 3) float32`` micro-conditioning: ``(fps - 1, motion_bucket_id, noise_aug_strength)``.

    Stable Video Diffusion was trained on ``fps - 1``; the official models keep that.
    """
    ids = torch.tensor([[fps - 1, motion_bucket_id, noise_aug_strength]], dtype=torch.float32, device=device)
    return ids.expand(batch, 3).clone()


def guidance_contexts(embeddings: torch.Tensor, order: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The unconditional and conditional cross-attention contexts for classifier-free guidance.

    Args:
        embeddings: ``(B, T, S, D)`` per-frame image embeddings of the conditional branch.
        order: ``"corrected"``: the unconditional branch sees zeros, the
            conditional branch its own frames' embeddings. ``"reference"``: the
            released pipeline's pairing. It lists the per-frame embeddings as
            ``[uncond_0, cond_0, uncond_1, cond_1, ...]`` (zeros interleaved with
            the real ones, over all ``B * T`` frames) while the latent batch is
            ``[uncond videos..., cond videos...]``; frame ``k`` of the flattened
            latent batch attends to entry ``k`` of that list. Both halves thus see
            a mix of empty and real (and shifted) embeddings.

    Returns:
        ``(uncond, cond)``, each ``(B, T, S, D)``, in the order
        :class:`amodal.diffusion.CFGDenoiser` concatenates them.
    """
    empty = torch.zeros_like(embeddings)
    if order == "corrected":
        return empty, embeddings
    if order != "reference":
        raise ValueError(f"unknown embedding order {order!r}")
    batch, frames = embeddings.shape[:2]
    interleaved = torch.stack([empty.flatten(0, 1), embeddings.flatten(0, 1)], dim=1).flatten(0, 1)  # (2BT, S, D)
    both = interleaved.reshape(2 * batch, frames, *embeddings.shape[2:])  # read back in latent batch order
    return both[:batch], both[batch:]
