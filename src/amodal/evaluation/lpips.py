"""LPIPS (Zhang et al. 2018, v0.1, AlexNet) from local weights, as a map that can be averaged over a region.

Nothing is downloaded: the weights are a local ``.safetensors`` file, or a folder holding
``model.safetensors``, with the tensor names of the reference ``lpips.LPIPS(net="alex")`` state
dict, which one line turns into this layout where the ``lpips`` package is installed::

    safetensors.torch.save_file(lpips.LPIPS(net="alex").state_dict(), "lpips-alex/model.safetensors")

Tensors (loaded strictly, every one required, no other allowed):

- ``scaling_layer.shift``, ``scaling_layer.scale``: ``(1, 3, 1, 1)``, the input normalisation;
- ``net.slice{1..5}.{0,3,6,8,10}.{weight,bias}``: AlexNet's five convolutions (one per slice);
- ``lin{0..4}.model.1.weight``: ``(1, C, 1, 1)``, the learned per-channel weights of each layer.

The distance of two images in ``[-1, 1]``: for each of the five ReLU outputs, unit-normalise the
features over channels, square their difference, weight the channels (``lin``), upsample the
one-channel map to the input size (bilinear) and sum over layers. :func:`lpips_map` returns that
``(N, H, W)`` map; its mean over the whole image is the reference's ``spatial=True`` score and its
mean over a region (the hidden part of an object) is ``lpips_occ``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from amodal.errors import CheckpointError, InputError

# (out channels, kernel, stride, padding) of AlexNet's convolutions, and whether a 3x3/2 max-pool precedes each.
_ALEX = ((64, 11, 4, 2, False), (192, 5, 1, 2, True), (384, 3, 1, 1, True), (256, 3, 1, 1, False), (256, 3, 1, 1, False))
_CONV_INDEX = (0, 3, 6, 8, 10)  # index of each convolution in torchvision's alexnet.features (the reference's key names)


class LPIPS(nn.Module):
    """LPIPS v0.1 on AlexNet features; ``lpips_map(x, y)`` for images ``(N, 3, H, W)`` in ``[-1, 1]``."""

    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.zeros(1, 3, 1, 1))
        self.register_buffer("scale", torch.ones(1, 3, 1, 1))
        convs, lins = [], []
        channels = 3
        for out, kernel, stride, padding, _ in _ALEX:
            convs.append(nn.Conv2d(channels, out, kernel, stride, padding))
            lins.append(nn.Conv2d(out, 1, 1, bias=False))
            channels = out
        self.convs = nn.ModuleList(convs)
        self.lins = nn.ModuleList(lins)

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = (x - self.shift) / self.scale
        out = []
        for conv, (_, _, _, _, pool) in zip(self.convs, _ALEX):
            if pool:
                x = F.max_pool2d(x, kernel_size=3, stride=2)
            x = F.relu(conv(x))
            out.append(x)
        return out

    def lpips_map(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """``(N, H, W)`` per-pixel LPIPS of ``x`` and ``y``, both ``(N, 3, H, W)`` in ``[-1, 1]``."""
        if x.shape != y.shape or x.ndim != 4 or x.shape[1] != 3:
            raise InputError(f"LPIPS takes two (N, 3, H, W) batches of one shape, got {tuple(x.shape)} and {tuple(y.shape)}")
        size = x.shape[-2:]
        total = torch.zeros(x.shape[0], *size, dtype=x.dtype, device=x.device)
        for fx, fy, lin in zip(self.features(x), self.features(y), self.lins):
            fx = fx / (fx.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            fy = fy / (fy.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
            layer = lin((fx - fy) ** 2)  # (N, 1, h, w)
            total += F.interpolate(layer, size=size, mode="bilinear", align_corners=False)[:, 0]
        return total

    def reference_state_dict(self) -> dict[str, torch.Tensor]:
        """This model's tensors under the reference's names (the file layout of the module docstring)."""
        out = {"scaling_layer.shift": self.shift, "scaling_layer.scale": self.scale}
        for i, (conv, lin, index) in enumerate(zip(self.convs, self.lins, _CONV_INDEX)):
            out[f"net.slice{i + 1}.{index}.weight"] = conv.weight
            out[f"net.slice{i + 1}.{index}.bias"] = conv.bias
            out[f"lin{i}.model.1.weight"] = lin.weight
        return {k: v.detach().contiguous() for k, v in out.items()}


def _weights_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise InputError(f"--lpips-weights {path}: not found; pass a .safetensors file (or a folder with model.safetensors) "
                         "holding the reference lpips.LPIPS(net='alex') state dict (docs/evaluation.md)")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"--lpips-weights {path}: only .safetensors is read (never a pickle); convert it as docs/evaluation.md shows")
    return path


def load_lpips(path: str | os.PathLike, device: str = "cpu") -> LPIPS:
    """LPIPS-Alex from local weights (module docstring), strictly: missing or unexpected tensors are listed."""
    from amodal.checkpoints.safetensors import read_safetensors

    file = _weights_file(path)
    tensors = read_safetensors(file, fix="pass the reference lpips.LPIPS(net='alex') state dict saved with safetensors")
    model = LPIPS()
    expected = model.reference_state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{file}: not LPIPS-Alex v0.1 weights; missing {missing[:6]}{' ...' if len(missing) > 6 else ''}, "
            f"unexpected {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}"
        )
    for name, value in expected.items():
        if tuple(tensors[name].shape) != tuple(value.shape):
            raise CheckpointError(f"{file}: {name} has shape {tuple(tensors[name].shape)}, expected {tuple(value.shape)}")
    with torch.no_grad():
        model.shift.copy_(tensors["scaling_layer.shift"])
        model.scale.copy_(tensors["scaling_layer.scale"])
        for i, (conv, lin, index) in enumerate(zip(model.convs, model.lins, _CONV_INDEX)):
            conv.weight.copy_(tensors[f"net.slice{i + 1}.{index}.weight"])
            conv.bias.copy_(tensors[f"net.slice{i + 1}.{index}.bias"])
            lin.weight.copy_(tensors[f"lin{i}.model.1.weight"])
    return model.to(device).eval()


@torch.no_grad()
def lpips_region(model: LPIPS, pred, true, region) -> "np.ndarray":
    """``(T,) float64`` mean LPIPS over ``region`` per frame (nan where the region is empty).

    Args:
        pred, true: ``(T, H, W, 3) uint8`` frames; region: ``(T, H, W) bool``.
    """
    import numpy as np

    region = np.asarray(region, bool)
    out = np.full(len(region), np.nan)
    rows = np.flatnonzero(region.any(axis=(1, 2)))
    if rows.size == 0:
        return out
    device = model.shift.device
    for start in range(0, rows.size, 16):  # bounded batches
        chunk = rows[start : start + 16]
        x = torch.from_numpy(np.ascontiguousarray(pred[chunk])).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
        y = torch.from_numpy(np.ascontiguousarray(true[chunk])).permute(0, 3, 1, 2).float().div(127.5).sub(1).to(device)
        m = torch.from_numpy(region[chunk]).to(device)
        values = model.lpips_map(x, y)
        out[chunk] = ((values * m).flatten(1).sum(1) / m.flatten(1).sum(1)).double().cpu().numpy()
    return out
