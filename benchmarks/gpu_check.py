"""The GPU path of the official architecture, measured: sampling and fine-tuning at full size with random weights.

Random weights of the real configuration (Stable Video Diffusion 1.1 with the 12-channel
input, the default ``SVDConfig``) cost the same per step as the released ones, so no weights
are needed. Two parts, each printed as one JSON line per measurement and gathered in ``--out``:

- ``sample``: seconds per frame and peak GPU memory of one stage (CLIP + VAE encode, 25
  guided Euler steps, VAE decode) at 256x512x25, in float16 and bfloat16, with and without
  CPU offload (the paper: about 0.95 s per frame in 8 GB on an RTX 3090);
- ``train``: one fine-tuning step (the reference's trainable set: temporal transformer blocks
  and conv_in2; mixed precision, AdamW) at 128x256x25, at each batch size that fits, with and
  without gradient checkpointing, with no encoder cache; then at batch size 1 in the first
  precision, with the ``"exact"`` and ``"latent-noise"`` encoder caches warm (the warm-up step
  filled them: the steady state of a long run), to set beside the uncached step.

``--tiny`` runs the same code on the tiny test architecture (any device, seconds): the check
that this script works before device time is spent on it.

    python benchmarks/gpu_check.py --device cuda --out gpu_check.json
    python benchmarks/gpu_check.py --tiny --device cpu --out /tmp/gpu_check.json
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

from amodal.backbones.svd import ImageEncoderConfig, SVDConfig, UNetConfig, VAEConfig
from amodal.checkpoints.official.config import GenerationConfig, OfficialConfig, RuntimeConfig

TINY = SVDConfig(
    unet=UNetConfig(block_out_channels=(32, 64), layers_per_block=1, num_attention_heads=(2, 4), cross_attention_dim=32,
                    addition_time_embed_dim=8, num_frames=8),
    vae=VAEConfig(block_out_channels=(32, 64), layers_per_block=1),
    image_encoder=ImageEncoderConfig(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                                     patch_size=14, image_size=224, projection_dim=32),
)


def networks(svd: SVDConfig, device: torch.device) -> dict:
    """The three networks with their libraries' random initialisation, made directly on ``device``
    (no CPU copy of two billion parameters)."""
    from amodal.backbones.svd import build_image_encoder, build_unet, build_vae

    torch.manual_seed(0)
    with torch.device(device):
        return {"unet": build_unet(svd.unet), "vae": build_vae(svd.vae), "image_encoder": build_image_encoder(svd.image_encoder)}


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats(device)


def _peak_gib(device: torch.device) -> float | None:
    if device.type != "cuda":
        return None
    torch.cuda.synchronize(device)
    return torch.cuda.max_memory_allocated(device) / 2**30


def measure_sampling(svd: SVDConfig, device: torch.device, dtype: str, offload: bool, size: tuple[int, int, int], steps: int) -> dict:
    from amodal.checkpoints.official.model import OfficialModel

    frames, height, width = size
    config = OfficialConfig(svd=svd, num_frames=frames, height=height, width=width)
    home = torch.device("cpu") if offload else device
    nets = networks(svd, home)
    _peak_reset(device)
    model = OfficialModel(config, nets["unet"], nets["vae"], nets["image_encoder"],
                          RuntimeConfig(device=str(device), dtype=dtype, offload=offload))
    g = torch.Generator().manual_seed(0)
    cond = torch.rand(1, frames, 3, height, width, generator=g) * 2 - 1
    settings = GenerationConfig(steps=steps)
    model.generate(cond, cond, GenerationConfig(steps=1), generator=g, progress=False)  # warm-up (kernels, allocator)
    _peak_reset(device)
    tic = time.perf_counter()
    out = model.generate(cond, cond, settings, generator=g, progress=False)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - tic
    record = {"part": "sample", "dtype": dtype, "offload": offload, "frames": frames, "height": height, "width": width,
              "steps": steps, "guidance": settings.max_guidance, "sec_per_frame": seconds / frames, "seconds": seconds,
              "peak_gib": _peak_gib(device), "finite": bool(torch.isfinite(out).all())}
    del model, nets
    return record


def measure_training(svd: SVDConfig, device: torch.device, precision: str, batch_size: int, checkpointing: bool,
                     size: tuple[int, int, int], cache: str = "off") -> dict:
    from amodal.training.data import Batch
    from amodal.training.svd import (REFERENCE_TRAINABLE, SVDTrainConfig, SVDTrainee, build_encoder_cache,
                                     condition_gains, svd_loss)

    frames, height, width = size
    official = OfficialConfig(svd=svd, num_frames=frames, height=height, width=width)
    nets = networks(svd, device)
    trainee = SVDTrainee(official, nets["unet"], nets["vae"], nets["image_encoder"], REFERENCE_TRAINABLE).train()
    if checkpointing:
        nets["unet"].enable_gradient_checkpointing()
    config = SVDTrainConfig(start_from="random", num_frames=frames, height=height, width=width, batch_size=batch_size,
                            mixed_precision=precision, gradient_checkpointing=checkpointing, encoder_cache=cache)
    g = torch.Generator().manual_seed(0)
    modal = (torch.rand(batch_size, frames, height, width, generator=g) > 0.5).float()
    batch = Batch(modal=modal, amodal=modal, depth=torch.rand(batch_size, frames, height, width, generator=g) * 2 - 1,
                  has_depth=torch.ones(batch_size, dtype=torch.bool))
    params = [p for p in trainee.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr)
    dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=precision == "fp16")

    encoder_cache = build_encoder_cache(trainee, config)
    gain = None
    if cache == "latent-noise":
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            gain = condition_gains(trainee, batch, config)

    def step() -> float:
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = svd_loss(trainee, batch, config, torch.Generator().manual_seed(1), cache=encoder_cache, latent_gain=gain)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()
        opt.zero_grad(set_to_none=True)
        return float(loss.detach())

    step()  # warm-up: optimizer state, kernels, and the encoder cache filled
    _peak_reset(device)
    tic = time.perf_counter()
    loss = step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    record = {"part": "train", "precision": precision, "batch_size": batch_size, "gradient_checkpointing": checkpointing,
              "encoder_cache": cache,
              "frames": frames, "height": height, "width": width, "sec_per_step": time.perf_counter() - tic,
              "peak_gib": _peak_gib(device), "loss": loss,
              "trainable_params": sum(p.numel() for p in params), "params": sum(p.numel() for p in trainee.backbone.parameters())}
    del trainee, nets, opt
    return record


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default="cuda", help="the device to measure (default: cuda)")
    parser.add_argument("--tiny", action="store_true", help="the tiny test architecture (a dry run of this script)")
    parser.add_argument("--only", choices=("sample", "train"), default=None, help="one part only (default: both)")
    parser.add_argument("--out", default=None, help="JSON file for all records")
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    device = torch.device(args.device)
    svd = TINY if args.tiny else SVDConfig()
    f = svd.vae.downsample
    sample_size = (8, 4 * f, 8 * f) if args.tiny else (25, 256, 512)
    train_size = (8, 4 * f, 8 * f) if args.tiny else (25, 128, 256)
    steps = 2 if args.tiny else 25
    records = []

    def emit(record):
        print(json.dumps(record), flush=True)
        records.append(record)

    def attempt(fn, **what):
        try:
            emit(fn())
            return True
        except torch.OutOfMemoryError:
            emit({**what, "error": "out of memory"})
            if device.type == "cuda":
                torch.cuda.empty_cache()
            return False

    if args.only in (None, "sample"):
        dtypes = ("float32",) if device.type == "cpu" else ("float16", "bfloat16")
        for dtype in dtypes:
            for offload in (False, True):
                if offload and device.type == "cpu":
                    continue
                attempt(lambda: measure_sampling(svd, device, dtype, offload, sample_size, steps),
                        part="sample", dtype=dtype, offload=offload)
    if args.only in (None, "train"):
        precisions = ("no",) if device.type == "cpu" else ("bf16", "fp16")
        for precision in precisions:
            for checkpointing in (False, True):
                for batch_size in (1, 2, 4, 8):
                    ok = attempt(lambda: measure_training(svd, device, precision, batch_size, checkpointing, train_size),
                                 part="train", precision=precision, batch_size=batch_size, gradient_checkpointing=checkpointing)
                    if not ok or args.tiny and batch_size >= 2:
                        break
        for cache in ("exact", "latent-noise"):  # beside the uncached batch-1 step of the first precision
            attempt(lambda: measure_training(svd, device, precisions[0], 1, False, train_size, cache),
                    part="train", precision=precisions[0], batch_size=1, gradient_checkpointing=False, encoder_cache=cache)
    if args.out:
        Path(args.out).write_text(json.dumps({"device": str(device), "tiny": args.tiny, "records": records}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
