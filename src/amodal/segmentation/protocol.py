"""The interface every stage-1 model presents to pipelines, evaluation and benchmarks."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

# How a model's samples are thresholded (amodal.segmentation.pipeline.sample_levels).
SAMPLE_LEVELS = ("fixed", "stratified")


@runtime_checkable
class AmodalSegmenter(Protocol):
    """A stage-1 model at its native geometry.

    ``num_frames`` frames of ``height x width`` go in; pipelines resize, pad and
    window real videos to this geometry and map the result back.
    """

    num_frames: int  # native window length in frames
    height: int  # native height in pixels
    width: int  # native width in pixels
    uses_depth: bool  # True when the model was trained with depth and benefits from it
    threshold: float  # soft-mask value above which a pixel is amodal
    # The model's own best sampling settings, used whenever a caller does not choose: each model
    # records them in its config (measured for ours, the reference's for official checkpoints).
    default_steps: int  # denoising steps (one-step models ignore steps)
    default_guidance: float  # classifier-free guidance scale (1 runs the conditional branch only)
    # "fixed" (every sample thresholded at `threshold`) or "stratified" (further samples at their
    # own levels; amodal.segmentation.pipeline.sample_levels).
    default_sample_levels: str

    def sample(
        self,
        modal: torch.Tensor,
        depth: torch.Tensor | None,
        *,
        steps: int,
        guidance: float | torch.Tensor,
        generator: torch.Generator | None,
    ) -> torch.Tensor:
        """Predict soft amodal masks.

        Args:
            modal: ``(B, T, H, W) float32`` in ``{0, 1}``, the visible masks.
            depth: ``(B, T, H, W) float32`` inverse depth normalised per clip to
                ``[-1, 1]`` (larger is nearer), or ``None`` to run without depth.
            steps: number of denoising steps (ignored by one-step models).
            guidance: classifier-free guidance scale, a scalar or ``(T,)`` per frame.
            generator: the source of the initial noise, for determinism.

        Returns:
            ``(B, T, H, W) float32`` in ``[0, 1]``; ``> threshold`` is amodal.
            The caller unions the binarised result with ``modal``.
        """
        ...
