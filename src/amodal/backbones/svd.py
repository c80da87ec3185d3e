"""The ``svd`` backbone: Stable Video Diffusion's networks, built from a typed config.

Three networks, all from diffusers / transformers, built here from frozen
dataclasses (full-size Stable Video Diffusion 1.1 by default, or any reduced
width for tests):

- the spatio-temporal U-Net (diffusers ``UNetSpatioTemporalConditionModel``),
  wrapped by :class:`SVDBackbone` into the library's backbone signature
  ``backbone(x_in (B, T, C, H, W), c_noise (B,), **cond) -> (B, T, C, H, W)``;
- the VAE with a temporal decoder (diffusers ``AutoencoderKLTemporalDecoder``),
  used through :func:`encode_mode` and :func:`decode_latents`;
- the CLIP image encoder (transformers ``CLIPVisionModelWithProjection``),
  used through :func:`image_embeddings`.

Layout: videos are ``(B, T, C, H, W)`` everywhere in this module; the
``(B * T, C, H, W)`` flattening the diffusers networks need happens inside the
functions here and never leaks out. Nothing here knows about masks, files or
the official checkpoint layout (see :mod:`amodal.checkpoints.official.adapter`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass(frozen=True)
class UNetConfig:
    """The spatio-temporal U-Net; defaults are Stable Video Diffusion 1.1 with two condition latents."""

    in_channels: int = 12  # noisy latent (4) + latent of condition 1 (4) + latent of condition 2 (4)
    out_channels: int = 4  # the v-prediction, one value per latent channel
    block_out_channels: tuple[int, ...] = (320, 640, 1280, 1280)  # width of each resolution level
    layers_per_block: int = 2  # resnet (+ transformer) layers per level on the way down
    num_attention_heads: tuple[int, ...] = (5, 10, 20, 20)  # heads per level (64-wide heads at full size)
    transformer_layers_per_block: int = 1  # transformer depth inside each attention layer
    cross_attention_dim: int = 1024  # width of the CLIP image embedding attended to
    addition_time_embed_dim: int = 256  # sinusoidal width of each added time id (fps, motion, noise aug)
    num_frames: int = 25  # frames the network was trained on; the native window length

    def __post_init__(self) -> None:
        if len(self.num_attention_heads) != len(self.block_out_channels):
            raise ValueError(
                f"need one head count per level: {len(self.num_attention_heads)} heads for "
                f"{len(self.block_out_channels)} levels"
            )


@dataclass(frozen=True)
class VAEConfig:
    """The image VAE with a temporal decoder; defaults are Stable Video Diffusion's."""

    block_out_channels: tuple[int, ...] = (128, 256, 512, 512)  # each level after the first halves H and W
    layers_per_block: int = 2  # resnets per level
    latent_channels: int = 4  # channels of the latent the U-Net denoises
    scaling_factor: float = 0.18215  # SD's latent std; the sampler's latents are divided by it before decoding
    force_upcast: bool = True  # run the VAE in float32 when the rest runs in float16 (it overflows in fp16)

    @property
    def downsample(self) -> int:
        """Pixels per latent cell along each axis."""
        return 2 ** (len(self.block_out_channels) - 1)


@dataclass(frozen=True)
class ImageEncoderConfig:
    """The CLIP vision tower; defaults are OpenCLIP ViT-H/14 as in Stable Video Diffusion."""

    hidden_size: int = 1280  # transformer width
    intermediate_size: int = 5120  # MLP width
    num_hidden_layers: int = 32  # transformer depth
    num_attention_heads: int = 16  # heads per layer
    patch_size: int = 14  # pixels per patch side
    image_size: int = 224  # the square input the position embeddings were trained for
    projection_dim: int = 1024  # the output embedding width (= the U-Net's cross_attention_dim)
    hidden_act: str = "gelu"  # transformers activation name
    layer_norm_eps: float = 1e-5  # layer norm epsilon
    image_mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)  # CLIP's per-channel mean
    image_std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)  # CLIP's per-channel std


@dataclass(frozen=True)
class SVDConfig:
    """The three networks of one Stable-Video-Diffusion-style model."""

    unet: UNetConfig = field(default_factory=UNetConfig)
    vae: VAEConfig = field(default_factory=VAEConfig)
    image_encoder: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)

    def __post_init__(self) -> None:
        if self.image_encoder.projection_dim != self.unet.cross_attention_dim:
            raise ValueError(
                f"the image embedding width {self.image_encoder.projection_dim} must equal the U-Net's "
                f"cross_attention_dim {self.unet.cross_attention_dim}"
            )
        expected_in = 3 * self.vae.latent_channels
        if self.unet.in_channels != expected_in:
            raise ValueError(
                f"the U-Net takes the noisy latent and two condition latents: in_channels must be "
                f"{expected_in}, got {self.unet.in_channels}"
            )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "SVDConfig":
        """Inverse of :meth:`to_dict`; unknown or missing keys raise ``KeyError``/``TypeError`` naming them."""

        def build(klass, values):
            names = {f.name for f in dataclasses.fields(klass)}
            unknown = sorted(set(values) - names)
            if unknown:
                raise KeyError(f"unknown {klass.__name__} keys: {unknown}")
            return klass(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})

        return cls(
            unet=build(UNetConfig, data["unet"]),
            vae=build(VAEConfig, data["vae"]),
            image_encoder=build(ImageEncoderConfig, data["image_encoder"]),
        )


