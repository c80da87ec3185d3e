"""``lite``: a compact spatio-temporal U-Net for mask diffusion on a CPU.

The architecture follows the factorised design of Stable Video Diffusion's
U-Net at a fraction of the cost:

- space and time are separate: every residual block runs 2D convolutions on
  each frame; temporal 1D convolutions mix frames only at the coarser levels,
  and self-attention (spatial, then temporal) runs only at the lowest
  resolution, where a frame is a few hundred tokens;
- the noise level enters as a sinusoidal embedding of ``c_noise`` that sets a
  per-channel scale and shift after each block's second GroupNorm (AdaGN/FiLM);
- the input is pixel-unshuffled (space-to-depth) before the first convolution,
  so the most expensive level runs at a fraction of the native resolution;
- a small head at full resolution sees the pixel-shuffled features next to the
  raw inputs, so pixel-exact detail (the modal mask's edges, the noise in the
  sample) does not have to squeeze through the coarse levels. Its output is
  ``F = f + g * x_in`` with both ``f`` and ``g`` predicted: an EDM denoiser
  needs ``F`` to contain a noise-level-dependent multiple of its input
  (``g = 1 / sigma`` for v-prediction with ``sigma_data = 1``), which a
  network that downsamples first cannot reproduce pixel by pixel.

Tensors are ``(B, T, C, H, W)`` float, the library's layout. The backbone
signature is the one :class:`amodal.diffusion.Denoiser` expects:
``backbone(x_in, c_noise, cond=...) -> (B, T, out_channels, H, W)``.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class LiteConfig:
    """Hyperparameters of :class:`LiteUNet`; saved next to every checkpoint."""

    # Channels of the noisy sample (1: an amodal mask in [-1, 1]).
    in_channels: int = 1
    # Condition channels concatenated to the sample: modal mask, depth, depth-present flag.
    cond_channels: int = 3
    # Channels of the output (1: v-prediction for diffusion, logits for regression).
    out_channels: int = 1
    # Width of each level, finest first; one factor-2 downsampling between levels.
    # Three levels take 64x128 down to 8x16 after the space-to-depth stem.
    channels: tuple[int, ...] = (32, 64, 128)
    # Residual blocks per level, in the encoder and (each taking one skip) in the decoder.
    blocks_per_level: int = 1
    # Space-to-depth factor of the stem: the finest level runs at H/patch x W/patch.
    patch: int = 2
    # First level (0 = finest) whose residual blocks carry a temporal convolution.
    # Temporal mixing is cheap at coarse levels and enough there: occluders move
    # by a few pixels per frame, which a coarse level sees as sub-pixel motion.
    temporal_from_level: int = 1
    # Kernel length of the temporal convolutions, in frames.
    temporal_kernel: int = 3
    # Attention heads at the lowest level (spatial and temporal).
    heads: int = 4
    # Width of the noise-level embedding.
    emb_dim: int = 128
    # GroupNorm groups; must divide every width.
    groups: int = 8
    # Longest window the learned frame-position embedding covers.
    max_frames: int = 32
    # Channels the last level hands to the full-resolution head (after pixel-shuffle),
    # and the head's hidden width: a 3x3 conv over these plus the raw inputs.
    head_channels: int = 8
    head_hidden: int = 16

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if not self.channels:
            raise ValueError("LiteConfig.channels needs at least one level")
        for c in self.channels:
            if c % self.groups:
                raise ValueError(f"LiteConfig.groups={self.groups} must divide every width, got {self.channels}")
        if self.channels[-1] % self.heads:
            raise ValueError(f"LiteConfig.heads={self.heads} must divide the lowest width {self.channels[-1]}")
        if self.temporal_kernel % 2 != 1:
            raise ValueError(f"LiteConfig.temporal_kernel must be odd, got {self.temporal_kernel}")

    @property
    def spatial_factor(self) -> int:
        """Height and width must be multiples of this."""
        return self.patch * 2 ** (len(self.channels) - 1)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["channels"] = list(self.channels)
        return d


def sinusoidal_embedding(c_noise: torch.Tensor, dim: int) -> torch.Tensor:
    """``(B,) -> (B, dim)`` sin/cos features of ``c_noise`` at geometrically spaced frequencies.

    ``c_noise = ln(sigma) / 4`` lies in about ``[-2, 2]``; frequencies from 1 to
    1000 resolve it finely without aliasing across that range.
    """
    half = dim // 2
    freqs = torch.exp(torch.linspace(0.0, math.log(1000.0), half, device=c_noise.device, dtype=torch.float32))
    angles = c_noise.float()[:, None] * freqs[None]
    return torch.cat([angles.sin(), angles.cos()], dim=1)


def _zero(module: nn.Module) -> nn.Module:
    """Zero a layer's parameters so a residual branch starts as the identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class TemporalConv(nn.Module):
    """Residual 1D convolution along time at every pixel: ``(B*T, C, H, W) -> same``."""

    def __init__(self, channels: int, kernel: int, groups: int):
        super().__init__()
        self.norm = nn.GroupNorm(groups, channels)
        self.conv = _zero(nn.Conv1d(channels, channels, kernel, padding=kernel // 2))

    def forward(self, h: torch.Tensor, num_frames: int) -> torch.Tensor:
        bt, c, height, width = h.shape
        b = bt // num_frames
        y = F.silu(self.norm(h))
        y = y.reshape(b, num_frames, c, height * width).permute(0, 3, 2, 1)  # (B, HW, C, T)
        y = self.conv(y.reshape(b * height * width, c, num_frames))
        y = y.reshape(b, height * width, c, num_frames).permute(0, 3, 2, 1)  # (B, T, C, HW)
        return h + y.reshape(bt, c, height, width)


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the noise embedding as a FiLM after the second norm.

    Optionally followed by a temporal convolution. Works on ``(B*T, C, H, W)``
    with the embedding already repeated per frame ``(B*T, E)``.
    """

    def __init__(self, c_in: int, c_out: int, emb_dim: int, groups: int, temporal_kernel: int | None):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, c_in)
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.film = nn.Linear(emb_dim, 2 * c_out)
        self.norm2 = nn.GroupNorm(groups, c_out)
        self.conv2 = _zero(nn.Conv2d(c_out, c_out, 3, padding=1))
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()
        self.temporal = TemporalConv(c_out, temporal_kernel, groups) if temporal_kernel else None

    def forward(self, h: torch.Tensor, emb: torch.Tensor, num_frames: int) -> torch.Tensor:
        y = self.conv1(F.silu(self.norm1(h)))
        scale, shift = self.film(emb)[:, :, None, None].chunk(2, dim=1)
        y = self.norm2(y) * (1 + scale) + shift
        y = self.conv2(F.silu(y))
        h = self.skip(h) + y
        if self.temporal is not None:
            h = self.temporal(h, num_frames)
        return h


class SpatioTemporalAttention(nn.Module):
    """Self-attention over the pixels of each frame, then over the frames at each pixel.

    Runs at the lowest resolution only; a learned frame-position embedding tells
    the temporal attention which frame is which.
    """

    def __init__(self, channels: int, heads: int, groups: int, max_frames: int):
        super().__init__()
        self.heads = heads
        self.norm_s = nn.GroupNorm(groups, channels)
        self.qkv_s = nn.Linear(channels, 3 * channels)
        self.out_s = _zero(nn.Linear(channels, channels))
        self.frame_pos = nn.Parameter(torch.zeros(max_frames, channels))
        self.norm_t = nn.LayerNorm(channels)
        self.qkv_t = nn.Linear(channels, 3 * channels)
        self.out_t = _zero(nn.Linear(channels, channels))

    def _attend(self, tokens: torch.Tensor, qkv: nn.Linear, out: nn.Linear) -> torch.Tensor:
        n, length, c = tokens.shape
        q, k, v = qkv(tokens).reshape(n, length, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        y = F.scaled_dot_product_attention(q, k, v)  # (N, heads, L, C/heads)
        return out(y.transpose(1, 2).reshape(n, length, c))

    def forward(self, h: torch.Tensor, num_frames: int) -> torch.Tensor:
        bt, c, height, width = h.shape
        b = bt // num_frames
        # Spatial: one sequence of H*W tokens per frame.
        tokens = self.norm_s(h).reshape(bt, c, height * width).transpose(1, 2)  # (BT, HW, C)
        h = h + self._attend(tokens, self.qkv_s, self.out_s).transpose(1, 2).reshape(bt, c, height, width)
        # Temporal: one sequence of T tokens per pixel.
        tokens = h.reshape(b, num_frames, c, height * width).permute(0, 3, 1, 2)  # (B, HW, T, C)
        tokens = tokens.reshape(b * height * width, num_frames, c)
        y = self._attend(self.norm_t(tokens + self.frame_pos[:num_frames]), self.qkv_t, self.out_t)
        y = y.reshape(b, height * width, num_frames, c).permute(0, 2, 3, 1)  # (B, T, C, HW)
        return h + y.reshape(bt, c, height, width)


class LiteUNet(nn.Module):
    """The compact spatio-temporal U-Net; see the module docstring for the design.

    ``forward(x_in, c_noise, cond)``:

    - ``x_in``: ``(B, T, in_channels, H, W) float32``, the scaled noisy sample.
    - ``c_noise``: ``(B,) float32``, the EDM noise-level input ``ln(sigma) / 4``.
    - ``cond``: ``(B, T, cond_channels, H, W) float32``, the conditions
      (modal mask and depth in ``[-1, 1]``, depth-present flag in ``{0, 1}``).

    Returns ``(B, T, out_channels, H, W) float32``. ``H`` and ``W`` must be
    multiples of ``config.spatial_factor``; ``T <= config.max_frames``.
    """

    def __init__(self, config: LiteConfig):
        super().__init__()
        self.config = config
        cfg = config
        widths = cfg.channels
        self.emb = nn.Sequential(nn.Linear(cfg.emb_dim, cfg.emb_dim), nn.SiLU(), nn.Linear(cfg.emb_dim, cfg.emb_dim))
        stem_in = (cfg.in_channels + cfg.cond_channels) * cfg.patch**2
        self.stem = nn.Conv2d(stem_in, widths[0], 3, padding=1)

        def temporal(level: int) -> int | None:
            return cfg.temporal_kernel if level >= cfg.temporal_from_level else None

        self.down_blocks = nn.ModuleList()
        self.downsamples = nn.ModuleList()
        skip_widths = []
        c = widths[0]
        for level, width in enumerate(widths):
            blocks = nn.ModuleList()
            for _ in range(cfg.blocks_per_level):
                blocks.append(ResBlock(c, width, cfg.emb_dim, cfg.groups, temporal(level)))
                c = width
                skip_widths.append(c)
            self.down_blocks.append(blocks)
            if level < len(widths) - 1:
                self.downsamples.append(nn.Conv2d(c, c, 3, stride=2, padding=1))
        self.mid = ResBlock(c, c, cfg.emb_dim, cfg.groups, cfg.temporal_kernel)
        self.attn = SpatioTemporalAttention(c, cfg.heads, cfg.groups, cfg.max_frames)
        self.mid2 = ResBlock(c, c, cfg.emb_dim, cfg.groups, cfg.temporal_kernel)

        self.up_blocks = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        for level in reversed(range(len(widths))):
            width = widths[level]
            blocks = nn.ModuleList()
            for _ in range(cfg.blocks_per_level):
                blocks.append(ResBlock(c + skip_widths.pop(), width, cfg.emb_dim, cfg.groups, temporal(level)))
                c = width
            self.up_blocks.append(blocks)
            if level > 0:
                self.upsamples.append(nn.Conv2d(c, widths[level - 1], 3, padding=1))
                c = widths[level - 1]
        self.out_norm = nn.GroupNorm(cfg.groups, c)
        self.out = nn.Conv2d(c, cfg.head_channels * cfg.patch**2, 3, padding=1)
        raw = cfg.in_channels + cfg.cond_channels
        self.head = nn.Conv2d(cfg.head_channels + raw, cfg.head_hidden, 3, padding=1)
        self.head_out = _zero(nn.Conv2d(cfg.head_hidden, 2 * cfg.out_channels, 1))  # f and g

    def forward(self, x_in: torch.Tensor, c_noise: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        cfg = self.config
        b, t, _, height, width = x_in.shape
        if height % cfg.spatial_factor or width % cfg.spatial_factor:
            raise ValueError(f"height and width must be multiples of {cfg.spatial_factor}, got {height}x{width}")
        if t > cfg.max_frames:
            raise ValueError(f"at most {cfg.max_frames} frames, got {t}")
        if cond.shape != (b, t, cfg.cond_channels, height, width):
            raise ValueError(f"cond must have shape {(b, t, cfg.cond_channels, height, width)}, got {tuple(cond.shape)}")
        emb = self.emb(sinusoidal_embedding(c_noise.reshape(b), cfg.emb_dim).to(x_in.dtype))
        emb = emb.repeat_interleave(t, dim=0)  # (B*T, E)
        raw = torch.cat([x_in, cond], dim=2).reshape(b * t, -1, height, width)
        h = self.stem(F.pixel_unshuffle(raw, cfg.patch))  # (B*T, C0, H/p, W/p)

        skips = []
        for level, blocks in enumerate(self.down_blocks):
            for block in blocks:
                h = block(h, emb, t)
                skips.append(h)
            if level < len(self.downsamples):
                h = self.downsamples[level](h)
        h = self.mid(h, emb, t)
        h = self.attn(h, t)
        h = self.mid2(h, emb, t)
        for i, blocks in enumerate(self.up_blocks):
            for block in blocks:
                h = block(torch.cat([h, skips.pop()], dim=1), emb, t)
            if i < len(self.upsamples):
                h = self.upsamples[i](F.interpolate(h, scale_factor=2.0, mode="nearest"))
        h = F.pixel_shuffle(self.out(F.silu(self.out_norm(h))), cfg.patch)  # (B*T, head_channels, H, W)
        h = self.head(torch.cat([h, raw], dim=1))  # (B*T, head_hidden, H, W)
        f, g = self.head_out(F.silu(h)).chunk(2, dim=1)  # (B*T, out, H, W) each
        gated = x_in.reshape(b * t, -1, height, width)[:, : cfg.out_channels]
        if gated.shape[1] < cfg.out_channels:  # fewer sample than output channels: gate what there is
            gated = F.pad(gated, (0, 0, 0, 0, 0, cfg.out_channels - gated.shape[1]))
        return (f + g * gated).reshape(b, t, cfg.out_channels, height, width)
