"""``amodal segment``: amodal masks for every object of a video on disk, with outputs people can open.

Outputs in the run folder (written to a temporary folder and renamed into
place when complete, so an interrupted run leaves nothing half-written):

- ``masks/<object_id>/<frame>.png``: amodal masks, 0/255;
- ``amodal.json``: modal and amodal masks as COCO RLEs, one entry per object
  (the per-object format of ``docs/io.md``);
- ``coco_instances.json``: COCO instance annotations of the amodal masks (one image per frame),
  which ``pycocotools.coco.COCO`` loads;
- ``predictions_sailvos.json``: the reference prediction format
  ``{"(frame_index, object_id)": {"diffvas_res_rle": RLE}}``;
- ``davis/<frame>.png``: DAVIS-style palette label images, pixel value = object index
  1..K in the order of ``summary.json``'s ``davis_labels`` (0 = background); where amodal
  masks overlap, the visible object, else the smaller index (:mod:`amodal.viz.davis`);
- ``overlay.mp4`` (and ``overlay.gif`` for videos up to ``gif_max_frames``):
  the frames with visible parts filled and hidden parts hatched, a legend below;
- with ``samples > 1``: ``uncertainty/<object_id>/<frame>.png`` (share of
  samples that mark a pixel amodal, 0..255) and ``uncertainty.mp4`` (``4 f (1 - f)`` of
  that share: bright where the samples disagree, a labelled colour bar below);
- with ``save_depth``: ``depth/<frame>.png``, the inverse depth ``--depth-model`` estimated,
  16-bit gray, ``round(65535 (d - lo) / (hi - lo))`` with ``[lo, hi]`` (the video's range)
  in ``summary.json``'s ``depth_range``;
- ``summary.json``: settings, model, object ids, per-object areas, timings per stage.

Overlays of videos under 256 pixels high are enlarged by an integer factor (nearest neighbour).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from amodal.errors import InputError
from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig
from amodal.util.checks import check_device, check_positive, check_seed

DTYPES = ("float32", "bfloat16", "float16")  # what --dtype may name; each model says which it runs


@dataclass(frozen=True)
class SegmentRunConfig:
    """One ``amodal segment`` run: inputs, model, outputs."""

    frames: str  # a folder of frames or a video file
    masks: str  # modal masks: a folder (see mask_mode) or a COCO RLE JSON file
    out: str  # output folder (replaced atomically when the run completes)
    mask_mode: str = "luminance"  # "luminance": one object; "index": pixel value = object id
    objects: tuple[int, ...] | None = None  # segment only these object ids
    depth: str | None = None  # a folder of precomputed inverse-depth maps
    depth_model: str | None = None  # a Depth Anything V2 checkpoint to estimate depth per frame
    no_depth: bool = False  # run mask-only even if the model was trained with depth
    model: str = "default"  # "default", "default-regression", our model folder or an official checkpoint
    device: str = "cpu"  # "cpu" or "cuda"
    dtype: str = "float32"  # float32 or bfloat16 (CPU); float16 or bfloat16 (CUDA)
    resolution: tuple[int, int] | None = None  # model canvas (H, W); None = the model's native size
    fps: float | None = None  # output frame rate; None = the video's own (8 for folders)
    gif_max_frames: int = 300  # longer videos get only the MP4 overlay (GIFs grow large)
    pipeline: SegmentationConfig = field(default_factory=SegmentationConfig)
    amodal_boxes: str | None = None  # JSON file of amodal boxes per object and frame (segmentation/boxes.py)
    overwrite: bool = False  # replace an existing --out that amodal segment did not write
    legend: bool = True  # a colour legend below the overlay videos
    save_depth: bool = False  # write the depth depth_model estimated to OUT/depth (16-bit PNGs)


def check_arguments(config: SegmentRunConfig) -> None:
    given = [n for n, v in (("--depth", config.depth), ("--depth-model", config.depth_model)) if v]
    if config.no_depth:
        given.append("--no-depth")
    if len(given) > 1:
        raise InputError(f"give at most one of --depth, --depth-model and --no-depth (got {' and '.join(given)})")
    if config.save_depth and not config.depth_model:
        raise InputError("--save-depth saves the depth --depth-model estimates; give --depth-model "
                         "(depth given with --depth is on disk already)")
    if config.resolution is not None:
        h, w = config.resolution
        if h < 8 or w < 8:
            raise InputError(f"--resolution must be at least 8x8, got {h}x{w}")
    check_positive(config.fps, "--fps")
    check_seed(config.pipeline.seed)
    check_device(config.device)
    if config.dtype not in DTYPES:
        raise InputError(f"--dtype {config.dtype}: use one of {', '.join(DTYPES)}")


def inputs_of(config: SegmentRunConfig) -> tuple:
    """The paths this run reads: the output may be none of them, nor hold or sit inside one."""
    from amodal.checkpoints.registry import model_inputs

    return (config.frames, config.masks, config.depth, config.depth_model, config.amodal_boxes, *model_inputs(config.model))


# Memory one model-canvas pixel of one (object, sample) row costs while a window runs, measured for
# the lite backbone (about 400 MiB for 8 rows of 16 frames at 64x128, `amodal bench`), with room.
BYTES_PER_CANVAS_PIXEL = 128
# Memory one output pixel of one (object, sample) row costs: the soft mask, its blend sum, the binary
# mask and the copies the letterbox mapping makes, in float32.
BYTES_PER_OUTPUT_PIXEL = 16


def check_memory(config: SegmentRunConfig, size: tuple[int, int], num_objects: int, canvas: tuple[int, int], window: int) -> None:
    """Refuse a canvas, a pad or a batch that would need more memory than this machine has free."""
    from amodal.util.checks import check_fits_in_memory

    cfg = config.pipeline
    rows = min(cfg.batch_size, max(1, num_objects * cfg.samples))
    model_bytes = canvas[0] * canvas[1] * window * rows * BYTES_PER_CANVAS_PIXEL
    pad_h, pad_w = (round(s * cfg.pad) for s in size)
    frames_held = 2 * window  # frames waiting for a later window, as the pipeline streams
    output_bytes = (size[0] + 2 * pad_h) * (size[1] + 2 * pad_w) * num_objects * cfg.samples * frames_held * BYTES_PER_OUTPUT_PIXEL
    check_fits_in_memory(
        model_bytes + output_bytes,
        f"segmenting {num_objects} object(s) of {size[1]}x{size[0]} frames (model canvas {canvas[1]}x{canvas[0]}, "
        f"--pad {cfg.pad:g}, --batch-size {cfg.batch_size}, --samples {cfg.samples})",
        "use a smaller --resolution, --pad, --batch-size, --window or fewer --samples",
    )


class DepthWriter:
    """Writes estimated inverse depth as ``depth/<frame>.png``, 16-bit gray over the video's range.

    ``add`` keeps each frame as float32 until ``finish`` knows the range of the whole video
    (which a streamed video only knows at its end); ``finish`` writes the PNGs,
    ``round(65535 (d - lo) / (hi - lo))``, removes the float copies and returns ``[lo, hi]``.
    Read back, ``d = lo + png / 65535 (hi - lo)``; ``--depth OUT/depth`` reads the PNGs as they are
    (the models normalise depth per window, so the affine scale does not matter).
    """

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.raw = self.folder / ".float32"
        self.raw.mkdir(parents=True)
        self.names: list[str] = []
        self.low, self.high = float("inf"), float("-inf")

    def add(self, name: str, depth: np.ndarray) -> None:
        depth = np.asarray(depth, dtype=np.float32)
        np.save(self.raw / f"{len(self.names)}.npy", depth)
        self.names.append(name)
        self.low, self.high = min(self.low, float(depth.min())), max(self.high, float(depth.max()))

    def finish(self) -> list[float]:
        import shutil

        from PIL import Image

        span = self.high - self.low
        for i, name in enumerate(self.names):
            depth = np.load(self.raw / f"{i}.npy")
            scaled = np.zeros(depth.shape, np.float64) if span <= 0 else (depth - self.low) / span * 65535.0
            Image.fromarray(np.clip(np.rint(scaled), 0, 65535).astype(np.uint16)).save(self.folder / f"{name}.png")
        shutil.rmtree(self.raw)
        return [self.low, self.high] if self.names else []


def _depth_stream(config: SegmentRunConfig, source, timings: dict, saver: DepthWriter | None = None):
    if config.no_depth:
        return None
    if config.depth is not None:
        return source.iter_depth()
    if config.depth_model is not None:
        from amodal.depth import estimate_depth, load_depth_model

        t0 = time.perf_counter()
        model = load_depth_model(config.depth_model, device=config.device)
        timings["depth_load"] = time.perf_counter() - t0

        def estimated():
            for index, frame in enumerate(source.iter_frames()):
                t1 = time.perf_counter()
                depth = estimate_depth(model, frame[None], progress=False)[0]
                timings["depth"] = timings.get("depth", 0.0) + time.perf_counter() - t1
                if saver is not None:
                    saver.add(source.frame_names[index], depth)
                yield depth

        return estimated()
    return None


def segment_video(config: SegmentRunConfig) -> dict:
    """Run stage 1 on a video on disk and write every output; returns the summary dict."""
    from amodal.util.fs import atomic_dir, check_output, write_json
    from amodal.data.io.stream import open_video
    from amodal.checkpoints.registry import resolve

    check_arguments(config)
    resolve(config.model, "segmentation")  # what --model is, before anything is read or written
    out = check_output(config.out, command="segment", inputs=inputs_of(config), overwrite=config.overwrite)
    timings: dict[str, float] = {}
    start = time.perf_counter()
    source = open_video(config.frames, config.masks, config.mask_mode, config.objects, config.depth, config.fps)
    pipe = segmentation_pipeline(config, source, timings)
    given_depth = not config.no_depth and (config.depth is not None or config.depth_model is not None)
    if not given_depth and getattr(pipe.segmenter, "uses_depth", False) and not config.no_depth:
        print("amodal: no depth given (--depth or --depth-model): running the model mask-only")

    ids = source.object_ids
    samples = config.pipeline.samples
    boxes = None
    if config.amodal_boxes is not None:
        from amodal.segmentation.boxes import read_boxes

        boxes = read_boxes(config.amodal_boxes, tuple(ids), source.num_frames)
    with atomic_dir(out, command="segment") as tmp:
        writer = SegmentationWriter(tmp, source, with_uncertainty=samples > 1)
        depth_saver = DepthWriter(tmp / "depth") if config.save_depth else None
        depth_stream = _depth_stream(config, source, timings, depth_saver)
        modal_iter = source.iter_modal()
        kept_modal = {}  # modal masks pass through the pipeline once; keep them until their frame is written

        def tap():
            for index, modal in enumerate(modal_iter):
                kept_modal[index] = modal
                yield modal

        t0 = time.perf_counter()
        for result in pipe.stream(tap(), depth_stream, source.size, source.num_frames, amodal_boxes=boxes):
            writer.add(result.index, kept_modal.pop(result.index), result.amodal, result.frequency)
        timings["segmentation"] = time.perf_counter() - t0
        for key, value in pipe.last_timings.items():
            if key != "windows":  # a count, reported beside the timings
                timings[f"segmentation_{key}"] = value

        border = pipe_border(pipe, source)
        height, width = writer.finish(border, padded=bool(config.pipeline.pad))

        t0 = time.perf_counter()
        write_overlays(tmp, source, ids, config, samples > 1, border)
        timings["overlays"] = time.perf_counter() - t0
        timings["total"] = time.perf_counter() - start

        depth_kind = "none" if depth_stream is None else ("model" if config.depth_model else "precomputed")
        summary = run_summary(config, source, pipe, writer.areas, (height, width), depth_kind, timings)
        if depth_saver is not None:
            summary["depth_range"] = depth_saver.finish()
        write_json(tmp / "summary.json", summary)
    return summary


def segmentation_pipeline(config: SegmentRunConfig, source, timings: dict) -> AmodalSegmentationPipeline:
    """Load the stage-1 model ``config`` names at its resolution, after checking the run fits in memory."""
    from amodal.checkpoints.formats import is_official_layout
    from amodal.checkpoints.registry import load_segmenter

    if config.resolution is not None:
        check_memory(config, source.size, len(source.object_ids), config.resolution, config.pipeline.window or 16)
    t0 = time.perf_counter()
    load_options = {} if config.dtype == "float32" else {"dtype": config.dtype}
    official = is_official_layout(config.model)
    if official and config.resolution is not None:
        load_options.update(height=config.resolution[0], width=config.resolution[1])
    segmenter = load_segmenter(config.model, device=config.device, **load_options)
    if config.resolution is not None and not official:
        segmenter = at_resolution(segmenter, *config.resolution)
    timings["model_load"] = time.perf_counter() - t0
    window = config.pipeline.window or int(segmenter.num_frames)
    check_memory(config, source.size, len(source.object_ids), (int(segmenter.height), int(segmenter.width)), window)
    return AmodalSegmentationPipeline(segmenter, config.pipeline)


def model_info(segmenter) -> dict:
    """What a stage-1 model is, for ``summary.json``: its geometry and own settings, and its config when it has one."""
    info = {key: getattr(segmenter, key) for key in ("num_frames", "height", "width", "uses_depth", "default_steps",
                                                    "default_guidance", "default_sample_levels") if hasattr(segmenter, key)}
    if hasattr(segmenter, "default_box_mode"):
        info["default_box_mode"] = segmenter.default_box_mode
    config = getattr(segmenter, "config", None)
    if hasattr(config, "to_dict"):
        info["config"] = config.to_dict()
    if hasattr(segmenter, "parameters"):
        info["parameters"] = int(sum(p.numel() for p in segmenter.parameters()))
    return info


def run_summary(config: SegmentRunConfig, source, pipe: AmodalSegmentationPipeline, areas: np.ndarray,
                output_size: tuple[int, int], depth_kind: str, timings: dict) -> dict:
    """``summary.json`` of a stage-1 run: settings, model, per-object areas, timings."""
    return {
        "model": config.model,
        "model_info": model_info(pipe.segmenter),
        "frames": source.num_frames,
        "size": list(source.size),
        "output_size": list(output_size),
        "fps": source.fps,
        "objects": [
            {
                "id": oid,
                "modal_pixels": int(areas[k, 0]),
                "amodal_pixels": int(areas[k, 1]),
                "amodal_to_modal_ratio": float(areas[k, 1] / max(1, areas[k, 0])),
            }
            for k, oid in enumerate(source.object_ids)
        ],
        # davis/<frame>.png: pixel value i is the object davis_labels[str(i)] (0 = background)
        "davis_labels": {str(k + 1): oid for k, oid in enumerate(source.object_ids)} if len(source.object_ids) <= 255 else None,
        "depth": depth_kind,  # where depth came from: none, precomputed or model
        # whether the model saw it: depth given, not turned off, and a model trained with it
        "depth_used": depth_kind != "none" and config.pipeline.use_depth and bool(getattr(pipe.segmenter, "uses_depth", False)),
        "windows": int(pipe.last_timings.get("windows", 0)),
        "settings": _jsonable(asdict(config)),
        # what ran: the settings or the model's own
        "sampling": {"steps": pipe.steps, "guidance": pipe.guidance, "levels": pipe.levels,
                     **({"box_mode": pipe.box_mode} if config.amodal_boxes is not None else {})},
        "timings_s": {k: round(v, 4) for k, v in timings.items()},
        "seconds_per_frame": round(timings["segmentation"] / source.num_frames, 4),
    }


class SegmentationWriter:
    """Writes stage 1's per-frame outputs into a run folder: mask PNGs, uncertainty PNGs, the RLE files.

    ``add`` takes frames in order; ``finish`` writes ``amodal.json``, ``coco_instances.json`` and
    ``predictions_sailvos.json``. ``amodal segment`` feeds it from the streaming pipeline,
    ``amodal run`` from the in-memory system. Each frame also becomes a DAVIS-style label
    image ``davis/<frame>.png`` (:mod:`amodal.viz.davis`; not with more than 255 objects).
    """

    def __init__(self, folder: Path, source, *, with_uncertainty: bool):
        self.folder = Path(folder)
        self.source = source
        self.ids = tuple(source.object_ids)
        self.amodal_rles: list[list[dict]] = [[] for _ in self.ids]
        self.modal_rles: list[list[dict]] = [[] for _ in self.ids]
        self.reference: dict[str, dict] = {}
        self.coco = None  # made in add(): the output size is known from the first amodal masks
        self.areas = np.zeros((len(self.ids), 2), np.int64)  # modal, amodal pixel counts
        self.davis = len(self.ids) <= 255  # palette images hold 255 objects
        if self.davis:
            (self.folder / "davis").mkdir(parents=True)
        for oid in self.ids:
            (self.folder / "masks" / str(oid)).mkdir(parents=True)
            if with_uncertainty:
                (self.folder / "uncertainty" / str(oid)).mkdir(parents=True)

    def add(self, index: int, modal: np.ndarray, amodal: np.ndarray, frequency: np.ndarray | None = None) -> None:
        """Frame ``index``: modal ``(K, H, W) bool``, amodal ``(K, H', W') bool``, frequency ``(K, H', W')`` or None."""
        from PIL import Image

        from amodal.data.io import rle as rle_codec

        from amodal.data.io.coco import CocoInstances
        from amodal.viz.davis import label_image, write_label_png

        name = self.source.frame_names[index]
        self.areas[:, 0] += modal.reshape(len(self.ids), -1).sum(1)
        if self.coco is None:
            self.coco = CocoInstances(f"amodal masks of {self.source.frames}")
        image_id = self.coco.add_image(name, *amodal.shape[1:], frame_index=index)
        for k, oid in enumerate(self.ids):
            mask = amodal[k]
            Image.fromarray(mask.astype(np.uint8) * 255).save(self.folder / "masks" / str(oid) / f"{name}.png")
            rle = rle_codec.encode(mask)
            self.amodal_rles[k].append(rle)
            self.coco.add_mask(image_id, self.source.category_ids[k], mask, rle, track_id=int(oid),
                               modal_area=int(modal[k].sum()))
            self.modal_rles[k].append(rle_codec.encode(modal[k]))
            self.reference[str((index, oid))] = {"diffvas_res_rle": rle}
            self.areas[k, 1] += int(mask.sum())
            if frequency is not None:
                Image.fromarray(np.round(frequency[k] * 255).astype(np.uint8)).save(
                    self.folder / "uncertainty" / str(oid) / f"{name}.png"
                )
        if self.davis:
            # With --pad the amodal masks are larger than the frame: the modal ones sit in their middle.
            bh, bw = ((a - m) // 2 for a, m in zip(amodal.shape[1:], modal.shape[1:]))
            placed = np.pad(modal, ((0, 0), (bh, bh), (bw, bw))) if (bh or bw) else modal
            write_label_png(self.folder / "davis" / f"{name}.png", label_image(placed, amodal))

    def finish(self, border: tuple[int, int], *, padded: bool) -> tuple[int, int]:
        """Write the RLE files; returns the output size ``(H', W')``."""
        from amodal.util.fs import write_json

        source = self.source
        height, width = source.size[0] + 2 * border[0], source.size[1] + 2 * border[1]
        per_object = {
            "size": [height, width],
            "frames": list(source.frame_names),
            "objects": [
                {"id": oid, "category_id": cat, "modal": self.modal_rles[k], "amodal": self.amodal_rles[k]}
                for k, (oid, cat) in enumerate(zip(self.ids, source.category_ids))
            ],
        }
        if padded:
            # Modal masks stay at the input size; the amodal ones have the padded size.
            per_object["modal_size"] = list(source.size)
            per_object["border"] = list(border)
        write_json(self.folder / "amodal.json", per_object, indent=None)
        write_json(self.folder / "predictions_sailvos.json", self.reference, indent=None)
        if self.coco is not None:
            write_json(self.folder / "coco_instances.json", self.coco.to_dict(), indent=None)
        return height, width


def at_resolution(segmenter, height: int, width: int):
    """Run ``segmenter`` on a ``height x width`` canvas instead of its native one.

    Convolutional models accept any size that is a multiple of their stride;
    their config checks it and says which multiple is needed.
    """
    import dataclasses

    config = getattr(segmenter, "config", None)
    if not (dataclasses.is_dataclass(config) and hasattr(config, "height") and hasattr(config, "width")):
        raise InputError(f"--resolution: this model ({type(segmenter).__name__}) runs only at its native size")
    factor = getattr(getattr(config, "backbone", None), "spatial_factor", 1)
    if height % factor or width % factor:
        fit = f"{max(factor, height // factor * factor)}x{max(factor, width // factor * factor)}"
        raise InputError(f"--resolution {height}x{width}: this model needs multiples of {factor} per side (for example {fit})")
    segmenter.config = dataclasses.replace(config, height=height, width=width)
    return segmenter


def pipe_border(pipe: AmodalSegmentationPipeline, source) -> tuple[int, int]:
    from amodal.data.geometry import letterbox

    return letterbox(source.size, (int(pipe.segmenter.height), int(pipe.segmenter.width)), pipe.config.pad).border


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def write_overlays(tmp: Path, source, ids, config: SegmentRunConfig, with_uncertainty: bool, border) -> None:
    """Second pass over the frames: overlay video(s) and the uncertainty video, streamed from disk.

    Frames under 256 pixels high are enlarged by an integer factor first (nearest neighbour);
    the legend and the colour bar go in strips below the picture, never over it.
    """
    from amodal.data.io.masks import read_luminance_mask
    from amodal.data.io.writers import write_animation
    from amodal.viz.overlay import below, display_scale, enlarge, legend_strip, overlay_frame, text_size, uncertainty_frame

    bh, bw = border
    factor = display_scale(source.size[0] + 2 * bh)

    def canvas_of(frame):
        canvas = np.pad(frame, ((bh, bh), (bw, bw), (0, 0)), constant_values=64) if (bh or bw) else frame
        return enlarge(canvas, factor)

    strip = None

    def overlays():
        nonlocal strip
        for t, (frame, modal) in enumerate(zip(source.iter_frames(), source.iter_modal())):
            name = source.frame_names[t]
            amodal = np.stack([read_luminance_mask(tmp / "masks" / str(oid) / f"{name}.png") for oid in ids])
            modal_c = np.pad(modal, ((0, 0), (bh, bh), (bw, bw))) if (bh or bw) else modal
            image = overlay_frame(canvas_of(frame), enlarge(modal_c, factor, (1, 2)), enlarge(amodal, factor, (1, 2)),
                                  object_ids=ids, legend=False)
            if config.legend:
                if strip is None:
                    strip = legend_strip(image.shape[1], ids, size=text_size(image.shape[0]))
                image = below(image, strip)
            yield image

    fps = source.fps
    write_animation(tmp / "overlay.mp4", overlays(), fps)
    if source.num_frames <= config.gif_max_frames:
        write_animation(tmp / "overlay.gif", overlays(), fps)
    if with_uncertainty:
        from PIL import Image

        def heat():
            for t, frame in enumerate(source.iter_frames()):
                name = source.frame_names[t]
                freq = np.stack(
                    [np.asarray(Image.open(tmp / "uncertainty" / str(oid) / f"{name}.png")) for oid in ids]
                ) / np.float32(255.0)
                yield uncertainty_frame(canvas_of(frame), enlarge(freq.astype(np.float32), factor, (1, 2)))

        write_animation(tmp / "uncertainty.mp4", heat(), fps)
