"""An official-layout model: the ``svd`` networks plus the two-condition sampling loop both stages share.

:meth:`OfficialModel.generate` is the whole reference pipeline with the
library's parts: condition latents and per-frame CLIP embeddings
(:mod:`amodal.checkpoints.official.adapter`), the EDM v-prediction :class:`~amodal.diffusion.Denoiser`
around the :class:`~amodal.backbones.svd.SVDBackbone`, classifier-free guidance
as a :class:`~amodal.diffusion.CFGDenoiser`, the Karras schedule and
:func:`~amodal.diffusion.sample_euler`, then chunked VAE decoding.

Weights come from an official folder (``model_index.json``) or from the
library's converted format (``config.json`` + ``model.safetensors``, see
:func:`save_converted`); both load strictly.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Iterator, TypeVar

import torch
from torch import nn

from amodal.diffusion import CFGDenoiser, Denoiser, karras_sigmas, sample_euler
from amodal.checkpoints.formats import (
    CONFIG_NAME,
    CONVERTED,
    OFFICIAL,
    OFFICIAL_INDEX,
    WEIGHTS_NAME,
    folder_format,
)
from amodal.checkpoints.formats import CONVERTED_OFFICIAL_FORMAT as CONVERTED_FORMAT
from amodal.checkpoints.safetensors import check_state_dict, read_safetensors
from amodal.errors import CheckpointError, InputError
from amodal.util.fs import atomic_dir
from amodal.checkpoints.official import adapter
from amodal.checkpoints.official.config import GenerationConfig, OfficialConfig, RuntimeConfig
from amodal.backbones.svd import (
    SVDBackbone,
    build_image_encoder,
    build_unet,
    build_vae,
    decode_latents,
    encode_mode,
    image_embeddings,
)

CONVERTED_VERSION = 1



def vae_run_dtype(dtype: torch.dtype, force_upcast: bool) -> torch.dtype:
    """The VAE overflows in float16; Stable Video Diffusion keeps it in float32 (``force_upcast``)."""
    return torch.float32 if dtype == torch.float16 and force_upcast else dtype


class OfficialModel:
    """The three networks of one official checkpoint and the sampling loop around them.

    Build it with :func:`load_official_model`. Holds its networks (it is not
    one); ``runtime`` decides where they live: all on ``device``, or on the CPU
    and moved to the GPU one at a time while in use (``offload``).
    """

    def __init__(self, config: OfficialConfig, unet: nn.Module, vae: nn.Module, image_encoder: nn.Module, runtime: RuntimeConfig,
                 *, place: bool = True):
        """``place=False`` uses the networks where and as they are (a training run sampling its own weights)."""
        self.config = config
        self.runtime = runtime
        self.device, self.dtype = runtime.resolve()
        self.backbone = SVDBackbone(unet).eval()
        self.vae = vae.eval()
        self.image_encoder = image_encoder.eval()
        if place:
            self._place()

    # Placement -----------------------------------------------------------------------------
    def _vae_dtype(self) -> torch.dtype:
        return vae_run_dtype(self.dtype, self.config.svd.vae.force_upcast)

    def _place(self) -> None:
        home = torch.device("cpu") if self.runtime.offload else self.device
        for module, dtype in ((self.backbone, self.dtype), (self.image_encoder, self.dtype), (self.vae, self._vae_dtype())):
            if next(module.parameters()).dtype != dtype:
                module.to(dtype=dtype)
            module.to(home)

    @contextlib.contextmanager
    def _using(self, module: nn.Module) -> Iterator[nn.Module]:
        """``module`` on the execution device for the duration; back to the CPU afterwards when offloading."""
        if not self.runtime.offload:
            yield module
            return
        module.to(self.device)
        try:
            yield module
        finally:
            module.to("cpu")
            if self.device.type == "cuda":
                torch.cuda.empty_cache()

    # Sampling ------------------------------------------------------------------------------
    def _check_conditions(self, cond1: torch.Tensor, cond2: torch.Tensor) -> None:
        for name, cond in (("condition 1", cond1), ("condition 2", cond2)):
            if cond.ndim != 5 or cond.shape[2] != 3:
                raise InputError(f"{name} must be (B, T, 3, H, W), got {tuple(cond.shape)}")
        if cond1.shape != cond2.shape:
            raise InputError(f"the two conditions differ in shape: {tuple(cond1.shape)} and {tuple(cond2.shape)}")
        factor = self.config.svd.vae.downsample
        height, width = cond1.shape[-2:]
        if height % factor or width % factor:
            raise InputError(f"frame size {height}x{width} must be a multiple of the VAE's {factor} pixels per latent")

    @torch.no_grad()
    def generate(
        self,
        cond1: torch.Tensor,
        cond2: torch.Tensor,
        settings: GenerationConfig = GenerationConfig(),
        *,
        guidance: float | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        progress: bool = True,
    ) -> torch.Tensor:
        """Sample a video from two condition videos.

        Args:
            cond1: ``(B, T, 3, H, W) float`` in ``[-1, 1]``; also the source of
                the per-frame CLIP embeddings (modal mask, or modal RGB).
            cond2: ``(B, T, 3, H, W) float`` in ``[-1, 1]`` (depth, or amodal mask).
            settings: sampling settings (steps, guidance range, micro-conditioning, ...).
            guidance: overrides ``settings``' guidance: a scalar or ``(T,)`` per frame.
            generator: CPU generator for the initial noise and the condition
                noise augmentation; noise is drawn on the CPU in float32, so a
                seed gives the same draw on every device.
            noise: ``(B, T, C, H / f, W / f)`` standard normal initial latents,
                instead of drawing them (the reference test vectors give them).
            progress: show a progress bar on stderr.

        Returns:
            ``(B, T, H, W, 3) float32`` in ``[0, 1]``: the decoded frames.
        """
        self._check_conditions(cond1, cond2)
        device = self.device
        batch, frames, _, height, width = cond1.shape
        svd = self.config.svd
        factor = svd.vae.downsample
        latent_shape = (batch, frames, svd.vae.latent_channels, height // factor, width // factor)
        scale = settings.guidance(frames) if guidance is None else guidance

        cond1 = cond1.float().cpu()
        cond2 = cond2.float().cpu()
        if settings.noise_aug_strength > 0:
            # As in Stable Video Diffusion: the condition frames seen by the VAE get a little noise.
            aug1 = torch.randn(cond1.shape, generator=generator)
            aug2 = torch.randn(cond2.shape, generator=generator)
        if noise is None:
            noise = torch.randn(latent_shape, generator=generator)
        elif tuple(noise.shape) != latent_shape:
            raise InputError(f"initial noise must have shape {latent_shape}, got {tuple(noise.shape)}")

        # Per-frame CLIP embeddings from condition 1 (before noise augmentation).
        with self._using(self.image_encoder) as encoder:
            pixels = adapter.clip_pixels(cond1.flatten(0, 1).to(device), svd.image_encoder)
            embeds = image_embeddings(encoder, pixels.to(self.dtype))  # (B * T, D)
        embeds = embeds.reshape(batch, frames, 1, -1)  # (B, T, 1, D)

        if settings.noise_aug_strength > 0:
            cond1 = cond1 + settings.noise_aug_strength * aug1
            cond2 = cond2 + settings.noise_aug_strength * aug2
        with self._using(self.vae) as vae:
            latents1 = encode_mode(vae, cond1.to(device))  # (B, T, C, h, w), unscaled
            latents2 = encode_mode(vae, cond2.to(device))
        cond_latents = torch.cat([latents1, latents2], dim=2)  # (B, T, 2C, h, w)
        time_ids = adapter.added_time_ids(
            settings.fps, settings.motion_bucket_id, settings.noise_aug_strength, batch, device=device
        )

        if isinstance(scale, torch.Tensor) and bool((scale == 1).all()):
            scale = 1.0
        if isinstance(scale, torch.Tensor) or float(scale) != 1.0:
            uncond_context, cond_context = adapter.guidance_contexts(embeds, settings.embedding_order)
        else:
            # No guidance: one branch, its own frames' embeddings (the pairing quirk needs two branches).
            uncond_context, cond_context = torch.zeros_like(embeds), embeds
        cond = {"cond_latents": cond_latents, "context": cond_context, "added_time_ids": time_ids}
        uncond = {"cond_latents": torch.zeros_like(cond_latents), "context": uncond_context, "added_time_ids": time_ids}

        schedule = self.config.schedule
        sigmas = karras_sigmas(settings.steps, schedule.sigma_min, schedule.sigma_max, schedule.rho).to(device)
        x = noise.float().to(device) * schedule.init_noise_sigma

        with self._using(self.backbone) as backbone:
            denoiser = CFGDenoiser(Denoiser(backbone, sigma_data=1.0), cond, uncond, scale)
            x = sample_euler(denoiser, x, sigmas, callback=_progress(settings.steps, progress))

        with self._using(self.vae) as vae:
            decoded = decode_latents(vae, x, svd.vae.scaling_factor, settings.decode_chunk_size)
        frames_out = (decoded / 2 + 0.5).clamp(0, 1)  # (B, T, 3, H, W)
        return frames_out.permute(0, 1, 3, 4, 2).float()


def _progress(total: int, enabled: bool):
    from tqdm import tqdm

    bar = tqdm(total=total, desc="denoising", unit="step", file=sys.stderr, leave=False, disable=None if enabled else True)

    def callback(i, x, denoised):
        bar.update(1)
        if i == total - 1:
            bar.close()

    return callback


# Loading -------------------------------------------------------------------------------------
def _build_empty(config: OfficialConfig) -> dict[str, nn.Module]:
    """The three networks with parameters on the meta device (no memory, no random init)."""
    from accelerate import init_empty_weights

    with init_empty_weights():
        return {
            "unet": build_unet(config.svd.unet),
            "vae": build_vae(config.svd.vae),
            "image_encoder": build_image_encoder(config.svd.image_encoder),
        }


def _load_into(modules: dict[str, nn.Module], weights: dict[str, torch.Tensor], where: Path, dtypes: dict[str, torch.dtype]) -> None:
    """Strict load; floating-point weights are cast straight to each network's run dtype (no float32 detour)."""
    expected = {f"{name}.{k}": v for name, module in modules.items() for k, v in module.state_dict().items()}
    check_state_dict(expected, weights, where)
    for name, module in modules.items():
        prefix = name + "."
        own = {
            k[len(prefix) :]: v.to(dtypes[name] if v.is_floating_point() else expected[k].dtype)
            for k, v in weights.items()
            if k.startswith(prefix)
        }
        module.load_state_dict(own, strict=True, assign=True)
        leftover = [n for n, p in module.named_parameters() if p.is_meta] + [n for n, b in module.named_buffers() if b.is_meta]
        if leftover:
            raise CheckpointError(f"{where}: {name} weights not set by the checkpoint: {leftover[:8]}")


