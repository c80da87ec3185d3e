"""Stage 2 with an official checkpoint: the object's full RGB from its visible pixels and amodal mask."""

from __future__ import annotations

from pathlib import Path

import torch

from amodal.errors import InputError
from amodal.checkpoints.official.config import GenerationConfig
from amodal.checkpoints.official.model import OfficialStage


class OfficialCompleter(OfficialStage):
    """An official Diffusion-VAS content-completion checkpoint.

    Condition 1 is the modal RGB (the object's visible pixels, white
    elsewhere), condition 2 the amodal mask, both in ``[-1, 1]``.
    """

    def complete(
        self,
        modal_rgb: torch.Tensor,
        amodal: torch.Tensor,
        *,
        settings: GenerationConfig | None = None,
        guidance: float | torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        progress: bool = True,
    ) -> torch.Tensor:
        """Complete the object's appearance.

        Args:
            modal_rgb: ``(B, T, H, W, 3) float`` in ``[0, 1]``: the visible
                object pixels, white (1.0) everywhere else.
            amodal: ``(B, T, H, W) float`` in ``{0, 1}``: the amodal masks.
            settings, guidance, generator, noise: see :meth:`OfficialModel.generate`.

        Returns:
            ``(B, T, H, W, 3) float32`` in ``[0, 1]``: the object as it would look
            unoccluded (meaningful inside the amodal mask).
        """
        if modal_rgb.ndim != 5 or modal_rgb.shape[-1] != 3:
            raise InputError(f"modal RGB must be (B, T, H, W, 3), got {tuple(modal_rgb.shape)}")
        if amodal.shape != modal_rgb.shape[:-1]:
            raise InputError(f"amodal masks {tuple(amodal.shape)} do not match the modal RGB {tuple(modal_rgb.shape[:-1])}")
        cond1 = modal_rgb.float().permute(0, 1, 4, 2, 3) * 2 - 1  # (B, T, 3, H, W) in [-1, 1]
        cond2 = (amodal.float() * 2 - 1).unsqueeze(2).expand(-1, -1, 3, -1, -1)
        return self.model.generate(
            cond1, cond2, settings or self.settings, guidance=guidance, generator=generator, noise=noise, progress=progress
        )


def load_completer(path: str | Path, **options) -> OfficialCompleter:
    """An official (``model_index.json``) or converted content-completion checkpoint.

    ``options`` (device, dtype, offload, settings, num_frames, height, width)
    and errors: see :meth:`amodal.checkpoints.official.model.OfficialStage.load`.
    """
    return OfficialCompleter.load(path, **options)
