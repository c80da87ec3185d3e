"""Fine-tuning the svd backbone (both stages) on tiny random official-layout and SVD image-to-video folders.

The start folders are built in code (``tiny.build_official_checkpoint``, ``tiny.build_svd_folder``);
``AMODAL_OFFICIAL_FIXTURE`` swaps in another official-layout fixture for the official start.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from amodal.cli import main
from amodal.errors import InputError
from amodal.checkpoints.official.model import load_official_model
from amodal.checkpoints.safetensors import read_safetensors
from amodal.training.svd import (
    SVDTrainConfig,
    build_trainee,
    is_trainable,
    open_batches,
    read_start,
    sampling_model,
    stage_videos,
    svd_loss,
    train_svd,
)

from tiny import build_svd_folder

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def svd_start(tmp_path_factory) -> Path:
    return build_svd_folder(tmp_path_factory.mktemp("svd") / "svd-img2vid")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("svd_world")
    synth = root / "synth.json"
    synth.write_text(json.dumps({"height": 32, "width": 64, "num_frames": 8, "max_march_steps": 16}))
    return {"synth": str(synth), "cache": str(root / "cache")}


def config_values(start, world, stage="segmentation", **changes) -> dict:
    data = {"train_clips": 2, "val_clips": 2, "synth_config": world["synth"], "cache_dir": world["cache"], "val_windows": 2}
    values = {
        "backbone": "svd", "stage": stage, "start_from": str(start), "num_frames": 4, "height": 16, "width": 32,
        "data": {**data, "occluded_share": 1.0}, "completion_data": data, "steps": 4, "warmup_steps": 1, "log_every": 1,
        "checkpoint_every": 2, "validate_every": 0, "val_steps": 1, "lr": 1e-3, "ema_decay": 0.5,
    }
    values.update(changes)
    return values


def make_config(*args, **changes) -> SVDTrainConfig:
    return SVDTrainConfig.from_dict(config_values(*args, **changes))


def unet_weights(folder: Path) -> dict[str, torch.Tensor]:
    return read_safetensors([folder / "unet" / "diffusion_pytorch_model.safetensors"])


def test_svd_start_widens_conv_in_with_zero_depth_channels(svd_start, world):
    config = make_config(svd_start, world)
    _, weights, leftover = read_start(svd_start, config)
    wide, old = weights["unet.conv_in.weight"], leftover["conv_in.weight"]
    assert wide.shape[1] == 12 and old.shape[1] == 8
    assert torch.equal(wide[:, :8], old) and not wide[:, 8:].any()
    assert torch.equal(weights["unet.conv_in.bias"], leftover["conv_in.bias"])
    # The zero-conv: condition 2 cannot change the output of the freshly widened U-Net.
    trainee, _ = build_trainee(config)
    g = torch.Generator().manual_seed(0)
    x, lat = torch.randn(1, 4, 4, 8, 16, generator=g), torch.randn(1, 4, 8, 8, 16, generator=g)
    context, ids = torch.randn(1, 4, 1, 32, generator=g), torch.tensor([[7.0, 127.0, 0.02]])
    other = lat.clone()
    other[:, :, 4:] = torch.randn(other[:, :, 4:].shape, generator=g)
    with torch.no_grad():
        a = trainee(x, torch.tensor([1.0]), lat, context, ids)
        b = trainee(x, torch.tensor([1.0]), other, context, ids)
    assert torch.equal(a, b)


def test_trainable_set_follows_the_reference_names():
    ref = ("temporal_transformer_block", "conv_in2")
    assert is_trainable("conv_in.weight", ref)  # the svd backbone's conv_in is the official conv_in2
    assert is_trainable("down_blocks.0.attentions.0.temporal_transformer_blocks.0.attn1.to_q.weight", ref)
    assert not is_trainable("down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight", ref)
    assert not is_trainable("conv_out.weight", ref)
    assert is_trainable("conv_out.weight", ("*",))


@pytest.mark.parametrize("stage", ["segmentation", "completion"])
def test_fine_tuning_lowers_the_loss_on_a_fixed_batch(official_checkpoint, world, stage):
    config = make_config(official_checkpoint, world, stage)
    trainee, _ = build_trainee(config)
    batches, _ = open_batches(config, Path(world["cache"]), progress=False)
    batch = batches(0, 0, 2)

    def loss() -> float:
        with torch.no_grad():
            return float(svd_loss(trainee, batch, config, torch.Generator().manual_seed(5), sigma=torch.tensor([1.0, 3.0])))

    before = loss()
    params = [p for p in trainee.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=2e-3)
    for step in range(12):
        opt.zero_grad()
        svd_loss(trainee, batch, config, torch.Generator().manual_seed(5), sigma=torch.tensor([1.0, 3.0])).backward()
        opt.step()
    assert loss() < 0.9 * before


@pytest.fixture(scope="module")
def trained(official_checkpoint, world, tmp_path_factory) -> dict:
    """A 4-step run from the official tiny checkpoint (the default encoder cache, "exact", in memory), the same
    run stopped at step 2 and resumed (with an empty cache), and the same run with no cache."""
    out = tmp_path_factory.mktemp("svd_runs")
    config = make_config(official_checkpoint, world)
    assert config.encoder_cache == "exact"
    straight = train_svd(config, out / "straight", progress=False)
    train_svd(config, out / "resumed", stop_at=2, progress=False)
    resumed = train_svd(config, out / "resumed", progress=False)
    uncached = train_svd(make_config(official_checkpoint, world, encoder_cache="off"), out / "uncached", progress=False)
    return {"config": config, "straight": straight, "resumed": resumed, "uncached": uncached}


def test_only_the_named_modules_change(trained, official_checkpoint):
    before = {k.replace("conv_in2", "conv_in2"): v for k, v in unet_weights(official_checkpoint).items()}
    after = unet_weights(trained["straight"].model_dir)
    assert set(after) == set(before)  # conv_in2 and the leftover conv_in, as the official layout has
    changed = {k for k in before if not torch.equal(before[k], after[k])}
    assert changed and "conv_in2.weight" in changed
    assert all("temporal_transformer_block" in k or k.startswith("conv_in2.") for k in changed), sorted(changed)[:5]
    assert torch.equal(before["conv_in.weight"], after["conv_in.weight"])  # the unused leftover stays as it was
    for component in ("vae", "image_encoder"):
        assert (trained["straight"].model_dir / component).is_dir()


def test_resume_is_exact(trained):
    a = read_safetensors(trained["straight"].out_dir / "checkpoints" / "step_00000004" / "model.safetensors")
    b = read_safetensors(trained["resumed"].out_dir / "checkpoints" / "step_00000004" / "model.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert unet_weights(trained["straight"].model_dir).keys() == unet_weights(trained["resumed"].model_dir).keys()


def checkpoint_weights(result, step: int = 4) -> dict[str, torch.Tensor]:
    return read_safetensors(result.out_dir / "checkpoints" / f"step_{step:08d}" / "model.safetensors")


def logged_losses(result) -> list[float]:
    lines = (result.out_dir / "log.jsonl").read_text().splitlines()
    return [r["loss"] for r in map(json.loads, lines) if "loss" in r]


def test_exact_encoder_cache_trains_as_the_uncached_run(trained):
    cached, uncached = checkpoint_weights(trained["straight"]), checkpoint_weights(trained["uncached"])
    assert logged_losses(trained["straight"]) == pytest.approx(logged_losses(trained["uncached"]), rel=1e-5)
    assert cached.keys() == uncached.keys()
    # AdamW turns float rounding in near-zero gradients into lr-sized steps, so the weights are compared
    # against what training changed: they differ by about 0.1% of the 4 steps' update.
    start = build_trainee(trained["config"])[0].backbone.state_dict()
    gap = sum(float(((cached[k] - uncached[k]) ** 2).sum()) for k in cached) ** 0.5
    update = sum(float(((cached[k] - start[k]) ** 2).sum()) for k in cached) ** 0.5
    assert update > 0 and gap < 1e-2 * update


class EncodeCounter:
    """Counts the frames run through the frozen VAE's encoder and CLIP (patched onto their classes)."""

    def __init__(self, monkeypatch):
        from diffusers import AutoencoderKLTemporalDecoder
        from transformers import CLIPVisionModelWithProjection

        self.vae = self.clip = 0
        encode, forward = AutoencoderKLTemporalDecoder.encode, CLIPVisionModelWithProjection.forward

        def counted_encode(vae, x, *args, **kwargs):
            self.vae += x.shape[0]
            return encode(vae, x, *args, **kwargs)

        def counted_forward(encoder, *args, pixel_values=None, **kwargs):
            self.clip += pixel_values.shape[0]
            return forward(encoder, *args, pixel_values=pixel_values, **kwargs)

        monkeypatch.setattr(AutoencoderKLTemporalDecoder, "encode", counted_encode)
        monkeypatch.setattr(CLIPVisionModelWithProjection, "forward", counted_forward)


