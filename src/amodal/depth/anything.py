"""Depth Anything V2 (relative depth) through transformers' ``DepthAnythingForDepthEstimation``.

Two checkpoint layouts are read, both strictly (missing or unexpected weight
names are an error that lists them):

- a transformers folder: ``config.json`` (``model_type`` ``depth_anything``)
  plus ``model.safetensors`` (or shards with an index). Older folders name the
  DINOv2 attention weights ``attention.attention.{query,key,value}`` and
  ``attention.output.dense``; they are renamed to the current names.
- an original release file (``depth_anything_v2_vit{s,b,l,g}.pth``), converted
  key by key (``pretrained.*`` -> ``backbone.*``, ``depth_head.*`` ->
  ``neck.*`` / ``head.*``, fused ``qkv`` split in three). The architecture is
  read off the weights' shapes. The file is a pickle: it is opened only with
  ``torch.load(path, map_location="cpu", weights_only=True)``, PyTorch's
  restricted unpickler, which rebuilds tensors and plain containers and refuses
  anything else, so a crafted file cannot run code. Convert it once to
  safetensors with ``amodal convert depth-anything FILE.pth --out DIR``.

Preprocessing and postprocessing follow the release's ``infer_image``: the
frame is scaled so its shorter side reaches ``input_size`` (518) with both
sides multiples of 14, bicubic; ImageNet mean/std; the prediction is resized
back bilinearly (``align_corners=True``). The output is relative inverse depth
(disparity): larger is nearer, the library's convention.
"""

from __future__ import annotations

import json
import math
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from amodal.depth.normalize import normalize_depth
from amodal.errors import CheckpointError, InputError
from amodal.util.fs import atomic_dir

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PATCH_MULTIPLE = 14  # DINOv2's patch size: the network input must be a multiple of it
# Which transformer blocks feed the DPT head (1-based, as transformers counts), by encoder depth:
# ViT-S and ViT-B (12 blocks), ViT-L (24), ViT-G (40), as in the V2 release.
OUT_INDICES = {12: [3, 6, 9, 12], 24: [5, 12, 18, 24], 40: [10, 20, 30, 40]}
HEAD_WIDTH = 64  # every DINOv2 size uses 64-wide attention heads
LEGACY_NAMES = (
    # transformers < 5 names of the DINOv2 attention weights -> current names
    (".attention.attention.query.", ".attention.q_proj."),
    (".attention.attention.key.", ".attention.k_proj."),
    (".attention.attention.value.", ".attention.v_proj."),
    (".attention.output.dense.", ".attention.o_proj."),
)


@dataclass(frozen=True)
class DepthConfig:
    """How frames are fed to the depth network."""

    input_size: int = 518  # the shorter side the network sees; the release's default (37 patches)
    # The reference demo passes RGB frames to a function that expects OpenCV's
    # BGR order, so its depth network sees red and blue swapped; True reproduces that.
    swap_red_blue: bool = False
    # False: the network's relative inverse depth (>= 0), the Clip convention, for callers that
    # stream frames and normalise per window; True: min-max over the frames given, to [-1, 1],
    # the model input the reference builds per clip.
    normalize: bool = False


class DepthModel:
    """A loaded Depth Anything V2 network and where it runs."""

    def __init__(self, network: torch.nn.Module, device: torch.device, dtype: torch.dtype, source: str):
        self.network = network.eval().to(device=device, dtype=dtype)
        self.device = device
        self.dtype = dtype
        self.source = source  # the file or folder it was loaded from, for messages


