"""Diffusion segmenter and regression twin: the AmodalSegmenter contract, CFG, save/load, registry."""

import dataclasses
import json

import pytest
import torch

from amodal.diffusion import SAMPLERS
from amodal.errors import CheckpointError, InputError
from amodal.segmentation.protocol import AmodalSegmenter
from amodal.checkpoints.registry import load_segmenter
from amodal.checkpoints.surgery import diffusion_from_regression
from amodal.segmentation.model import (
    DiffusionSegmenter,
    RegressionSegmenter,
    SegmenterConfig,
    build_condition,
    build_segmenter,
    load_segmenter_folder,
    null_condition,
)

from tiny import TINY_BACKBONE, randomize

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny(objective="diffusion", seed=0):
    torch.manual_seed(seed)
    config = SegmenterConfig(objective=objective, backbone=TINY_BACKBONE, num_frames=4, height=16, width=32)
    return randomize(build_segmenter(config).eval(), seed)


def window(b=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    modal = (torch.rand(b, 4, 16, 32, generator=g) > 0.6).float()
    depth = torch.rand(b, 4, 16, 32, generator=g) * 2 - 1
    return modal, depth


def gen(seed):
    return torch.Generator().manual_seed(seed)


def test_implements_the_protocol():
    for objective in ("diffusion", "regression"):
        model = tiny(objective)
        assert isinstance(model, AmodalSegmenter)
        assert (model.num_frames, model.height, model.width, model.threshold) == (4, 16, 32, 0.5)
        assert model.uses_depth


def test_sample_shape_range_and_determinism():
    model = tiny()
    modal, depth = window()
    a = model.sample(modal, depth, steps=2, guidance=1.5, generator=gen(0))
    b = model.sample(modal, depth, steps=2, guidance=1.5, generator=gen(0))
    c = model.sample(modal, depth, steps=2, guidance=1.5, generator=gen(1))
    assert a.shape == (2, 4, 16, 32) and a.dtype == torch.float32
    assert a.min() >= 0 and a.max() <= 1
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)


def test_mask_only_and_depth_paths_differ():
    model = tiny()
    modal, depth = window()
    with_depth = model.sample(modal, depth, steps=2, guidance=1.0, generator=gen(0))
    mask_only = model.sample(modal, None, steps=2, guidance=1.0, generator=gen(0))
    assert mask_only.shape == with_depth.shape
    assert not torch.allclose(with_depth, mask_only)


def test_condition_channels():
    modal, depth = window()
    cond = build_condition(modal, depth)
    assert cond.shape == (2, 4, 3, 16, 32)
    assert set(cond[:, :, 0].unique().tolist()) <= {-1.0, 1.0}
    torch.testing.assert_close(cond[:, :, 1], depth)
    assert bool((cond[:, :, 2] == 1).all())
    no_depth = build_condition(modal, None)
    assert bool((no_depth[:, :, 1:] == 0).all())
    assert bool((null_condition(cond) == 0).all())


def conditional_only(model, modal, depth, steps, seed):
    """Sample with the conditional denoiser alone (no CFG wrapper), as the reference for scale 1."""
    cond = build_condition(modal, depth)
    sigmas = model.sigmas(steps)
    x = torch.randn((modal.shape[0], 4, 1, 16, 32), generator=gen(seed)) * sigmas[0]
    x0 = SAMPLERS["euler"](lambda x, s: model.denoiser(x, s, cond=cond), x, sigmas)
    return ((x0[:, :, 0] + 1) / 2).clamp(0, 1)


def test_cfg_scale_one_equals_the_conditional_output():
    model = tiny()
    modal, depth = window()
    reference = conditional_only(model, modal, depth, steps=2, seed=5)
    scalar = model.sample(modal, depth, steps=2, guidance=1.0, generator=gen(5))
    torch.testing.assert_close(scalar, reference)
    # A per-frame scale of ones goes through the batched (uncond, cond) path and must agree too.
    per_frame = model.sample(modal, depth, steps=2, guidance=torch.ones(4), generator=gen(5))
    torch.testing.assert_close(per_frame, reference, atol=1e-5, rtol=1e-5)
    guided = model.sample(modal, depth, steps=2, guidance=3.0, generator=gen(5))
    assert not torch.allclose(guided, reference, atol=1e-4)


