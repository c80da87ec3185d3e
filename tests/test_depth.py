"""Depth Anything V2 from local files: a tiny random model saved by the test in both layouts.

The original-release layout is written by renaming transformers' keys to the
release's names with a table kept here, independent of the library's converter.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from amodal.depth import DepthConfig, estimate_depth, load_depth_model, normalize_depth
from amodal.errors import CheckpointError

from tiny import DEPTH_INPUT_SIZE, run_cli, tiny_depth_network

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = DepthConfig(input_size=DEPTH_INPUT_SIZE, normalize=True)


def to_original_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers names -> the Depth Anything V2 release's names (as its .pth files have them)."""
    out = {}
    for key, value in state.items():
        if key.startswith("backbone.encoder.layer."):
            i, rest = key[len("backbone.encoder.layer.") :].split(".", 1)
            block = f"pretrained.blocks.{i}."
            if rest.startswith("attention.q_proj."):
                kind = rest.rsplit(".", 1)[1]
                q = value
                k = state[f"backbone.encoder.layer.{i}.attention.k_proj.{kind}"]
                v = state[f"backbone.encoder.layer.{i}.attention.v_proj.{kind}"]
                out[block + f"attn.qkv.{kind}"] = torch.cat([q, k, v])
            elif rest.startswith(("attention.k_proj.", "attention.v_proj.", "mlp.up_proj.")):
                continue
            elif rest.startswith("mlp.gate_proj."):
                kind = rest.rsplit(".", 1)[1]
                up = state[f"backbone.encoder.layer.{i}.mlp.up_proj.{kind}"]
                out[block + f"mlp.w12.{kind}"] = torch.cat([value, up])
            else:
                rest = (
                    rest.replace("attention.o_proj", "attn.proj")
                    .replace("layer_scale1.lambda1", "ls1.gamma")
                    .replace("layer_scale2.lambda1", "ls2.gamma")
                    .replace("mlp.down_proj", "mlp.w3")
                )
                out[block + rest] = value
            continue
        renames = {
            "backbone.embeddings.cls_token": "pretrained.cls_token",
            "backbone.embeddings.mask_token": "pretrained.mask_token",
            "backbone.embeddings.position_embeddings": "pretrained.pos_embed",
            "backbone.embeddings.patch_embeddings.projection.weight": "pretrained.patch_embed.proj.weight",
            "backbone.embeddings.patch_embeddings.projection.bias": "pretrained.patch_embed.proj.bias",
            "backbone.layernorm.weight": "pretrained.norm.weight",
            "backbone.layernorm.bias": "pretrained.norm.bias",
            "head.conv1.weight": "depth_head.scratch.output_conv1.weight",
            "head.conv1.bias": "depth_head.scratch.output_conv1.bias",
            "head.conv2.weight": "depth_head.scratch.output_conv2.0.weight",
            "head.conv2.bias": "depth_head.scratch.output_conv2.0.bias",
            "head.conv3.weight": "depth_head.scratch.output_conv2.2.weight",
            "head.conv3.bias": "depth_head.scratch.output_conv2.2.bias",
        }
        if key in renames:
            out[renames[key]] = value
            continue
        parts = key.split(".")
        if key.startswith("neck.reassemble_stage.layers."):
            i, module, kind = parts[3], parts[4], parts[5]
            name = "projects" if module == "projection" else "resize_layers"
            out[f"depth_head.{name}.{i}.{kind}"] = value
        elif key.startswith("neck.convs."):
            out[f"depth_head.scratch.layer{int(parts[2]) + 1}_rn.weight"] = value
        elif key.startswith("neck.fusion_stage.layers."):
            level = 4 - int(parts[3])  # fusion layer 0 is the release's refinenet4
            rest = ".".join(parts[4:])
            rest = (
                rest.replace("projection", "out_conv")
                .replace("residual_layer1.convolution", "resConfUnit1.conv")
                .replace("residual_layer2.convolution", "resConfUnit2.conv")
            )
            out[f"depth_head.scratch.refinenet{level}.{rest}"] = value
        else:
            raise AssertionError(f"no original name for {key}")
    return out


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    network = tiny_depth_network()
    root = tmp_path_factory.mktemp("depth")
    folder = root / "transformers"
    network.save_pretrained(folder, safe_serialization=True)
    pth = root / "depth_anything_v2_tiny.pth"
    torch.save(to_original_names(network.state_dict()), pth)
    return network, folder, pth


