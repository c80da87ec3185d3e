"""Stage 2 on a clip: windowing and compositing with a stand-in model, then ``amodal complete`` end to end.

The end-to-end run uses the tiny random official-layout checkpoint built in
code (``official_checkpoint``) for both stages (the layouts match) on a clip
folder built in code (``tiny_clip``), so its pixels are noise: it checks shapes,
files, masks and determinism.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from amodal.clip import Clip
from amodal.completion.pipeline import CompletionConfig, complete_clip
from amodal.errors import InputError
from amodal.data.io.frames import frame_names
from amodal.data.io.masks import read_mask_folder

from tiny import run_cli

pytestmark = pytest.mark.usefixtures("one_thread")

NUM_FRAMES = 8  # the tiny checkpoint's window
SIZE = (16, 32)  # model resolution for the end-to-end runs



class PaintCompleter:
    """Returns one colour everywhere; records what it was given."""

    num_frames, height, width = 4, 8, 12

    def __init__(self, colour=(1.0, 0.0, 0.0)):
        self.colour = torch.tensor(colour)
        self.calls = []

    def complete(self, modal_rgb, amodal, *, settings, generator, progress):
        self.calls.append((modal_rgb.clone(), amodal.clone()))
        return self.colour.expand(*modal_rgb.shape).clone()


def small_clip(num_frames=6):
    frames = np.full((num_frames, 16, 24, 3), 40, dtype=np.uint8)
    modal = np.zeros((1, num_frames, 16, 24), dtype=bool)
    modal[:, :, 4:12, 4:10] = True
    amodal = modal.copy()
    amodal[:, :, 4:12, 4:16] = True  # the hidden part extends to the right
    return Clip(frames=frames, modal_masks=modal), amodal


def test_compositing_with_a_stand_in_model():
    clip, amodal = small_clip()
    completer = PaintCompleter()
    result = complete_clip(completer, clip, amodal, CompletionConfig(), progress=False)
    assert result.rgb.shape == (1, 6, 16, 24, 3) and result.rgba.shape == (1, 6, 16, 24, 4)
    inside = amodal[0]
    assert (result.rgb[0][inside] == [255, 0, 0]).all()  # the model's pixels inside the amodal mask
    assert (result.rgb[0][~inside] == 255).all()  # white outside
    assert np.array_equal(result.rgba[0, ..., 3] == 255, inside)
    faded = round(40 * 0.5 + 255 * 0.5)
    assert (result.overlay[0][~inside] == faded).all() and (result.overlay[0][inside] == [255, 0, 0]).all()
    # Two windows of 4 for 6 frames; the condition is the object's pixels on white at the native size.
    assert len(completer.calls) == 2
    modal_rgb, mask = completer.calls[0]
    assert modal_rgb.shape == (1, 4, 8, 12, 3) and mask.shape == (1, 4, 8, 12)
    values = np.unique(modal_rgb.numpy())
    assert np.isclose(values[:, None], [40 / 255, 1.0]).any(axis=1).all()
    kept = complete_clip(completer, clip, amodal, CompletionConfig(paste_visible=True), progress=False)
    assert (kept.rgb[0][clip.modal_masks[0]] == 40).all()


def test_short_clip_is_padded_and_trimmed():
    clip, amodal = small_clip(num_frames=3)
    completer = PaintCompleter()
    result = complete_clip(completer, clip, amodal, progress=False)
    assert result.rgb.shape[1] == 3
    modal_rgb, _ = completer.calls[0]
    assert modal_rgb.shape[1] == 4 and torch.equal(modal_rgb[0, 3], modal_rgb[0, 2])  # last frame repeated


def test_amodal_masks_must_match():
    clip, amodal = small_clip()
    with pytest.raises(InputError, match="amodal masks must be bool"):
        complete_clip(PaintCompleter(), clip, amodal[:, :5], progress=False)


# End to end -------------------------------------------------------------------------------------
def copy_frames(source: Path, target: Path, count: int) -> None:
    target.mkdir(parents=True)
    for path in sorted(source.iterdir())[:count]:
        (target / path.name).write_bytes(path.read_bytes())


@pytest.fixture(scope="module")
def clip_with_amodal(tiny_clip, official_checkpoint, tmp_path_factory):
    """The first window of the tiny clip with stage-1 amodal masks from the tiny checkpoint."""
    from amodal.checkpoints.official.config import GenerationConfig
    from amodal.segmentation.official import load_segmenter

    root = tmp_path_factory.mktemp("clip")
    copy_frames(tiny_clip / "rgbs", root / "rgbs", NUM_FRAMES)
    copy_frames(tiny_clip / "masks", root / "masks", NUM_FRAMES)
    modal = read_mask_folder(root / "masks", frame_names(root / "rgbs")).modal  # (1, T, H, W)
    # 16x32 instead of the checkpoint's 64x128: the output is noise either way, and 16 times cheaper.
    segmenter = load_segmenter(
        official_checkpoint, settings=GenerationConfig(decode_chunk_size=4), height=SIZE[0], width=SIZE[1]
    )
    assert segmenter.num_frames == NUM_FRAMES
    size = (segmenter.height, segmenter.width)
    small = torch.nn.functional.interpolate(torch.from_numpy(modal[0]).float()[:, None], size=size, mode="nearest")[:, 0]
    depth = torch.zeros_like(small)  # flat pseudo-depth: this test checks plumbing, not quality
    soft = segmenter.sample(small[None] > 0.5, depth[None], steps=1, guidance=1.0, generator=torch.Generator().manual_seed(0))
    hard = (soft[0] > segmenter.threshold).float()[:, None]
    amodal = torch.nn.functional.interpolate(hard, size=modal.shape[2:], mode="nearest")[:, 0].numpy() > 0.5
    # The random model's masks are noise (often empty); grow the object to the right as well, so the
    # amodal masks always reach past the visible part and stage 2 must follow them, not the modal ones.
    amodal |= modal[0] | np.roll(modal[0], 6, axis=-1)
    assert (amodal & ~modal[0]).any() and not amodal.all()
    (root / "amodal").mkdir()
    for name, mask in zip(sorted(p.name for p in (root / "masks").iterdir()), amodal):
        Image.fromarray(mask.astype(np.uint8) * 255).save(root / "amodal" / name)
    return root, modal[0], amodal


def run_complete(root: Path, checkpoint: Path, out: Path) -> int:
    return run_cli(
        [
            "complete", "--model", str(checkpoint), "--frames", str(root / "rgbs"), "--masks", str(root / "masks"),
            "--amodal", str(root / "amodal"), "--out", str(out), "--steps", "1", "--decode-chunk-size", "4",
            "--seed", "3", "--guidance", "1.0", "--no-progress",
            "--height", str(SIZE[0]), "--width", str(SIZE[1]),
        ]
    )


def test_complete_cli_end_to_end(clip_with_amodal, official_checkpoint, tmp_path):
    root, modal, amodal = clip_with_amodal
    checkpoint = official_checkpoint
    assert run_complete(root, checkpoint, tmp_path / "a") == 0
    names = sorted(p.stem for p in (root / "rgbs").iterdir())
    for kind, channels in (("rgb", 3), ("rgba", 4), ("overlay", 3)):
        files = sorted((tmp_path / "a" / "1" / kind).iterdir())
        assert [f.stem for f in files] == names
        image = np.asarray(Image.open(files[0]))
        assert image.shape == (*modal.shape[1:], channels)
    rgba = np.stack([np.asarray(Image.open(f)) for f in sorted((tmp_path / "a" / "1" / "rgba").iterdir())])
    assert np.array_equal(rgba[..., 3] == 255, amodal)
    assert (rgba[..., :3][~amodal] == 255).all()
    # Same seed, same files.
    assert run_complete(root, checkpoint, tmp_path / "b") == 0
    for file in sorted((tmp_path / "a").rglob("*.png")):
        assert file.read_bytes() == (tmp_path / "b" / file.relative_to(tmp_path / "a")).read_bytes(), file


def test_complete_cli_rejects_mismatched_masks(clip_with_amodal, official_checkpoint, tmp_path):
    root, _, _ = clip_with_amodal
    short = tmp_path / "short"
    copy_frames(root / "amodal", short, NUM_FRAMES - 1)
    with pytest.raises(InputError, match="7 amodal masks"):
        run_cli(
            [
                "complete", "--model", str(official_checkpoint), "--frames", str(root / "rgbs"),
                "--masks", str(root / "masks"), "--amodal", str(short), "--out", str(tmp_path / "out"),
            ]
        )
    assert not (tmp_path / "out").exists()
