"""Stage-2 models on the ``lite`` backbone: the diffusion completer and its one-step regression twin.

They work on object-centred windows: the pipeline crops each object's amodal box (over the
window's frames) out of the video and scales it to the model's native ``height x width``. Both
models see the same inputs, concatenated on the channel axis of ``(B, T, C, H, W)`` tensors
(:func:`build_condition`):

- channels 0-2: the modal RGB, the object's visible pixels on white, in ``[-1, 1]``;
- channel 3: the amodal mask, ``{-1, 1}``;
- channel 4: the modal mask, ``{-1, 1}``: which pixels of channels 0-2 are the object itself.

The sample (diffusion) and the output are the object's full appearance on white, RGB in
``[-1, 1]``. Dropping the whole condition (zeros) is the unconditional input of classifier-free
guidance. A model folder holds ``config.json`` (:class:`CompleterConfig`) and ``model.safetensors``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from amodal.backbones.lite import LiteConfig, LiteUNet
from amodal.checkpoints.formats import COMPLETER_FORMAT, CONFIG_NAME, WEIGHTS_NAME
from amodal.checkpoints.safetensors import load_state_strict, read_safetensors
from amodal.diffusion import NOISE_INPUTS, SAMPLERS, CFGDenoiser, Denoiser, karras_sigmas
from amodal.errors import CheckpointError, InputError
from amodal.util.config import config_from_dict

OBJECTIVES = ("diffusion", "regression")
CONDITION_CHANNELS = 5  # modal RGB (3), amodal mask, modal mask


def _completion_backbone() -> LiteConfig:
    return LiteConfig(in_channels=3, cond_channels=CONDITION_CHANNELS, out_channels=3)


@dataclass(frozen=True)
class CompleterConfig:
    """Everything needed to rebuild a stage-2 model; saved as ``config.json``."""

    # "diffusion" (EDM v-prediction denoiser sampled with CFG) or "regression" (one step).
    objective: str = "diffusion"
    # The backbone; in/cond/out channels are fixed by the input layout above (3 / 5 / 3).
    backbone: LiteConfig = field(default_factory=_completion_backbone)
    # Native window and crop size: the stage-1 default's geometry, 16 frames at 64x128 (1:2, as the paper).
    num_frames: int = 16
    height: int = 64
    width: int = 128
    # Room around the object's amodal box in a crop, as a fraction of the box's side: context
    # for the network and a margin against boxes that grow between frames.
    margin: float = 0.15
    # Std of the clean data: RGB on white in [-1, 1] has a std of about 0.5 (EDM's image value).
    sigma_data: float = 0.5
    # Sampling schedule ends (EDM's for images in [-1, 1]).
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    # The noise level the network sees (diffusion only): "log_sigma", EDM's ln(sigma) / 4, or
    # "log_snr", ln(1 + sigma_data^2 / sigma^2) / 4, which is 0 at infinite noise as in the
    # regression twin, so that a diffusion model can start from a trained twin
    # (amodal.checkpoints.surgery.completer_from_regression).
    noise_input: str = "log_sigma"
    # The model's best sampling settings (what pipelines use unless told otherwise); the
    # paper's 25 Euler steps at guidance 1.5 until a trained model's measurements say better.
    sampling_steps: int = 25
    sampling_guidance: float = 1.5

    def __post_init__(self) -> None:
        if self.objective not in OBJECTIVES:
            raise InputError(f"completer config: objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        b = self.backbone
        if (b.in_channels, b.cond_channels, b.out_channels) != (3, CONDITION_CHANNELS, 3):
            raise InputError(
                f"completer config: backbone in/cond/out channels must be 3/{CONDITION_CHANNELS}/3, "
                f"got {b.in_channels}/{b.cond_channels}/{b.out_channels}"
            )
        f = b.spatial_factor
        if self.height % f or self.width % f:
            raise InputError(f"completer config: height and width must be multiples of {f}, got {self.height}x{self.width}")
        if not 1 <= self.num_frames <= b.max_frames:
            raise InputError(f"completer config: num_frames must be in [1, {b.max_frames}], got {self.num_frames}")
        if not 0 < self.sigma_min < self.sigma_max or self.sigma_data <= 0 or self.margin < 0:
            raise InputError("completer config: need 0 < sigma_min < sigma_max, sigma_data > 0 and margin >= 0")
        if self.noise_input not in NOISE_INPUTS:
            raise InputError(f"completer config: noise_input must be one of {list(NOISE_INPUTS)}, got {self.noise_input!r}")
        if self.objective == "regression" and self.noise_input != "log_sigma":
            raise InputError("completer config: noise_input applies to the diffusion objective only")
        if self.sampling_steps < 1 or self.sampling_guidance < 0:
            raise InputError("completer config: need sampling_steps >= 1 and sampling_guidance >= 0")

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["backbone"] = self.backbone.to_dict()
        return d


def build_condition(modal_rgb: torch.Tensor, amodal: torch.Tensor, modal: torch.Tensor) -> torch.Tensor:
    """Stack the condition channels.

    Args:
        modal_rgb: ``(B, T, 3, H, W) float32`` in ``[0, 1]``, the visible object pixels, white elsewhere.
        amodal: ``(B, T, H, W) float32`` in ``{0, 1}``.
        modal: ``(B, T, H, W) float32`` in ``{0, 1}``.

    Returns:
        ``(B, T, 5, H, W) float32`` in ``[-1, 1]``.
    """
    return torch.cat([modal_rgb * 2.0 - 1.0, amodal[:, :, None] * 2.0 - 1.0, modal[:, :, None] * 2.0 - 1.0], dim=2)


def _check_inputs(config: CompleterConfig, modal_rgb: torch.Tensor, amodal: torch.Tensor, modal: torch.Tensor) -> None:
    if modal_rgb.ndim != 5 or modal_rgb.shape[2] != 3:
        raise InputError(f"modal RGB must be (B, T, 3, H, W), got {tuple(modal_rgb.shape)}")
    b, t, _, h, w = modal_rgb.shape
    if (h, w) != (config.height, config.width):
        raise InputError(f"crops are {h}x{w} but the model's native size is {config.height}x{config.width}")
    if t > config.backbone.max_frames:
        raise InputError(f"{t} frames, more than the model's limit {config.backbone.max_frames}; window the video")
    for name, mask in (("amodal", amodal), ("modal", modal)):
        if tuple(mask.shape) != (b, t, h, w):
            raise InputError(f"{name} masks {tuple(mask.shape)} do not match the modal RGB {(b, t, h, w)}")


class _CompleterBase(nn.Module):
    config: CompleterConfig

    @property
    def num_frames(self) -> int:
        return self.config.num_frames

    @property
    def height(self) -> int:
        return self.config.height

    @property
    def width(self) -> int:
        return self.config.width

    @property
    def margin(self) -> float:
        return self.config.margin

    @property
    def iterative(self) -> bool:
        """Whether sampling steps and guidance apply (a one-step regression model ignores both)."""
        return self.config.objective == "diffusion"

    @property
    def default_steps(self) -> int:
        return self.config.sampling_steps

    @property
    def default_guidance(self) -> float:
        return self.config.sampling_guidance

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` (float32) to the folder ``path``, atomically."""
        save_completer(path, self.config, self.backbone.state_dict())


