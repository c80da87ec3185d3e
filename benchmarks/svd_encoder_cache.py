"""The encoder cache of ``svd`` fine-tuning (``encoder_cache``), measured: training-step time and the approximation.

One process trains the tiny official architecture (``gpu_check.TINY``, random weights) on the same
stream of stage-1 windows of a small synthetic world with ``encoder_cache`` ``"off"``, ``"exact"``
and ``"latent-noise"``, one trainee each; each step is a whole training step (encoders, U-Net
forward and backward, AdamW). Passes over the same ``--steps`` windows, the modes taking turns
step by step: ``cold`` (the first sight of most frames: the cache fills), then ``--warm-passes``
``warm`` ones (every frame seen before: the steady state a long run approaches once it has seen
its data). The table gives the median seconds per step, the speedup over ``"off"`` in the same
pass, the frames each encoder ran on, and the mean loss (``"exact"`` equals ``"off"`` up to float
rounding).

Then the ``"latent-noise"`` approximation on the conditions of the same windows, with
``sigma_c ~ logN(cond_aug_mean, cond_aug_std)`` per frame as in training:

- ``shift``: ``|mu(c + sigma_c n) - mu(c)| / |mu(c + sigma_c n)|``, how far the reference's
  pixel-space augmentation moves the condition latent;
- ``rel_diff``: ``|z_approx - z_ref| / |z_ref|`` for one draw of each (the noises are
  independent, so this is about sqrt(2) times ``shift`` when the two distributions agree);
- ``std_ratio``: per latent channel, the std of the approximation's shift over the reference's,
  on windows other than the ones the gain was measured on (1 = matched spread);
- ``lag1_corr``: the correlation of the reference's latent shift between horizontally neighbouring
  latent pixels (the approximation's white noise has 0).

The tiny networks are random and far from the real ones' balance (a tiny CLIP, where the real one
is a ViT-H/14), so ``--flops`` also counts the floating-point operations of one step of the real
architecture (default ``SVDConfig``, 25 x 128 x 256, batch 1) per mode, under a fake-tensor mode
(no weights, no memory): an estimate of the real speedup, not a measurement::

    python benchmarks/svd_encoder_cache.py --steps 8 --threads 2 --flops

"""

from __future__ import annotations

import dataclasses
import json
import tempfile
import time
from pathlib import Path

from common import Table, make_parser, print_json, set_threads, write_rows


def build_parser():
    parser = make_parser(__doc__, "threads", "json")
    parser.add_argument("--steps", type=int, default=8, help="training steps per mode and pass")
    parser.add_argument("--warm-passes", type=int, default=2, help="passes over the same windows after the first")
    parser.add_argument("--frames", type=int, default=8, help="frames per window")
    parser.add_argument("--size", type=int, nargs=2, default=[32, 64], metavar=("H", "W"), help="window size")
    parser.add_argument("--clips", type=int, default=2, help="training clips of the synthetic world")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--cache", default=None, help="window cache folder (default: a temporary one)")
    parser.add_argument("--flops", action="store_true", help="also count the real architecture's operations per mode")
    return parser


