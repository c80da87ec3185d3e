"""The real clips and reference annotations of the shared folder load, and render to overlays that decode back.

Skipped with a reason when the shared folder is absent (see ``conftest.py``).
"""

import numpy as np
import pytest
from PIL import Image

from amodal.data.io.frames import probe_frames
from amodal.data.io.loader import load_clip
from amodal.data.io.masks import read_rle_json
from amodal.viz.overlay import render_overlay_video

CLIPS = ("birdcage", "giraffe", "horse")


def load(real_clips_dir, name):
    return load_clip(frames=real_clips_dir / name / "rgbs", masks=real_clips_dir / name / "masks")


@pytest.mark.parametrize("name", CLIPS)
def test_real_clip_loads_and_renders(real_clips_dir, tmp_path, name):
    clip = load(real_clips_dir, name)
    assert clip.num_frames == 25 and clip.num_objects == 1 and clip.frames.shape[2] == 640
    assert clip.frame_names[0] == "frame_000" and clip.frame_names[-1] == "frame_024"
    assert clip.modal_masks.reshape(25, -1).any(axis=1).all()  # the object is visible in every frame

    gif = render_overlay_video(clip, tmp_path / f"{name}.gif", max_width=320)
    image = Image.open(gif)
    assert image.n_frames == 25 and image.width == 320
    mp4 = render_overlay_video(clip, tmp_path / f"{name}.mp4", max_width=320)
    info = probe_frames(mp4)
    assert info.num_frames == 25 and info.width == 320


def test_giraffe_object_is_the_bright_region(real_clips_dir):
    # Palette index 0 is white in these masks: reading raw indices (0 = background)
    # would give the object the other ~92% of the frame.
    clip = load(real_clips_dir, "giraffe")
    area = clip.modal_masks.mean(axis=(0, 2, 3))
    assert ((area > 0.03) & (area < 0.2)).all()
    mask = np.asarray(Image.open(real_clips_dir / "giraffe" / "masks" / "frame_000.png").convert("L")) > 128
    np.testing.assert_array_equal(clip.modal_masks[0, 0], mask)


def test_sailvos_reference_annotations(shared_dir):
    path = shared_dir / "fixtures" / "official_metrics" / "sailvos" / "annotations.json"
    if not path.is_file():
        pytest.skip(f"SAIL-VOS annotations not found at {path}")
    masks = read_rle_json(path, frames_dir="/data/sailvos/video001/images")
    assert masks.object_ids == (39,) and masks.category_ids == (19,)
    assert masks.modal.shape == masks.amodal.shape == (1, 25, 800, 1280)
    assert masks.frame_names[:2] == ("000000", "000001")
    assert not (masks.modal & ~masks.amodal).any()  # visible parts lie inside the full extent
    assert masks.modal.sum() < 0.9 * masks.amodal.sum()  # this object is partly occluded