@pytest.mark.parametrize("stage", ["segmentation", "completion"])
def test_encoder_cache_gives_the_same_losses_with_fewer_encodes(official_checkpoint, world, stage, monkeypatch):
    from amodal.training.svd import build_encoder_cache

    config = make_config(official_checkpoint, world, stage)
    trainee, _ = build_trainee(config)
    batches, _ = open_batches(config, Path(world["cache"]), progress=False)
    cache = build_encoder_cache(trainee, config)
    counts, losses = [], []
    for use in (None, cache):
        counter = EncodeCounter(monkeypatch)
        with torch.no_grad():
            losses.append([float(svd_loss(trainee, batches(s, 0, 2), config, torch.Generator().manual_seed(s), cache=use))
                           for s in range(8)])
        counts.append((counter.vae, counter.clip))
    assert losses[1] == pytest.approx(losses[0], rel=1e-5)
    (vae_off, clip_off), (vae_on, clip_on) = counts
    assert clip_on < clip_off and vae_on < vae_off
    assert cache.summary()["hits"]["vae"] > 0 and cache.summary()["hits"]["clip"] > 0
    # Each frame is encoded alone, so what is cached does not depend on the rest of the batch.
    target = stage_videos(batches(0, 0, 1), config)[2].flatten(0, 1)
    mean, _ = build_encoder_cache(trainee, config).vae_moments(target, "cpu")
    alone, _ = build_encoder_cache(trainee, config).vae_moments(target[1:2], "cpu")
    assert torch.equal(mean[1:2], alone)


