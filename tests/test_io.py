"""Readers, writers and overlays on tiny files generated in ``tmp_path``."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from amodal import Clip
from amodal.errors import InputError
from amodal.data.io.frames import iter_frames, natural_key, probe_frames, read_frames
from amodal.data.io.loader import load_clip, read_depth
from amodal.data.io.masks import match_to_frames, read_mask_folder, read_rle_json
from amodal.apps.overlay import OverlayConfig, render_overlay_files
from amodal.viz.davis import label_image, write_label_png
from amodal.viz.overlay import (
    OBJECT_COLORS,
    UNCERTAINTY_LABEL,
    boundary,
    colorbar_strip,
    display_scale,
    enlarge,
    heatmap_frame,
    overlay_frame,
    overlay_frames,
    render_overlay_video,
    side_by_side,
    uncertainty,
    uncertainty_frame,
)
from amodal.data.io.video import write_video
from amodal.data.io.writers import write_animation, write_frame_pngs, write_gif, write_mask_pngs, write_rle_json

from tiny import palette_image, save_frames, save_masks

H, W, T = 24, 32, 4


def smooth_frames(t=T, h=H, w=W):
    """``(t, h, w, 3) uint8`` smooth gradients that differ per frame (codecs keep them well)."""
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    frames = [
        np.stack([xx / w * 200 + 20 * i, yy / h * 200, np.full_like(xx, 60 + 30 * i)], axis=-1) for i in range(t)
    ]
    return np.clip(frames, 0, 255).astype(np.uint8)


def box_masks(t=T, h=H, w=W, top=6, left=8, size=10):
    """``(t, h, w) bool`` a box moving one pixel right per frame."""
    masks = np.zeros((t, h, w), dtype=bool)
    for i in range(t):
        masks[i, top : top + size, left + i : left + i + size] = True
    return masks


def clip_dirs(tmp_path, t=T):
    frames = save_frames(tmp_path / "rgbs", smooth_frames(t))
    masks = save_masks(tmp_path / "masks", box_masks(t))
    return frames, masks


def failing(frames, after):
    """Yield ``after`` frames, then raise: an interrupted renderer."""
    for i, frame in enumerate(frames):
        if i == after:
            raise RuntimeError("renderer crashed")
        yield frame


# ---------------------------------------------------------------- frames


def test_natural_sort_orders_numbers_by_value(tmp_path):
    assert sorted(["frame_10", "frame_2", "frame_1"], key=natural_key) == ["frame_1", "frame_2", "frame_10"]
    folder = tmp_path / "rgbs"
    folder.mkdir()
    for i in (10, 2, 1, 33):
        Image.fromarray(np.full((4, 6, 3), i, dtype=np.uint8)).save(folder / f"frame_{i}.png")
    (folder / "notes.txt").write_text("not a frame")
    (folder / ".hidden.png").write_bytes(b"junk")
    assert [int(f[0, 0, 0]) for f in iter_frames(folder)] == [1, 2, 10, 33]
    info = probe_frames(folder)
    assert (info.num_frames, info.height, info.width, info.fps) == (4, 4, 6, None)
    assert read_frames(folder, start=1, stop=3)[:, 0, 0, 0].tolist() == [2, 10]


def test_grayscale_palette_rgba_and_16bit_frames_become_rgb(tmp_path):
    folder = tmp_path / "rgbs"
    folder.mkdir()
    Image.fromarray(np.full((4, 6), 100, dtype=np.uint8)).save(folder / "a_0.png")
    Image.fromarray(np.full((4, 6, 4), (10, 20, 30, 0), dtype=np.uint8)).save(folder / "a_1.png")
    palette_image(np.full((4, 6), 1, dtype=np.uint8), [0, 0, 0, 200, 50, 5]).save(folder / "a_2.png")
    Image.fromarray(np.full((4, 6), 65535, dtype=np.uint16)).save(folder / "a_3.png")
    frames = read_frames(folder)
    assert frames.shape == (4, 4, 6, 3) and frames.dtype == np.uint8
    assert frames[0, 0, 0].tolist() == [100, 100, 100]
    assert frames[1, 0, 0].tolist() == [10, 20, 30]
    assert frames[2, 0, 0].tolist() == [200, 50, 5]
    assert frames[3, 0, 0].tolist() == [255, 255, 255]


@pytest.mark.parametrize("codec", ["libx264", "mpeg4"])
def test_video_round_trip(tmp_path, codec):
    frames = smooth_frames(t=6, h=H + 1, w=W + 1)  # odd sizes are padded to even ones
    path = tmp_path / "clip.mp4"
    assert write_video(path, iter(frames), fps=12.0, codec=codec) == 6
    info = probe_frames(path)
    assert (info.num_frames, info.height, info.width, info.fps) == (6, H + 2, W + 2, 12.0)
    back = read_frames(path)
    assert back.shape == (6, H + 2, W + 2, 3) and back.dtype == np.uint8
    assert np.abs(back[:, : H + 1, : W + 1].astype(int) - frames).mean() < 4.0
    window = read_frames(path, start=2, stop=4)
    np.testing.assert_array_equal(window, back[2:4])


def test_load_clip_from_video_with_index_masks(tmp_path):
    path = tmp_path / "clip.mp4"
    write_video(path, iter(smooth_frames()), fps=10.0)
    labels = np.zeros((T, H, W), dtype=np.uint8)
    labels[:, 2:8, 2:8] = 3
    labels[:, 12:20, 10:20] = 7
    folder = tmp_path / "labels"
    folder.mkdir()
    for i, lab in enumerate(labels):
        palette_image(lab, [0, 0, 0] + [255, 255, 255] * 255).save(folder / f"{i:05d}.png")
    clip = load_clip(video=path, masks=folder, mask_mode="index")
    assert clip.object_ids == (3, 7) and clip.fps == 10.0
    assert clip.frame_names == tuple(f"frame_{i:05d}" for i in range(T))
    np.testing.assert_array_equal(clip.modal_masks, np.stack([labels == 3, labels == 7]))


# ---------------------------------------------------------------- masks


def test_luminance_masks_use_brightness_not_palette_index(tmp_path):
    frames = save_frames(tmp_path / "rgbs", smooth_frames(2), suffix=".jpg")
    folder = tmp_path / "masks"
    folder.mkdir()
    for i in range(2):
        index = np.ones((H, W), dtype=np.uint8)  # index 1 = black background
        index[5:15, 5:15] = 0  # index 0 = white object, as in the giraffe clip
        index[0, 0] = 2  # a soft edge value: gray 200 is above the threshold
        index[0, 1] = 3  # gray 100 is below it
        palette = [255, 255, 255, 0, 0, 0, 200, 200, 200, 100, 100, 100]
        palette_image(index, palette).save(folder / f"frame_{i:03d}.png")
    clip = load_clip(frames=frames, masks=folder)
    expected = np.zeros((H, W), dtype=bool)
    expected[5:15, 5:15] = True
    expected[0, 0] = True
    assert clip.modal_masks.shape == (1, 2, H, W) and clip.object_ids == (1,)
    np.testing.assert_array_equal(clip.modal_masks[0, 1], expected)
    assert clip.frame_names == ("frame_000", "frame_001")


def test_masks_match_frames_by_stem_or_by_order():
    assert match_to_frames(["b", "a"], ["a", "b"], "masks") == [1, 0]
    assert match_to_frames(["f1", "f2"], ["m_1", "m_2"], "masks") == [0, 1]
    with pytest.raises(InputError, match="no masks named 'f2'"):
        match_to_frames(["f1", "f2"], ["f1", "x"], "masks")
    with pytest.raises(InputError, match=r"masks: 1 masks for 2 frames \(first frame without one: 'f2'\)"):
        match_to_frames(["f1", "f2"], ["f1"], "masks")


def test_index_masks_select_objects_in_order(tmp_path):
    labels = np.zeros((T, H, W), dtype=np.uint8)
    labels[:, :5, :5] = 1
    labels[:, 10:15, 10:15] = 2
    labels[2:, 18:22, 20:30] = 5  # appears from frame 2 on
    folder = tmp_path / "labels"
    folder.mkdir()
    for i, lab in enumerate(labels):
        Image.fromarray(lab).save(folder / f"frame_{i:03d}.png")
    names = [f"frame_{i:03d}" for i in range(T)]
    found = read_mask_folder(folder, names, (H, W), mode="index")
    assert found.object_ids == (1, 2, 5)
    picked = read_mask_folder(folder, names, (H, W), mode="index", object_ids=[5, 1])
    assert picked.object_ids == (5, 1)
    np.testing.assert_array_equal(picked.modal, np.stack([labels == 5, labels == 1]))
    with pytest.raises(InputError, match=r"object id 4 not found; present ids: \[1, 2, 5\]"):
        read_mask_folder(folder, names, (H, W), mode="index", object_ids=[4])


def test_mask_pngs_round_trip_through_per_object_folders(tmp_path):
    masks = np.stack([box_masks(), box_masks(top=1, left=1, size=4)])
    names = [f"frame_{i:03d}" for i in range(T)]
    folders = write_mask_pngs(tmp_path / "out", masks, [4, 9], names)
    assert [f.name for f in folders] == ["4", "9"]
    assert sorted(p.name for p in folders[0].iterdir()) == [f"{n}.png" for n in names]
    image = Image.open(folders[1] / "frame_000.png")
    assert image.mode == "L" and set(np.unique(np.asarray(image))) == {0, 255}
    back = read_mask_folder(tmp_path / "out", names, (H, W))
    assert back.object_ids == (4, 9)
    np.testing.assert_array_equal(back.modal, masks)


def test_rle_json_round_trip(tmp_path):
    modal = np.stack([box_masks(), box_masks(top=1, left=1, size=4)])
    modal[1, 2] = False  # object 9 absent from frame 2: stored as null
    amodal = modal | np.roll(modal, 3, axis=-1)
    names = [f"frame_{i:03d}" for i in range(T)]
    path = write_rle_json(tmp_path / "masks.json", names, [4, 9], modal=modal, amodal=amodal, category_ids=[2, 3])
    document = json.loads(path.read_text())
    assert document["size"] == [H, W] and document["frames"] == names
    assert document["objects"][1]["modal"][2] is None
    back = read_rle_json(path, names, (H, W))
    assert back.object_ids == (4, 9) and back.category_ids == (2, 3)
    np.testing.assert_array_equal(back.modal, modal)
    np.testing.assert_array_equal(back.amodal, amodal)

    frames = save_frames(tmp_path / "rgbs", smooth_frames())
    clip = load_clip(frames=frames, rle=path, object_ids=[9])
    assert clip.object_ids == (9,) and clip.category_ids == (3,)
    np.testing.assert_array_equal(clip.amodal_masks[0], amodal[1])


def test_sailvos_list_format_picks_the_video_of_the_frames_folder(tmp_path):
    def clip_entry(video, obj_id, shift):
        modal = box_masks(left=2 + shift)
        amodal = box_masks(left=shift, size=12)
        from amodal.data.io.rle import encode

        return {
            "obj_id": obj_id,
            "category_id": 5,
            "image_file_names": [f"{video}/images/{i:06d}.png" for i in range(T)],
            "image_ids": list(range(T)),
            "visible_mask": [encode(m) for m in modal],
            "segmentation": [encode(m) for m in amodal],
        }

    entries = [clip_entry("video000", 3, 0), clip_entry("video001", 3, 4), clip_entry("video001", 8, 6)]
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(entries))
    frames = save_frames(tmp_path / "video001" / "images", smooth_frames(), names=[f"{i:06d}" for i in range(T)])
    clip = load_clip(frames=frames, rle=path)
    assert clip.object_ids == (3, 8) and clip.category_ids == (5, 5)
    np.testing.assert_array_equal(clip.modal_masks[1], box_masks(left=8))
    np.testing.assert_array_equal(clip.amodal_masks[1], box_masks(left=6, size=12))
    with pytest.raises(InputError, match=r"holds 2 videos \(video000/images, video001/images\)"):
        read_rle_json(path, frames_dir=tmp_path / "elsewhere")


def test_depth_from_png_npy_folder_and_single_npy(tmp_path):
    frames, masks = clip_dirs(tmp_path)
    depth = (np.arange(T * H * W).reshape(T, H, W) % 4000).astype(np.uint16)
    png_dir = tmp_path / "depth_png"
    npy_dir = tmp_path / "depth_npy"
    png_dir.mkdir()
    npy_dir.mkdir()
    for i in range(T):
        Image.fromarray(depth[i]).save(png_dir / f"frame_{i:03d}.png")
        np.save(npy_dir / f"frame_{i:03d}.npy", depth[i].astype(np.float32) / 7)
    np.save(tmp_path / "depth.npy", depth)
    np.testing.assert_array_equal(load_clip(frames=frames, masks=masks, depth=png_dir).depth, depth)
    np.testing.assert_allclose(load_clip(frames=frames, masks=masks, depth=npy_dir).depth, depth / 7, rtol=1e-6)
    clip = load_clip(frames=frames, masks=masks, depth=tmp_path / "depth.npy", fps=5)
    assert clip.depth.dtype == np.float32 and clip.fps == 5.0
    np.testing.assert_array_equal(clip.depth, depth)


def test_amodal_ground_truth_folder(tmp_path):
    frames, masks = clip_dirs(tmp_path)
    full = box_masks(size=14)
    amodal = save_masks(tmp_path / "amodal", full)
    clip = load_clip(frames=frames, masks=masks, amodal=amodal)
    np.testing.assert_array_equal(clip.amodal_masks[0], full)


# ---------------------------------------------------------------- bad input


def test_bad_frames_raise_input_error_naming_the_file(tmp_path):
    frames, masks = clip_dirs(tmp_path)
    (frames / "frame_001.png").write_bytes(b"\x89PNG not really")
    with pytest.raises(InputError, match=r"frame_001\.png: cannot read this image"):
        load_clip(frames=frames, masks=masks)

    sizes = save_frames(tmp_path / "sizes", smooth_frames(3))
    Image.fromarray(np.zeros((H, W + 2, 3), dtype=np.uint8)).save(sizes / "frame_002.png")
    with pytest.raises(InputError, match=rf"frame_002\.png: frame size {W + 2}x{H} differs"):
        read_frames(sizes)

    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputError, match=r"empty: no frames found"):
        read_frames(empty)
    with pytest.raises(InputError, match=r"missing: not found"):
        load_clip(frames=tmp_path / "missing", masks=masks)


def test_bad_videos_raise_input_error_naming_the_file(tmp_path):
    import av

    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 20)
    with pytest.raises(InputError, match=r"junk\.mp4: cannot open this video"):
        read_frames(junk)
    empty = tmp_path / "empty.mp4"
    with av.open(str(empty), "w") as container:
        stream = container.add_stream("mpeg4", rate=8)
        stream.width, stream.height, stream.pix_fmt = 32, 32, "yuv420p"
        container.start_encoding()
    with pytest.raises(InputError, match=r"empty\.mp4: has no video stream, so no frames"):
        load_clip(video=empty, masks=tmp_path)
    with pytest.raises(InputError, match=r"frames= takes a folder of images"):
        load_clip(frames=junk, masks=tmp_path)
    with pytest.raises(InputError, match=r"exactly one of frames="):
        load_clip(masks=tmp_path)


def test_bad_masks_raise_input_error_naming_the_file(tmp_path):
    frames, masks = clip_dirs(tmp_path)
    (masks / "frame_003.png").unlink()
    with pytest.raises(InputError, match=r"masks: 3 masks for 4 frames \(first frame without one: 'frame_003'\)"):
        load_clip(frames=frames, masks=masks)

    Image.fromarray(np.zeros((H + 1, W), dtype=np.uint8)).save(masks / "frame_003.png")
    with pytest.raises(InputError, match=rf"frame_003\.png: mask is {W}x{H + 1} but the frames are {W}x{H}"):
        load_clip(frames=frames, masks=masks)

    blank = save_masks(tmp_path / "blank", np.zeros((T, H, W), dtype=bool))
    with pytest.raises(InputError, match=r"blank: every mask of object 1 is empty"):
        load_clip(frames=frames, masks=blank)

    colour = tmp_path / "colour"
    colour.mkdir()
    for i in range(T):
        Image.fromarray(np.full((H, W, 3), (255, 0, 0), dtype=np.uint8)).save(colour / f"frame_{i:03d}.png")
    with pytest.raises(InputError, match=r"frame_000\.png: index mode needs palette or grayscale"):
        load_clip(frames=frames, masks=colour, mask_mode="index")
    with pytest.raises(InputError, match=r"mask_mode must be one of"):
        load_clip(frames=frames, masks=colour, mask_mode="palette")
    with pytest.raises(InputError, match=r"luminance masks hold one object"):
        load_clip(frames=frames, masks=blank, object_ids=[2])


def test_bad_rle_and_depth_raise_input_error_naming_the_file(tmp_path):
    frames, masks = clip_dirs(tmp_path)
    broken = tmp_path / "broken.json"
    broken.write_text('{"frames": [')
    with pytest.raises(InputError, match=r"broken\.json: not valid JSON"):
        load_clip(frames=frames, rle=broken)

    names = [f"frame_{i:03d}" for i in range(T)]
    small = write_rle_json(tmp_path / "small.json", names, [1], modal=box_masks(h=H - 4)[None])
    with pytest.raises(InputError, match=r"small\.json: object 1 modal frame 'frame_000': mask is"):
        load_clip(frames=frames, rle=small)

    other = tmp_path / "other.json"
    other.write_text(json.dumps({"annotations": []}))
    with pytest.raises(InputError, match=r"other\.json: not an RLE JSON this reader knows"):
        load_clip(frames=frames, rle=other)

    depth = tmp_path / "depth"
    depth.mkdir()
    for i in range(T):
        np.save(depth / f"frame_{i:03d}.npy", np.ones((H, W + 1), dtype=np.float32))
    with pytest.raises(InputError, match=rf"frame_000\.npy: depth is {W + 1}x{H} but the frames are {W}x{H}"):
        load_clip(frames=frames, masks=masks, depth=depth)
    np.save(tmp_path / "nan.npy", np.full((T, H, W), np.nan, dtype=np.float32))
    with pytest.raises(InputError, match=r"nan\.npy: depth holds NaN"):
        read_depth(tmp_path / "nan.npy", names, (H, W))
    rgb_depth = save_frames(tmp_path / "rgb_depth", smooth_frames())
    with pytest.raises(InputError, match=r"frame_000\.png: depth PNGs must be single-channel"):
        read_depth(rgb_depth, names, (H, W))


# ---------------------------------------------------------------- writers


@pytest.mark.parametrize("name", ["out.gif", "out.mp4"])
def test_animation_writers_leave_nothing_when_the_iterator_fails(tmp_path, name):
    path = tmp_path / name
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_animation(path, failing(smooth_frames(), after=2), fps=8)
    assert list(tmp_path.iterdir()) == []

    path.write_bytes(b"previous output")
    with pytest.raises(RuntimeError):
        write_animation(path, failing(smooth_frames(), after=2), fps=8)
    assert path.read_bytes() == b"previous output"
    assert list(tmp_path.iterdir()) == [path]


def test_folder_writers_leave_nothing_when_they_fail(tmp_path):
    out = tmp_path / "pngs"
    with pytest.raises(RuntimeError):
        write_frame_pngs(out, failing(smooth_frames(), after=2))
    assert list(tmp_path.iterdir()) == []
    assert write_frame_pngs(out, iter(smooth_frames()), names=list("abcd")) == T
    np.testing.assert_array_equal(read_frames(out), smooth_frames())
    with pytest.raises(InputError, match=r"masks has 1 objects but 2 object ids"):
        write_mask_pngs(tmp_path / "masks", box_masks()[None], [1, 2], list("abcd"))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pngs"]


def test_gif_writer_streams_frames_at_the_given_rate(tmp_path):
    frames = smooth_frames()
    assert write_gif(tmp_path / "a.gif", iter(frames), fps=10) == T
    gif = Image.open(tmp_path / "a.gif")
    assert gif.n_frames == T and gif.info["duration"] == 100 and gif.info["loop"] == 0
    gif.seek(3)
    assert np.abs(np.asarray(gif.convert("RGB")).astype(int) - frames[3]).mean() < 4.0
    with pytest.raises(InputError, match=r"bad\.gif: frame 1 is"):
        write_gif(tmp_path / "bad.gif", [frames[0], frames[1, :10]], fps=10)
    with pytest.raises(InputError, match=r"out\.webm: cannot write"):
        write_animation(tmp_path / "out.webm", iter(frames), fps=10)


# ---------------------------------------------------------------- overlays


def test_overlay_colours_visible_and_hidden_parts_apart():
    frame = np.full((H, W, 3), 128, dtype=np.uint8)
    modal = np.zeros((2, H, W), dtype=bool)
    modal[0, 4:14, 4:12] = True
    modal[1, 4:14, 20:28] = True
    amodal = modal.copy()
    amodal[0, 14:22, 4:12] = True  # object 1 is hidden below row 14
    out = overlay_frame(frame, modal, amodal, legend=False)
    assert out.shape == frame.shape and out.dtype == np.uint8
    assert (out[0, 0] == 128).all() and (out[2, 16] == 128).all()  # untouched outside every mask
    inside_1, inside_2 = out[8, 8].astype(int), out[8, 24].astype(int)  # modal interiors
    expected_1 = np.rint(0.55 * 128 + 0.45 * np.array(OBJECT_COLORS[0])).astype(int)
    np.testing.assert_array_equal(inside_1, expected_1)
    assert np.abs(inside_1 - inside_2).sum() > 100  # objects get distinct hues
    hidden = out[15:20, 6:10].reshape(-1, 3).astype(int)
    assert not any((px == inside_1).all() for px in hidden)  # hidden part looks unlike the visible part
    assert len({tuple(px) for px in hidden}) >= 2  # hatched: at least two tones
    np.testing.assert_array_equal(out[4, 6], OBJECT_COLORS[0])  # modal outline in the object's colour
    np.testing.assert_array_equal(overlay_frame(frame, modal[0], None, legend=False)[0], out[0])


def test_overlay_legend_is_a_strip_below_the_frame_never_over_it():
    frame = np.full((120, 160, 3), 128, dtype=np.uint8)
    modal = np.zeros((5, 120, 160), dtype=bool)
    for k in range(5):  # objects everywhere, corners included: nowhere for an inset legend to go
        modal[k, 24 * k : 24 * k + 24] = True
    amodal = modal | np.roll(modal, 6, axis=1)
    plain = overlay_frame(frame, modal, amodal, legend=False)
    with_legend = overlay_frame(frame, modal, amodal, object_ids=[1, 2, 3, 4, 5])
    assert with_legend.shape[1] == 160 and with_legend.shape[0] > 120 + 10
    np.testing.assert_array_equal(with_legend[:120], plain)  # the picture is untouched
    strip = with_legend[120:]
    for k in range(5):  # a swatch of every object's colour is in the strip
        assert (np.abs(strip.astype(int) - OBJECT_COLORS[k]).sum(-1) < 120).any(), k


def test_small_clips_are_enlarged_and_the_legend_sits_below_every_panel():
    frames = np.full((2, 64, 96, 3), 128, dtype=np.uint8)
    modal = np.zeros((1, 2, 64, 96), dtype=bool)
    modal[0, 0, :30, :40] = True  # top left in the first frame
    modal[0, 1, 34:, 50:] = True  # bottom right in the second
    clip = Clip(frames=frames, modal_masks=modal, amodal_masks=modal)
    assert display_scale(64) == 4 and display_scale(128) == 2 and display_scale(256) == 1 and display_scale(720) == 1
    drawn = list(overlay_frames(clip, modal, panels=True))
    plain = list(overlay_frames(clip, modal, panels=True, legend=False))
    for with_legend, without in zip(drawn, plain):
        assert without.shape[0] > 4 * 64 and without.shape[1] > 4 * 4 * 96  # four panels at 4x
        assert with_legend.shape[1] == without.shape[1] and with_legend.shape[0] > without.shape[0]
        np.testing.assert_array_equal(with_legend[: without.shape[0]], without)  # the legend covers nothing
    np.testing.assert_array_equal(drawn[0][without.shape[0]:], drawn[1][without.shape[0]:])  # the same strip
    # Nearest-neighbour enlargement: the input panel is the frame with every pixel a 4x4 block.
    one = next(overlay_frames(Clip(frames=smooth_frames(1), modal_masks=box_masks(1)[None]), legend=False, scale=3))
    np.testing.assert_array_equal(one, overlay_frame(enlarge(smooth_frames(1)[0], 3), enlarge(box_masks(1), 3, (1, 2)),
                                                     legend=False))


def test_uncertainty_is_bright_where_samples_disagree_with_a_labelled_colour_bar():
    np.testing.assert_allclose(uncertainty(np.array([0.0, 1.0, 0.5, 1 / 3])), [0.0, 0.0, 1.0, 8 / 9], atol=1e-6)
    frame = np.full((100, 200, 3), 40, dtype=np.uint8)
    frequency = np.zeros((2, 100, 200), dtype=np.float32)
    frequency[0, :, :50] = 1.0  # every sample marks it: certain
    frequency[1, :, 100:150] = 0.5  # half of them: as uncertain as it gets
    image = uncertainty_frame(frame, frequency)
    assert image.shape[1] == 200 and image.shape[0] > 100 + 20  # the colour bar is below the picture
    picture = image[:100]
    np.testing.assert_array_equal(picture[:, :50], frame[:, :50])  # agreement (f = 1) shows nothing
    np.testing.assert_array_equal(picture[:, 50:100], frame[:, 50:100])  # nor does agreement on f = 0
    assert picture[:, 100:150].astype(int).sum(-1).min() > 3 * 40 + 150  # disagreement is bright
    without = uncertainty_frame(frame, frequency, colorbar=False)
    np.testing.assert_array_equal(without, picture)
    assert "samples agree" in UNCERTAINTY_LABEL and "split evenly" in UNCERTAINTY_LABEL
    # The label is drawn: the strip with it differs from one without it.
    assert not np.array_equal(colorbar_strip(200, UNCERTAINTY_LABEL, size=12)[-12:], colorbar_strip(200, None, size=12)[-12:])
    with pytest.raises(InputError, match=r"\[0, 1\]"):
        uncertainty_frame(frame, frequency * 3)


def test_davis_label_images_follow_the_stated_overlap_rule(tmp_path):
    modal = np.zeros((3, 8, 8), bool)
    amodal = np.zeros((3, 8, 8), bool)
    modal[0, 0:4, 0:4] = True  # object 1 visible top left
    amodal[0, 0:6, 0:6] = True  # ... hidden down to row 6
    modal[1, 4:8, 4:8] = True  # object 2 visible bottom right, over object 1's hidden part
    amodal[1] = modal[1]
    amodal[2, 5:8, 0:6] = True  # object 3 entirely hidden, overlapping object 1's hidden part
    labels = label_image(modal, amodal)
    assert labels[1, 1] == 1 and labels[6, 6] == 2
    assert labels[4, 4] == 2  # visible object 2 beats object 1's hidden part
    assert labels[5, 1] == 1  # two hidden parts: the smaller index
    assert labels[7, 1] == 3 and labels[0, 7] == 0
    write_label_png(tmp_path / "00000.png", labels)
    image = Image.open(tmp_path / "00000.png")
    assert image.mode == "P" and image.getpalette()[3:12] == [128, 0, 0, 0, 128, 0, 128, 128, 0]  # DAVIS colours
    back = read_mask_folder(tmp_path, ["00000"], mode="index")
    assert back.object_ids == (1, 2, 3)
    np.testing.assert_array_equal(back.modal[:, 0], labels[None] == np.array([1, 2, 3])[:, None, None])


def test_boundary_is_the_ring_inside_the_mask():
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:8, 2:8] = True
    ring = boundary(mask, 2)
    assert ring.sum() == 36 - 4 and not ring[4:6, 4:6].any() and (ring <= mask).all()


def test_side_by_side_and_heatmap():
    frame = smooth_frames(1)[0]
    mask = box_masks(1)[0]
    strip = side_by_side([frame, mask, mask.astype(np.float32) * 0.5], ["input", "mask", "half"], gap=4)
    assert strip.shape[1] == 3 * W + 8 and strip.shape[0] > H and strip.dtype == np.uint8
    label_h = strip.shape[0] - H
    np.testing.assert_array_equal(strip[label_h:, :W], frame)
    np.testing.assert_array_equal(strip[label_h:, W + 4 : 2 * W + 4, 0], mask.astype(np.uint8) * 255)
    with pytest.raises(InputError, match="one label per panel"):
        side_by_side([frame], ["a", "b"])

    frequency = np.zeros((H, W), dtype=np.float32)
    frequency[mask] = 1.0
    heat = heatmap_frame(frame, frequency, colorbar=False)
    np.testing.assert_array_equal(heat[~mask], frame[~mask])
    assert np.abs(heat[mask].astype(int) - frame[mask]).mean() > 20
    with pytest.raises(InputError, match=r"frequency must hold finite values in \[0, 1\]"):
        heatmap_frame(frame, frequency * 2)


def test_render_overlay_video_to_gif_and_mp4(tmp_path):
    modal = box_masks()[None]
    clip = Clip(frames=smooth_frames(), modal_masks=modal, amodal_masks=modal | np.roll(modal, 4, axis=-2), fps=6)
    gif = render_overlay_video(clip, tmp_path / "o.gif", pred_amodal=modal, panels=True)
    image = Image.open(gif)
    assert image.n_frames == T and image.width > 4 * W  # input | modal | amodal | ground truth
    mp4 = render_overlay_video(clip, tmp_path / "o.mp4", max_width=W // 2)
    info = probe_frames(mp4)
    assert (info.num_frames, info.width, info.fps) == (T, W // 2, 6.0)


def test_overlay_command(tmp_path):
    import argparse

    from amodal.cli import overlay as overlay_cli

    frames, masks = clip_dirs(tmp_path)
    parser = argparse.ArgumentParser()
    overlay_cli.register(parser.add_subparsers())
    out = tmp_path / "o.gif"
    args = parser.parse_args(["overlay", "--frames", str(frames), "--masks", str(masks), "--out", str(out)])
    assert args.func(args) == 0 and Image.open(out).n_frames == T
    args = parser.parse_args(["overlay", "--frames", str(frames), "--masks", str(masks), "--out", str(out)])
    with pytest.raises(InputError, match=r"o.gif: exists; choose a new file name or pass --overwrite"):
        args.func(args)  # an existing file is replaced only on request
    args = parser.parse_args(["overlay", "--frames", str(frames), "--masks", str(masks), "--out", str(out), "--overwrite"])
    assert args.func(args) == 0
    args = parser.parse_args(["overlay", "--frames", str(frames), "--masks", str(tmp_path / "nope"), "--out", str(tmp_path / "p.gif")])
    with pytest.raises(InputError, match=r"nope: not found \(given as masks=\)"):
        args.func(args)
    config = OverlayConfig(out=str(tmp_path / "c.mp4"), frames=str(frames), masks=str(masks), fps=4.0)
    assert probe_frames(render_overlay_files(config)).fps == 4.0
    amodal = save_masks(tmp_path / "amodal", box_masks(size=14))
    config = OverlayConfig(
        out=str(tmp_path / "p.gif"), frames=str(frames), masks=str(masks), amodal=str(amodal), panels=True
    )
    # input | modal | amodal, each enlarged to at least 256 pixels high (8x for this 24-pixel clip)
    assert Image.open(render_overlay_files(config)).width == 3 * W * display_scale(H) + 8


def test_an_object_keeps_its_colour_when_drawn_with_fewer_objects():
    from amodal.viz.overlay import object_color, overlay_frame

    frame = np.zeros((40, 60, 3), np.uint8)
    masks = np.zeros((3, 40, 60), bool)
    masks[0, 2:10, 2:10] = masks[1, 15:25, 15:25] = masks[2, 30:38, 40:50] = True
    every = overlay_frame(frame, masks, object_ids=(1, 2, 7), legend=False)
    only_last = overlay_frame(frame, masks[2:], object_ids=(7,), legend=False)
    assert np.array_equal(every[30:38, 40:50], only_last[30:38, 40:50])
    assert object_color(7) != object_color(2)
