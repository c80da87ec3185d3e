"""Stage-1 models on the ``lite`` backbone: the diffusion segmenter and its one-step regression twin.

Both see the same inputs, concatenated on the channel axis of
``(B, T, C, H, W)`` tensors (see :func:`build_condition`):

- channel 0: the noisy amodal mask (diffusion; zeros for regression), ``[-1, 1]``;
- channel 1: the modal mask, ``{-1, 1}`` (``0`` when the condition is dropped);
- channel 2: inverse depth normalised per clip to ``[-1, 1]`` (``0`` without depth);
- channel 3: ``1`` where depth is present, ``0`` otherwise, so one model runs
  with or without depth;
- channels 4...: the geometric priors named in ``SegmenterConfig.priors``
  (:mod:`amodal.segmentation.priors`), ``{-1, 1}``, computed from the modal masks.
- last, with ``SegmenterConfig.self_condition`` (diffusion only): the model's own
  previous estimate of the amodal mask, ``[-1, 1]`` (zeros at the first step).
  It is not part of :func:`build_condition`: the sampler supplies it each step,
  to both guidance branches.

Dropping the whole condition (every condition channel zero) is the
"unconditional" input of classifier-free guidance and of conditioning dropout
in training.

A model folder holds ``config.json`` (:class:`SegmenterConfig`) and
``model.safetensors`` (the backbone's weights), loaded strictly.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from amodal.util.config import config_from_dict
from amodal.diffusion import SAMPLERS, BinaryDenoiser, CFGDenoiser, Denoiser, SelfConditioning, karras_sigmas
from amodal.checkpoints.formats import CONFIG_NAME, SEGMENTER_FORMAT, WEIGHTS_NAME
from amodal.checkpoints.safetensors import load_state_strict, read_safetensors
from amodal.errors import CheckpointError, InputError
from amodal.backbones.lite import LiteConfig, LiteUNet
from amodal.segmentation.priors import PRIORS, prior_masks
from amodal.segmentation.protocol import SAMPLE_LEVELS

FORMAT = SEGMENTER_FORMAT  # the ``format`` key of config.json, to tell our folders from others

OBJECTIVES = ("diffusion", "regression")
# How the diffusion model's network output becomes the denoised estimate:
# "vpred": EDM preconditioning with SVD's v-prediction, trained with the EDM-weighted squared error;
# "logit": the network predicts the logit of P(amodal) (amodal.diffusion.BinaryDenoiser), trained
# with binary cross-entropy, the parameterisation fitted to binary masks.
PARAMETERIZATIONS = ("vpred", "logit")


@dataclass(frozen=True)
class SegmenterConfig:
    """Everything needed to rebuild a stage-1 model; saved as ``config.json``."""

    # "diffusion" (EDM mask denoiser sampled with CFG) or "regression" (one step, BCE logits).
    objective: str = "diffusion"
    # The backbone; its in/cond/out channel counts are fixed by the input layout above.
    backbone: LiteConfig = field(default_factory=LiteConfig)
    # Native window: 16 frames cover about 1.3 s of 12 fps video, long enough for an
    # occluder to pass in front of an object and uncover it again.
    num_frames: int = 16
    # Native size: half of the synthetic 128x256 frames and a quarter of the paper's
    # 256x512 per side, with the paper's 1:2 aspect; a CPU can train it in hours.
    height: int = 64
    width: int = 128
    # Std of the clean data: binary masks in {-1, 1} have std 1, as SVD latents do.
    sigma_data: float = 1.0
    # Sampling schedule ends. Below sigma 0.02 a {-1, 1} mask cannot change sign. A mask's
    # large smooth regions still show through sigma 20 (benchmarks/noise_levels.py), so models
    # trained at high noise levels sample from 80 (the bundled default does, see docs/model.md).
    sigma_min: float = 0.02
    sigma_max: float = 20.0
    # Fixed noise-level input of the regression twin (c_noise = ln(1) / 4 = 0).
    regression_c_noise: float = 0.0
    # Soft-mask value above which a pixel is amodal.
    threshold: float = 0.5
    # Whether the model was trained with depth (it still runs without: flag channel 0).
    uses_depth: bool = True
    # Geometric priors given as extra condition channels, keys of amodal.segmentation.priors.PRIORS.
    priors: tuple[str, ...] = ()
    # Diffusion only: the denoiser's parameterisation, one of PARAMETERIZATIONS.
    parameterization: str = "vpred"
    # Diffusion only: feed the model its previous estimate as the last condition channel.
    self_condition: bool = False
    # The model's best sampling settings, what pipelines, `amodal segment`, `eval` and `bench` use
    # unless told otherwise. The paper's 25 Euler steps at guidance 1.5 until a trained model's
    # measurements say better (docs/results.md); one-step regression models ignore both.
    sampling_steps: int = 25
    sampling_guidance: float = 1.5
    # What makes samples differ, one of SAMPLE_LEVELS (segmentation/pipeline.py, sample_levels):
    # "fixed" thresholds every sample at `threshold`, so only the initial noise separates them;
    # "stratified" thresholds the first sample there and each further one at its own level drawn
    # from a stratum of (0, 1), so a model whose one step gives P(amodal) per pixel (the noise
    # barely moves it) still yields hypotheses from tight to generous, and their frequency
    # estimates that probability. Measured in docs/results.md.
    sample_levels: str = "fixed"
    # How the model is best given amodal boxes (segmentation/boxes.py): "clip" (the whole frame,
    # output cut to the boxes) unless it was trained on box crops ("crop"); recorded at export.
    box_mode: str = "clip"

    def __post_init__(self) -> None:
        if self.sample_levels not in SAMPLE_LEVELS:
            raise InputError(
                f"segmenter config: sample_levels must be one of {list(SAMPLE_LEVELS)}, got {self.sample_levels!r}"
            )
        if self.box_mode not in ("clip", "crop"):
            raise InputError(f"segmenter config: box_mode must be 'clip' or 'crop', got {self.box_mode!r}")
        if self.objective not in OBJECTIVES:
            raise InputError(f"segmenter config: objective must be one of {list(OBJECTIVES)}, got {self.objective!r}")
        unknown = sorted(set(self.priors) - set(PRIORS))
        if unknown or len(set(self.priors)) != len(self.priors):
            raise InputError(f"segmenter config: priors must be distinct keys of {sorted(PRIORS)}, got {list(self.priors)}")
        if self.parameterization not in PARAMETERIZATIONS:
            raise InputError(
                f"segmenter config: parameterization must be one of {list(PARAMETERIZATIONS)}, got {self.parameterization!r}"
            )
        if self.objective == "regression" and (self.parameterization != "vpred" or self.self_condition):
            raise InputError("segmenter config: parameterization and self_condition apply to the diffusion objective only")
        b = self.backbone
        cond = self.condition_channels
        if (b.in_channels, b.cond_channels, b.out_channels) != (1, cond, 1):
            raise InputError(
                f"segmenter config: backbone in/cond/out channels must be 1/{cond}/1 for mask inputs "
                f"with {len(self.priors)} priors{' and self-conditioning' if self.self_condition else ''}, "
                f"got {b.in_channels}/{b.cond_channels}/{b.out_channels}"
            )
        f = b.spatial_factor
        if self.height % f or self.width % f:
            raise InputError(f"segmenter config: height and width must be multiples of {f}, got {self.height}x{self.width}")
        if not 1 <= self.num_frames <= b.max_frames:
            raise InputError(f"segmenter config: num_frames must be in [1, {b.max_frames}], got {self.num_frames}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise InputError(f"segmenter config: need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")
        if self.sampling_steps < 1 or self.sampling_guidance < 0:
            raise InputError(
                f"segmenter config: need sampling_steps >= 1 and sampling_guidance >= 0, "
                f"got {self.sampling_steps}, {self.sampling_guidance}"
            )
        if not 0 < self.threshold < 1:
            raise InputError(f"segmenter config: threshold must be in (0, 1), got {self.threshold}")

    @property
    def condition_channels(self) -> int:
        """Channels of the backbone's condition input: modal, depth, flag, priors, then the self-conditioning estimate."""
        return 3 + len(self.priors) + int(self.self_condition)

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["backbone"] = self.backbone.to_dict()
        return d


