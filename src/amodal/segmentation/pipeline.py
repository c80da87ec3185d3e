"""Amodal segmentation of videos of any length with any number of objects.

The model sees windows of its native length at its native resolution; this
module plans the windows, letterboxes frames onto the model canvas, batches
(object, sample) rows through the model, blends overlapping windows, maps the
soft masks back to the input pixels, binarises them and unions them with the
modal masks. Frames stream in and out: memory is bounded by a few windows at
model resolution plus one window of input-resolution modal masks, whatever the
video length.
"""

from __future__ import annotations

import dataclasses
import time
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Iterable, Iterator

import numpy as np
import torch

from amodal.clip import Clip, as_clip
from amodal.errors import InputError
from amodal.data.geometry import Letterbox, crop_border, from_model, letterbox, to_model
from amodal.data.windows import StreamingPlan
from amodal.depth.normalize import normalize_depth
from amodal.segmentation import boxes as box_prior
from amodal.segmentation.protocol import SAMPLE_LEVELS, AmodalSegmenter
from amodal.util.pipelines import call_seed, check_call_settings, place

BLEND_MODES = ("average", "ramp")


def sample_levels(mode: str, threshold: float, num_samples: int, num_objects: int, seed: int) -> np.ndarray:
    """The level each sample's soft mask is thresholded at: ``(S, K) float32``.

    ``"fixed"``: every sample at ``threshold``. ``"stratified"``: sample 0 at
    ``threshold`` (so Top-1 is the fixed reading); samples ``1 .. S-1`` split
    ``(0, 1)`` into ``S - 1`` equal strata and draw one uniform level in theirs,
    independently per object, from ``seed``. A pixel of soft value ``p`` is then in
    a random further sample with probability ``p``: the samples' frequency
    estimates the model's per-pixel probability, and each sample is a level set of
    it (coherent over space and time, since one level serves the whole video).
    """
    levels = np.full((num_samples, num_objects), threshold, dtype=np.float32)
    if mode == "fixed" or num_samples == 1:
        return levels
    if mode != "stratified":
        raise InputError(f"sample levels must be one of {SAMPLE_LEVELS}, got {mode!r}")
    strata = num_samples - 1
    draws = np.random.default_rng([seed, 0x5A3B1E]).random((strata, num_objects))
    levels[1:] = (np.arange(strata)[:, None] + draws) / strata
    return levels.clip(1e-3, 1 - 1e-3)


