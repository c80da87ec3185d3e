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

import sys
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F

from amodal.clip import Clip, as_clip, object_masks
from amodal.data.windows import plan_windows
from amodal.errors import InputError
from amodal.checkpoints.official.config import GenerationConfig
from amodal.util.pipelines import call_seed, check_call_settings, place


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
    spans = plan_windows(num_frames, completer.num_frames)
    for k in range(num_objects):
        generator = torch.Generator().manual_seed(config.seed)
        modal_small = _resize(torch.from_numpy(clip.modal_masks[k]).float()[:, None], native) > 0.5  # (T, 1, h, w)
        amodal_small = _resize(torch.from_numpy(amodal_masks[k]).float()[:, None], native) > 0.5
        amodal_small = amodal_small | modal_small
        modal_rgb = torch.where(modal_small, frames_small, torch.ones_like(frames_small))  # object on white
        bar = tqdm(spans, desc=f"completing object {clip.object_ids[k]}", unit="window", file=sys.stderr, leave=False, disable=None if progress else True)
        for span in bar:
            start, stop = span.start, span.stop
            # Official models run at the window's own length (the reference takes num_frames per call).
            length = stop - start if getattr(completer, "any_length", False) else completer.num_frames
            cond_rgb = _pad_window(modal_rgb[start:stop], length).permute(0, 2, 3, 1)[None]  # (1, n, h, w, 3)
            cond_mask = _pad_window(amodal_small[start:stop].float(), length)[:, 0][None]  # (1, n, h, w)
            out = completer.complete(cond_rgb, cond_mask, settings=config.generation, generator=generator, progress=False)
            out = out[0, : stop - start].permute(0, 3, 1, 2)  # (n, 3, h, w) in [0, 1]
            out = _resize(out, (height, width)).clamp(0, 1)
            pixels = (out.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
            fresh = span.scored_from - start  # frames an earlier window already produced keep that result
            completed[k, span.scored_from : stop] = pixels[fresh:]

    if config.paste_visible:
        completed = np.where(clip.modal_masks[..., None], clip.frames[None], completed)
    inside = amodal_masks[..., None]
    rgb = np.where(inside, completed, np.uint8(255))
    alpha = np.where(amodal_masks, np.uint8(255), np.uint8(0))[..., None]
    rgba = np.concatenate([rgb, alpha], axis=-1)
    faded = (clip.frames.astype(np.float32) * (1 - config.overlay_fade) + 255.0 * config.overlay_fade).round().astype(np.uint8)
    overlay = np.where(inside, completed, faded[None])
    return CompletionResult(rgb=rgb, rgba=rgba, overlay=overlay, amodal_masks=amodal_masks, object_ids=clip.object_ids)


# Our own completers: object-centred crops -------------------------------------------------------
@dataclass(frozen=True)
class PipelineConfig:
    """Settings of :class:`ContentCompletionPipeline`; each may also be passed per call."""

    steps: int | None = None  # denoising steps; None = the model's own best (its config's sampling_steps)
    guidance: float | None = None  # classifier-free guidance scale; None = the model's own
    samples: int = 1  # appearances per object; > 1 also gives the per-pixel spread, and Top-k in evaluation
    seed: int = 0  # seeds every batch of the run, so a run repeats exactly
    batch_size: int = 8  # (object-window, sample) rows per model call; bounds memory
    paste_visible: bool = True  # keep the real visible pixels (ours); official checkpoints follow CompletionConfig
    # Ours: carry the pixels other frames show along the object's motion (completion.baselines.propagate)
    # into the condition and the output, so the model paints only what no frame of the clip shows.
    # Official checkpoints see the visible pixels alone, as the reference.
    propagate: bool = True
    overlay_fade: float = 0.5  # the overlay shows the frame blended this much toward white
    progress: bool = True  # a progress bar per run

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise InputError(f"--steps must be >= 1, got {self.steps}")
        if self.guidance is not None and self.guidance < 0:
            raise InputError(f"--guidance must be >= 0, got {self.guidance}")
        if self.samples < 1 or self.batch_size < 1:
            raise InputError(f"--samples and --batch-size must be >= 1, got {self.samples}, {self.batch_size}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"--seed must be in [0, 2**63), got {self.seed}")


@dataclass(frozen=True)
class CompletionOutput:
    """Stage 2 for a whole clip.

    Attributes:
        rgb: ``(K, T, H, W, 3) uint8``: each object completed (sample 0), white outside its amodal mask.
        rgba: ``(K, T, H, W, 4) uint8``: the same, alpha = 255 inside the amodal mask.
        overlay: ``(K, T, H, W, 3) uint8``: the completed object over the frame faded to white.
        samples: ``(S, K, T, H, W, 3) uint8``: every sample (``S = samples``).
        spread: ``(K, T, H, W) float32``: per-pixel standard deviation over samples (0..255 scale,
            mean over channels), or ``None`` with one sample.
        amodal_masks: ``(K, T, H, W) bool``: the masks completed.
        object_ids: one id per object, as in the clip.
        timings: seconds per part of the run.
    """

    rgb: np.ndarray
    rgba: np.ndarray
    overlay: np.ndarray
    samples: np.ndarray
    spread: np.ndarray | None
    amodal_masks: np.ndarray
    object_ids: tuple[int, ...]
    timings: dict = field(default_factory=dict)


def check_amodal_masks(clip: Clip, amodal_masks, flag: str = "amodal masks") -> np.ndarray:
    """``amodal_masks`` as ``(K, T, H, W) bool`` matching ``clip`` and containing its modal masks, or a one-line error."""
    amodal_masks = np.asarray(amodal_masks)
    if amodal_masks.shape != clip.modal_masks.shape:
        raise InputError(
            f"{flag}: shape {amodal_masks.shape} does not match the clip's modal masks {clip.modal_masks.shape} (K, T, H, W); "
            "pass one amodal mask per object and frame, at the frames' size"
        )
    if amodal_masks.dtype != np.bool_:
        raise InputError(f"{flag}: must be bool, got {amodal_masks.dtype}")
    outside = clip.modal_masks & ~amodal_masks
    if outside.any():
        k, t = (int(i) for i in np.argwhere(outside.any(axis=(2, 3)))[0])
        raise InputError(
            f"{flag}: object {clip.object_ids[k]} in frame {t} is visible outside its amodal mask; amodal masks "
            "contain the visible ones (stage 1 outputs do): pass stage 1's masks, or the union with the modal masks"
        )
    return amodal_masks


def complete_crops(model, clip: Clip, amodal_masks: np.ndarray, *, steps: int, guidance: float, num_samples: int,
                   seed: int, batch_size: int, progress: bool, known: tuple[np.ndarray, np.ndarray] | None = None,
                   paint_known: bool = False) -> np.ndarray:
    """Complete every object of ``clip`` with one of our completers, window by window, on object crops.

    ``known``: ``(pixels (K, T, H, W, 3) uint8, mask (K, T, H, W) bool)``, what the model is told
    of each object (default: the frames inside the modal masks). With ``known`` given, an
    object-window whose new frames have no amodal pixel left unknown is not run: the caller keeps
    the known pixels there, so its output would be discarded (``paint_known=True`` runs it anyway).
    Its noise is still drawn, so every other object-window gets the same noise either way.

    Returns ``(S, K, T, H, W, 3) uint8``: each sample's appearance at the clip's size, white outside
    the crop boxes (the caller keeps the amodal region).
    """
    from tqdm import tqdm

    from amodal.completion.crops import crop_to_model, object_box, paste_from_model

    num_objects, num_frames = clip.modal_masks.shape[:2]
    height, width = clip.size
    size, length = (model.height, model.width), model.num_frames
    out = np.full((num_samples, num_objects, num_frames, height, width, 3), 255, np.uint8)
    jobs = []  # (object, window, box, modal_rgb, amodal, modal)
    for window in plan_windows(num_frames, length):
        span = slice(window.start, window.stop)
        for k in range(num_objects):
            box = object_box(amodal_masks[k, span], model.margin, size)
            if box is None:
                continue  # the object is absent from the whole window: nothing to complete
            pixels, given = (clip.frames, clip.modal_masks[k]) if known is None else (known[0][k], known[1][k])
            crops = crop_to_model(pixels[span], given[span], amodal_masks[k, span], box, size)
            fresh = slice(window.scored_from, window.stop)
            needed = known is None or paint_known or bool((amodal_masks[k, fresh] & ~known[1][k, fresh]).any())
            jobs.append((k, window, box, *(_pad_window(c, length) for c in crops), needed))
    rows = max(1, batch_size // num_samples)
    bar = tqdm(total=len(jobs), desc="complete", unit="object-window", file=sys.stderr, leave=False,
               disable=None if progress else True)
    for chunk_index, first in enumerate(range(0, len(jobs), rows)):
        generator = torch.Generator().manual_seed(int(np.random.SeedSequence([seed, chunk_index]).generate_state(1)[0]))
        batch = jobs[first : first + rows]
        noise = torch.randn((len(batch) * num_samples, length, 3, *size), generator=generator)  # as samples() draws it
        chunk = [(job, n) for job, n in zip(batch, noise.unflatten(0, (-1, num_samples))) if job[-1]]
        bar.update(len(batch) - len(chunk))
        if not chunk:
            continue
        modal_rgb, amodal, modal = (torch.stack([job[i] for job, _ in chunk]) for i in (3, 4, 5))
        with torch.no_grad():
            pred = model.samples(modal_rgb, amodal, modal, num_samples, steps=steps, guidance=guidance,
                                 noise=torch.cat([n for _, n in chunk]))
        for j, ((k, window, box, *_), _) in enumerate(chunk):
            n = window.stop - window.start
            fresh = window.scored_from - window.start  # frames an earlier window produced keep that result
            for s in range(num_samples):
                pixels = paste_from_model(pred[j, s, :n].cpu(), box, (height, width))
                out[s, k, window.scored_from : window.stop] = pixels[fresh:]
        bar.update(len(chunk))
    bar.close()
    return out


class ContentCompletionPipeline:
    """Stage 2 for real videos: each object's full appearance, any length, any number of objects.

    Example::

        pipe = ContentCompletionPipeline.from_pretrained("default-completion").to("cpu")
        out = pipe(clip, amodal_masks)            # clip: amodal.Clip; amodal_masks: (K, T, H, W) bool
        out = pipe(frames, amodal_masks, modal_masks=modal_masks, num_samples=3, seed=0)   # or arrays
        out.rgb                                    # (K, T, H, W, 3) uint8, each object alone on white

    Our completers run on object-centred crops (:mod:`amodal.completion.crops`); by default
    (``PipelineConfig.propagate``) each object's pixels that other frames show are first carried
    along its motion into its hidden part, and the model paints the rest. An official
    content-completion checkpoint runs on whole frames, as the reference does (:func:`complete_clip`).
    """

    def __init__(self, completer, config: PipelineConfig = PipelineConfig(), official: CompletionConfig | None = None):
        self.completer = completer
        self.config = config
        self.official = official or CompletionConfig()

    @classmethod
    def from_pretrained(cls, name_or_path: str = "default-completion", config: PipelineConfig | None = None,
                        device=None, **load_kwargs) -> "ContentCompletionPipeline":
        """``"default-completion"``, ``"default-completion-regression"``, one of our model folders, or an official checkpoint."""
        from amodal.checkpoints.registry import load_completer

        return cls(load_completer(name_or_path, device=device, **load_kwargs), config or PipelineConfig())

    @property
    def is_official(self) -> bool:
        return not hasattr(self.completer, "samples")

    def to(self, device) -> "ContentCompletionPipeline":
        """Move the model to ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``, or a ``torch.device``); returns ``self``.

        A device torch cannot use here is a one-line :class:`~amodal.errors.InputError` naming it.
        An official checkpoint stays where it was loaded (``from_pretrained(..., device=...)``).
        """
        place(self.completer, device, "the completion model")
        return self

    def __call__(
        self,
        clip: Clip | np.ndarray,
        amodal_masks: np.ndarray | None = None,
        *,
        modal_masks: np.ndarray | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_samples: int | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
    ) -> CompletionOutput:
        """Complete every object inside its amodal mask; see :class:`CompletionOutput`.

        Args:
            clip: an :class:`amodal.Clip`, or the frames as an array, ``(T, H, W, 3) uint8`` RGB.
            amodal_masks: ``(K, T, H, W) bool`` (stage 1's output), or ``(T, H, W) bool`` for one
                object; each contains its modal mask. Default: the clip's own ``amodal_masks``.
            modal_masks: with frames as an array (required then), ``(K, T, H, W) bool`` or
                ``(T, H, W) bool`` for one object: the visible part of each object. A clip
                carries its own.
            num_inference_steps: denoising steps (``None``: the config's, else the model's own best).
            guidance_scale: classifier-free guidance scale (``None``: the config's, else the model's own).
            num_samples: appearances per object (``None``: the config's); > 1 gives ``spread``.
            seed: seeds all of the call's noise (``None``: the config's).
            generator: instead of ``seed``, a ``torch.Generator`` standing for its initial seed
                (``generator.initial_seed() % 2**63``): its state is neither read nor advanced, so
                the same generator gives the same output again (``amodal.util.pipelines.call_seed``).

        The same inputs and seed give the same output. The pipeline's config is not changed.
        """
        import time

        start = time.perf_counter()
        check_call_settings(num_inference_steps, guidance_scale, num_samples)
        cfg = dataclass_replace(
            self.config,
            seed=call_seed(seed, generator, self.config.seed),
            steps=self.config.steps if num_inference_steps is None else int(num_inference_steps),
            guidance=self.config.guidance if guidance_scale is None else float(guidance_scale),
            samples=self.config.samples if num_samples is None else int(num_samples),
        )
        clip = as_clip(clip, "frames", modal_masks=modal_masks)
        if amodal_masks is None:
            if clip.amodal_masks is None:
                raise InputError("amodal_masks: missing; pass stage 1's output (K, T, H, W) bool, or a clip that has them")
            amodal_masks = clip.amodal_masks
        amodal_masks = check_amodal_masks(clip, object_masks(amodal_masks, "amodal_masks"))
        if self.is_official:
            generation = generation_with(self.official.generation, cfg.steps, cfg.guidance)
            runs = []
            for s in range(cfg.samples):
                official = dataclass_replace(self.official, generation=generation, seed=cfg.seed + s)
                runs.append(complete_clip(self.completer, clip, amodal_masks, official, progress=cfg.progress).rgb)
            stack = np.stack(runs)
        else:
            steps = self.completer.default_steps if cfg.steps is None else cfg.steps
            guidance = self.completer.default_guidance if cfg.guidance is None else cfg.guidance
            known = None
            if cfg.propagate:
                from amodal.completion.baselines import propagate

                known = propagate(clip, amodal_masks)
            stack = complete_crops(self.completer, clip, amodal_masks, steps=steps, guidance=guidance, num_samples=cfg.samples,
                                   seed=cfg.seed, batch_size=cfg.batch_size, progress=cfg.progress, known=known)
            if known is not None:
                stack = np.where(known[1][None, ..., None], known[0][None], stack)
            elif cfg.paste_visible:
                stack = np.where(clip.modal_masks[None, ..., None], clip.frames[None, None], stack)
        stack = np.where(amodal_masks[None, ..., None], stack, np.uint8(255))
        rgb = stack[0]
        alpha = np.where(amodal_masks, np.uint8(255), np.uint8(0))[..., None]
        faded = (clip.frames.astype(np.float32) * (1 - cfg.overlay_fade) + 255.0 * cfg.overlay_fade).round().astype(np.uint8)
        spread = stack.astype(np.float32).std(axis=0).mean(axis=-1) if cfg.samples > 1 else None
        return CompletionOutput(
            rgb=rgb,
            rgba=np.concatenate([rgb, alpha], axis=-1),
            overlay=np.where(amodal_masks[..., None], rgb, faded[None]),
            samples=stack,
            spread=spread,
            amodal_masks=amodal_masks,
            object_ids=clip.object_ids,
            timings={"total": time.perf_counter() - start},
        )


def generation_with(generation: GenerationConfig, steps: int | None = None, guidance: float | None = None) -> GenerationConfig:
    """An official checkpoint's sampler settings with ``steps`` and, given a ``guidance``, that constant
    scale in place of the reference's per-frame ramp (``None``: keep the checkpoint's own)."""
    if steps is not None:
        generation = dataclass_replace(generation, steps=steps)
    if guidance is not None:
        generation = dataclass_replace(generation, min_guidance=guidance, max_guidance=guidance)
    return generation


def dataclass_replace(config, **changes):
    import dataclasses

    return dataclasses.replace(config, **changes)