def test_top_k_samples_are_distinct_and_batched():
    model = tiny()
    modal, depth = window(b=1)
    out = model.samples(modal, depth, 3, steps=2, guidance=1.5, generator=gen(0))
    assert out.shape == (1, 3, 4, 16, 32)
    assert not torch.allclose(out[0, 0], out[0, 1])


def test_samplers_and_bad_inputs():
    model = tiny()
    modal, depth = window()
    for name in SAMPLERS:
        assert model.sample(modal, depth, steps=2, generator=gen(0), sampler=name).shape == (2, 4, 16, 32)
    with pytest.raises(InputError, match="unknown sampler"):
        model.sample(modal, depth, steps=2, sampler="ddim")
    with pytest.raises(InputError, match="native size is 16x32"):
        model.sample(modal[..., :16], None, steps=2)
    with pytest.raises(InputError, match="depth shape"):
        model.sample(modal, depth[:1], steps=2)


def test_regression_twin_one_step_copies():
    model = tiny("regression")
    modal, depth = window()
    a = model.samples(modal, depth, 3, steps=25, guidance=1.5, generator=gen(0))
    b = model.sample(modal, depth, steps=1, guidance=7.0, generator=gen(9))
    assert a.shape == (2, 3, 4, 16, 32)
    torch.testing.assert_close(a[:, 0], a[:, 2], rtol=0, atol=0)
    torch.testing.assert_close(a[:, 0], b, rtol=0, atol=0)  # steps, guidance and noise are ignored
    assert a.min() >= 0 and a.max() <= 1
    assert not torch.allclose(b, model.sample(modal, None, steps=1))


def test_save_load_round_trip(tmp_path):
    for objective in ("diffusion", "regression"):
        model = tiny(objective)
        model.save_pretrained(tmp_path / objective)
        assert sorted(p.name for p in (tmp_path / objective).iterdir()) == ["config.json", "model.safetensors"]
        loaded = load_segmenter(tmp_path / objective)
        assert type(loaded) is type(model) and loaded.config == model.config
        modal, depth = window()
        torch.testing.assert_close(
            loaded.sample(modal, depth, steps=2, generator=gen(0)), model.sample(modal, depth, steps=2, generator=gen(0))
        )