@dataclass(frozen=True)
class SegmentationConfig:
    """Settings of one segmentation run (saved in ``summary.json``)."""

    steps: int | None = None  # denoising steps; None = the model's own best (its config's sampling_steps)
    guidance: float | None = None  # classifier-free guidance scale; None = the model's own (sampling_guidance)
    samples: int = 1  # hypotheses per object; > 1 also gives the per-pixel frequency
    seed: int = 0  # seeds the initial noise of every window
    window: int | None = None  # frames per model call; None = the model's native length
    overlap: int = 4  # frames shared by consecutive windows, blended so seams do not flicker
    # How overlapping frames combine before thresholding: "ramp" weights fall off toward window
    # edges (a cross-fade); "average" is the plain mean of the soft masks, which cuts away a hidden
    # part on which two windows' samples disagree. Measured in docs/results.md (long videos).
    blend: str = "ramp"
    pad: float = 0.0  # extra room around the frame (fraction of H and W per side) so objects may extend past the border
    batch_size: int = 8  # (object, sample) rows per model call; bounds memory
    use_depth: bool = True  # False runs the model mask-only even when depth is given
    # With amodal boxes (segmentation/boxes.py): "clip" shows the model the whole frame, "crop" each
    # object's box region; either way the output is cut to the boxes. None = the model's own
    # (its config's box_mode: "crop" for default-boxes, trained on box crops; else "clip").
    # Measured in docs/applications.md.
    box_mode: str | None = None
    box_margin: float = 0.25  # context around the window's union box, a fraction of its size per side ("crop")
    # How samples are thresholded: "fixed" or "stratified" (see sample_levels); None = the model's own
    # (its config's sample_levels).
    levels: str | None = None
    progress: bool = True  # tqdm bar per window

    def __post_init__(self):
        if self.steps is not None and self.steps < 1:
            raise InputError(f"--steps must be >= 1, got {self.steps}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"--seed must be in [0, 2**63), got {self.seed}")
        if self.samples < 1:
            raise InputError(f"--samples must be >= 1, got {self.samples}")
        if self.guidance is not None and self.guidance < 0:
            raise InputError(f"--guidance must be >= 0, got {self.guidance}")
        if self.window is not None and self.window < 1:
            raise InputError(f"--window must be >= 1, got {self.window}")
        if self.overlap < 0:
            raise InputError(f"--overlap must be >= 0, got {self.overlap}")
        if self.levels is not None and self.levels not in SAMPLE_LEVELS:
            raise InputError(f"--levels must be one of {SAMPLE_LEVELS}, got {self.levels!r}")
        if self.blend not in BLEND_MODES:
            raise InputError(f"--blend must be one of {BLEND_MODES}, got {self.blend!r}")
        if self.pad < 0:
            raise InputError(f"--pad must be >= 0, got {self.pad}")
        if self.batch_size < 1:
            raise InputError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.box_mode is not None and self.box_mode not in box_prior.BOX_MODES:
            raise InputError(f"--box-mode must be one of {', '.join(box_prior.BOX_MODES)}, got {self.box_mode!r}")
        if not 0 <= self.box_margin <= 4:
            raise InputError(f"--box-margin must be in [0, 4], got {self.box_margin}")


@dataclass
class FrameResult:
    """The result for one frame, as the streaming interface yields it.

    ``amodal``: ``(K, H', W') bool``; ``frequency``: ``(K, H', W') float32`` in
    ``[0, 1]`` (share of samples that mark the pixel amodal) or ``None`` with one
    sample; ``samples``: ``(S, K, H', W') bool`` when requested. ``H' = H`` and
    ``W' = W`` unless ``pad`` adds room around the frame.
    """

    index: int
    amodal: np.ndarray
    frequency: np.ndarray | None = None
    samples: np.ndarray | None = None


@dataclass
class SegmentationOutput:
    """Amodal masks for a whole clip.

    Attributes:
        amodal_masks: ``(K, T, H', W') bool``, always containing the modal masks.
        frequency: ``(K, T, H', W') float32`` in ``[0, 1]`` over samples, or ``None``.
        samples: ``(S, K, T, H', W') bool`` per-sample masks when requested (Top-k).
        object_ids: the id of each row.
        border: ``(top/bottom, left/right)`` pixels of extra room around the frame.
        timings: seconds per stage.
    """

    amodal_masks: np.ndarray
    frequency: np.ndarray | None
    samples: np.ndarray | None
    object_ids: tuple[int, ...]
    border: tuple[int, int] = (0, 0)
    timings: dict = field(default_factory=dict)



def _blend_weights(window: int, overlap: int, mode: str) -> torch.Tensor:
    """``(window,)`` weights of each frame of a window when overlapping windows are averaged."""
    if mode == "average" or overlap == 0:
        return torch.ones(window)
    ramp = torch.arange(1, window + 1, dtype=torch.float32)
    return torch.minimum(ramp, ramp.flip(0)).clamp(max=overlap + 1) / (overlap + 1)


class AmodalSegmentationPipeline:
    """Stage 1 for real videos: any length, many objects, Top-k with uncertainty.

    Example::

        pipe = AmodalSegmentationPipeline.from_pretrained("default").to("cpu")
        out = pipe(clip)                      # clip: amodal.Clip
        out = pipe(modal_masks, num_samples=3, seed=0)   # or arrays: (K, T, H, W) or (T, H, W) bool
        out.amodal_masks                      # (K, T, H, W) bool

    Settings come from ``config`` (the model's own best steps and guidance by default); each
    call may override them without changing the pipeline.
    """

    def __init__(self, segmenter: AmodalSegmenter, config: SegmentationConfig = SegmentationConfig()):
        self.segmenter = segmenter
        self.config = config

    @classmethod
    def from_pretrained(cls, name_or_path: str = "default", config: SegmentationConfig | None = None, **load_kwargs):
        """Load ``"default"``, ``"default-regression"``, one of our model folders, or an official checkpoint."""
        from amodal.checkpoints.registry import load_segmenter

        return cls(load_segmenter(name_or_path, **load_kwargs), config or SegmentationConfig())

    def to(self, device) -> "AmodalSegmentationPipeline":
        """Move the model to ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:N"``, or a ``torch.device``); returns ``self``.

        A device torch cannot use here is a one-line :class:`~amodal.errors.InputError` naming it.
        An official checkpoint stays where it was loaded (``from_pretrained(..., device=...)``).
        """
        place(self.segmenter, device, "the segmentation model")
        return self

    # ------------------------------------------------------------------ whole clips
    def __call__(
        self,
        clip: Clip | np.ndarray,
        *,
        frames: np.ndarray | None = None,
        depth: np.ndarray | None = None,
        num_inference_steps: int | None = None,
        guidance_scale: float | None = None,
        num_samples: int | None = None,
        seed: int | None = None,
        generator: torch.Generator | None = None,
        return_samples: bool = False,
        amodal_boxes: np.ndarray | None = None,
    ) -> SegmentationOutput:
        """Segment every object; see :class:`SegmentationOutput`.

        Args:
            clip: an :class:`amodal.Clip`, or the modal masks as an array: ``(K, T, H, W) bool``, or
                ``(T, H, W) bool`` for one object (the output then has ``K = 1``).
            frames: with arrays, ``(T, H, W, 3) uint8`` (optional: stage 1 does not read frames).
            depth: with arrays, ``(T, H, W) float32`` inverse depth (larger is nearer), or ``None``
                to run mask-only. A clip carries its own frames and depth.
            num_inference_steps: denoising steps (``None``: the config's, else the model's own best).
            guidance_scale: classifier-free guidance scale (``None``: the config's, else the model's own).
            num_samples: hypotheses per object (``None``: the config's); > 1 gives ``frequency``.
            seed: seeds all of the call's noise (``None``: the config's).
            generator: instead of ``seed``, a ``torch.Generator`` standing for its initial seed
                (``generator.initial_seed() % 2**63``): its state is neither read nor advanced, so
                the same generator gives the same output again (``amodal.util.pipelines.call_seed``).
            return_samples: also return every sample, ``(S, K, T, H, W) bool``, for Top-k.
            amodal_boxes: ``(K, T, 4) float`` ``[x, y, w, h]`` pixel boxes each amodal mask must stay
                inside (``nan`` for a frame without one), used as ``config.box_mode`` says
                (segmentation/boxes.py).

        The same inputs and seed give the same output. The pipeline's config is not changed.
        """
        start = time.perf_counter()
        cfg = self._call_config(num_inference_steps, guidance_scale, num_samples, seed, generator)
        clip = as_clip(clip, "modal_masks", frames=frames, depth=depth)
        depth = clip.depth if cfg.use_depth else None
        results = list(
            self._stream(
                cfg,
                iter(clip.modal_masks.transpose(1, 0, 2, 3)),
                None if depth is None else iter(depth),
                frame_size=clip.size,
                num_frames=clip.num_frames,
                return_samples=return_samples,
                amodal_boxes=amodal_boxes,
            )
        )
        amodal = np.stack([r.amodal for r in results], axis=1)
        frequency = None if results[0].frequency is None else np.stack([r.frequency for r in results], axis=1)
        samples = np.stack([r.samples for r in results], axis=2) if return_samples else None
        box = letterbox(clip.size, self._canvas(), cfg.pad)
        timings = dict(self.last_timings)
        timings["total"] = time.perf_counter() - start
        return SegmentationOutput(amodal, frequency, samples, clip.object_ids, box.border, timings)

    def _call_config(self, num_inference_steps, guidance_scale, num_samples, seed, generator) -> SegmentationConfig:
        """The config of one call: the pipeline's, with the call's settings (the pipeline keeps its own)."""
        check_call_settings(num_inference_steps, guidance_scale, num_samples)
        changes = {"seed": call_seed(seed, generator, self.config.seed)}
        if num_inference_steps is not None:
            changes["steps"] = int(num_inference_steps)
        if guidance_scale is not None:
            changes["guidance"] = float(guidance_scale)
        if num_samples is not None:
            changes["samples"] = int(num_samples)
        return dataclasses.replace(self.config, **changes)

    @property
    def steps(self) -> int:
        """The denoising steps this pipeline runs: its config's, else the model's own best."""
        return self._steps(self.config)

    @property
    def box_mode(self) -> str:
        """How amodal boxes are used: the config's mode, else the model's own ("clip" when it has none)."""
        return self._box_mode(self.config)

    @property
    def guidance(self) -> float:
        """The guidance scale this pipeline runs: its config's, else the model's own."""
        return self._guidance(self.config)

    @property
    def levels(self) -> str:
        """How this pipeline thresholds samples after the first: its config's, else the model's own."""
        return self._levels(self.config)

    def _steps(self, cfg: SegmentationConfig) -> int:
        return int(cfg.steps if cfg.steps is not None else self.segmenter.default_steps)

    def _guidance(self, cfg: SegmentationConfig) -> float:
        return float(cfg.guidance if cfg.guidance is not None else self.segmenter.default_guidance)

    def _box_mode(self, cfg: SegmentationConfig) -> str:
        return cfg.box_mode or getattr(self.segmenter, "default_box_mode", "clip")

    def _canvas(self) -> tuple[int, int]:
        return int(self.segmenter.height), int(self.segmenter.width)

    # ------------------------------------------------------------------ streaming
    def stream(
        self,
        modal_frames: Iterable[np.ndarray],
        depth_frames: Iterable[np.ndarray] | None = None,
        frame_size: tuple[int, int] | None = None,
        num_frames: int | None = None,
        return_samples: bool = False,
        amodal_boxes: np.ndarray | None = None,
    ) -> Iterator[FrameResult]:
        """Yield one :class:`FrameResult` per input frame, in order, as soon as it is final.

        Args:
            modal_frames: per frame, ``(K, H, W) bool`` modal masks of the K objects.
            depth_frames: per frame, ``(H, W) float32`` inverse depth (larger is
                nearer), or ``None`` to run mask-only.
            frame_size: ``(H, W)``; taken from the first frame when omitted.
            num_frames: the video length if known (only for the progress bar).
            return_samples: also yield every sample's mask (for Top-k evaluation).
            amodal_boxes: ``(K, T, 4)`` ``[x, y, w, h]`` boxes per object and frame (``nan``:
                none), at least as many frames as the stream has; see segmentation/boxes.py.

        A frame is final once no later window can cover it, so at most about two
        windows of frames are held at any time. Runs with the pipeline's config.
        """
        return self._stream(self.config, modal_frames, depth_frames, frame_size, num_frames, return_samples, amodal_boxes)

    def _stream(self, cfg: SegmentationConfig, modal_frames, depth_frames, frame_size, num_frames, return_samples,
                amodal_boxes) -> Iterator[FrameResult]:
        seg = self.segmenter
        window = cfg.window or int(seg.num_frames)
        overlap = min(cfg.overlap, window - 1)
        plan = StreamingPlan(window, overlap)
        weights = _blend_weights(window, overlap, cfg.blend)
        use_depth = depth_frames is not None and cfg.use_depth
        depth_iter = iter(depth_frames) if use_depth else None
        cropping = amodal_boxes is not None and self._box_mode(cfg) == "crop"  # else boxes only cut the output
        self.last_timings = {"model": 0.0, "preprocess": 0.0, "postprocess": 0.0, "windows": 0}

        # Per-frame state for frames not yet emitted, indexed by frame number.
        # Inputs hold model-canvas maps, or input-resolution ones when boxes crop them (per object,
        # when a window runs).
        inputs: deque = deque()  # (index, modal (K, h, w) or (K, H, W), raw depth (h, w) or (H, W) or None)
        originals: dict[int, np.ndarray] = {}  # index -> (K, H, W) bool modal at input resolution
        acc: dict[int, torch.Tensor] = {}  # index -> (S, K, h, w) weighted soft-mask sum
        wsum: dict[int, float] = {}
        box: Letterbox | None = None
        num_objects = None
        emitted = 0
        index = -1
        window_index = 0
        bar = None
        if cfg.progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=num_frames, unit="frame", desc="segment", leave=False)

        def run_window(start: int) -> None:
            nonlocal window_index
            frames = [entry for entry in inputs if start <= entry[0] < start + window]
            window_boxes = amodal_boxes[:, start : start + len(frames)] if cropping else None
            self._run_window(cfg, frames, weights[: len(frames)], window_index, acc, wsum, window, box, window_boxes)
            window_index += 1
            self.last_timings["windows"] += 1

        def finish(index_limit: int) -> Iterator[FrameResult]:
            nonlocal emitted
            while emitted < index_limit:
                frame_boxes = None if amodal_boxes is None else amodal_boxes[:, emitted]
                yield self._finalize(cfg, emitted, originals.pop(emitted), acc.pop(emitted), wsum.pop(emitted), box,
                                     return_samples, frame_boxes, cropping)
                emitted += 1
                if bar is not None:
                    bar.update(1)
            while inputs and inputs[0][0] < min(emitted, plan.next_start):
                inputs.popleft()

        for index, modal in enumerate(modal_frames):
            modal = np.asarray(modal)
            if modal.ndim != 3 or modal.dtype != np.bool_:
                raise InputError(f"modal masks of frame {index} must be (K, H, W) bool, got {modal.dtype} {modal.shape}")
            if box is None:
                frame_size = frame_size or modal.shape[1:]
                box = letterbox(tuple(frame_size), self._canvas(), cfg.pad)
                num_objects = modal.shape[0]
                if amodal_boxes is not None:
                    amodal_boxes = box_prior.check_boxes(amodal_boxes, num_objects)
            if amodal_boxes is not None and index >= amodal_boxes.shape[1]:
                raise InputError(f"amodal boxes cover {amodal_boxes.shape[1]} frames, but the masks have more")
            if modal.shape != (num_objects, *box.src_size):
                raise InputError(
                    f"modal masks of frame {index} have shape {modal.shape}, expected {(num_objects, *box.src_size)}"
                )
            depth = None
            if depth_iter is not None:
                try:
                    depth = np.asarray(next(depth_iter), dtype=np.float32)
                except StopIteration:
                    raise InputError(f"depth has fewer frames than the masks (ran out at frame {index})") from None
                if depth.shape != box.src_size:
                    raise InputError(f"depth of frame {index} has shape {depth.shape}, expected {box.src_size}")
            t0 = time.perf_counter()
            if not cropping:
                modal_in = to_model(torch.from_numpy(modal).float(), box)
                depth_in = None if depth is None else to_model(torch.from_numpy(depth), box, fill=float("nan"))
            else:
                modal_in = torch.from_numpy(modal)
                depth_in = None if depth is None else torch.from_numpy(depth)
            self.last_timings["preprocess"] += time.perf_counter() - t0
            inputs.append((index, modal_in, depth_in))
            originals[index] = modal
            start = plan.ready(index + 1)
            if start is not None:
                run_window(start)
            yield from finish(plan.final_until(index + 1))

        if index < 0:
            raise InputError("no frames to segment: the mask input is empty")
        total = index + 1
        start = plan.final_start(total)
        if start is not None:
            run_window(start)
        yield from finish(total)
        if bar is not None:
            bar.close()

    # ------------------------------------------------------------------ internals
    def _run_window(self, cfg, frames, weights, window_index, acc, wsum, window, box, window_boxes) -> None:
        t0 = time.perf_counter()
        modal = torch.stack([f[1] for f in frames], dim=1).float()  # (K, T, h, w), or (K, T, H, W) with boxes
        raw = None if frames[0][2] is None else torch.stack([f[2] for f in frames])  # (T, ...), nan off the frame
        regions = None
        if window_boxes is None:
            depth = None if raw is None else torch.from_numpy(normalize_depth(raw.numpy()))[None].expand(len(modal), -1, -1, -1)
        else:
            regions = self._regions(cfg, window_boxes, box)
            canvas = self._canvas()
            shift = (box.border[0], box.border[1])
            modal = torch.stack([box_prior.crop(modal[k], _shifted(r, shift, -1), canvas) for k, r in enumerate(regions)])
            depth = None
            if raw is not None:
                depth = torch.stack([
                    torch.from_numpy(normalize_depth(
                        box_prior.crop(raw, _shifted(r, shift, -1), canvas, fill=float("nan")).numpy()
                    ))
                    for r in regions
                ])
        self.last_timings["preprocess"] += time.perf_counter() - t0
        soft = self._sample(cfg, modal, depth, window_index, window)  # (S, K, t, h, w) on the canvas (or the crops)
        t0 = time.perf_counter()
        if regions is not None:
            size = box.padded_size
            soft = torch.stack([box_prior.uncrop(soft[:, k], r, size) for k, r in enumerate(regions)], dim=1)
        for t, frame in enumerate(frames):
            idx = frame[0]
            w = float(weights[t])
            acc[idx] = acc[idx] + w * soft[:, :, t] if idx in acc else w * soft[:, :, t]
            wsum[idx] = wsum.get(idx, 0.0) + w
        self.last_timings["postprocess"] += time.perf_counter() - t0

    def _levels(self, cfg: SegmentationConfig) -> str:
        return cfg.levels if cfg.levels is not None else getattr(self.segmenter, "default_sample_levels", "fixed")

    def _regions(self, cfg: SegmentationConfig, window_boxes: np.ndarray, box: Letterbox) -> list:
        """Per object, the crop its window is seen through, in padded-frame pixels (segmentation/boxes.py)."""
        canvas = self._canvas()
        whole = box_prior.frame_region(box.src_size, box.border, canvas)
        out = []
        for k in range(len(window_boxes)):
            region = box_prior.window_region(window_boxes[k], canvas, cfg.box_margin)
            out.append(_shifted(region or whole, box.border, +1))
        return out

    def _sample(self, cfg: SegmentationConfig, modal: torch.Tensor, depth: torch.Tensor | None, window_index: int,
                window: int) -> torch.Tensor:
        """``(K, t, h, w)`` modal canvases (and per-object depth) -> ``(S, K, t, h, w)`` soft masks; absent objects stay 0."""
        seg = self.segmenter
        t0 = time.perf_counter()
        t_real = modal.shape[1]
        if t_real < window and not getattr(seg, "any_length", False):
            # A video shorter than one window: repeat the last frame to fill it; the extra frames are dropped.
            # (Official models run at the clip's own length, as the reference pipeline does.)
            reps = window - t_real
            modal = torch.cat([modal, modal[:, -1:].expand(-1, reps, -1, -1)], dim=1)
            if depth is not None:
                depth = torch.cat([depth, depth[:, -1:].expand(-1, reps, -1, -1)], dim=1)
        modal = (modal > 0.5).float()
        num_objects, samples = modal.shape[0], cfg.samples
        present = modal[:, :t_real].flatten(1).any(1)  # objects visible somewhere in the window
        rows = [(k, s) for k in range(num_objects) if present[k] for s in range(samples)]
        soft = torch.zeros(samples, num_objects, t_real, *modal.shape[-2:])
        self.last_timings["preprocess"] += time.perf_counter() - t0
        t0 = time.perf_counter()
        for chunk_index, chunk_start in enumerate(range(0, len(rows), cfg.batch_size)):
            chunk = rows[chunk_start : chunk_start + cfg.batch_size]
            objects = torch.tensor([k for k, _ in chunk])
            generator = torch.Generator().manual_seed(
                int(np.random.SeedSequence([cfg.seed, window_index, chunk_index]).generate_state(1)[0])
            )
            with torch.no_grad():
                out = seg.sample(
                    modal[objects], None if depth is None else depth[objects],
                    steps=self._steps(cfg), guidance=self._guidance(cfg), generator=generator,
                )
            for row, (k, s) in enumerate(chunk):
                soft[s, k] = out[row, :t_real].float()
        self.last_timings["model"] += time.perf_counter() - t0
        return soft

    def _finalize(self, cfg, index, modal, acc, wsum, box, return_samples, frame_boxes, cropped) -> FrameResult:
        t0 = time.perf_counter()
        soft = acc / wsum if cropped else from_model(acc / wsum, box)  # (S, K, Hp, Wp)
        if not cfg.pad:
            soft = crop_border(soft, box)
        levels = sample_levels(self._levels(cfg), float(self.segmenter.threshold), *soft.shape[:2], cfg.seed)
        binary = soft > torch.from_numpy(levels)[:, :, None, None]
        if frame_boxes is not None:  # never outside the box
            border = box.border if cfg.pad else (0, 0)
            binary &= torch.from_numpy(box_prior.rasterize(frame_boxes, tuple(binary.shape[-2:]), border))[None]
        modal_t = torch.from_numpy(modal)
        if cfg.pad:
            bh, bw = box.border
            modal_t = torch.nn.functional.pad(modal_t, (bw, bw, bh, bh))
        binary |= modal_t[None]  # the visible part is always kept
        samples = binary.numpy()
        if samples.shape[0] == 1:
            result = FrameResult(index, samples[0], None, samples if return_samples else None)
        else:
            frequency = samples.mean(0, dtype=np.float32)
            result = FrameResult(index, frequency >= 0.5, frequency, samples if return_samples else None)
        self.last_timings["postprocess"] += time.perf_counter() - t0
        return result


def _shifted(region, border: tuple[int, int], sign: int):
    """``region`` moved by ``sign * border``: from frame pixels to padded-frame pixels (+1) or back (-1)."""
    return box_prior.Region(region.top + sign * border[0], region.left + sign * border[1], region.height, region.width)


def config_dict(config: SegmentationConfig) -> dict:
    """The config as a JSON-ready dict (for ``summary.json``)."""
    return asdict(config)
