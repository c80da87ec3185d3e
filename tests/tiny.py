"""Tiny components shared by the test modules: models small enough that every pipeline runs in seconds on a CPU."""

from __future__ import annotations

import torch

from amodal.backbones.lite import LiteConfig

# Two levels of 8 and 16 channels, attention in time from the first level: the smallest lite
# backbone that still exercises every block.
TINY_BACKBONE = LiteConfig(channels=(8, 16), patch=2, heads=2, emb_dim=16, groups=4, temporal_from_level=0)

DEPTH_INPUT_SIZE = 56  # 4x4 patches of 14 pixels: enough to exercise the resize rule, fast on a CPU


def randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Give every parameter (zero-initialised output layers included) random values."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    return model


def tiny_depth_network(swiglu: bool = False):
    """A random Depth Anything V2 network in transformers' layout, ``DEPTH_INPUT_SIZE`` pixels square."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config

    # 12 blocks and 64-wide heads: the ViT-S/B layout the converter recognises, at a tiny width.
    backbone = Dinov2Config(
        hidden_size=64,
        num_hidden_layers=12,
        num_attention_heads=1,
        mlp_ratio=4 if swiglu else 2,  # the release's SwiGLU (ViT-G) is always ratio 4
        use_swiglu_ffn=swiglu,
        patch_size=14,
        image_size=DEPTH_INPUT_SIZE,
        out_indices=[3, 6, 9, 12],
        apply_layernorm=True,
        reshape_hidden_states=False,
    )
    config = DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=64,
        patch_size=14,
        fusion_hidden_size=16,
        neck_hidden_sizes=[8, 16, 32, 32],
        head_hidden_size=8,
    )
    torch.manual_seed(0)
    network = DepthAnythingForDepthEstimation(config).eval()
    with torch.no_grad():
        for p in network.parameters():
            p.normal_(0, 0.2)
        network.head.conv3.bias.fill_(1.0)  # keep the final ReLU mostly open so the depth map varies
    return network


def run_cli(argv: list[str]) -> int:
    """Parse ``argv`` with the command's own parser and run its handler, as ``amodal`` does."""
    import argparse
    import importlib

    parser = argparse.ArgumentParser(prog="amodal")
    importlib.import_module(f"amodal.cli.{argv[0]}").register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args) or 0)
