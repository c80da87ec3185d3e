"""Stage 2 on a clip: complete each object's appearance inside its amodal mask.

Follows the reference demo: whole frames (no crop) are resized to the model's
native size, the condition is the object's visible pixels on white plus its
amodal mask (united with the modal mask), and the prediction is resized back
to the clip's size. Clips longer than the model's window are cut into windows
of ``num_frames``; the last window is aligned to the clip's end (it overlaps
the one before, whose frames win), and a clip shorter than a window is padded
by repeating its last frame.

Outputs per object (:class:`CompletionResult`): the completed RGB (white
outside the amodal mask), RGBA (alpha = amodal mask) and the reference's
overlay (completed object over the frame faded to white).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from amodal.clip import Clip
from amodal.errors import InputError
from amodal.checkpoints.official.config import GenerationConfig


class Completer(Protocol):
    """What the pipeline needs from a stage-2 model (see :class:`amodal.completion.official.OfficialCompleter`)."""

    num_frames: int
    height: int
    width: int

    def complete(self, modal_rgb: torch.Tensor, amodal: torch.Tensor, *, settings, generator, progress) -> torch.Tensor:
        ...


@dataclass(frozen=True)
class CompletionConfig:
    """Settings of :func:`complete_clip`."""

    generation: GenerationConfig = field(default_factory=GenerationConfig)  # sampler settings (reference defaults)
    seed: int = 0  # seeds one generator per object, so an object's result does not depend on the others
    paste_visible: bool = False  # False: the model's pixels everywhere, as the reference; True: keep the real visible pixels
    overlay_fade: float = 0.5  # the overlay shows the frame blended this much toward white, as the reference


@dataclass(frozen=True)
class CompletionResult:
    """Per-object completion of a clip.

    Attributes:
        rgb: ``(K, T, H, W, 3) uint8``: each object completed, white outside its amodal mask.
        rgba: ``(K, T, H, W, 4) uint8``: the same with alpha = 255 inside the amodal mask, 0 outside.
        overlay: ``(K, T, H, W, 3) uint8``: the completed object over the frame faded to white.
        amodal_masks: ``(K, T, H, W) bool``: the masks used (amodal united with modal).
        object_ids: one id per object, as in the clip.
    """

    rgb: np.ndarray
    rgba: np.ndarray
    overlay: np.ndarray
    amodal_masks: np.ndarray
    object_ids: tuple[int, ...]


def windows(num_frames: int, window: int) -> list[tuple[int, int]]:
    """``[start, stop)`` windows of length ``window`` covering ``range(num_frames)``.

    The last window is aligned to the end (overlapping the previous one); a clip
    shorter than a window gives one short window ``(0, num_frames)``.
    """
    if num_frames <= window:
        return [(0, num_frames)]
    starts = list(range(0, num_frames - window + 1, window))
    if starts[-1] + window < num_frames:
        starts.append(num_frames - window)
    return [(s, s + window) for s in starts]


def _resize(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """``(N, C, H, W)`` float resized bilinearly, antialiased when shrinking (as PIL's resize)."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _pad_window(x: torch.Tensor, length: int) -> torch.Tensor:
    """Repeat the last frame (axis 0) up to ``length`` frames."""
    if len(x) >= length:
        return x
    return torch.cat([x, x[-1:].expand(length - len(x), *x.shape[1:])])


def complete_clip(
    completer: Completer,
    clip: Clip,
    amodal_masks: np.ndarray,
    config: CompletionConfig = CompletionConfig(),
    *,
    progress: bool = True,
) -> CompletionResult:
    """Complete every object of ``clip``.

    Args:
        completer: a stage-2 model (e.g. :func:`amodal.completion.official.load_completer`).
        clip: frames ``(T, H, W, 3) uint8`` and modal masks ``(K, T, H, W) bool``.
        amodal_masks: ``(K, T, H, W) bool`` from stage 1 (united with the modal masks here).
        config: sampling settings, seed and output options.
        progress: show progress bars on stderr.

    Returns:
        A :class:`CompletionResult` at the clip's size.
    """
    from tqdm import tqdm

    amodal_masks = np.asarray(amodal_masks)
    if amodal_masks.shape != clip.modal_masks.shape or amodal_masks.dtype != np.bool_:
        raise InputError(
            f"amodal masks must be bool with shape {clip.modal_masks.shape} (K, T, H, W), got "
            f"{amodal_masks.dtype} {amodal_masks.shape}"
        )
    amodal_masks = amodal_masks | clip.modal_masks
    num_objects, num_frames = clip.modal_masks.shape[:2]
    height, width = clip.size
    native = (completer.height, completer.width)
    frames = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float() / 255.0  # (T, 3, H, W) in [0, 1]
    frames_small = _resize(frames, native)

    completed = np.empty((num_objects, num_frames, height, width, 3), dtype=np.uint8)
    spans = windows(num_frames, completer.num_frames)
    for k in range(num_objects):
        generator = torch.Generator().manual_seed(config.seed)
        modal_small = _resize(torch.from_numpy(clip.modal_masks[k]).float()[:, None], native) > 0.5  # (T, 1, h, w)
        amodal_small = _resize(torch.from_numpy(amodal_masks[k]).float()[:, None], native) > 0.5
        amodal_small = amodal_small | modal_small
        modal_rgb = torch.where(modal_small, frames_small, torch.ones_like(frames_small))  # object on white
        done = np.zeros(num_frames, dtype=bool)
        bar = tqdm(spans, desc=f"completing object {clip.object_ids[k]}", unit="window", file=sys.stderr, leave=False, disable=None if progress else True)
        for start, stop in bar:
            length = completer.num_frames
            cond_rgb = _pad_window(modal_rgb[start:stop], length).permute(0, 2, 3, 1)[None]  # (1, n, h, w, 3)
            cond_mask = _pad_window(amodal_small[start:stop].float(), length)[:, 0][None]  # (1, n, h, w)
            out = completer.complete(cond_rgb, cond_mask, settings=config.generation, generator=generator, progress=False)
            out = out[0, : stop - start].permute(0, 3, 1, 2)  # (n, 3, h, w) in [0, 1]
            out = _resize(out, (height, width)).clamp(0, 1)
            pixels = (out.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
            fresh = ~done[start:stop]  # frames an earlier window already produced keep that result
            completed[k, start:stop][fresh] = pixels[fresh]
            done[start:stop] = True

    if config.paste_visible:
        completed = np.where(clip.modal_masks[..., None], clip.frames[None], completed)
    inside = amodal_masks[..., None]
    rgb = np.where(inside, completed, np.uint8(255))
    alpha = np.where(amodal_masks, np.uint8(255), np.uint8(0))[..., None]
    rgba = np.concatenate([rgb, alpha], axis=-1)
    faded = (clip.frames.astype(np.float32) * (1 - config.overlay_fade) + 255.0 * config.overlay_fade).round().astype(np.uint8)
    overlay = np.where(inside, completed, faded[None])
    return CompletionResult(rgb=rgb, rgba=rgba, overlay=overlay, amodal_masks=amodal_masks, object_ids=clip.object_ids)


# Folders ----------------------------------------------------------------------------------------
def write_result(result: CompletionResult, frame_names: tuple[str, ...], out: str | os.PathLike) -> Path:
    """Write ``out/<object id>/{rgb,rgba,overlay}/<frame>.png``; the folder appears only once complete."""
    from PIL import Image

    from amodal.util.fs import atomic_dir

    out = Path(out)
    with atomic_dir(out) as tmp:
        for k, object_id in enumerate(result.object_ids):
            for kind, images in (("rgb", result.rgb[k]), ("rgba", result.rgba[k]), ("overlay", result.overlay[k])):
                folder = tmp / str(object_id) / kind
                folder.mkdir(parents=True)
                for name, image in zip(frame_names, images):
                    Image.fromarray(image).save(folder / f"{name}.png")
    return out


@dataclass(frozen=True)
class CompleteCommand:
    """What ``amodal complete`` runs."""

    model: str  # official or converted content-completion checkpoint folder
    frames: str  # folder of RGB frames or a video file
    masks: str  # modal masks: one folder of images, or subfolders named by object id
    amodal: str  # amodal masks from stage 1, laid out like ``masks``
    out: str  # output folder (replaced atomically)
    completion: CompletionConfig = field(default_factory=CompletionConfig)
    device: str = "cpu"  # cpu or cuda
    dtype: str = "float32"  # float32 / bfloat16 (CPU); float16 / bfloat16 (CUDA)
    offload: bool = False  # move each network to the GPU only while it runs
    height: int | None = None  # model resolution; None: the checkpoint's native size (256 for the official one)
    width: int | None = None  # the reference notes 512x1024 sometimes does better than 256x512


def run_complete(command: CompleteCommand, *, progress: bool = True) -> Path:
    """Read the folders, load the model, complete every object, write the results; returns the output folder."""
    from amodal.data.io.frames import frame_names, read_frames
    from amodal.data.io.masks import read_mask_folder
    from amodal.completion.official import load_completer

    frames = read_frames(command.frames)
    names = frame_names(command.frames)
    size = frames.shape[1:3]
    # Both folders: one folder of images (one object) or one numbered subfolder per object, matched to the frames.
    modal = read_mask_folder(command.masks, names, size, what="modal masks")
    amodal = read_mask_folder(command.amodal, names, size, require_visible=False, what="amodal masks")
    if modal.object_ids != amodal.object_ids:
        raise InputError(
            f"{command.amodal}: object ids {list(amodal.object_ids)} differ from {command.masks}'s {list(modal.object_ids)}"
        )
    clip = Clip(
        frames=frames, modal_masks=modal.modal, object_ids=modal.object_ids, frame_names=names, source=str(command.frames)
    )
    completer = load_completer(
        command.model,
        device=command.device,
        dtype=command.dtype,
        offload=command.offload,
        settings=command.completion.generation,
        height=command.height,
        width=command.width,
    )
    # read_mask_folder returns whatever masks a folder holds as ``.modal``; these are the amodal ones.
    result = complete_clip(completer, clip, amodal.modal, command.completion, progress=progress)
    return write_result(result, names, command.out)


__all__ = [
    "CompleteCommand",
    "CompletionConfig",
    "CompletionResult",
    "complete_clip",
    "run_complete",
    "windows",
    "write_result",
]