class DiffusionCompleter(_CompleterBase):
    """The appearance denoiser: ``samples`` integrates the probability-flow ODE with CFG.

    ``self(x, sigma, cond)``: ``x (B, T, 3, H, W)`` noisy RGB, ``sigma (B,)``, ``cond`` from
    :func:`build_condition`; returns the denoised estimate ``(B, T, 3, H, W)`` in about ``[-1, 1]``.
    """

    def __init__(self, config: CompleterConfig):
        super().__init__()
        if config.objective != "diffusion":
            raise InputError(f"DiffusionCompleter needs objective 'diffusion', got {config.objective!r}")
        self.config = config
        self.denoiser = Denoiser(LiteUNet(config.backbone), sigma_data=config.sigma_data, noise_input=config.noise_input)

    @property
    def backbone(self) -> LiteUNet:
        return self.denoiser.backbone

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return self.denoiser(x, sigma, cond=cond)

    @torch.no_grad()
    def samples(
        self,
        modal_rgb: torch.Tensor,
        amodal: torch.Tensor,
        modal: torch.Tensor,
        num_samples: int = 1,
        *,
        steps: int | None = None,  # Euler steps; None = the model's sampling_steps
        guidance: float | None = None,  # CFG scale (1 disables the unconditional branch); None = sampling_guidance
        generator: torch.Generator | None = None,
        sampler: str = "euler",  # a key of amodal.diffusion.SAMPLERS
        noise: torch.Tensor | None = None,  # the unit initial noise, (B * num_samples, T, 3, H, W); None = drawn from generator
    ) -> torch.Tensor:
        """Draw ``num_samples`` appearances per input, one initial noise each.

        Inputs as :func:`build_condition`. Returns ``(B, num_samples, T, 3, H, W) float32`` in ``[0, 1]``.
        """
        _check_inputs(self.config, modal_rgb, amodal, modal)
        if sampler not in SAMPLERS:
            raise InputError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}")
        steps = self.config.sampling_steps if steps is None else steps
        guidance = self.config.sampling_guidance if guidance is None else guidance
        device = self.device
        b, t, _, h, w = modal_rgb.shape
        cond = build_condition(modal_rgb.float(), amodal.float(), modal.float()).to(device)
        cond = cond.repeat_interleave(num_samples, dim=0)  # (B*S, T, 5, H, W)
        sigmas = karras_sigmas(steps, self.config.sigma_min, self.config.sigma_max, device=device)
        shape = (b * num_samples, t, 3, h, w)
        if noise is None:
            noise = torch.randn(shape, generator=generator, dtype=torch.float32)
        elif tuple(noise.shape) != shape:
            raise InputError(f"noise must be {shape} (inputs times samples first), got {tuple(noise.shape)}")
        denoiser = CFGDenoiser(self, {"cond": cond}, {"cond": torch.zeros_like(cond)}, guidance)
        x0 = SAMPLERS[sampler](denoiser, noise.to(device) * sigmas[0], sigmas)
        return ((x0 + 1.0) / 2.0).clamp(0.0, 1.0).reshape(b, num_samples, t, 3, h, w).float()