def build_networks(config: OfficialConfig, weights: dict[str, torch.Tensor], where: Path, dtype: torch.dtype = torch.float32) -> dict[str, nn.Module]:
    """The three networks of ``config`` with ``weights`` (``unet.*``, ``vae.*``, ``image_encoder.*``) loaded strictly.

    The VAE runs in float32 where ``dtype`` is float16 (``force_upcast``). Returns
    ``{"unet": ..., "vae": ..., "image_encoder": ...}``.
    """
    modules = _build_empty(config)
    vae_dtype = vae_run_dtype(dtype, config.svd.vae.force_upcast)
    _load_into(modules, weights, where, {"unet": dtype, "image_encoder": dtype, "vae": vae_dtype})
    return modules


def load_official_model(
    path: str | Path,
    runtime: RuntimeConfig = RuntimeConfig(),
    *,
    num_frames: int | None = None,
    height: int | None = None,
    width: int | None = None,
) -> OfficialModel:
    """Load an official Diffusion-VAS folder or a converted one, strictly.

    Args:
        path: a folder with ``model_index.json`` (official layout) or one
            written by :func:`save_converted`.
        runtime: device, dtype and offloading.
        num_frames, height, width: override the native geometry (official
            folders: the U-Net's ``num_frames`` and 256x512 unless a
            ``meta.json`` says otherwise).

    Raises:
        CheckpointError: wrong or partial layout, listing the missing or
            unexpected files, config keys or weight names.
    """
    path = Path(path)
    _, dtype = runtime.resolve()  # fail on a bad device before reading gigabytes
    found = folder_format(path)
    if found is not None and found.kind == OFFICIAL:
        config = adapter.read_config(path, num_frames=num_frames, height=height, width=width)
        weights = adapter.read_weights(path)
    elif found is not None and found.kind == CONVERTED:
        config, weights = _read_converted(path)
        overrides = {k: v for k, v in (("num_frames", num_frames), ("height", height), ("width", width)) if v}
        if overrides:
            import dataclasses

            config = dataclasses.replace(config, **overrides)
    else:
        raise CheckpointError(
            f"{path}: not a model folder; expected an official Diffusion-VAS folder (with model_index.json) "
            f"or one written by `amodal convert official`"
        )
    modules = build_networks(config, weights, path, dtype)
    return OfficialModel(config, modules["unet"], modules["vae"], modules["image_encoder"], runtime)