def test_resume_with_the_encoder_cache_on_disk_is_exact(trained, tmp_path, monkeypatch):
    import amodal.training.svd as svd

    built = []
    original = svd.build_encoder_cache

    def recording(*args, **kwargs):
        cache = original(*args, **kwargs)
        built.append((cache, len(cache.entries)))
        return cache

    monkeypatch.setattr(svd, "build_encoder_cache", recording)
    config = dataclasses.replace(trained["config"], encoder_cache_disk=True)
    train_svd(config, tmp_path / "run", stop_at=2, progress=False)
    parts = list((tmp_path / "run" / "encoder-cache").glob("*/part-*.safetensors"))
    assert parts and built[0][1] == 0
    resumed = train_svd(config, tmp_path / "run", progress=False)
    assert built[1][1] == len(built[0][0].entries)  # the resumed run starts with what the first part cached
    a, b = checkpoint_weights(trained["straight"]), checkpoint_weights(resumed)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_latent_noise_mode_trains_without_encoding_the_conditions(official_checkpoint, world, tmp_path, monkeypatch):
    """The approximation (docs/training-svd.md): after the first sight of a frame no encoder runs in a training step."""
    exact = EncodeCounter(monkeypatch)
    train_svd(make_config(official_checkpoint, world, steps=3, checkpoint_every=3), tmp_path / "exact", progress=False)
    approx = EncodeCounter(monkeypatch)
    result = train_svd(make_config(official_checkpoint, world, steps=3, checkpoint_every=3, encoder_cache="latent-noise"),
                       tmp_path / "approx", progress=False)
    losses = logged_losses(result)
    assert len(losses) == 3 and all(0 < x < float("inf") for x in losses)
    assert approx.vae < exact.vae


