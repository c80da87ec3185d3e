"""Scene re-composition: edits, layers, the background plate, and the edited scene against the world's own truth."""

import json

import numpy as np
import pytest

from amodal.cli import main
from amodal.compose import Edit, Keyframe, ObjectEdit, fill_from_border, make_plate, motion, read_edit, recompose, transform_layer
from amodal.data.synth.config import SynthConfig
from amodal.data.synth.render import composite, render_plate, render_scene
from amodal.data.synth.scene import plan_scene
from amodal.errors import InputError


def psnr(a, b, where=None):
    diff = (a.astype(np.float64) - b.astype(np.float64)) ** 2
    mse = diff[where].mean() if where is not None else diff.mean()
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))




def world(seed=3, frames=6):
    """A static-camera, shadow-free synthetic scene: the rendered clip, its true plate and its object layers."""
    config = SynthConfig(height=48, width=96, num_frames=frames, camera_motion=False, shadows=False, num_objects=(2, 3))
    scene = plan_scene(config, np.random.Generator(np.random.PCG64(seed)))
    return render_scene(scene, config.height, config.width), render_plate(scene, config.height, config.width)


def move(x, dx, fill):
    """Shift ``(..., H, W[, C])`` arrays ``dx`` pixels right (integer), ``fill`` entering from the left."""
    out = np.full_like(x, fill)
    axis = x.ndim - (2 if x.dtype == np.uint8 and x.shape[-1] == 3 else 1)
    src = [slice(None)] * x.ndim
    dst = [slice(None)] * x.ndim
    src[axis], dst[axis] = slice(0, x.shape[axis] - dx), slice(dx, None)
    out[tuple(dst)] = x[tuple(src)]
    return out


def test_motion_interpolates_and_holds():
    edit = ObjectEdit(1, (Keyframe(2, dx=0), Keyframe(6, dx=8, dy=-4, scale=2.0)))
    m = motion(edit, 9)
    np.testing.assert_allclose(m[:, 0], [0, 0, 0, 2, 4, 6, 8, 8, 8])
    np.testing.assert_allclose(m[4], [4, -2, 1.5])
    np.testing.assert_allclose(motion(None, 3), [[0, 0, 1]] * 3)


def test_layers_move_exactly_and_scale_about_their_centre():
    layer = np.zeros((20, 30, 4), np.uint8)
    layer[5:9, 4:10] = (200, 100, 50, 255)
    moved = transform_layer(layer, (7, 7), 5, 3, 1.0)
    np.testing.assert_array_equal(moved[8:12, 9:15], layer[5:9, 4:10])  # an integer move is exact
    assert moved[..., 3].sum() == layer[..., 3].sum()
    grown = transform_layer(layer, (7, 7), 0, 0, 2.0)
    assert abs(int((grown[..., 3] > 127).sum()) - 4 * 24) <= 12  # twice the side: four times the area
    assert (grown[grown[..., 3] > 250][:, :3] == (200, 100, 50)).all()  # no dark fringe from the transparent surround


def test_plate_takes_the_nearest_frame_that_shows_the_pixel_and_fills_the_rest():
    frames = np.tile(np.arange(10, dtype=np.uint8)[None, None, :, None] * 20, (3, 6, 1, 3))
    covered = np.zeros((3, 6, 10), bool)
    covered[0, :, 2:4] = True  # an object at columns 2-3 in frame 0, 6-7 later
    covered[1:, :, 6:8] = True
    frames[covered] = 255
    plate, never = make_plate(frames, covered, covered)
    np.testing.assert_array_equal(plate[0, :, 2:4], np.tile([40, 60], (6, 1))[..., None].repeat(3, -1))
    assert not never.any()
    flat = np.full((8, 8, 3), 90, np.uint8)
    hole = np.zeros((8, 8), bool)
    hole[2:6, 2:6] = True
    assert (fill_from_border(np.where(hole[..., None], 0, flat).astype(np.uint8), hole) == 90).all()


def test_an_empty_edit_gives_the_video_back():
    rendered, _ = world()
    layers = np.concatenate([rendered.amodal_rgb, rendered.amodal_masks[..., None].astype(np.uint8) * 255], axis=-1)
    out = recompose(rendered.frames, rendered.modal_masks, layers, (1, 2, 3)[: len(layers)], Edit(), hole_margin=0)
    assert psnr(out.frames, rendered.frames) > 40
    np.testing.assert_array_equal(out.modal_masks, rendered.modal_masks)


