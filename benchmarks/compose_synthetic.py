"""Scene re-composition against the world's own render of the edited scene.

Static-camera, shadow-free synthetic scenes (the world can then render the edit exactly: its
true background and each object alone, moved, composited by depth). Per scene the most visible
object moves ``--shift`` of the frame width to the right. Rows, PSNR in dB over the pixels the
edit changes (and over the whole frame):

- ``paste``: the moved object's true appearance pasted over the video (its old place still shows it);
- ``compose, true layers``: ``amodal.compose.recompose`` with every object's true full appearance
  (the plate and the compositing alone);
- ``compose, default-completion``: layers from the bundled completion model given the true amodal masks;
- ``compose, default + default-completion``: the whole system (stage-1 masks, then stage 2);
- the plate on pixels no frame shows, filled from the border or painted by ``default-completion``
  (a one-object clip: the visible background, the whole frame as its amodal mask)::

    python benchmarks/compose_synthetic.py --scenes 10 --json runs/compose_synthetic.json
"""

from __future__ import annotations

from common import Table, make_parser, set_threads, write_rows


def build_parser():
    parser = make_parser(__doc__, "threads", "json")
    parser.add_argument("--scenes", type=int, default=10, help="synthetic scenes (seeds 1000, 1001, ...)")
    parser.add_argument("--frames", type=int, default=16, help="frames per scene")
    parser.add_argument("--size", default="64x128", help="HxW of the scenes")
    parser.add_argument("--shift", type=float, default=0.15, help="how far the object moves, a fraction of the width")
    return parser


def psnr(a, b, where):
    import numpy as np

    mse = ((a.astype(np.float64) - b.astype(np.float64)) ** 2)[where].mean()
    return float(10 * np.log10(255**2 / max(mse, 1e-10)))


def move(x, dx, fill):
    import numpy as np

    out = np.full_like(x, fill)
    axis = x.ndim - (2 if x.shape[-1] == 3 and x.dtype == np.uint8 else 1)
    src, dst = [slice(None)] * x.ndim, [slice(None)] * x.ndim
    src[axis], dst[axis] = slice(0, x.shape[axis] - dx), slice(dx, None)
    out[tuple(dst)] = x[tuple(src)]
    return out


def main() -> None:
    args = build_parser().parse_args()
    set_threads(args.threads)
    import numpy as np

    from amodal.clip import Clip
    from amodal.completion.pipeline import ContentCompletionPipeline
    from amodal.compose import Edit, Keyframe, ObjectEdit, completion_painter, recompose
    from amodal.data.synth.config import SynthConfig
    from amodal.data.synth.render import composite, render_plate, render_scene
    from amodal.data.synth.scene import plan_scene
    from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig

    height, width = (int(v) for v in args.size.split("x"))
    config = SynthConfig(height=height, width=width, num_frames=args.frames, camera_motion=False, shadows=False)
    completer = ContentCompletionPipeline.from_pretrained("default-completion")
    completer.config = type(completer.config)(**{**completer.config.__dict__, "progress": False})
    segmenter = AmodalSegmentationPipeline.from_pretrained("default", SegmentationConfig(progress=False))

    paint = completion_painter(completer)

    def layers_of(rgba_rgb, masks):
        return np.concatenate([rgba_rgb, masks[..., None].astype(np.uint8) * 255], axis=-1)

    names = ["paste", "compose, true layers", "compose, default-completion", "compose, default + default-completion"]
    sums = {n: [] for n in names}
    plate_rows = {"border": [], "default-completion": []}
    table = Table([("scene", "d"), *[(n, ".2f") for n in names], ("plate never-seen, border", ".2f"),
                   ("plate never-seen, model", ".2f")])
    for s in range(args.scenes):
        scene = plan_scene(config, np.random.Generator(np.random.PCG64(1000 + s)))
        r = render_scene(scene, height, width)
        true_plate = render_plate(scene, height, width)
        k = int(r.modal_masks.sum(axis=(1, 2, 3)).argmax())
        dx = int(round(args.shift * width))
        rgb, z = r.amodal_rgb.copy(), r.object_depth.copy()
        rgb[k], z[k] = move(rgb[k], dx, 255), move(z[k], dx, np.inf)
        truth, _, _ = composite(true_plate, rgb, z)
        changed = (truth != r.frames).any(axis=-1)
        ids = tuple(range(1, len(rgb) + 1))
        edit = Edit((ObjectEdit(ids[k], (Keyframe(0, dx=dx),)),))
        depth = (1.0 / r.depth).astype(np.float32)
        clip = Clip(frames=r.frames, modal_masks=r.modal_masks, amodal_masks=r.amodal_masks, depth=depth, object_ids=ids)
        paste = r.frames.copy()
        alpha = move(r.amodal_masks[k], dx, False)
        paste[alpha] = move(r.amodal_rgb[k], dx, 255)[alpha]
        ours_true = recompose(r.frames, r.modal_masks, layers_of(r.amodal_rgb, r.amodal_masks), ids, edit, depth=depth)
        done = completer(clip, r.amodal_masks)
        ours_model = recompose(r.frames, r.modal_masks, done.rgba, ids, edit, depth=depth)
        predicted = segmenter(clip).amodal_masks
        ours_system = recompose(r.frames, r.modal_masks, completer(clip, predicted).rgba, ids, edit, depth=depth)
        painted = recompose(r.frames, r.modal_masks, layers_of(r.amodal_rgb, r.amodal_masks), ids, edit, depth=depth,
                            paint=paint)
        values = [psnr(x, truth, changed) for x in (paste, ours_true.frames, ours_model.frames, ours_system.frames)]
        for n, v in zip(names, values):
            sums[n].append(v)
        never = ours_true.never_seen
        border = psnr(ours_true.plate, true_plate, never) if never.any() else float("nan")
        model = psnr(painted.plate, true_plate, never) if never.any() else float("nan")
        plate_rows["border"].append(border)
        plate_rows["default-completion"].append(model)
        table.row(s, *values, border, model)
    means = {n: float(np.mean(v)) for n, v in sums.items()}
    plates = {n: float(np.nanmean(v)) for n, v in plate_rows.items()}
    print("mean: " + "  ".join(f"{n} {v:.2f}" for n, v in means.items()))
    print("plate where no frame shows it: " + "  ".join(f"{n} {v:.2f}" for n, v in plates.items()))
    write_rows(args.json, {"per_scene": sums, "mean": means, "plate_never_seen": plates}, args)


if __name__ == "__main__":
    main()