_Stage = TypeVar("_Stage", bound="OfficialStage")


class OfficialStage:
    """What the two stage wrappers share: an :class:`OfficialModel`, their default sampling settings, its geometry.

    :class:`~amodal.segmentation.official.OfficialSegmenter` (stage 1) and
    :class:`~amodal.completion.official.OfficialCompleter` (stage 2) differ only in how
    they build the two conditions and read the decoded frames.
    """

    # The spatio-temporal U-Net takes any frame count; a clip shorter than num_frames runs at its
    # own length (the reference pipeline takes num_frames per call) instead of being padded.
    any_length = True

    def __init__(self, model: OfficialModel, settings: GenerationConfig = GenerationConfig()):
        self.model = model
        self.settings = settings

    @property
    def num_frames(self) -> int:
        return self.model.config.num_frames

    @property
    def default_steps(self) -> int:
        return self.settings.steps

    @property
    def default_guidance(self) -> float:
        return self.settings.max_guidance

    @property
    def height(self) -> int:
        return self.model.config.height

    @property
    def width(self) -> int:
        return self.model.config.width

    @classmethod
    def load(
        cls: type[_Stage],
        path: str | Path,
        *,
        device: str | torch.device = "cpu",
        dtype: str = "float32",
        offload: bool = False,
        settings: GenerationConfig = GenerationConfig(),
        num_frames: int | None = None,
        height: int | None = None,
        width: int | None = None,
    ) -> _Stage:
        """This stage from an official (``model_index.json``) or converted checkpoint folder.

        Args:
            path: the checkpoint folder.
            device: ``"cpu"`` or ``"cuda"``; dtype: ``"float32"`` / ``"bfloat16"``
                (CPU), ``"float16"`` / ``"bfloat16"`` (CUDA); offload: keep weights
                on the CPU and move each network to the GPU only while it runs.
            settings: sampling settings (the reference demo's by default).
            num_frames, height, width: override the native geometry (default: the
                U-Net's ``num_frames`` and 256x512, or a ``meta.json``'s size).

        Raises:
            CheckpointError: a wrong or partial folder (the message lists what is
                missing or unexpected).
            InputError: an unavailable device or dtype.
        """
        runtime = RuntimeConfig(device=str(device), dtype=dtype, offload=offload)
        model = load_official_model(path, runtime, num_frames=num_frames, height=height, width=width)
        return cls(model, settings)


