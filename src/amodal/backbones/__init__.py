"""The two networks amodal trains and runs, and nothing else.

- :mod:`amodal.backbones.lite`: a compact spatio-temporal U-Net for CPUs (both stages' own models);
- :mod:`amodal.backbones.svd`: the Stable Video Diffusion 1.1 U-Net, VAE and image encoder of the
  official Diffusion-VAS checkpoints.

Tensor layout inside every model, stated once: videos are ``(B, T, C, H, W)`` float tensors
(batch, frames, channels, height, width), the layout of diffusers'
``UNetSpatioTemporalConditionModel``. Mask-level model interfaces take ``(B, T, H, W)``; the
conversion to and from :class:`amodal.Clip` arrays happens in the pipelines.
"""
