"""Typed settings of the official Diffusion-VAS models: architecture, schedule, sampling, runtime."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

import torch

from amodal.errors import InputError
from amodal.backbones.svd import SVDConfig

# How the per-frame image embeddings are paired with the latent batch under guidance > 1.
EMBEDDING_ORDERS = (
    "reference",  # as the released pipeline does it (see amodal.checkpoints.official.adapter.guidance_contexts)
    "corrected",  # unconditional frames see empty embeddings, conditional frames their own
)


@dataclass(frozen=True)
class NoiseSchedule:
    """The Karras noise schedule of ``scheduler/scheduler_config.json``."""

    sigma_min: float = 0.002  # the last nonzero sigma of the schedule
    sigma_max: float = 700.0  # the first sigma; the initial noise level
    rho: float = 7.0  # Karras' exponent: spends more steps at low noise
    # Std of the initial latents. diffusers' EulerDiscreteScheduler uses
    # sqrt(sigma_max^2 + 1) for "leading" timestep spacing (what the official
    # checkpoints ship) and sigma_max for "linspace"/"trailing".
    init_noise_sigma: float = (700.0**2 + 1) ** 0.5


@dataclass(frozen=True)
class OfficialConfig:
    """One official-layout model: its networks, its schedule and its native geometry."""

    svd: SVDConfig = field(default_factory=SVDConfig)
    schedule: NoiseSchedule = field(default_factory=NoiseSchedule)
    num_frames: int = 25  # frames per window, the U-Net's training length
    height: int = 256  # the reference runs both stages at 256x512
    width: int = 512  # (the reference notes 512x1024 sometimes does better)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "OfficialConfig":
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise KeyError(f"unknown OfficialConfig keys: {unknown}")
        return cls(
            svd=SVDConfig.from_dict(data["svd"]),
            schedule=NoiseSchedule(**data["schedule"]),
            num_frames=int(data["num_frames"]),
            height=int(data["height"]),
            width=int(data["width"]),
        )


@dataclass(frozen=True)
class GenerationConfig:
    """Sampling settings; defaults are the reference demo's."""

    steps: int = 25  # Euler steps (the pipeline default the reference keeps)
    min_guidance: float = 1.5  # guidance of the first frame; the reference uses 1.5 for both stages
    max_guidance: float = 1.5  # guidance of the last frame; frames in between are linearly interpolated
    fps: int = 8  # frame-rate conditioning; the U-Net sees fps - 1, as Stable Video Diffusion was trained
    motion_bucket_id: int = 127  # motion conditioning; the reference keeps SVD's default
    noise_aug_strength: float = 0.02  # std of the noise added to the condition videos (also a time id)
    decode_chunk_size: int = 8  # frames per VAE decoder call: the reference's value; lower saves memory
    embedding_order: str = "reference"  # see EMBEDDING_ORDERS; "reference" reproduces the released pipeline

    def __post_init__(self) -> None:
        if self.steps < 1:
            raise InputError(f"steps must be at least 1, got {self.steps}")
        if self.decode_chunk_size < 1:
            raise InputError(f"decode_chunk_size must be at least 1, got {self.decode_chunk_size}")
        if self.embedding_order not in EMBEDDING_ORDERS:
            raise InputError(f"embedding_order must be one of {EMBEDDING_ORDERS}, got {self.embedding_order!r}")

    def guidance(self, num_frames: int) -> float | torch.Tensor:
        """A scalar when constant, else ``(num_frames,)`` scales from ``min_guidance`` to ``max_guidance``."""
        if self.min_guidance == self.max_guidance:
            return float(self.max_guidance)
        return torch.linspace(self.min_guidance, self.max_guidance, num_frames)


DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class RuntimeConfig:
    """Where and in which precision the networks run."""

    device: str = "cpu"  # "cpu" or "cuda" (or "cuda:N")
    dtype: str = "float32"  # "float32" or "bfloat16" on CPU; "float16" or "bfloat16" (or "float32") on CUDA
    offload: bool = False  # keep weights on the CPU and move each network to the GPU only while it runs

    def resolve(self) -> tuple[torch.device, torch.dtype]:
        """The torch device and dtype, or ``InputError`` naming the bad option and the fix."""
        device = torch.device(self.device)
        if device.type not in ("cpu", "cuda"):
            raise InputError(f"--device {self.device}: use cpu or cuda")
        if self.dtype not in DTYPES:
            raise InputError(f"--dtype {self.dtype}: use one of {', '.join(DTYPES)}")
        if device.type == "cuda" and not torch.cuda.is_available():
            raise InputError(f"--device {self.device}: CUDA is not available on this machine; use --device cpu")
        if device.type == "cpu" and self.dtype == "float16":
            raise InputError("--dtype float16 is not supported on CPU; use float32 or bfloat16")
        if device.type == "cpu" and self.offload:
            raise InputError("--offload moves networks to a GPU while they run; it needs --device cuda")
        return device, DTYPES[self.dtype]