def test_a_moved_object_against_the_world_s_own_render():
    rendered, plate = world()
    k = int(rendered.modal_masks.sum(axis=(1, 2, 3)).argmax())  # the most visible object moves
    dx = 12
    rgb, z = rendered.amodal_rgb.copy(), rendered.object_depth.copy()
    rgb[k], z[k] = move(rgb[k], dx, 255), move(z[k], dx, np.inf)
    truth, truth_modal, _ = composite(plate, rgb, z)  # the world composites the moved object by depth
    ids = tuple(range(1, len(rgb) + 1))
    layers = np.concatenate([rendered.amodal_rgb, rendered.amodal_masks[..., None].astype(np.uint8) * 255], axis=-1)
    edit = Edit((ObjectEdit(ids[k], (Keyframe(0, dx=dx),)),))
    depth = 1 / np.where(np.isfinite(rendered.depth), rendered.depth, 1e6)
    out = recompose(rendered.frames, rendered.modal_masks, layers, ids, edit, depth=depth)
    changed = (truth != rendered.frames).any(axis=-1)
    naive = rendered.frames.copy()  # the moved object pasted over the video: its old place still shows it
    alpha = move(rendered.amodal_masks[k], dx, False)
    naive[alpha] = move(rendered.amodal_rgb[k], dx, 255)[alpha]
    ours, baseline = psnr(out.frames, truth, changed), psnr(naive, truth, changed)
    print(f"moved object: {ours:.2f} dB against {baseline:.2f} dB for pasting over the video")
    assert ours > baseline + 6, (ours, baseline)
    assert ours > 22, ours
    agree = (out.modal_masks[k] == truth_modal[k]).mean()
    assert agree > 0.99


def test_read_edit_errors(tmp_path):
    path = tmp_path / "edit.json"
    for text, message in (
        ("{", "not valid JSON"),
        ('{"objects": {"9": {}}}', "not an object of the clip"),
        ('{"objects": {"1": {"keyframes": [{"frame": 7}]}}}', "outside the clip"),
        ('{"objects": {"1": {"keyframes": [{"frame": 0, "scale": 0}]}}}', "scale must be"),
        ('{"objects": {"1": {"depth": -1}}}', "depth must be"),
        ('{"objects": {"1": {"move": 3}}}', "expected keys"),
    ):
        path.write_text(text)
        with pytest.raises(InputError, match=message):
            read_edit(path, (1, 2), 5)
    path.write_text('{"objects": {"2": {"keyframes": [{"frame": 4, "dx": 3}, {"frame": 0}], "depth": 0}}}')
    edit = read_edit(path, (1, 2), 5)
    assert [k.frame for k in edit.objects[0].keyframes] == [0, 4] and edit.objects[0].depth == 0


def test_compose_command_end_to_end(tmp_path, capsys):
    from PIL import Image

    rendered, _ = world(frames=4)
    names = [f"frame_{t:03d}" for t in range(4)]
    for folder in ("frames", "completed"):
        (tmp_path / folder).mkdir()
    for t, name in enumerate(names):
        Image.fromarray(rendered.frames[t]).save(tmp_path / "frames" / f"{name}.png")
    for k in range(len(rendered.modal_masks)):
        (tmp_path / "masks" / str(k + 1)).mkdir(parents=True)
        (tmp_path / "completed" / str(k + 1) / "rgba").mkdir(parents=True)
        for t, name in enumerate(names):
            Image.fromarray(rendered.modal_masks[k, t].astype(np.uint8) * 255).save(tmp_path / "masks" / str(k + 1) / f"{name}.png")
            rgba = np.concatenate([rendered.amodal_rgb[k, t], rendered.amodal_masks[k, t, ..., None].astype(np.uint8) * 255], -1)
            Image.fromarray(rgba).save(tmp_path / "completed" / str(k + 1) / "rgba" / f"{name}.png")
    edit = tmp_path / "edit.json"
    edit.write_text(json.dumps({"objects": {"1": {"keyframes": [{"frame": 0}, {"frame": 3, "dx": 10}], "depth": 0},
                                            "2": {"remove": True}}}))
    args = ["compose", "--frames", str(tmp_path / "frames"), "--masks", str(tmp_path / "masks"),
            "--completed", str(tmp_path / "completed"), "--edit", str(edit)]
    assert main([*args, "--out", str(tmp_path / "out")]) == 0
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(".")) == ["amodal", "frames", "masks", "plate", "summary.json", "video.mp4"]
    assert not any(np.asarray(Image.open(out / "masks" / "2" / f"{n}.png")).any() for n in names)  # removed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["edited"] == [1, 2]
    painted = tmp_path / "painted"
    assert main([*args, "--paint-with", "default-completion", "--out", str(painted)]) == 0
    assert json.loads((painted / "summary.json").read_text())["settings"]["paint_with"] == "default-completion"
    never = summary["never_seen_pixels"]
    plate = lambda folder: np.stack([np.asarray(Image.open(folder / "plate" / f"{n}.png")) for n in names])
    assert never == 0 or not np.array_equal(plate(out), plate(painted))  # the model painted what no frame shows
    capsys.readouterr()
    assert main([*args, "--out", str(edit), "--overwrite"]) == 2  # never onto an input
    assert json.loads(edit.read_text())["objects"]["2"] == {"remove": True}
    (tmp_path / "completed" / "1" / "rgba" / f"{names[0]}.png").unlink()
    assert main([*args, "--out", str(tmp_path / "bad")]) == 2
    assert "no 1/rgba/frame_000.png" in capsys.readouterr().err and not (tmp_path / "bad").exists()