@pytest.fixture(scope="module")
def frames():
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, size=(2, 20, 30, 3), dtype=np.uint8)


@pytest.fixture(scope="module")
def model(saved):
    return load_depth_model(saved[1])


@pytest.fixture(scope="module")
def depth(model, frames):
    """The transformers folder's normalised depth of ``frames``: what every other layout must reproduce."""
    return estimate_depth(model, frames, SMALL, progress=False)


@pytest.fixture(scope="module")
def raw(model, frames):
    return estimate_depth(model, frames, DepthConfig(input_size=DEPTH_INPUT_SIZE), progress=False)  # raw by default


def test_both_layouts_give_the_same_network(saved, frames, depth):
    from_pth = estimate_depth(load_depth_model(saved[2]), frames, SMALL, progress=False)
    assert depth.shape == (2, 20, 30) and depth.dtype == np.float32
    assert np.allclose(depth, from_pth, atol=1e-6)


def test_raw_output_is_the_networks_prediction_resized(saved, frames, raw):
    network = saved[0]
    assert (raw >= 0).all() and raw.std() > 0
    # The same computation by hand: 20x30 -> shorter side 56, multiples of 14 -> 56x84.
    image = torch.from_numpy(frames[0]).permute(2, 0, 1)[None].float() / 255
    image = torch.nn.functional.interpolate(image, size=(56, 84), mode="bicubic", align_corners=False)
    image = (image - torch.tensor([0.485, 0.456, 0.406]).reshape(1, 3, 1, 1)) / torch.tensor([0.229, 0.224, 0.225]).reshape(1, 3, 1, 1)
    with torch.no_grad():
        depth = network(pixel_values=image).predicted_depth
    depth = torch.nn.functional.interpolate(depth[:, None], size=(20, 30), mode="bilinear", align_corners=True)[0, 0]
    assert np.allclose(raw[0], depth.numpy(), atol=1e-5)


def test_normalised_per_clip(depth, raw):
    assert depth.min() == pytest.approx(-1.0) and depth.max() == pytest.approx(1.0)
    # One min-max over the whole clip, not per frame: the order of values is kept across frames.
    assert np.allclose(depth, normalize_depth(raw))
    assert np.array_equal(np.argsort(depth, axis=None), np.argsort(raw, axis=None))


def test_normalize_depth():
    depth = np.array([[[1.0, 3.0]], [[2.0, 5.0]]], dtype=np.float32)
    assert np.allclose(normalize_depth(depth), [[[-1.0, 0.0]], [[-0.5, 1.0]]])
    assert np.array_equal(normalize_depth(np.full((2, 3, 3), 7.0)), np.zeros((2, 3, 3), np.float32))
    assert np.allclose(normalize_depth(normalize_depth(depth)), normalize_depth(depth))  # idempotent
    # Off-frame pixels (nan, the letterbox margins) read as far away and do not widen the range.
    raw = np.array([[[1.0, 3.0], [np.nan, 2.0]]], dtype=np.float32)
    np.testing.assert_allclose(normalize_depth(raw), [[[-1.0, 1.0], [-1.0, 0.0]]])
    assert (normalize_depth(np.full((1, 2, 2), np.nan, np.float32)) == -1).all()


