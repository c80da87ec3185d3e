"""Stage 1 with an official checkpoint: amodal masks from modal masks and pseudo-depth."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch

from amodal.errors import InputError
from amodal.checkpoints.official.config import GenerationConfig
from amodal.checkpoints.official.model import OfficialStage

# The reference keeps a pixel when the sum of its three 0..255 channels exceeds 600;
# on the mean of three channels in [0, 1] that is 600 / 765.
MASK_THRESHOLD = 600.0 / 765.0


def _repeat3(x: torch.Tensor) -> torch.Tensor:
    """``(B, T, H, W)`` -> ``(B, T, 3, H, W)``: the VAE and CLIP take three channels."""
    return x.unsqueeze(2).expand(-1, -1, 3, -1, -1)


class OfficialSegmenter(OfficialStage):
    """An official Diffusion-VAS segmentation checkpoint as an :class:`amodal.segmentation.protocol.AmodalSegmenter`.

    Condition 1 is the modal mask mapped to ``[-1, 1]``, condition 2 the
    pseudo-depth in ``[-1, 1]``, each repeated to three channels. The decoded
    frames are averaged over their three channels into the soft mask.
    """

    uses_depth = True  # the official model was trained with depth and needs it
    threshold = MASK_THRESHOLD
    default_sample_levels = "fixed"  # the reference's: samples differ by their initial noise only

    def _conditions(self, modal: torch.Tensor, depth: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if modal.ndim != 4:
            raise InputError(f"modal masks must be (B, T, H, W), got {tuple(modal.shape)}")
        if depth is None:
            raise InputError(
                "the official segmentation model is conditioned on pseudo-depth; pass depth "
                "(estimate it with amodal.depth.estimate_depth and a Depth Anything V2 checkpoint)"
            )
        if depth.shape != modal.shape:
            raise InputError(f"depth shape {tuple(depth.shape)} differs from the modal masks' {tuple(modal.shape)}")
        return _repeat3(modal.float() * 2 - 1), _repeat3(depth.float())

    def decode_frames(
        self,
        modal: torch.Tensor,
        depth: torch.Tensor | None,
        *,
        settings: GenerationConfig | None = None,
        guidance: float | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        progress: bool = True,
    ) -> torch.Tensor:
        """The raw decoded frames, before averaging and thresholding.

        Args:
            modal: ``(B, T, H, W) float`` in ``{0, 1}``.
            depth: ``(B, T, H, W) float`` inverse depth normalised per clip to ``[-1, 1]``.
            settings: sampling settings (default: this segmenter's).
            guidance, generator, noise: see :meth:`OfficialModel.generate`.

        Returns:
            ``(B, T, H, W, 3) float32`` in ``[0, 1]``.
        """
        cond1, cond2 = self._conditions(modal, depth)
        return self.model.generate(
            cond1, cond2, settings or self.settings, guidance=guidance, generator=generator, noise=noise, progress=progress
        )

    def sample(
        self,
        modal: torch.Tensor,
        depth: torch.Tensor | None,
        *,
        steps: int,
        guidance: float | torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Soft amodal masks ``(B, T, H, W) float32`` in ``[0, 1]``; ``> threshold`` is amodal.

        ``modal`` is ``(B, T, H, W)`` in ``{0, 1}``; ``depth`` ``(B, T, H, W)``
        in ``[-1, 1]`` (required). Any ``H x W`` that is a multiple of the VAE's
        downsampling works; the model was trained at :attr:`height` x :attr:`width`.
        """
        settings = dataclasses.replace(self.settings, steps=steps)
        frames = self.decode_frames(modal, depth, settings=settings, guidance=guidance, generator=generator)
        return frames.mean(dim=-1)


def load_segmenter(path: str | Path, **options) -> OfficialSegmenter:
    """An official (``model_index.json``) or converted segmentation checkpoint as an ``AmodalSegmenter``.

    ``options`` (device, dtype, offload, settings, num_frames, height, width)
    and errors: see :meth:`amodal.checkpoints.official.model.OfficialStage.load`.
    """
    return OfficialSegmenter.load(path, **options)