def build_condition(modal: torch.Tensor, depth: torch.Tensor | None, priors: tuple[str, ...] = ()) -> torch.Tensor:
    """Stack the condition channels.

    Args:
        modal: ``(B, T, H, W) float32`` in ``{0, 1}``.
        depth: ``(B, T, H, W) float32`` in ``[-1, 1]`` (larger is nearer), or ``None``.
        priors: names of geometric priors to append (:mod:`amodal.segmentation.priors`).

    Returns:
        ``(B, T, 3 + len(priors), H, W) float32``: modal in ``{-1, 1}``, depth
        (zeros when absent), the depth-present flag in ``{0, 1}``, then the
        priors in ``{-1, 1}``.
    """
    modal_pm = modal * 2.0 - 1.0
    if depth is None:
        depth_ch = torch.zeros_like(modal)
        flag = torch.zeros_like(modal)
    else:
        depth_ch = depth.to(modal.dtype)
        flag = torch.ones_like(modal)
    cond = torch.stack([modal_pm, depth_ch, flag], dim=2)
    if not priors:
        return cond
    return torch.cat([cond, prior_masks(modal, priors) * 2.0 - 1.0], dim=2)


def null_condition(cond: torch.Tensor) -> torch.Tensor:
    """The dropped condition (all zeros), shaped like ``cond``: the unconditional input of CFG."""
    return torch.zeros_like(cond)