def test_training_and_the_pipeline_share_the_depth_normaliser():
    import amodal.segmentation.pipeline as pipeline
    import amodal.training.data as training

    from amodal.depth import normalize as one_home

    assert pipeline.normalize_depth is one_home.normalize_depth
    assert training.normalize_depth is one_home.normalize_depth


def test_swap_red_blue_changes_input(model, frames, depth):
    swapped = estimate_depth(model, frames, DepthConfig(input_size=DEPTH_INPUT_SIZE, swap_red_blue=True, normalize=True), progress=False)
    same = estimate_depth(model, frames[..., ::-1].copy(), SMALL, progress=False)
    assert np.allclose(swapped, same, atol=1e-6) and not np.allclose(depth, swapped)


def test_legacy_transformers_names_load(saved, frames, depth, tmp_path):
    from safetensors.torch import load_file, save_file

    _, folder, _ = saved
    legacy = tmp_path / "legacy"
    legacy.mkdir()
    (legacy / "config.json").write_text((folder / "config.json").read_text())
    weights = load_file(folder / "model.safetensors")
    old = {
        "attention.q_proj.": "attention.attention.query.",
        "attention.k_proj.": "attention.attention.key.",
        "attention.v_proj.": "attention.attention.value.",
        "attention.o_proj.": "attention.output.dense.",
    }
    renamed = {}
    for key, value in weights.items():
        for new, before in old.items():
            key = key.replace(new, before)
        renamed[key] = value
    save_file(renamed, legacy / "model.safetensors")
    assert np.allclose(estimate_depth(load_depth_model(legacy), frames, SMALL, progress=False), depth, atol=1e-6)


def test_strict_pth_lists_missing_and_unexpected(saved, tmp_path):
    network, _, _ = saved
    state = to_original_names(network.state_dict())
    state["depth_head.extra.weight"] = torch.zeros(1)
    del state["pretrained.blocks.3.norm1.bias"]
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(CheckpointError) as info:
        load_depth_model(bad)
    message = str(info.value)
    assert "depth_head.extra.weight" in message and "backbone.encoder.layer.3.norm1.bias" in message


class _RunsCode:
    def __reduce__(self):
        import os

        return (os.system, ("touch amodal_pickle_ran",))


def test_pth_is_read_without_running_code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    evil = tmp_path / "evil.pth"
    torch.save({"pretrained.cls_token": _RunsCode()}, evil)
    with pytest.raises(CheckpointError, match="cannot read this .pth"):
        load_depth_model(evil)
    assert not (tmp_path / "amodal_pickle_ran").exists()


def test_convert_then_load(saved, frames, depth, tmp_path):
    pth = saved[2]
    out = tmp_path / "converted"
    assert run_cli(["convert", "depth-anything", str(pth), "--out", str(out)]) == 0
    assert json.loads((out / "config.json").read_text())["model_type"] == "depth_anything"
    assert np.allclose(estimate_depth(load_depth_model(out), frames, SMALL, progress=False), depth, atol=1e-6)


def test_unknown_size_needs_a_config(saved, tmp_path):
    network = saved[0]
    state = {k: v for k, v in to_original_names(network.state_dict()).items() if not k.startswith("pretrained.blocks.11.")}
    odd = tmp_path / "odd.pth"
    torch.save(state, odd)
    with pytest.raises(CheckpointError, match="11 blocks"):
        load_depth_model(odd)


def test_swiglu_encoder_from_pth(frames, tmp_path):
    """ViT-G's layout: the release's fused SwiGLU input ``w12`` splits into gate and up projections."""
    network = tiny_depth_network(swiglu=True)
    pth = tmp_path / "swiglu.pth"
    torch.save(to_original_names(network.state_dict()), pth)
    network.save_pretrained(tmp_path / "folder", safe_serialization=True)
    assert np.allclose(
        estimate_depth(load_depth_model(pth), frames, SMALL, progress=False),
        estimate_depth(load_depth_model(tmp_path / "folder"), frames, SMALL, progress=False),
        atol=1e-6,
    )