def down_block_types(levels: int) -> tuple[str, ...]:
    """Stable Video Diffusion's block layout: cross-attention at every level but the deepest."""
    return ("CrossAttnDownBlockSpatioTemporal",) * (levels - 1) + ("DownBlockSpatioTemporal",)


def up_block_types(levels: int) -> tuple[str, ...]:
    """The mirror of :func:`down_block_types`."""
    return ("UpBlockSpatioTemporal",) + ("CrossAttnUpBlockSpatioTemporal",) * (levels - 1)


def build_unet(config: UNetConfig) -> nn.Module:
    """A randomly initialised diffusers ``UNetSpatioTemporalConditionModel`` of this shape."""
    from diffusers import UNetSpatioTemporalConditionModel

    levels = len(config.block_out_channels)
    return UNetSpatioTemporalConditionModel(
        in_channels=config.in_channels,
        out_channels=config.out_channels,
        down_block_types=down_block_types(levels),
        up_block_types=up_block_types(levels),
        block_out_channels=config.block_out_channels,
        addition_time_embed_dim=config.addition_time_embed_dim,
        # fps, motion bucket and noise augmentation, each embedded at addition_time_embed_dim
        projection_class_embeddings_input_dim=3 * config.addition_time_embed_dim,
        layers_per_block=config.layers_per_block,
        cross_attention_dim=config.cross_attention_dim,
        transformer_layers_per_block=config.transformer_layers_per_block,
        num_attention_heads=config.num_attention_heads,
        num_frames=config.num_frames,
    )


def build_vae(config: VAEConfig) -> nn.Module:
    """A randomly initialised diffusers ``AutoencoderKLTemporalDecoder`` of this shape."""
    from diffusers import AutoencoderKLTemporalDecoder

    return AutoencoderKLTemporalDecoder(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(config.block_out_channels),
        block_out_channels=config.block_out_channels,
        layers_per_block=config.layers_per_block,
        latent_channels=config.latent_channels,
        scaling_factor=config.scaling_factor,
        force_upcast=config.force_upcast,
    )


def build_image_encoder(config: ImageEncoderConfig) -> nn.Module:
    """A randomly initialised transformers ``CLIPVisionModelWithProjection`` of this shape."""
    from transformers import CLIPVisionConfig, CLIPVisionModelWithProjection

    clip_config = CLIPVisionConfig(
        hidden_size=config.hidden_size,
        intermediate_size=config.intermediate_size,
        num_hidden_layers=config.num_hidden_layers,
        num_attention_heads=config.num_attention_heads,
        patch_size=config.patch_size,
        image_size=config.image_size,
        projection_dim=config.projection_dim,
        hidden_act=config.hidden_act,
        layer_norm_eps=config.layer_norm_eps,
        num_channels=3,
    )
    return CLIPVisionModelWithProjection(clip_config).eval()