def _check_inputs(config: SegmenterConfig, modal: torch.Tensor, depth: torch.Tensor | None) -> None:
    if modal.ndim != 4:
        raise InputError(f"modal must be a (B, T, H, W) tensor, got shape {tuple(modal.shape)}")
    b, t, h, w = modal.shape
    if (h, w) != (config.height, config.width):
        raise InputError(
            f"modal is {h}x{w} but the model's native size is {config.height}x{config.width}; "
            "letterbox the frames first (amodal.data.geometry.to_model)"
        )
    if t > config.backbone.max_frames:
        raise InputError(f"modal has {t} frames, more than the model's limit {config.backbone.max_frames}; window the video")
    if depth is not None and tuple(depth.shape) != tuple(modal.shape):
        raise InputError(f"depth shape {tuple(depth.shape)} does not match modal shape {tuple(modal.shape)}")


class _SegmenterBase(nn.Module):
    config: SegmenterConfig

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
    def uses_depth(self) -> bool:
        return self.config.uses_depth

    @property
    def threshold(self) -> float:
        return self.config.threshold

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
    def default_sample_levels(self) -> str:
        return self.config.sample_levels

    @property
    def default_box_mode(self) -> str:
        return self.config.box_mode

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def sample(
        self,
        modal: torch.Tensor,
        depth: torch.Tensor | None,
        *,
        steps: int | None = None,
        guidance: float | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str = "euler",
    ) -> torch.Tensor:
        """Predict soft amodal masks; see :class:`amodal.segmentation.protocol.AmodalSegmenter`.

        ``modal (B, T, H, W) float32`` in ``{0, 1}``, ``depth`` the same shape in
        ``[-1, 1]`` or ``None``; returns ``(B, T, H, W) float32`` in ``[0, 1]``.
        """
        return self.samples(modal, depth, 1, steps=steps, guidance=guidance, generator=generator, sampler=sampler)[:, 0]

    def samples(self, modal, depth, num_samples, *, steps=None, guidance=None, generator=None, sampler="euler"):
        raise NotImplementedError

    def save_pretrained(self, path: str | os.PathLike) -> None:
        """Write ``config.json`` and ``model.safetensors`` (float32) to the folder ``path``, atomically."""
        save_segmenter(path, self.config, self.backbone.state_dict())