# Key conversion ---------------------------------------------------------------------------------
_BLOCK = re.compile(r"^pretrained\.blocks\.(\d+)\.(.+)$")
_REFINE = re.compile(r"^depth_head\.scratch\.refinenet(\d)\.(.+)$")
_SIMPLE = {
    "pretrained.cls_token": "backbone.embeddings.cls_token",
    "pretrained.mask_token": "backbone.embeddings.mask_token",
    "pretrained.pos_embed": "backbone.embeddings.position_embeddings",
    "pretrained.patch_embed.proj.weight": "backbone.embeddings.patch_embeddings.projection.weight",
    "pretrained.patch_embed.proj.bias": "backbone.embeddings.patch_embeddings.projection.bias",
    "pretrained.norm.weight": "backbone.layernorm.weight",
    "pretrained.norm.bias": "backbone.layernorm.bias",
    "depth_head.scratch.output_conv1.weight": "head.conv1.weight",
    "depth_head.scratch.output_conv1.bias": "head.conv1.bias",
    "depth_head.scratch.output_conv2.0.weight": "head.conv2.weight",
    "depth_head.scratch.output_conv2.0.bias": "head.conv2.bias",
    "depth_head.scratch.output_conv2.2.weight": "head.conv3.weight",
    "depth_head.scratch.output_conv2.2.bias": "head.conv3.bias",
}
_BLOCK_PARTS = {
    "ls1.gamma": "layer_scale1.lambda1",
    "ls2.gamma": "layer_scale2.lambda1",
    "norm1.weight": "norm1.weight",
    "norm1.bias": "norm1.bias",
    "norm2.weight": "norm2.weight",
    "norm2.bias": "norm2.bias",
    "mlp.fc1.weight": "mlp.fc1.weight",
    "mlp.fc1.bias": "mlp.fc1.bias",
    "mlp.fc2.weight": "mlp.fc2.weight",
    "mlp.fc2.bias": "mlp.fc2.bias",
    "mlp.w3.weight": "mlp.down_proj.weight",  # ViT-G's SwiGLU output
    "mlp.w3.bias": "mlp.down_proj.bias",
    "attn.proj.weight": "attention.o_proj.weight",
    "attn.proj.bias": "attention.o_proj.bias",
}
_REFINE_PARTS = {
    "out_conv": "projection",
    "resConfUnit1.conv1": "residual_layer1.convolution1",
    "resConfUnit1.conv2": "residual_layer1.convolution2",
    "resConfUnit2.conv1": "residual_layer2.convolution1",
    "resConfUnit2.conv2": "residual_layer2.convolution2",
}


