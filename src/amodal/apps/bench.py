"""Speed and memory of a stage-1 or stage-2 model at its native geometry (``amodal bench``)."""

from __future__ import annotations

import resource
import time
from dataclasses import asdict, dataclass

import torch


@dataclass(frozen=True)
class BenchResult:
    """One measurement: time per frame for one window of one object, and peak memory."""

    model: str  # the name or path benchmarked
    device: str  # where it ran
    threads: int  # torch CPU threads
    num_frames: int  # native window length
    height: int  # native height
    width: int  # native width
    depth: bool  # whether depth was given
    steps: int  # denoising steps that ran (1 for a one-step regression model, whatever was asked)
    guidance: float  # CFG scale that ran; > 1 doubles the batch of each step (1.0, none, for a regression model)
    iterative: bool  # whether steps and guidance apply (False: a one-step regression model)
    repeats: int  # timed calls (after one warm-up call)
    sec_per_window: float  # median wall time of one sample() call
    sec_per_frame: float  # sec_per_window / num_frames
    peak_rss_mib: float  # peak resident memory of the process so far (CPU)
    peak_cuda_mib: float | None  # peak CUDA memory allocated, when on a GPU

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def settings(self) -> str:
        """What ran, in words: ``steps=4 guidance=1.5``, or ``one step, no guidance`` for a regression model."""
        return f"steps={self.steps} guidance={self.guidance:g}" if self.iterative else "one step, no guidance"


def bench_inputs(num_frames: int, height: int, width: int, depth: bool):
    """A plausible window: a disc moving left to right, half hidden behind a nearer bar.

    Returns ``modal (1, T, H, W) float32`` in ``{0, 1}`` and ``depth (1, T, H, W)``
    in ``[-1, 1]`` (or ``None``). Speed does not depend on content, but this keeps
    the numbers honest for any model that might skip empty inputs.
    """
    t = torch.arange(num_frames, dtype=torch.float32)[:, None, None]
    y = torch.arange(height, dtype=torch.float32)[None, :, None]
    x = torch.arange(width, dtype=torch.float32)[None, None, :]
    cx = width * (0.2 + 0.6 * t / max(1, num_frames - 1))
    disc = (x - cx) ** 2 + (y - height / 2) ** 2 < (height / 4) ** 2
    bar = (x - width / 2).abs() < width / 10
    modal = (disc & ~bar).float()[None]
    d = None
    if depth:
        d = torch.where(bar.expand_as(disc), 1.0, torch.where(disc, 0.0, -1.0))[None]
    return modal, d


def benchmark(
    name_or_path: str,
    *,
    steps: int | None = None,  # None = the model's own best (its config's sampling_steps)
    guidance: float | None = None,  # > 1 runs the unconditional branch too (double batch); None = the model's own
    depth: bool = True,
    repeats: int = 3,
    device: str = "cpu",
    seed: int = 0,
) -> BenchResult:
    """Time one native window (batch 1) of a segmenter's ``sample()`` or a completer's ``samples()``.

    Reports per-frame seconds and peak memory; a completer is given the bench window's disc as
    the object, its visible part in grey on white.
    """
    from amodal.checkpoints.registry import detect_format, load_completer, load_segmenter

    found = detect_format(name_or_path)
    completion = found is not None and found.stage == "completion"
    model = (load_completer if completion else load_segmenter)(name_or_path, device=device)
    iterative = bool(getattr(model, "iterative", True))
    if iterative:
        steps = int(model.default_steps if steps is None else steps)
        guidance = float(model.default_guidance if guidance is None else guidance)
    else:
        steps, guidance = 1, 1.0  # a regression model makes one pass and has no unconditional branch
    modal, d = bench_inputs(model.num_frames, model.height, model.width, depth)
    generator = torch.Generator().manual_seed(seed)
    if completion:
        amodal = torch.maximum(modal, bench_inputs(model.num_frames, model.height, model.width, False)[0].roll(4, -1))
        rgb = torch.where(modal[:, :, None] > 0, torch.full((1, 1, 3, 1, 1), 0.4), torch.ones(1, 1, 3, 1, 1))
        rgb = rgb.expand(-1, -1, -1, model.height, model.width).contiguous()
        depth = False

        def run_model():
            model.samples(rgb, amodal, modal, 1, steps=steps, guidance=guidance, generator=generator)
    else:

        def run_model():
            model.sample(modal, d, steps=steps, guidance=guidance, generator=generator)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    def call() -> float:
        start = time.perf_counter()
        with torch.no_grad():
            run_model()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        return time.perf_counter() - start

    call()  # warm-up: kernel selection and allocator growth are not part of the speed
    times = sorted(call() for _ in range(repeats))
    median = times[len(times) // 2]
    peak_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KiB on Linux
    peak_cuda = torch.cuda.max_memory_allocated() / 2**20 if device.startswith("cuda") else None
    return BenchResult(
        model=str(name_or_path),
        device=device,
        threads=torch.get_num_threads(),
        num_frames=model.num_frames,
        height=model.height,
        width=model.width,
        depth=depth,
        steps=steps,
        guidance=float(guidance),
        iterative=iterative,
        repeats=repeats,
        sec_per_window=median,
        sec_per_frame=median / model.num_frames,
        peak_rss_mib=peak_rss,
        peak_cuda_mib=peak_cuda,
    )


def benchmark_system(segmentation: str = "default", completion: str = "default-completion", *, repeats: int = 1,
                     device: str = "cpu", seed: int = 0) -> dict:
    """Time :class:`amodal.system.AmodalSystem` on the bundled demo clip (48 frames, 5 objects at 128x256).

    Returns seconds per frame and per (object, frame) for each stage (median over ``repeats``
    calls after a warm-up) and the peak resident memory of the process.
    """
    from amodal.apps.demo import demo_clip
    from amodal.completion.pipeline import PipelineConfig
    from amodal.segmentation.pipeline import SegmentationConfig
    from amodal.system import AmodalSystem

    clip = demo_clip()
    clip = clip.replace(amodal_masks=None, amodal_rgb=None)
    system = AmodalSystem.from_pretrained(
        segmentation, completion, segmentation_config=SegmentationConfig(seed=seed, progress=False),
        completion_config=PipelineConfig(seed=seed, progress=False), device=device,
    )
    system(clip)  # warm-up
    runs = sorted((system(clip).timings for _ in range(repeats)), key=lambda t: t["segmentation"] + t["completion"])
    timings = runs[len(runs) // 2]
    frames, objects = clip.num_frames, clip.num_objects
    return {
        "segmentation_model": segmentation,
        "completion_model": completion,
        "frames": frames,
        "objects": objects,
        "size": list(clip.size),
        "device": device,
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        **{f"{stage}_sec_per_frame": timings[stage] / frames for stage in ("segmentation", "completion")},
        **{f"{stage}_sec_per_object_frame": timings[stage] / (frames * objects) for stage in ("segmentation", "completion")},
        "sec_per_frame": (timings["segmentation"] + timings["completion"]) / frames,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