class DiffusionSegmenter(_SegmenterBase):
    """The mask denoiser: ``sample`` integrates the probability-flow ODE with CFG (and self-conditioning).

    ``self(x, sigma, cond, self_cond=None)``: ``x (B, T, 1, H, W)`` noisy masks,
    ``sigma (B,)``, ``cond (B, T, C, H, W)`` from :func:`build_condition`,
    ``self_cond`` the previous estimate shaped like ``x`` (self-conditioning
    models only; ``None`` = zeros); returns the denoised estimate,
    ``(B, T, 1, H, W)`` in about ``[-1, 1]``, or with ``logits=True`` the
    network's logits (``"logit"`` parameterisation, what its loss trains).
    """

    def __init__(self, config: SegmenterConfig):
        super().__init__()
        if config.objective != "diffusion":
            raise InputError(f"DiffusionSegmenter needs objective 'diffusion', got {config.objective!r}")
        self.config = config
        wrapper = BinaryDenoiser if config.parameterization == "logit" else Denoiser
        self.denoiser = wrapper(LiteUNet(config.backbone), sigma_data=config.sigma_data)

    @property
    def backbone(self) -> LiteUNet:
        return self.denoiser.backbone

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor,
        cond: torch.Tensor,
        self_cond: torch.Tensor | None = None,
        logits: bool = False,
    ) -> torch.Tensor:
        """The denoiser ``D(x; sigma, cond)`` (training goes through here so that wrappers such as DDP see the call)."""
        if self.config.self_condition:
            previous = torch.zeros_like(x) if self_cond is None else self_cond
            cond = torch.cat([cond, previous.to(cond.dtype)], dim=2)
        elif self_cond is not None:
            raise InputError("this model was not trained with self-conditioning; pass self_cond=None")
        if not logits:
            return self.denoiser(x, sigma, cond=cond)
        if self.config.parameterization != "logit":
            raise InputError("logits=True needs the 'logit' parameterisation")
        return self.denoiser.logits(x, sigma, cond=cond)

    def sigmas(self, steps: int) -> torch.Tensor:
        """The Karras schedule for ``steps`` steps: ``(steps + 1,) float32``, ending in 0."""
        return karras_sigmas(steps, self.config.sigma_min, self.config.sigma_max, device=self.device)

    @torch.no_grad()
    def samples(
        self,
        modal: torch.Tensor,
        depth: torch.Tensor | None,
        num_samples: int,
        *,
        steps: int | None = None,  # Euler steps; None = the model's sampling_steps
        guidance: float | torch.Tensor | None = None,  # CFG scale (1 disables the unconditional branch); None = sampling_guidance
        generator: torch.Generator | None = None,
        sampler: str = "euler",  # a key of amodal.diffusion.SAMPLERS
    ) -> torch.Tensor:
        """Draw ``num_samples`` amodal masks per input, one initial noise each, in one batch.

        Args:
            modal: ``(B, T, H, W) float32`` in ``{0, 1}``.
            depth: ``(B, T, H, W) float32`` in ``[-1, 1]``, or ``None``.

        Returns:
            ``(B, num_samples, T, H, W) float32`` soft masks in ``[0, 1]``,
            ``(x0 + 1) / 2`` clamped.
        """
        _check_inputs(self.config, modal, depth)
        steps = self.config.sampling_steps if steps is None else steps
        guidance = self.config.sampling_guidance if guidance is None else guidance
        if sampler not in SAMPLERS:
            raise InputError(f"unknown sampler {sampler!r}; choose one of {sorted(SAMPLERS)}")
        if num_samples < 1:
            raise InputError(f"num_samples must be >= 1, got {num_samples}")
        device = self.device
        b, t, h, w = modal.shape
        modal = modal.to(device, torch.float32)
        depth = None if depth is None else depth.to(device, torch.float32)
        cond = build_condition(modal, depth, self.config.priors).repeat_interleave(num_samples, dim=0)  # (B*K, T, C, H, W)
        sigmas = self.sigmas(steps)
        noise = torch.randn((b * num_samples, t, 1, h, w), generator=generator, dtype=torch.float32)
        x = noise.to(device) * sigmas[0]
        denoiser = CFGDenoiser(self, {"cond": cond}, {"cond": null_condition(cond)}, guidance)
        if self.config.self_condition:
            denoiser = SelfConditioning(denoiser)
        x0 = SAMPLERS[sampler](denoiser, x, sigmas)
        soft = ((x0[:, :, 0] + 1.0) / 2.0).clamp(0.0, 1.0)
        return soft.reshape(b, num_samples, t, h, w).float()