def _read_converted(path: Path) -> tuple[OfficialConfig, dict[str, torch.Tensor]]:
    meta = json.loads((path / CONFIG_NAME).read_text())
    if meta.get("version") != CONVERTED_VERSION:
        raise CheckpointError(f"{path / CONFIG_NAME}: format version {meta.get('version')} is not {CONVERTED_VERSION}")
    try:
        config = OfficialConfig.from_dict(meta["config"])
    except (KeyError, TypeError, ValueError) as e:
        raise CheckpointError(f"{path / CONFIG_NAME}: bad config ({e}); convert the checkpoint again") from None
    weights_file = path / WEIGHTS_NAME
    if not weights_file.is_file():
        raise CheckpointError(f"{weights_file}: missing; convert the checkpoint again")
    return config, read_safetensors([weights_file])


def save_converted(source: str | Path, out: str | Path, *, dtype: str | None = None) -> Path:
    """Convert an official folder to the library's format: ``config.json`` + one ``model.safetensors``.

    The weights are checked strictly against the architecture first (the same
    check as loading); ``conv_in2`` is stored as ``conv_in``. ``dtype``
    (``float32``/``float16``/``bfloat16``) recasts the floating-point weights;
    by default they keep the dtype they have. The folder is written atomically.

    Returns:
        ``out`` as a ``Path``.
    """
    from safetensors.torch import save_file

    from amodal.checkpoints.official.config import DTYPES

    source, out = Path(source), Path(out)
    if not (source / OFFICIAL_INDEX).is_file():
        raise CheckpointError(f"{source}: no model_index.json; pass an official Diffusion-VAS checkpoint folder")
    if dtype is not None and dtype not in DTYPES:
        raise InputError(f"--dtype {dtype}: use one of {', '.join(DTYPES)}")
    config = adapter.read_config(source)
    weights = adapter.read_weights(source)
    modules = _build_empty(config)
    expected = {f"{name}.{k}": v for name, module in modules.items() for k, v in module.state_dict().items()}
    check_state_dict(expected, weights, source)
    if dtype is not None:
        weights = {k: v.to(DTYPES[dtype]) if v.is_floating_point() else v for k, v in weights.items()}
    weights = {k: v.contiguous() for k, v in weights.items()}
    with atomic_dir(out, command="convert official") as tmp:
        save_file(weights, str(tmp / WEIGHTS_NAME), metadata={"format": CONVERTED_FORMAT})
        (tmp / CONFIG_NAME).write_text(
            json.dumps({"format": CONVERTED_FORMAT, "version": CONVERTED_VERSION, "config": config.to_dict()}, indent=2) + "\n"
        )
    return out

