"""Peak memory of ``amodal segment`` against video length: streaming keeps it flat.

Each length runs in a fresh process (so peaks do not mix) on a generated
video of moving, occluding boxes written to a temporary folder: frames as
JPEG, modal masks as PNG. The child reports its peak resident set size
(``ru_maxrss``), which includes Python, torch and the model.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_test_video(folder: Path, num_frames: int, size: tuple[int, int] = (360, 640)) -> tuple[Path, Path]:
    """Write ``num_frames`` frames and modal masks of a box passing behind a bar; returns (frames, masks) folders."""
    from PIL import Image

    frames, masks = folder / "frames", folder / "masks"
    frames.mkdir(parents=True)
    masks.mkdir()
    h, w = size
    rng = np.random.default_rng(0)
    background = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
    for t in range(num_frames):
        x = int((t * 7) % (w - 80))
        frame = background.copy()
        full = np.zeros((h, w), bool)
        full[h // 3 : h // 3 + 80, x : x + 80] = True
        occluder = np.zeros((h, w), bool)
        occluder[:, w // 2 - 30 : w // 2 + 30] = True
        frame[full] = (200, 40, 40)
        frame[occluder] = (40, 40, 200)
        Image.fromarray(frame).save(frames / f"frame_{t:05d}.jpg", quality=90)
        Image.fromarray(((full & ~occluder) * 255).astype(np.uint8)).save(masks / f"frame_{t:05d}.png")
    return frames, masks


def _child(num_frames: int, model: str, steps: int) -> None:
    from amodal.segmentation.pipeline import SegmentationConfig
    from amodal.apps.segment import SegmentRunConfig, segment_video

    with tempfile.TemporaryDirectory() as tmp:
        frames, masks = write_test_video(Path(tmp), num_frames)
        start = time.perf_counter()
        segment_video(
            SegmentRunConfig(
                frames=str(frames), masks=str(masks), out=str(Path(tmp) / "out"), model=model,
                pipeline=SegmentationConfig(steps=steps, progress=False),
            )
        )
        seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
    print(json.dumps({"frames": num_frames, "peak_rss_mb": round(peak_mb, 1), "seconds": round(seconds, 2)}))


def measure_stream_memory(model: str = "default", lengths=(25, 1000), steps: int = 1) -> list[dict]:
    """Run ``amodal segment`` on generated 640x360 videos of each length; one dict per length.

    ``steps`` does not change memory (one step at a time is held), only time;
    the default of 1 keeps a 1,000-frame run to minutes on a CPU.
    """
    results = []
    for n in lengths:
        code = f"from amodal.apps.stream_bench import _child; _child({int(n)}, {model!r}, {int(steps)})"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"memory benchmark at {n} frames failed:\n{done.stderr[-2000:]}")
        results.append(json.loads(done.stdout.strip().splitlines()[-1]))
    base = results[0]["peak_rss_mb"]
    for r in results:
        r["ratio_to_first"] = round(r["peak_rss_mb"] / base, 3)
    return results