class SVDBackbone(nn.Module):
    """The U-Net as a backbone ``F(x_in, c_noise, **cond)`` for :class:`amodal.diffusion.Denoiser`.

    Unlike stock diffusers, which repeats one image embedding for every frame,
    the cross-attention context here is given per frame, so a model can attend
    to a different embedding in each frame (a stock Stable Video Diffusion
    model is the special case of a context repeated along ``T``).

    ``forward`` runs the U-Net in its own parameter dtype and returns float32.
    """

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    @property
    def dtype(self) -> torch.dtype:
        return self.unet.conv_in.weight.dtype

    def forward(
        self,
        x_in: torch.Tensor,
        c_noise: torch.Tensor,
        *,
        cond_latents: torch.Tensor,
        context: torch.Tensor,
        added_time_ids: torch.Tensor,
    ) -> torch.Tensor:
        """Predict ``v`` for the scaled noisy latents.

        Args:
            x_in: ``(B, T, C, h, w)`` noisy latents already scaled by ``c_in``.
            c_noise: ``(B,)`` the noise level as ``ln(sigma) / 4`` (diffusers'
                continuous timestep).
            cond_latents: ``(B, T, C_cond, h, w)`` condition latents, concatenated
                to ``x_in`` along channels (unscaled, as trained).
            context: ``(B, T, S, D)`` per-frame cross-attention context (``T``
                may be 1 for one context shared by every frame).
            added_time_ids: ``(B, 3)`` float ``(fps - 1, motion_bucket_id, noise_aug_strength)``.

        Returns:
            ``(B, T, out_channels, h, w) float32``.
        """
        unet = self.unet
        dtype = self.dtype
        batch, frames = x_in.shape[:2]
        if context.shape[1] == 1:
            context = context.expand(-1, frames, -1, -1)
        if context.shape[:2] != (batch, frames):
            raise ValueError(f"context must be (B, T, S, D) = ({batch}, {frames}, S, D), got {tuple(context.shape)}")

        # Time embedding: the noise level plus the three added time ids, one per video.
        t_emb = unet.time_proj(c_noise.reshape(batch)).to(dtype)
        emb = unet.time_embedding(t_emb)
        time_ids = unet.add_time_proj(added_time_ids.flatten()).reshape(batch, -1).to(dtype)
        emb = emb + unet.add_embedding(time_ids)
        emb = emb.repeat_interleave(frames, dim=0)  # (B * T, E)

        sample = torch.cat([x_in, cond_latents], dim=2).to(dtype).flatten(0, 1)  # (B * T, C_in, h, w)
        context = context.to(dtype).flatten(0, 1)  # (B * T, S, D)
        indicator = torch.zeros(batch, frames, dtype=dtype, device=sample.device)  # all frames are video frames

        # Odd latent sizes: each up block must restore its skip connection's exact size.
        needs_size = any(s % 2 ** (len(unet.down_blocks) - 1) for s in sample.shape[-2:])

        h = unet.conv_in(sample)
        skips = (h,)
        for block in unet.down_blocks:
            kwargs = {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
            h, res = block(hidden_states=h, temb=emb, image_only_indicator=indicator, **kwargs)
            skips += res
        h = unet.mid_block(hidden_states=h, temb=emb, encoder_hidden_states=context, image_only_indicator=indicator)
        for i, block in enumerate(unet.up_blocks):
            res = skips[-len(block.resnets) :]
            skips = skips[: -len(block.resnets)]
            upsample_size = skips[-1].shape[2:] if needs_size and i < len(unet.up_blocks) - 1 else None
            kwargs = {"encoder_hidden_states": context} if getattr(block, "has_cross_attention", False) else {}
            h = block(
                hidden_states=h,
                temb=emb,
                res_hidden_states_tuple=res,
                upsample_size=upsample_size,
                image_only_indicator=indicator,
                **kwargs,
            )
        h = unet.conv_out(unet.conv_act(unet.conv_norm_out(h)))
        return h.reshape(batch, frames, *h.shape[1:]).float()


def vae_dtype(vae: nn.Module) -> torch.dtype:
    return next(vae.parameters()).dtype


def encode_mode(vae: nn.Module, images: torch.Tensor) -> torch.Tensor:
    """The VAE posterior mode of each frame, unscaled.

    Args:
        images: ``(B, T, 3, H, W)`` float in ``[-1, 1]``.

    Returns:
        ``(B, T, latent_channels, H / f, W / f) float32`` with ``f`` the VAE's
        downsampling factor.
    """
    batch, frames = images.shape[:2]
    latents = vae.encode(images.flatten(0, 1).to(vae_dtype(vae))).latent_dist.mode()
    return latents.reshape(batch, frames, *latents.shape[1:]).float()


def decode_latents(vae: nn.Module, latents: torch.Tensor, scaling_factor: float, chunk_size: int) -> torch.Tensor:
    """Decode sampled latents to frames, ``chunk_size`` frames per decoder call.

    The temporal decoder mixes frames inside a chunk, so the chunking changes
    the result slightly; the reference decodes 8 frames at a time. Chunks never
    straddle two videos of the batch.

    Args:
        latents: ``(B, T, C, h, w)`` sampler output (in the scaled latent space).
        scaling_factor: the VAE's ``scaling_factor``; latents are divided by it.
        chunk_size: frames per decoder call (>= 1).

    Returns:
        ``(B, T, 3, H, W) float32`` roughly in ``[-1, 1]`` (not clamped).
    """
    if chunk_size < 1:
        raise ValueError(f"decode chunk size must be at least 1, got {chunk_size}")
    dtype = vae_dtype(vae)
    videos = []
    for video in latents:  # (T, C, h, w)
        video = (video / scaling_factor).to(dtype)
        chunks = [
            vae.decode(video[i : i + chunk_size], num_frames=len(video[i : i + chunk_size])).sample
            for i in range(0, len(video), chunk_size)
        ]
        videos.append(torch.cat(chunks).float())
    return torch.stack(videos)


def image_embeddings(image_encoder: nn.Module, pixel_values: torch.Tensor) -> torch.Tensor:
    """CLIP image embeddings.

    Args:
        pixel_values: ``(N, 3, S, S)`` CLIP-normalised images at the encoder's input size.

    Returns:
        ``(N, projection_dim) float32``.
    """
    dtype = next(image_encoder.parameters()).dtype
    return image_encoder(pixel_values=pixel_values.to(dtype)).image_embeds.float()