def test_strict_load_lists_missing_and_unexpected_keys(tmp_path):
    from safetensors.torch import load_file, save_file

    tiny().save_pretrained(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(str(weights))
    del state["out.weight"]
    state["extra.bias"] = torch.zeros(3)
    save_file(state, str(weights))
    with pytest.raises(CheckpointError) as err:
        load_segmenter_folder(tmp_path / "m")
    assert "missing keys ['out.weight']" in str(err.value)
    assert "unexpected keys ['extra.bias']" in str(err.value)


def test_strict_config(tmp_path):
    tiny().save_pretrained(tmp_path / "m")
    path = tmp_path / "m" / "config.json"
    values = json.loads(path.read_text())
    values["backbone"]["widths"] = [1]
    path.write_text(json.dumps(values))
    with pytest.raises(CheckpointError, match="unknown keys \\['widths'\\]"):
        load_segmenter_folder(tmp_path / "m")
    values["backbone"].pop("widths")
    values["backbone"]["channels"] = [8, 32]  # shapes no longer match the weights
    path.write_text(json.dumps(values))
    with pytest.raises(CheckpointError, match="shape mismatches"):
        load_segmenter_folder(tmp_path / "m")


def test_registry_errors(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        load_segmenter(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a model folder"):
        load_segmenter(tmp_path / "empty")
    with pytest.raises(InputError, match="objective"):
        SegmenterConfig(objective="gan")
    with pytest.raises(InputError, match="multiples of 4"):
        SegmenterConfig(backbone=TINY_BACKBONE, height=18, width=32)


@pytest.mark.parametrize("name", ["default", "default-regression"])
def test_bundled_models_load(name):
    model = load_segmenter(name)
    assert isinstance(model, DiffusionSegmenter if name == "default" else RegressionSegmenter)
    assert (model.num_frames, model.height, model.width) == (16, 64, 128)
    modal = torch.zeros(1, 16, 64, 128)
    modal[:, :, 20:40, 30:60] = 1
    out = model.sample(modal, None, steps=1, guidance=1.0, generator=gen(0))
    assert out.shape == (1, 16, 64, 128)
    # A trained model keeps a fully visible box (nearly) as it is.
    pred = out > model.threshold
    iou = (pred & (modal > 0)).sum() / (pred | (modal > 0)).sum()
    assert iou > 0.8


def tiny_logit(self_condition=True, seed=0):
    backbone = dataclasses.replace(TINY_BACKBONE, cond_channels=3 + int(self_condition))
    config = SegmenterConfig(
        backbone=backbone, num_frames=4, height=16, width=32, parameterization="logit", self_condition=self_condition
    )
    torch.manual_seed(seed)
    return randomize(build_segmenter(config).eval(), seed)


def test_logit_parameterisation_and_self_conditioning():
    model = tiny_logit()
    modal, depth = window()
    cond = build_condition(modal, depth)
    x = torch.randn(2, 4, 1, 16, 32, generator=gen(1))
    sigma = torch.full((2,), 3.0)
    with torch.no_grad():
        logits = model(x, sigma, cond, logits=True)
        torch.testing.assert_close(model(x, sigma, cond), torch.tanh(logits / 2))
        # The estimate fed back changes the output; none is the same as zeros (the first step).
        assert not torch.allclose(model(x, sigma, cond, torch.ones_like(x)), model(x, sigma, cond))
        torch.testing.assert_close(model(x, sigma, cond, torch.zeros_like(x)), model(x, sigma, cond))
    a = model.sample(modal, depth, steps=3, generator=gen(0))
    torch.testing.assert_close(a, model.sample(modal, depth, steps=3, generator=gen(0)), rtol=0, atol=0)
    assert a.min() >= 0 and a.max() <= 1
    # One step from sigma_max has no previous estimate: the conditional model with zeros, guidance 1.
    one = model.sample(modal, depth, steps=1, guidance=1.0, generator=gen(3))
    x = torch.randn((2, 4, 1, 16, 32), generator=gen(3)) * model.config.sigma_max
    with torch.no_grad():
        torch.testing.assert_close(one, ((model(x, torch.full((2,), model.config.sigma_max), cond)[:, :, 0] + 1) / 2).clamp(0, 1))
    with pytest.raises(InputError, match="self-conditioning"):
        tiny()(x, sigma, cond, torch.zeros_like(x))
    with pytest.raises(InputError, match="'logit'"):
        tiny()(x, sigma, cond, logits=True)


def test_regression_twin_starts_a_logit_diffusion_model_as_itself():
    """diffusion_from_regression: at infinite noise the new model gets the twin's inputs and returns its answer."""
    regression = tiny("regression", seed=2)
    diffusion = tiny_logit(seed=3)
    state = diffusion_from_regression(regression.backbone.state_dict(), regression.config.backbone, diffusion.config.backbone)
    diffusion.backbone.load_state_dict(state)
    modal, depth = window()
    cond = build_condition(modal, depth)
    with torch.no_grad():
        expected = 2 * torch.sigmoid(regression.logits(cond)) - 1
        for seed in (0, 1):  # any noisy input, any previous estimate (its new channel starts at zero)
            x = torch.randn(2, 4, 1, 16, 32, generator=gen(seed)) * 5
            got = diffusion(x, torch.full((2,), 1e4), cond, torch.randn_like(x))[:, :, 0]  # (near) infinite noise
            torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        # At lower noise the noise-level input moves away from the twin's c_noise = 0, and training takes over.
        assert not torch.allclose(diffusion(x, torch.ones(2), cond)[:, :, 0], expected, atol=1e-3)


def test_parameterisation_config_checks():
    with pytest.raises(InputError, match="parameterization must be one of"):
        SegmenterConfig(backbone=TINY_BACKBONE, num_frames=4, height=16, width=32, parameterization="eps")
    with pytest.raises(InputError, match="diffusion objective only"):
        SegmenterConfig(objective="regression", backbone=TINY_BACKBONE, num_frames=4, height=16, width=32, self_condition=True)
    with pytest.raises(InputError, match="and self-conditioning"):
        SegmenterConfig(backbone=TINY_BACKBONE, num_frames=4, height=16, width=32, self_condition=True)
