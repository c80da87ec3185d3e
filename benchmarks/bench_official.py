"""Cost of the official Diffusion-VAS architecture on this machine, and the embedding-order quirk's effect.

    python benchmarks/bench_official.py step --height 128 --width 256   # one denoising step, full-size SVD 1.1 U-Net
    python benchmarks/bench_official.py step --height 256 --width 512   # the reference's resolution (heavy)
    python benchmarks/bench_official.py quirk                           # parity and quirk effect on the test vectors

``step`` builds the Stable Video Diffusion 1.1 U-Net (with the official 12
input channels) from :class:`amodal.backbones.svd.UNetConfig`'s defaults, fills
it with random weights (no download; speed does not depend on the values),
and times one forward pass of one 25-frame video at the given pixel size
(latents are 8 times smaller) after one untimed warm-up pass (``--no-warmup``
times the first pass: at 256x512 one pass takes minutes here, and at 128x256
the warm-up pass was no faster than the timed one). A sampled clip
costs ``steps x 2`` such passes with guidance (the unconditional branch doubles
the batch), which the output extrapolates, leaving out the VAE and CLIP (a few
percent of the U-Net's work). Peak memory is the process's maximum resident
set size, weights included. Run one size per process: the peak is per process.

``quirk`` runs the reference test vectors (``AMODAL_OFFICIAL_FIXTURE`` or
``<AMODAL_SHARED>/fixtures/official_tiny``): the parity error at each guidance
scale with ``embedding_order="reference"``, and how far ``"corrected"`` moves
the guided result.

Prints one JSON object.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import sys
import time
from pathlib import Path

import numpy as np

from common import make_parser, print_json, shared_dir


def peak_rss_gib() -> float:
    # ru_maxrss is in KiB on Linux.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def bench_step(height: int, width: int, frames: int, steps: int, warmup: bool = True) -> dict:
    import torch
    from accelerate import init_empty_weights

    from amodal.checkpoints.official import adapter
    from amodal.backbones.svd import SVDBackbone, UNetConfig, build_unet

    config = UNetConfig()
    start = time.perf_counter()
    with init_empty_weights():
        unet = build_unet(config)
    unet.to_empty(device="cpu")
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in unet.parameters():
            p.normal_(0, 0.02, generator=generator)
    backbone = SVDBackbone(unet).eval()
    build_s = time.perf_counter() - start
    params = sum(p.numel() for p in unet.parameters())

    latent = (1, frames, 4, height // 8, width // 8)
    x = torch.randn(latent, generator=generator)
    cond = torch.randn(1, frames, 8, height // 8, width // 8, generator=generator)
    context = torch.randn(1, frames, 1, config.cross_attention_dim, generator=generator)
    ids = adapter.added_time_ids(8, 127, 0.02, 1)
    c_noise = torch.tensor([0.25 * np.log(10.0)], dtype=torch.float32)
    with torch.no_grad():
        warm_s = None
        if warmup:
            warm = time.perf_counter()
            backbone(x, c_noise, cond_latents=cond, context=context, added_time_ids=ids)
            warm_s = round(time.perf_counter() - warm, 2)
        timed = time.perf_counter()
        backbone(x, c_noise, cond_latents=cond, context=context, added_time_ids=ids)
        step_s = time.perf_counter() - timed
    clip_s = step_s * steps * 2
    return {
        "what": "one U-Net forward pass, full-size SVD 1.1 architecture, random float32 weights, CPU",
        "pixels": [height, width],
        "latents": [height // 8, width // 8],
        "frames": frames,
        "unet_parameters": params,
        "build_s": round(build_s, 1),
        "warmup_pass_s": warm_s,
        "pass_s": round(step_s, 2),
        "peak_rss_gib": round(peak_rss_gib(), 2),
        "extrapolated": {
            "passes_per_clip": steps * 2,
            "unet_s_per_clip": round(clip_s, 1),
            "unet_s_per_frame": round(clip_s / frames, 2),
        },
        "torch_threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "torch": torch.__version__,
    }


def binarise(frames: np.ndarray) -> np.ndarray:
    """The reference's mask rule on ``(T, H, W, 3)`` frames in ``[0, 1]``."""
    return (frames * 255).round().sum(-1) > 600


def bench_quirk() -> dict:
    import torch

    from amodal.checkpoints.official.config import GenerationConfig
    from amodal.checkpoints.official.model import load_official_model

    fixture = Path(os.environ.get("AMODAL_OFFICIAL_FIXTURE", shared_dir() / "fixtures" / "official_tiny"))
    meta = json.loads((fixture / "meta.json").read_text())
    inputs = {k: torch.from_numpy(v) for k, v in np.load(fixture / "inputs.npz").items()}
    expected = dict(np.load(fixture / "expected.npz"))
    model = load_official_model(fixture / "checkpoint")

    def run(guidance: float, order: str) -> np.ndarray:
        settings = GenerationConfig(
            steps=meta["num_inference_steps"],
            min_guidance=guidance,
            max_guidance=guidance,
            fps=meta["fps"],
            motion_bucket_id=meta["motion_bucket_id"],
            noise_aug_strength=meta["noise_aug_strength"],
            decode_chunk_size=4,  # how the test vectors were decoded (see tests/test_official.py)
            embedding_order=order,
        )
        frames = model.generate(inputs["modal"], inputs["depth"], settings, noise=inputs["latents"], progress=False)
        return frames[0].numpy()

    result = {"fixture": str(fixture)}
    outputs = {}
    for guidance in meta["guidance_scales"]:
        for order in ("reference", "corrected"):
            outputs[guidance, order] = run(guidance, order)
            error = np.abs(outputs[guidance, order] - expected[f"frames_guidance_{guidance}"])
            result[f"guidance_{guidance}_{order}_max_abs_error"] = float(error.max())
    guided = max(meta["guidance_scales"])
    diff = np.abs(outputs[guided, "reference"] - outputs[guided, "corrected"])
    result[f"guidance_{guided}_reference_vs_corrected"] = {
        "max_abs": float(diff.max()),
        "mean_abs": float(diff.mean()),
        # Fraction of pixels whose binarised mask (3-channel sum of 0..255 values > 600) flips.
        "mask_flip_fraction": float((binarise(outputs[guided, "reference"]) != binarise(outputs[guided, "corrected"])).mean()),
    }
    return result


def build_parser():
    parser = make_parser(__doc__)
    sub = parser.add_subparsers(dest="mode", required=True)
    step = sub.add_parser("step", help="time one full-size U-Net pass")
    step.add_argument("--height", type=int, default=128, help="pixel height of the video (latents: 1/8)")
    step.add_argument("--width", type=int, default=256, help="pixel width of the video (latents: 1/8)")
    step.add_argument("--frames", type=int, default=25, help="frames of the video")
    step.add_argument("--steps", type=int, default=25, help="steps per clip for the extrapolation")
    step.add_argument("--no-warmup", action="store_true", help="time the first pass (for sizes where one pass takes minutes)")
    sub.add_parser("quirk", help="parity errors and the embedding-order effect on the test vectors")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.mode == "step":
        result = bench_step(args.height, args.width, args.frames, args.steps, warmup=not args.no_warmup)
    else:
        result = bench_quirk()
    print_json(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