class RegressionCompleter(_CompleterBase):
    """The one-step twin: the same backbone maps the condition straight to the appearance."""

    def __init__(self, config: CompleterConfig):
        super().__init__()
        if config.objective != "regression":
            raise InputError(f"RegressionCompleter needs objective 'regression', got {config.objective!r}")
        self.config = config
        self.net = LiteUNet(config.backbone)

    @property
    def backbone(self) -> LiteUNet:
        return self.net

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        """``cond (B, T, 5, H, W)`` -> the appearance ``(B, T, 3, H, W)`` in about ``[-1, 1]``."""
        b, t, _, h, w = cond.shape
        return self.net(cond.new_zeros((b, t, 3, h, w)), cond.new_zeros((b,)), cond=cond)

    @torch.no_grad()
    def samples(self, modal_rgb, amodal, modal, num_samples: int = 1, *, steps=None, guidance=None, generator=None,
                sampler: str = "euler", noise=None) -> torch.Tensor:
        """As :meth:`DiffusionCompleter.samples` (``steps``, ``guidance``, ``generator``, ``noise`` are ignored):
        identical copies."""
        _check_inputs(self.config, modal_rgb, amodal, modal)
        cond = build_condition(modal_rgb.float(), amodal.float(), modal.float()).to(self.device)
        out = ((self(cond) + 1.0) / 2.0).clamp(0.0, 1.0).float()
        return out[:, None].expand(-1, num_samples, -1, -1, -1, -1).contiguous()


Completer = DiffusionCompleter | RegressionCompleter


def build_completer(config: CompleterConfig) -> Completer:
    """A freshly initialised model for ``config.objective``."""
    return DiffusionCompleter(config) if config.objective == "diffusion" else RegressionCompleter(config)


def save_completer(path: str | os.PathLike, config: CompleterConfig, state: dict[str, torch.Tensor]) -> None:
    """Write a model folder (``config.json`` + ``model.safetensors``) atomically."""
    from safetensors.torch import save_file

    from amodal.util.fs import atomic_dir

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()}
    with atomic_dir(path) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps({"format": COMPLETER_FORMAT, **config.to_dict()}, indent=2) + "\n")


def read_completer_config(path: str | os.PathLike) -> CompleterConfig:
    """Read ``config.json`` of a completer folder strictly (unknown keys are an error)."""
    file = Path(path) / CONFIG_NAME
    try:
        values = json.loads(file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no {CONFIG_NAME}; a model folder holds {CONFIG_NAME} and {WEIGHTS_NAME}") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{file}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(values, dict) or values.pop("format", None) != COMPLETER_FORMAT:
        raise CheckpointError(f"{file}: not an amodal completer config (expected \"format\": \"{COMPLETER_FORMAT}\")")
    try:
        return config_from_dict(CompleterConfig, values, str(file))
    except InputError as e:
        raise CheckpointError(str(e)) from None


def load_completer_folder(path: str | os.PathLike, device: str | torch.device = "cpu") -> Completer:
    """Load a completer folder written by :meth:`save_pretrained`, strictly, in eval mode."""
    path = Path(path)
    config = read_completer_config(path)
    weights = path / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{path}: no {WEIGHTS_NAME}; a model folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    model = build_completer(config)
    load_state_strict(model.backbone, read_safetensors(weights, fix="re-export the model"), str(weights))
    return model.to(device).eval()
