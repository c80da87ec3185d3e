"""Tiny material shared by the test modules, all built in code: models small enough that every
pipeline runs in seconds on a CPU, an official-layout checkpoint, scenes and clip folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
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


# Official-layout checkpoint ----------------------------------------------------------------------
# The configs of the shared folder's official_tiny/checkpoint (the reference's save_pretrained with
# tiny random weights): the full Diffusion-VAS layout at a size that runs in well under a second.
OFFICIAL_UNET = dict(
    addition_time_embed_dim=8,
    block_out_channels=[32, 64],
    cross_attention_dim=32,
    down_block_types=["CrossAttnDownBlockSpatioTemporal", "DownBlockSpatioTemporal"],
    in_channels=8,
    layers_per_block=1,
    num_attention_heads=[2, 4],
    num_frames=8,
    out_channels=4,
    projection_class_embeddings_input_dim=24,
    sample_size=16,
    transformer_layers_per_block=1,
    up_block_types=["UpBlockSpatioTemporal", "CrossAttnUpBlockSpatioTemporal"],
)
OFFICIAL_VAE = dict(
    block_out_channels=[32, 64],
    down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
    force_upcast=True,
    in_channels=3,
    latent_channels=4,
    layers_per_block=1,
    out_channels=3,
    sample_size=32,
    scaling_factor=0.18215,
)
OFFICIAL_IMAGE_ENCODER = dict(
    attention_dropout=0.0,
    hidden_act="quick_gelu",
    hidden_size=32,
    image_size=224,
    initializer_factor=1.0,
    initializer_range=0.02,
    intermediate_size=37,
    layer_norm_eps=1e-05,
    num_attention_heads=2,
    num_channels=3,
    num_hidden_layers=2,
    patch_size=56,
    projection_dim=32,
)
OFFICIAL_SCHEDULER = dict(
    beta_end=0.012,
    beta_schedule="scaled_linear",
    beta_start=0.00085,
    final_sigmas_type="zero",
    interpolation_type="linear",
    num_train_timesteps=1000,
    prediction_type="v_prediction",
    rescale_betas_zero_snr=False,
    sigma_max=700.0,
    sigma_min=0.002,
    steps_offset=1,
    timestep_spacing="leading",
    timestep_type="continuous",
    use_karras_sigmas=True,
)
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
# model_index.json names the reference code's module for the U-Net, as real checkpoints do.
OFFICIAL_INDEX = {
    "_class_name": "DiffusionVASPipeline",
    "_diffusers_version": "0.42.1",
    "feature_extractor": ["transformers", "CLIPImageProcessor"],
    "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "unet": ["models.diffusion_vas.unet_diffusion_vas", "UNetSpatioTemporalConditionModel"],
    "vae": ["diffusers", "AutoencoderKLTemporalDecoder"],
}
# The geometry the reference test vectors were made at; the loader reads it from a meta.json beside
# the checkpoint (the tiny VAE downsamples by 2, so 64x128 pixels are 32x64 latents).
OFFICIAL_META = {"num_frames": 8, "height": 64, "width": 128, "num_inference_steps": 4, "fps": 8,
                 "motion_bucket_id": 127, "noise_aug_strength": 0.0}


def build_official_checkpoint(root, seed: int = 0):
    """Write a tiny random Diffusion-VAS checkpoint in the official layout under ``root``; returns ``root``.

    ``root/checkpoint`` is what the reference pipeline's ``save_pretrained`` writes (``model_index.json``,
    ``unet/``, ``vae/``, ``image_encoder/``, ``scheduler/``, ``feature_extractor/``), built with the
    diffusers and transformers classes from :data:`OFFICIAL_UNET` and friends; ``root/meta.json``
    holds the geometry (:data:`OFFICIAL_META`). The U-Net's weights carry the official model's extra
    12-channel ``conv_in2`` beside the unused 8-channel ``conv_in``. Every network starts from its
    library's own initialisation under ``seed``; the U-Net's parameters are then nudged by noise
    (std 0.02) as the reference fixture's are, so no layer (norm biases included) stays at zero.
    Nothing is downloaded; the global torch random state is left as it was.
    """
    import json

    from diffusers import AutoencoderKLTemporalDecoder, EulerDiscreteScheduler, UNetSpatioTemporalConditionModel
    from safetensors.torch import load_file, save_file
    from transformers import CLIPImageProcessor, CLIPVisionConfig, CLIPVisionModelWithProjection

    root = Path(root)
    folder = root / "checkpoint"
    folder.mkdir(parents=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNetSpatioTemporalConditionModel(**OFFICIAL_UNET)
        first = OFFICIAL_UNET["block_out_channels"][0]
        conv_in2 = torch.nn.Conv2d(3 * OFFICIAL_UNET["out_channels"], first, kernel_size=3, padding=1)
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in list(unet.parameters()) + list(conv_in2.parameters()):
                p.add_(torch.randn(p.shape, generator=g) * 0.02)
        unet.save_pretrained(folder / "unet", safe_serialization=True)
        weights_file = folder / "unet" / "diffusion_pytorch_model.safetensors"
        weights = load_file(weights_file)
        weights.update({f"conv_in2.{k}": v.contiguous() for k, v in conv_in2.state_dict().items()})
        save_file(weights, weights_file, metadata={"format": "pt"})

        torch.manual_seed(seed + 2)
        AutoencoderKLTemporalDecoder(**OFFICIAL_VAE).save_pretrained(folder / "vae", safe_serialization=True)
        torch.manual_seed(seed + 3)
        encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**OFFICIAL_IMAGE_ENCODER))
        encoder.save_pretrained(folder / "image_encoder", safe_serialization=True)
    EulerDiscreteScheduler(**OFFICIAL_SCHEDULER).save_pretrained(folder / "scheduler")
    CLIPImageProcessor(
        crop_size={"height": 224, "width": 224},
        size={"shortest_edge": 224},
        resample=3,
        image_mean=CLIP_MEAN,
        image_std=CLIP_STD,
    ).save_pretrained(folder / "feature_extractor")
    (folder / "model_index.json").write_text(json.dumps(OFFICIAL_INDEX, indent=2) + "\n")
    (root / "meta.json").write_text(json.dumps(OFFICIAL_META, indent=2) + "\n")
    return root


def build_svd_folder(root, seed: int = 0):
    """A tiny random Stable Video Diffusion image-to-video folder (diffusers layout) at ``root``; returns ``root``.

    The official tiny checkpoint's networks without ``conv_in2``: the U-Net's own 8-channel
    ``conv_in`` (noisy latent + image latent) is the only input convolution, and
    ``model_index.json`` names ``StableVideoDiffusionPipeline`` and the stock diffusers U-Net.
    ``root/../meta.json`` is not written: an SVD folder has no Diffusion-VAS geometry.
    """
    import json
    import shutil

    from safetensors.torch import load_file, save_file

    root = Path(root)
    built = build_official_checkpoint(root.parent / f".{root.name}-official", seed=seed)
    shutil.move(str(built / "checkpoint"), str(root))
    shutil.rmtree(built)
    weights_file = root / "unet" / "diffusion_pytorch_model.safetensors"
    weights = {k: v for k, v in load_file(weights_file).items() if not k.startswith("conv_in2.")}
    save_file(weights, weights_file, metadata={"format": "pt"})
    index = {**OFFICIAL_INDEX, "_class_name": "StableVideoDiffusionPipeline",
             "unet": ["diffusers", "UNetSpatioTemporalConditionModel"]}
    (root / "model_index.json").write_text(json.dumps(index, indent=2) + "\n")
    return root


# Scenes and clip folders ---------------------------------------------------------------------------
SCENE_H, SCENE_W = 48, 64  # frame size of tiny_scene
BACKGROUND_MM, BAR_MM, SQUARE_MM = 5000, 1000, 2000  # z-depth of background, occluding bar, moving square


def tiny_scene(frames: int, shift: int = 4, start: int = 6) -> dict:
    """A square moving right by ``shift`` pixels a frame behind a static vertical bar; both are annotated objects.

    Returns ``(K, T, H, W)`` modal and amodal masks (object 1 = square, 2 = bar),
    ``(T, H, W)`` z-depth in millimetres and ``(T, H, W, 3)`` frames, ``SCENE_H`` x ``SCENE_W``.
    The square is 12 pixels wide and the bar 8 (columns 28 to 35): it is never hidden whole.
    """
    H, W = SCENE_H, SCENE_W
    square = np.zeros((frames, H, W), bool)
    for t in range(frames):
        square[t, 14:26, start + shift * t : start + shift * t + 12] = True
    bar = np.zeros((frames, H, W), bool)
    bar[:, :, 28:36] = True
    amodal = np.stack([square, bar])
    modal = np.stack([square & ~bar, bar])
    depth = np.full((frames, H, W), BACKGROUND_MM, np.uint16)
    depth[square] = SQUARE_MM
    depth[bar] = BAR_MM
    rgb = np.full((frames, H, W, 3), 90, np.uint8)
    rgb[modal[0]] = (40, 200, 60)
    rgb[bar] = (200, 40, 40)
    return {"amodal": amodal, "modal": modal, "depth": depth, "frames": rgb}


def palette_image(index: np.ndarray, palette) -> "Image.Image":
    """A palette-mode (``P``) image whose raw indices are ``index`` ``(H, W) uint8``."""
    from PIL import Image

    h, w = index.shape
    image = Image.frombytes("P", (w, h), np.ascontiguousarray(index, dtype=np.uint8).tobytes())
    image.putpalette(palette)
    return image


def frame_stems(count: int) -> list[str]:
    return [f"frame_{i:03d}" for i in range(count)]


def save_frames(folder: Path, frames, names=None, suffix: str = ".png") -> Path:
    """``(T, H, W, 3) uint8`` frames as ``folder/<name><suffix>`` (``frame_000`` ... unless ``names``)."""
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in zip(names or frame_stems(len(frames)), frames):
        Image.fromarray(frame).save(folder / f"{name}{suffix}", quality=95)
    return folder


def save_masks(folder: Path, masks, names=None, palette: str | None = None) -> Path:
    """``(T, H, W) bool`` masks as PNGs that a luminance reader (object where ``convert("L") > 128``) reads back.

    ``palette=None`` writes 8-bit gray (0 / 255). ``"binary"`` writes palette PNGs with index 0 black
    and 1 white, like the shared horse and birdcage clips. ``"inverted"`` writes them like the
    giraffe clip: a gray ramp whose index 0 is white, with the object drawn in several bright low
    indices and the background in dark high ones, so reading raw indices as "object where non-zero"
    gets the object wrong.
    """
    from PIL import Image

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    ramp = [v for i in range(128) for v in (255 - 2 * i,) * 3]  # index i is gray 255 - 2i
    for t, (name, mask) in enumerate(zip(names or frame_stems(len(masks)), masks)):
        if palette is None:
            image = Image.fromarray(mask.astype(np.uint8) * 255)
        elif palette == "binary":
            image = palette_image(mask.astype(np.uint8), [0, 0, 0, 255, 255, 255])
        elif palette == "inverted":
            stripes = (np.arange(mask.shape[1]) + t) % 20  # varying indices on both sides
            index = np.where(mask, stripes, 100 + stripes).astype(np.uint8)  # gray >= 217 inside, <= 55 outside
            image = palette_image(index, ramp)
        else:
            raise ValueError(palette)
        image.save(folder / f"{name}.png")
    return folder


def write_clip_folder(root: Path, frames, masks, *, suffix: str = ".jpg", palette: str = "binary") -> Path:
    """A clip laid out like the shared real clips: ``root/rgbs/frame_000.jpg ...`` and ``root/masks/frame_000.png ...``.

    ``frames`` is ``(T, H, W, 3) uint8``, ``masks`` ``(T, H, W) bool`` (one object); see
    :func:`save_masks` for ``palette``. Returns ``root``.
    """
    root = Path(root)
    save_frames(root / "rgbs", frames, suffix=suffix)
    save_masks(root / "masks", masks, palette=palette)
    return root


# The clips conftest.py builds: name -> (tiny_scene start column, frame suffix, mask palette). 25
# frames like the shared real clips; the square moves one pixel a frame and passes behind the bar.
CLIP_FRAMES = 25
CLIP_VARIANTS = {"binary": (6, ".jpg", "binary"), "inverted": (14, ".png", "inverted")}


def write_tiny_clip(root: Path, variant: str = "binary", frames: int = CLIP_FRAMES) -> Path:
    """One of :data:`CLIP_VARIANTS` as a clip folder: the moving square of :func:`tiny_scene` is the object."""
    start, suffix, palette = CLIP_VARIANTS[variant]
    scene = tiny_scene(frames, shift=1, start=start)
    return write_clip_folder(root, scene["frames"], scene["modal"][0], suffix=suffix, palette=palette)


# SAIL-VOS reference format -------------------------------------------------------------------------
SAILVOS_OBJECT, SAILVOS_FIRST_IMAGE = 24, 100000  # the ids of the shared reference fixture's first clip


def write_sailvos_clip(folder: Path, frames: int = 6) -> tuple[Path, dict]:
    """The square of :func:`tiny_scene` as a one-clip SAIL-VOS annotation file (``folder/annotations.json``).

    Object ``SAILVOS_OBJECT``, image ids from ``SAILVOS_FIRST_IMAGE``, frames
    ``video000/images/000000.png ...`` (not written: scoring a prediction file
    needs none). Returns the file and the scene.
    """
    import json

    from amodal.data.io import rle

    scene = tiny_scene(frames)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    boxes = []
    for mask in scene["amodal"][0]:
        ys, xs = np.nonzero(mask)
        boxes.append([float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1), float(ys.max() - ys.min() + 1)])
    entry = {
        "obj_id": SAILVOS_OBJECT,
        "category_id": 4,
        "image_ids": [SAILVOS_FIRST_IMAGE + t for t in range(frames)],
        "image_file_names": [f"video000/images/{t:06d}.png" for t in range(frames)],
        "segmentation": [rle.encode(m) for m in scene["amodal"][0]],
        "visible_mask": [rle.encode(m) for m in scene["modal"][0]],
        "bbox": boxes,
    }
    path = folder / "annotations.json"
    path.write_text(json.dumps([entry]))
    return path, scene


def sailvos_predictions(masks: np.ndarray, size: tuple[int, int] | None = None) -> dict:
    """Reference-format predictions ``{"(image_id, obj_id)": {"diffvas_res_rle": RLE}}`` for :func:`write_sailvos_clip`.

    ``masks`` is ``(T, H, W) bool``; ``size`` resamples them (nearest) to
    ``(h, w)`` first, as the reference's 256x512 predictions of 800x1280 frames.
    """
    from amodal.data.io import rle

    if size is not None:
        rows = np.arange(size[0]) * masks.shape[1] // size[0]
        cols = np.arange(size[1]) * masks.shape[2] // size[1]
        masks = masks[:, rows][:, :, cols]
    return {
        f"({SAILVOS_FIRST_IMAGE + t}, {SAILVOS_OBJECT})": {"diffvas_res_rle": rle.encode(np.ascontiguousarray(m))}
        for t, m in enumerate(masks)
    }