def real_flops(frames: int = 25, height: int = 128, width: int = 256) -> dict:
    """Floating-point operations of one training step of the real architecture (batch 1), per ``encoder_cache`` mode,
    with every frame already cached; counted under a fake-tensor mode (no weights are made)."""
    import torch
    from torch._subclasses.fake_tensor import FakeTensorMode
    from torch.utils.flop_counter import FlopCounterMode

    from gpu_check import networks

    from amodal.backbones.svd import SVDConfig, encode_mode, image_embeddings
    from amodal.checkpoints.official.config import OfficialConfig
    from amodal.training.svd import REFERENCE_TRAINABLE, SVDTrainee

    def count(fn) -> int:
        with FlopCounterMode(display=False) as counter:
            fn()
        return counter.get_total_flops()

    svd = SVDConfig()
    f = svd.vae.downsample
    with FakeTensorMode(allow_non_fake_inputs=True):
        nets = networks(svd, torch.device("cpu"))
        official = OfficialConfig(svd=svd, num_frames=frames, height=height, width=width)
        trainee = SVDTrainee(official, nets["unet"], nets["vae"], nets["image_encoder"], REFERENCE_TRAINABLE).train()
        with torch.no_grad():
            vae = count(lambda: encode_mode(trainee.vae, torch.zeros(1, 1, 3, height, width)))
            clip = count(lambda: image_embeddings(trainee.image_encoder, torch.zeros(1, 3, 224, 224)))

        def forward():
            z = torch.zeros(1, frames, 4, height // f, width // f)
            return trainee(z, torch.ones(1), torch.zeros(1, frames, 8, height // f, width // f),
                           torch.zeros(1, frames, 1, svd.image_encoder.projection_dim), torch.ones(1, 3))

        unet = count(lambda: forward().sum().backward())
        with torch.no_grad():
            unet_forward = count(forward)  # what gradient checkpointing adds, about
    encoders = {"off": frames * (3 * vae + clip), "exact": frames * 2 * vae, "latent-noise": 0}
    return {"geometry": [frames, height, width], "vae_encode_gflop_per_frame": vae / 1e9,
            "clip_gflop_per_frame": clip / 1e9, "unet_forward_tflop": unet_forward / 1e12,
            "unet_forward_backward_tflop": unet / 1e12,
            "tflop_per_step": {mode: (unet + e) / 1e12 for mode, e in encoders.items()},
            "speedup": {mode: (unet + encoders["off"]) / (unet + e) for mode, e in encoders.items()}}


def counting(method, counts: dict, key: str):
    """``method`` (the VAE's ``encode`` or CLIP's ``forward``), adding the frames it gets to ``counts[key]``."""
    def wrapped(*args, pixel_values=None, **kwargs):
        if key == "vae":
            counts[key] += args[0].shape[0]
            return method(*args, **kwargs)
        counts[key] += pixel_values.shape[0]
        return method(*args, pixel_values=pixel_values, **kwargs)

    return wrapped


def train_step(run: dict, batch, generator) -> float:
    """One training step of ``run`` (a trainee, its optimiser, config, cache and gain): the loss."""
    from amodal.training.svd import svd_loss

    loss = svd_loss(run["trainee"], batch, run["config"], generator, cache=run["cache"], latent_gain=run["gain"])
    loss.backward()
    run["opt"].step()
    run["opt"].zero_grad(set_to_none=True)
    return float(loss.detach())


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    import numpy as np
    import torch

    from gpu_check import TINY, networks

    from amodal.backbones.svd import encode_mode
    from amodal.checkpoints.official.config import OfficialConfig
    from amodal.training.svd import (REFERENCE_TRAINABLE, SVDTrainConfig, SVDTrainee, build_encoder_cache,
                                     condition_gains, open_batches, stage_videos)

    height, width = args.size
    work = Path(args.cache or tempfile.mkdtemp(prefix="svd-encoder-cache-"))
    synth = work / "synth.json"
    synth.write_text(json.dumps({"height": height, "width": width, "num_frames": 3 * args.frames, "max_march_steps": 16}))
    data = {"source": "generator", "train_clips": args.clips, "val_clips": 2, "synth_config": str(synth), "val_windows": 2}
    base = SVDTrainConfig(start_from="random", num_frames=args.frames, height=height, width=width,
                          batch_size=args.batch_size)
    base = SVDTrainConfig.from_dict({**json.loads(json.dumps(base.to_dict())), "data": {**base.to_dict()["data"], **data}})
    batches, val = open_batches(base, work, progress=False)
    official = OfficialConfig(svd=TINY, num_frames=args.frames, height=height, width=width)
    device = torch.device("cpu")

    runs = {}
    for mode in ("off", "exact", "latent-noise"):
        config = dataclasses.replace(base, encoder_cache=mode)
        nets = networks(TINY, device)
        trainee = SVDTrainee(official, nets["unet"], nets["vae"], nets["image_encoder"], REFERENCE_TRAINABLE).train()
        counts = {"vae": 0, "clip": 0}
        trainee.vae.encode = counting(trainee.vae.encode, counts, "vae")
        trainee.image_encoder.forward = counting(trainee.image_encoder.forward, counts, "clip")
        run = {
            "config": config, "trainee": trainee, "counts": counts, "cache": build_encoder_cache(trainee, config),
            "gain": condition_gains(trainee, val, config) if mode == "latent-noise" else None,
            "opt": torch.optim.AdamW([p for p in trainee.parameters() if p.requires_grad], lr=config.lr),
        }
        # Warm-up (kernels, allocator, optimiser state) on the validation windows, whose frames the training
        # windows do not share.
        train_step(run, val, torch.Generator().manual_seed(0))
        counts.update(vae=0, clip=0)
        runs[mode] = run

    rows = []
    table = Table([("pass", ""), ("encoder_cache", ""), ("median s/step", ".3f"), ("speedup", ".2f"), ("VAE frames", "d"),
                   ("CLIP frames", "d"), ("mean loss", ".6f")])
    for pass_name in ["cold"] + ["warm"] * args.warm_passes:
        before = {mode: dict(run["counts"]) for mode, run in runs.items()}
        seconds = {mode: [] for mode in runs}
        losses = {mode: [] for mode in runs}
        for step in range(args.steps):
            batch = batches(step, 0, args.batch_size)
            for mode, run in runs.items():  # the modes take turns step by step: a shared machine's load hits all alike
                tic = time.perf_counter()
                losses[mode].append(train_step(run, batch, torch.Generator().manual_seed(step)))
                seconds[mode].append(time.perf_counter() - tic)
        for mode, run in runs.items():
            row = {"pass": pass_name, "encoder_cache": mode, "sec_per_step": float(np.median(seconds[mode])),
                   "vae_frames": run["counts"]["vae"] - before[mode]["vae"],
                   "clip_frames": run["counts"]["clip"] - before[mode]["clip"], "mean_loss": float(np.mean(losses[mode]))}
            row["speedup"] = float(np.median(seconds["off"])) / row["sec_per_step"]
            rows.append(row)
            table.row(pass_name, mode, row["sec_per_step"], row["speedup"], row["vae_frames"], row["clip_frames"],
                      row["mean_loss"])

    # The approximation, on the conditions of the training windows (the gain from the validation windows).
    vae, gain = runs["latent-noise"]["trainee"].vae, runs["latent-noise"]["gain"]
    g = torch.Generator().manual_seed(1)
    stats = []
    with torch.no_grad():
        for which in (0, 1):
            c = torch.cat([stage_videos(batches(s, 0, 1), base)[which][0] for s in range(args.steps)])  # (N, 3, H, W)
            sigma = torch.exp(base.cond_aug_mean + base.cond_aug_std * torch.randn(len(c), generator=g)).reshape(-1, 1, 1, 1)
            clean = encode_mode(vae, c[None])[0]
            ref = encode_mode(vae, (c + sigma * torch.randn(c.shape, generator=g))[None])[0]
            approx = clean + gain[which].reshape(1, -1, 1, 1) * sigma * torch.randn(clean.shape, generator=g)
            shift_ref, shift_approx = ref - clean, approx - clean
            a, b = shift_ref[..., :-1].flatten(), shift_ref[..., 1:].flatten()
            stats.append({
                "condition": which + 1,
                "shift": float(shift_ref.norm() / ref.norm()),
                "rel_diff": float((approx - ref).norm() / ref.norm()),
                "std_ratio": [float(x) for x in shift_approx.transpose(0, 1).flatten(1).std(1)
                              / shift_ref.transpose(0, 1).flatten(1).std(1)],
                "lag1_corr": float(np.corrcoef(a.numpy(), b.numpy())[0, 1]),
            })
    result = {"device": str(device), "threads": torch.get_num_threads(), "geometry": [args.frames, height, width],
              "steps": args.steps, "rows": rows, "latent_noise": stats}
    if args.flops:
        result["real_architecture_flops"] = real_flops()
    print_json(result)
    write_rows(args.json, result, args)


if __name__ == "__main__":
    main()