def original_to_transformers(state_dict: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Rename an original Depth Anything V2 state dict to transformers' names.

    Returns:
        ``(converted, unknown)``: the converted tensors and the original names
        no rule covers (the caller reports them as unexpected).
    """
    out: dict[str, torch.Tensor] = {}
    unknown: list[str] = []
    for key, value in state_dict.items():
        if key in _SIMPLE:
            out[_SIMPLE[key]] = value
            continue
        if m := _BLOCK.match(key):
            i, part = m.groups()
            prefix = f"backbone.encoder.layer.{i}."
            if part in ("attn.qkv.weight", "attn.qkv.bias"):
                # One fused projection in the release; query, key, value (in that order) in transformers.
                kind = part.rsplit(".", 1)[1]
                q, k, v = value.chunk(3, dim=0)
                out[prefix + f"attention.q_proj.{kind}"] = q
                out[prefix + f"attention.k_proj.{kind}"] = k
                out[prefix + f"attention.v_proj.{kind}"] = v
            elif part in ("mlp.w12.weight", "mlp.w12.bias"):
                # ViT-G's fused SwiGLU input: first half gates, second half is the value.
                kind = part.rsplit(".", 1)[1]
                gate, up = value.chunk(2, dim=0)
                out[prefix + f"mlp.gate_proj.{kind}"] = gate
                out[prefix + f"mlp.up_proj.{kind}"] = up
            elif part in _BLOCK_PARTS:
                out[prefix + _BLOCK_PARTS[part]] = value
            else:
                unknown.append(key)
            continue
        if m := re.match(r"^depth_head\.projects\.(\d)\.(weight|bias)$", key):
            out[f"neck.reassemble_stage.layers.{m[1]}.projection.{m[2]}"] = value
            continue
        if m := re.match(r"^depth_head\.resize_layers\.(\d)\.(weight|bias)$", key):
            out[f"neck.reassemble_stage.layers.{m[1]}.resize.{m[2]}"] = value
            continue
        if m := re.match(r"^depth_head\.scratch\.layer(\d)_rn\.weight$", key):
            out[f"neck.convs.{int(m[1]) - 1}.weight"] = value
            continue
        if m := _REFINE.match(key):
            # refinenet4 (deepest) is fused first: transformers' fusion layer 0.
            level, rest = int(m[1]), m[2]
            module, _, kind = rest.rpartition(".")
            if module in _REFINE_PARTS and kind in ("weight", "bias"):
                out[f"neck.fusion_stage.layers.{4 - level}.{_REFINE_PARTS[module]}.{kind}"] = value
            else:
                unknown.append(key)
            continue
        unknown.append(key)
    return out, unknown


def config_from_original(state_dict: dict[str, torch.Tensor], where: str):
    """A transformers ``DepthAnythingConfig`` read off the shapes of an original state dict."""
    from transformers import DepthAnythingConfig, Dinov2Config

    try:
        hidden = int(state_dict["pretrained.cls_token"].shape[-1])
        patch = int(state_dict["pretrained.patch_embed.proj.weight"].shape[-1])
        tokens = int(state_dict["pretrained.pos_embed"].shape[1])
        depth = 1 + max(int(m[1]) for k in state_dict if (m := _BLOCK.match(k)))
        features = int(state_dict["depth_head.scratch.layer1_rn.weight"].shape[0])
        neck = [int(state_dict[f"depth_head.projects.{i}.weight"].shape[0]) for i in range(4)]
        head_hidden = int(state_dict["depth_head.scratch.output_conv2.0.weight"].shape[0])
    except (KeyError, ValueError, IndexError) as e:
        raise CheckpointError(f"{where}: not a Depth Anything V2 checkpoint (no weight {e})") from None
    swiglu = "pretrained.blocks.0.mlp.w12.weight" in state_dict
    if swiglu:
        # The release's SwiGLU width is round8(2/3 * 4 * hidden), as transformers computes from mlp_ratio 4.
        mlp_ratio = 4
    else:
        width = int(state_dict["pretrained.blocks.0.mlp.fc1.weight"].shape[0])
        if width % hidden:
            raise CheckpointError(f"{where}: MLP width {width} is not a multiple of the encoder width {hidden}")
        mlp_ratio = width // hidden
    grid = math.isqrt(tokens - 1)
    if depth not in OUT_INDICES or hidden % HEAD_WIDTH:
        raise CheckpointError(
            f"{where}: an encoder of {depth} blocks x {hidden} channels is not a released Depth Anything V2 size; "
            f"pass its transformers config.json (load_depth_model(path, config=...))"
        )
    backbone = Dinov2Config(
        hidden_size=hidden,
        num_hidden_layers=depth,
        num_attention_heads=hidden // HEAD_WIDTH,
        mlp_ratio=mlp_ratio,
        use_swiglu_ffn=swiglu,
        patch_size=patch,
        image_size=grid * patch,
        out_indices=OUT_INDICES[depth],
        apply_layernorm=True,
        reshape_hidden_states=False,
    )
    return DepthAnythingConfig(
        backbone_config=backbone,
        reassemble_hidden_size=hidden,
        patch_size=patch,
        fusion_hidden_size=features,
        neck_hidden_sizes=neck,
        head_hidden_size=head_hidden,
        depth_estimation_type="relative",
    )


# Loading ----------------------------------------------------------------------------------------
def _read_pth(path: Path) -> dict[str, torch.Tensor]:
    try:
        # Restricted unpickler: tensors and plain containers only; anything else is refused. Its
        # warnings (which advise turning the restriction off) are not shown.
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            data = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # the unpickler raises many types (UnpicklingError, RuntimeError, EOFError, ...)
        if "Unpickler" in str(e) or isinstance(e, __import__("pickle").UnpicklingError):
            reason = "it holds Python objects besides tensors, and amodal never runs code from a checkpoint"
        else:
            reason = f"not a complete torch file ({type(e).__name__})"
        raise CheckpointError(
            f"{path}: cannot read this .pth as plain weights: {reason}; pass the released state dict of tensors"
        ) from None
    if not isinstance(data, dict) or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise CheckpointError(f"{path}: expected a state dict of tensors (the Depth Anything V2 release format)")
    return dict(data)


def _read_transformers_dir(path: Path) -> tuple[object, dict[str, torch.Tensor]]:
    from transformers import DepthAnythingConfig

    from amodal.checkpoints.safetensors import read_safetensors

    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{config_file}: missing; a transformers Depth Anything folder needs its config.json")
    try:
        raw = json.loads(config_file.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{config_file}: not valid JSON ({e})") from None
    if raw.get("model_type") != "depth_anything":
        raise CheckpointError(f"{config_file}: model_type is {raw.get('model_type')!r}, not 'depth_anything'")
    config = DepthAnythingConfig.from_dict(raw)
    if (path / "model.safetensors").is_file():
        files = [path / "model.safetensors"]
    elif (path / "model.safetensors.index.json").is_file():
        index = json.loads((path / "model.safetensors.index.json").read_text())
        files = [path / name for name in sorted(set(index.get("weight_map", {}).values()))]
    elif list(path.glob("*.bin")):
        raise CheckpointError(
            f"{path}: weights only as pickle (.bin), which amodal never loads; save them as safetensors first"
        )
    else:
        raise CheckpointError(f"{path}: no model.safetensors found")
    return config, current_names(read_safetensors(files))


def current_names(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """transformers-format weights under the current transformers names.

    Folders written before transformers 5 (and SwiGLU models written by it)
    use the older DINOv2 names; the fused SwiGLU input ``weights_in`` holds
    the gate and up projections stacked, in that order.
    """
    out = {}
    for key, value in weights.items():
        for old, new in LEGACY_NAMES:
            key = key.replace(old, new)
        if ".mlp.weights_in." in key:
            gate, up = value.chunk(2, dim=0)
            out[key.replace(".mlp.weights_in.", ".mlp.gate_proj.")] = gate
            out[key.replace(".mlp.weights_in.", ".mlp.up_proj.")] = up
            continue
        out[key.replace(".mlp.weights_out.", ".mlp.down_proj.")] = value
    return out


def _build(config, weights: dict[str, torch.Tensor], where: str, unknown: list[str] = ()) -> torch.nn.Module:
    from accelerate import init_empty_weights
    from transformers import DepthAnythingForDepthEstimation

    if getattr(config, "depth_estimation_type", "relative") != "relative":
        raise CheckpointError(f"{where}: metric-depth checkpoints are not supported; use a relative Depth Anything V2 one")
    with init_empty_weights():  # no random init: every parameter comes from the checkpoint
        network = DepthAnythingForDepthEstimation(config)
    expected = network.state_dict()
    missing = sorted(set(expected) - set(weights))
    unexpected = sorted(set(weights) - set(expected)) + sorted(unknown)
    shapes = sorted(
        f"{k}: {tuple(weights[k].shape)} != {tuple(expected[k].shape)}"
        for k in set(expected) & set(weights)
        if weights[k].shape != expected[k].shape
    )
    if missing or unexpected or shapes:
        raise CheckpointError(
            f"{where}: weights do not match the Depth Anything architecture: missing {missing[:8]} ({len(missing)}), "
            f"unexpected {unexpected[:8]} ({len(unexpected)}), wrong shapes {shapes[:8]} ({len(shapes)})"
        )
    network.load_state_dict({k: v.float() for k, v in weights.items()}, strict=True, assign=True)
    leftover = [n for n, p in network.named_parameters() if p.is_meta] + [n for n, b in network.named_buffers() if b.is_meta]
    if leftover:
        raise CheckpointError(f"{where}: tensors not set by the checkpoint: {leftover[:8]}")
    return network.eval()


def _read_any(path: Path, config: str | Path | None) -> tuple[object, dict[str, torch.Tensor], list[str]]:
    if path.is_dir():
        cfg, weights = _read_transformers_dir(path)
        return cfg, weights, []
    if not path.is_file():
        raise InputError(f"{path}: depth checkpoint not found; pass a Depth Anything V2 .pth or a transformers folder")
    if path.suffix == ".safetensors":
        raise InputError(f"{path}: pass the folder holding this file and its config.json")
    original = _read_pth(path)
    weights, unknown = original_to_transformers(original)
    if config is not None:
        from transformers import DepthAnythingConfig

        cfg = DepthAnythingConfig.from_json_file(str(config))
    else:
        cfg = config_from_original(original, str(path))
    return cfg, weights, unknown


def load_depth_model(
    path: str | Path,
    *,
    device: str = "cpu",
    dtype: str = "float32",
    config: str | Path | None = None,
) -> DepthModel:
    """Load Depth Anything V2 (relative) from a transformers folder or an original ``.pth``.

    Args:
        path: a folder with ``config.json`` + ``model.safetensors``, or a
            ``depth_anything_v2_vit*.pth`` file (read with PyTorch's restricted
            ``weights_only`` unpickler; see the module docstring).
        device: ``"cpu"`` or ``"cuda"``.
        dtype: ``"float32"``, ``"bfloat16"`` or (CUDA only) ``"float16"``.
        config: for a ``.pth`` of a non-released size, its transformers
            ``config.json``; released sizes are recognised from the weights.

    Raises:
        CheckpointError: missing, unexpected or mis-shaped weights (listed).
        InputError: a missing path or an unavailable device.
    """
    from amodal.checkpoints.official.config import RuntimeConfig

    torch_device, torch_dtype = RuntimeConfig(device=device, dtype=dtype).resolve()
    path = Path(path)
    cfg, weights, unknown = _read_any(path, config)
    network = _build(cfg, weights, str(path), unknown)
    return DepthModel(network, torch_device, torch_dtype, str(path))


def convert_depth_checkpoint(pth: str | Path, out: str | Path, *, config: str | Path | None = None) -> Path:
    """Convert an original ``.pth`` release to a transformers folder (``config.json`` + ``model.safetensors``).

    The conversion is checked strictly against the architecture before anything
    is written; the folder is written atomically. Returns ``out``.
    """
    from safetensors.torch import save_file


    pth, out = Path(pth), Path(out)
    if pth.is_dir():
        raise InputError(f"{pth}: is a folder; pass the original .pth file")
    cfg, weights, unknown = _read_any(pth, config)
    network = _build(cfg, weights, str(pth), unknown)
    with atomic_dir(out, command="convert depth-anything") as tmp:
        state = {k: v.contiguous() for k, v in network.state_dict().items()}
        save_file(state, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        network.config.to_json_file(str(tmp / "config.json"))
    return out


# Inference --------------------------------------------------------------------------------------
def network_size(height: int, width: int, input_size: int) -> tuple[int, int]:
    """The release's resize rule: keep the aspect ratio, shorter side at least ``input_size``, multiples of 14."""
    scale = max(input_size / height, input_size / width)

    def fit(x: float) -> int:
        y = round(x / PATCH_MULTIPLE) * PATCH_MULTIPLE
        if y < input_size:
            y = math.ceil(x / PATCH_MULTIPLE) * PATCH_MULTIPLE
        return int(y)

    return fit(height * scale), fit(width * scale)



@torch.no_grad()
def estimate_depth(
    model: DepthModel,
    frames: np.ndarray,
    config: DepthConfig = DepthConfig(),
    *,
    progress: bool = True,
) -> np.ndarray:
    """Relative inverse depth of every frame, one frame at a time.

    Args:
        model: from :func:`load_depth_model`.
        frames: ``(T, H, W, 3) uint8`` RGB.
        config: network input size, channel order, normalisation.
        progress: show a progress bar on stderr.

    Returns:
        ``(T, H, W) float32``: larger is nearer; the network's raw output (>= 0)
        by default, or in ``[-1, 1]`` (one min-max over all ``T`` frames, as the
        reference normalises a clip) with ``config.normalize``.
    """
    from tqdm import tqdm

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8:
        raise InputError(f"frames must be (T, H, W, 3) uint8, got {frames.dtype} {frames.shape}")
    height, width = frames.shape[1:3]
    size = network_size(height, width, config.input_size)
    mean = torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1)
    out = np.empty(frames.shape[:3], dtype=np.float32)
    for t in tqdm(range(len(frames)), desc="depth", unit="frame", file=sys.stderr, leave=False, disable=None if progress else True):
        image = torch.tensor(frames[t]).permute(2, 0, 1)[None].float() / 255.0  # (1, 3, H, W) in [0, 1]
        if config.swap_red_blue:
            image = image.flip(1)
        image = F.interpolate(image, size=size, mode="bicubic", align_corners=False)
        image = (image - mean) / std
        depth = model.network(pixel_values=image.to(device=model.device, dtype=model.dtype)).predicted_depth  # (1, h, w)
        depth = F.interpolate(depth[:, None].float(), size=(height, width), mode="bilinear", align_corners=True)
        out[t] = depth[0, 0].cpu().numpy()
    return normalize_depth(out) if config.normalize else out