def test_export_reloads_and_reproduces_the_trained_model(trained):
    from amodal.checkpoints.official.config import GenerationConfig

    config = trained["config"]
    trainee, _ = build_trainee(config)
    ema = read_safetensors(trained["straight"].out_dir / "checkpoints" / "step_00000004" / "ema.safetensors")
    params = dict(trainee.backbone.named_parameters())
    with torch.no_grad():
        for k, v in ema.items():
            params[k].copy_(v)
    exported = load_official_model(trained["straight"].model_dir)
    assert (exported.config.num_frames, exported.config.height, exported.config.width) == (4, 16, 32)
    g = torch.Generator().manual_seed(0)
    c1, c2 = torch.rand(1, 4, 3, 16, 32, generator=g) * 2 - 1, torch.rand(1, 4, 3, 16, 32, generator=g) * 2 - 1
    noise = torch.randn(1, 4, 4, 8, 16, generator=g)
    settings = GenerationConfig(steps=2, noise_aug_strength=0.0, decode_chunk_size=4)
    want = sampling_model(trainee).generate(c1, c2, settings, noise=noise, progress=False)
    got = exported.generate(c1, c2, settings, noise=noise, progress=False)
    assert torch.allclose(got, want, atol=1e-6)


def test_mask_only_stage_keeps_the_depth_channels_at_zero(svd_start, world, tmp_path):
    config = make_config(svd_start, world, use_depth=False, steps=2)
    result = train_svd(config, tmp_path / "mask-only", progress=False)
    conv = unet_weights(result.model_dir)["conv_in2.weight"]
    assert not conv[:, 8:].any() and conv[:, :8].any()
    # The recipe's second stage starts from that export, now with depth.
    second = make_config(result.model_dir, world, steps=2)
    result2 = train_svd(second, tmp_path / "with-depth", progress=False)
    assert unet_weights(result2.model_dir)["conv_in2.weight"][:, 8:].any()


def test_gradient_accumulation_runs_and_logs_one_loss_per_step(official_checkpoint, world, tmp_path):
    a = train_svd(make_config(official_checkpoint, world, steps=2), tmp_path / "a", progress=False)
    b = train_svd(make_config(official_checkpoint, world, steps=1, grad_accumulation=2, batch_size=1), tmp_path / "b",
                  progress=False)
    assert a.model_dir.is_dir() and b.model_dir.is_dir()
    log = [json.loads(line) for line in (tmp_path / "b" / "log.jsonl").read_text().splitlines()]
    assert log[0]["step"] == 1 and log[0]["loss"] > 0


def test_gradient_checkpointing_gives_the_same_loss_and_gradients(official_checkpoint, world):
    grads = []
    for checkpointing in (False, True):
        config = make_config(official_checkpoint, world, gradient_checkpointing=checkpointing)
        trainee, _ = build_trainee(config)
        batch = open_batches(config, Path(world["cache"]), progress=False)[0](0, 0, 1)
        loss = svd_loss(trainee, batch, config, torch.Generator().manual_seed(1))
        loss.backward()
        grads.append((float(loss.detach()), trainee.backbone.unet.conv_in.weight.grad.clone()))
    assert grads[0][0] == pytest.approx(grads[1][0], rel=1e-6)
    assert torch.allclose(grads[0][1], grads[1][1], atol=1e-6)


def test_cli_trains_exports_and_checks(svd_start, world, tmp_path, capsys):
    config = tmp_path / "svd.json"
    config.write_text(json.dumps(config_values(svd_start, world, "completion", steps=2)))
    assert main(["train", "completion", "--config", str(config), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert main(["train", "export", str(tmp_path / "run"), "--out", str(tmp_path / "export")]) == 0
    from amodal.checkpoints.registry import resolve

    assert resolve(tmp_path / "export", "completion").stage == "completion"
    capsys.readouterr()
    assert main(["train", "segmentation", "--config", str(config), "--out", str(tmp_path / "run2")]) != 0
    assert "an svd completion config; run `amodal train completion`" in capsys.readouterr().err
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(config_values(tmp_path / "nowhere", world)))
    assert main(["train", "segmentation", "--config", str(bad), "--out", str(tmp_path / "run3")]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no model_index.json" in err[0]
    with pytest.raises(InputError, match="trainable"):
        make_config(svd_start, world, trainable=[])