class RegressionSegmenter(_SegmenterBase):
    """The one-step twin ("3D-UNet" in the paper): the same backbone predicts mask logits.

    The sample channel is fed zeros and the noise level is fixed, so the
    network is a plain conditional video-to-video U-Net.
    """

    def __init__(self, config: SegmenterConfig):
        super().__init__()
        if config.objective != "regression":
            raise InputError(f"RegressionSegmenter needs objective 'regression', got {config.objective!r}")
        self.config = config
        self.net = LiteUNet(config.backbone)

    @property
    def backbone(self) -> LiteUNet:
        return self.net

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        """Mask logits, see :meth:`logits` (training goes through here so that wrappers such as DDP see the call)."""
        return self.logits(cond)

    def logits(self, cond: torch.Tensor) -> torch.Tensor:
        """``cond (B, T, C, H, W)`` -> mask logits ``(B, T, H, W)`` (unbounded float32)."""
        b, t, _, h, w = cond.shape
        x_in = cond.new_zeros((b, t, 1, h, w))
        c_noise = cond.new_full((b,), self.config.regression_c_noise)
        return self.net(x_in, c_noise, cond=cond)[:, :, 0]

    @torch.no_grad()
    def samples(
        self,
        modal: torch.Tensor,
        depth: torch.Tensor | None,
        num_samples: int,
        *,
        steps: int | None = None,  # ignored: one forward pass
        guidance: float | torch.Tensor | None = None,  # ignored: no unconditional branch
        generator: torch.Generator | None = None,  # ignored: deterministic
        sampler: str = "euler",  # ignored
    ) -> torch.Tensor:
        """``(B, T, H, W)`` inputs -> ``(B, num_samples, T, H, W) float32`` sigmoid masks in ``[0, 1]`` (identical copies)."""
        _check_inputs(self.config, modal, depth)
        if num_samples < 1:
            raise InputError(f"num_samples must be >= 1, got {num_samples}")
        device = self.device
        modal = modal.to(device, torch.float32)
        depth = None if depth is None else depth.to(device, torch.float32)
        soft = torch.sigmoid(self.logits(build_condition(modal, depth, self.config.priors))).float()
        return soft[:, None].expand(-1, num_samples, -1, -1, -1).contiguous()


Segmenter = DiffusionSegmenter | RegressionSegmenter


def build_segmenter(config: SegmenterConfig) -> Segmenter:
    """A freshly initialised model for ``config.objective``."""
    if config.objective == "diffusion":
        return DiffusionSegmenter(config)
    return RegressionSegmenter(config)


def save_segmenter(path: str | os.PathLike, config: SegmenterConfig, state: dict[str, torch.Tensor]) -> None:
    """Write a model folder (``config.json`` + ``model.safetensors``) atomically.

    ``state`` is a backbone state dict; tensors are saved as contiguous float32.
    """
    from safetensors.torch import save_file

    from amodal.util.fs import atomic_dir

    tensors = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()}
    with atomic_dir(path) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_NAME), metadata={"format": "pt"})
        (tmp / CONFIG_NAME).write_text(json.dumps({"format": FORMAT, **config.to_dict()}, indent=2) + "\n")


def read_segmenter_config(path: str | os.PathLike) -> SegmenterConfig:
    """Read ``config.json`` of a model folder strictly (unknown keys are an error)."""
    path = Path(path)
    file = path / CONFIG_NAME
    try:
        values = json.loads(file.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: no {CONFIG_NAME}; a model folder holds {CONFIG_NAME} and {WEIGHTS_NAME}") from None
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{file}: not valid JSON ({e.msg} at line {e.lineno})") from None
    if not isinstance(values, dict) or values.pop("format", None) != FORMAT:
        raise CheckpointError(f"{file}: not an amodal segmenter config (expected \"format\": \"{FORMAT}\")")
    try:
        return config_from_dict(SegmenterConfig, values, str(file))
    except InputError as e:
        raise CheckpointError(str(e)) from None






def load_segmenter_folder(path: str | os.PathLike, device: str | torch.device = "cpu") -> Segmenter:
    """Load a model folder written by :meth:`save_pretrained`, strictly, in eval mode."""
    path = Path(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: not a folder; pass a model folder with {CONFIG_NAME} and {WEIGHTS_NAME}")
    config = read_segmenter_config(path)
    weights = path / WEIGHTS_NAME
    if not weights.is_file():
        raise CheckpointError(f"{path}: no {WEIGHTS_NAME}; a model folder holds {CONFIG_NAME} and {WEIGHTS_NAME}")
    state = read_safetensors(weights, fix="re-export the model")
    model = build_segmenter(config)
    load_state_strict(model.backbone, state, str(weights))
    return model.to(device).eval()
