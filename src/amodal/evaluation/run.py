"""``run_evaluation``: run methods on a dataset, or score a prediction file, and write the report.

Two modes, one output folder layout (see :mod:`amodal.evaluation.report`):

- **run**: each method of ``methods`` predicts every clip (split into windows
  when ``window`` is set); its predictions are scored and written in the
  reference format.
- **score**: a reference-format prediction file is scored against the
  annotations; no frames are read.

With ``task="completion"`` (stage 2) each completion method of ``methods``
fills every object of every clip inside its amodal mask, the ground-truth one
or one predicted by the stage-1 method ``masks`` (the end-to-end track), and
its completions are scored against the objects' true appearance
(:mod:`amodal.evaluation.completion`); no predictions file is written.

Under ``accelerate launch`` the clips are shared out among the processes and
the per-frame rows merged (:mod:`amodal.evaluation.shard`); the numbers are
the same as with one process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amodal.data.datasets import DATASET_KINDS, index_dataset
from amodal.data.datasets.base import split_item
from amodal.errors import InputError
from amodal.evaluation import reference_formats as formats
from amodal.evaluation.methods import MethodOptions, get_method
from amodal.evaluation.scoring import mask_boxes, protocol_of, score_boxes, score_masks, summarize
from amodal.evaluation.shard import Shard, current_shard, run_sharded
from amodal.evaluation.table import FrameTable

TASKS = ("segmentation", "completion")  # stage 1 (amodal masks) and stage 2 (content completion)

@dataclass(frozen=True)
class EvalConfig:
    """One evaluation run (``amodal eval``)."""

    dataset: str  # dataset kind, one of amodal.data.datasets.DATASET_KINDS; picks the reader and the protocol
    out: Path  # folder for metrics.json, report.md, plots, frames.csv and predictions
    data: Path | None = None  # dataset folder: frames (and DIR/<split>/annotations.json unless annotations is given)
    split: str = "test"  # split folder inside data
    annotations: Path | None = None  # annotation file given directly (SAIL-VOS, TAO-Amodal, synthetic)
    track_offsets: Path | None = None  # TAO-Amodal {video_id: first track id}; default beside the annotations
    predictions: Path | None = None  # score this reference-format file instead of running methods
    methods: tuple[str, ...] = ()  # methods to run, one report row each
    samples: int = 1  # hypotheses per object asked of generative methods; Top-k uses k = samples
    seed: int = 0  # seeds generative methods, so a run repeats exactly
    levels: str | None = None  # how stage-1 samples are thresholded (SegmentationConfig.levels); None = each model's own
    steps: int | None = None  # denoising steps of diffusion models; None = each model's own best
    guidance: float | None = None  # classifier-free guidance scale of diffusion models; None = each model's own
    use_depth: bool = True  # False: learned models run mask-only even when the data has depth
    window: int | None = None  # score clips in windows of this many frames (None: whole clips, as the reference)
    limit: int | None = None  # only the first N clips, for quick checks
    plots: bool = True  # write the PNG plots (matplotlib)
    progress: bool = True  # progress bar on stderr
    overwrite: bool = False  # replace an existing out folder that amodal eval did not write
    task: str = "segmentation"  # one of TASKS; "completion" runs completion methods (stage 2)
    masks: str = "gt"  # completion: the amodal masks completed: "gt", or a stage-1 method run first (end to end)
    lpips_weights: Path | None = None  # completion: local LPIPS-Alex weights (amodal.evaluation.lpips); None reports it skipped
    fvd_weights: Path | None = None  # completion: local Kinetics-400 I3D weights (amodal.evaluation.fvd); None reports FVD skipped
    fvd_size: int = 224  # completion: side of the square frames I3D sees; 224 as it was trained (less only in quick tests)
    propagate: bool = True  # completion: our models paint only what no frame shows (PipelineConfig.propagate)
    amodal_boxes: str | None = None  # "gt": methods get the annotation's amodal boxes as a prior (segmentation/boxes.py)
    box_mode: str | None = None  # how learned methods use the boxes (SegmentationConfig.box_mode)
    box_margin: float = 0.25  # context around the boxes in "crop" mode (SegmentationConfig.box_margin)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise InputError(f"--task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.task == "completion":
            if self.predictions is not None:
                raise InputError("--predictions is for --task segmentation; run --method for --task completion")
            if self.window is not None:
                raise InputError("--window is for --task segmentation; completion scores whole clips")
            if self.lpips_weights is not None and not Path(self.lpips_weights).exists():
                raise InputError(f"--lpips-weights {self.lpips_weights}: not found; pass a local weights file or folder, or leave it out")
            if self.fvd_weights is not None and not Path(self.fvd_weights).exists():
                raise InputError(f"--fvd-weights {self.fvd_weights}: not found; pass a local weights file or folder, or leave it out")
            if self.fvd_size < 1:
                raise InputError(f"fvd_size must be >= 1, got {self.fvd_size}")
        elif self.masks != "gt" or self.lpips_weights is not None or self.fvd_weights is not None or not self.propagate:
            raise InputError("--masks, --lpips-weights, --fvd-weights and --no-propagate are for --task completion")
        if self.amodal_boxes not in (None, "gt"):
            raise InputError(f"--amodal-boxes takes 'gt' (the annotation's boxes), got {self.amodal_boxes!r}")
        if self.amodal_boxes is not None and (self.task != "segmentation" or self.predictions is not None):
            raise InputError("--amodal-boxes is for running --method with --task segmentation")
        if self.dataset not in DATASET_KINDS:
            raise InputError(f"--dataset must be one of {', '.join(DATASET_KINDS)}, got {self.dataset!r}")
        if (self.predictions is None) == (not self.methods):
            raise InputError(
                "pass either --method (run methods on the data) or --predictions (score a prediction file)"
            )
        if self.predictions is not None and self.dataset == "movi":
            raise InputError(
                "--predictions is for the reference formats of sailvos, synthetic and tao-amodal; run --method on MOVi"
            )
        if self.predictions is None and self.data is None:
            raise InputError("--data is required to run methods: the folder holding the frames")
        if len(set(self.methods)) != len(self.methods):
            raise InputError(f"--method lists a method twice: {list(self.methods)}")
        for name, value in (("--samples", self.samples), ("--window", self.window), ("--limit", self.limit)):
            if value is not None and value < 1:
                raise InputError(f"{name} must be >= 1, got {value}")
        if not 0 <= self.seed < 2**63:
            raise InputError(f"--seed must be in [0, 2**63), got {self.seed}")


@dataclass
class MethodResult:
    """What one method (or one prediction file) scored."""

    name: str  # report row name
    table: FrameTable  # every scored frame
    metrics: dict  # reported numbers (Top-1), with "top_k" when several samples were scored
    entries: dict | None = field(default=None)  # reference-format predictions (run mode), sample 0


def _clip_indices(config: EvalConfig, total: int, shard: Shard) -> range:
    stop = total if config.limit is None else min(total, config.limit)
    return range(shard.index, stop, shard.count)


def _progress(indices, shard: Shard, config: EvalConfig, what: str):
    from tqdm import tqdm

    return tqdm(indices, desc=what, unit="clip", disable=not (config.progress and shard.is_main), leave=False)


def _run_methods(config: EvalConfig, index, indices, shard: Shard) -> dict:
    options = MethodOptions(
        samples=config.samples, seed=config.seed, steps=config.steps, guidance=config.guidance, use_depth=config.use_depth,
        box_mode=config.box_mode, box_margin=config.box_margin, levels=config.levels,
    )
    methods = {name: get_method(name, options) for name in config.methods}
    tables = {name: [] for name in methods}
    entries = {name: {} for name in methods}
    for i in _progress(indices, shard, config, "eval"):
        item = index.item(i)
        for part, window in split_item(item, config.window):
            scored = range(window.scored_from - window.start, window.stop - window.start)
            clip, annotation = part.clip, part.annotation
            boxes = _given_boxes(config, annotation)
            for name, method in methods.items():
                samples = (method(clip) if boxes is None else method(clip, amodal_boxes=boxes)).samples
                expected = (clip.num_objects, clip.num_frames, *clip.size)
                if samples.shape[1:] != expected:
                    raise InputError(
                        f"method {name} returned masks {samples.shape[1:]} for clip {annotation.source} of {expected}"
                    )
                if protocol_of(config.dataset) == "tao":
                    boxes = mask_boxes(samples, annotation.modal_masks)
                    tables[name].append(score_boxes(annotation, boxes, i, window.start, scored))
                    entries[name].update(formats.box_entries(annotation, boxes[0], scored))
                else:
                    tables[name].append(score_masks(config.dataset, annotation, samples, i, window.start, scored))
                    entries[name].update(formats.mask_entries(config.dataset, annotation, samples[0], scored))
    return {name: (FrameTable.concat(tables[name]), entries[name]) for name in methods}


def _given_boxes(config: EvalConfig, annotation) -> np.ndarray | None:
    """The amodal boxes methods get (``--amodal-boxes gt``): the annotation's, else those of its amodal masks."""
    if config.amodal_boxes is None:
        return None
    from amodal.segmentation.boxes import with_mask_boxes

    if annotation.amodal_boxes is None and annotation.amodal_masks is None:
        raise InputError(f"--amodal-boxes gt: {annotation.source} has neither amodal boxes nor amodal masks")
    return with_mask_boxes(annotation.amodal_boxes, annotation.amodal_masks, annotation.modal_masks.shape[:2])


def _score_file(config: EvalConfig, index, indices, shard: Shard) -> dict:
    predictions = formats.read_predictions(config.predictions)
    tables = []
    for i in _progress(indices, shard, config, "score"):
        annotation = index.annotation(i, cropped=True)
        if protocol_of(config.dataset) == "tao":
            boxes = formats.predicted_boxes(predictions, config.predictions, annotation)
            tables.append(score_boxes(annotation, boxes, i))
        else:
            masks = formats.predicted_masks(config.dataset, predictions, config.predictions, annotation)
            tables.append(score_masks(config.dataset, annotation, masks, i))
    return {Path(config.predictions).stem: (FrameTable.concat(tables), None)}


def run_evaluation(config: EvalConfig) -> dict[str, MethodResult]:
    """Evaluate as ``config`` says and write the outputs into ``config.out`` (process 0 only).

    Returns:
        The results of every method (on every process), keyed by report row name.
    """
    from amodal.checkpoints.registry import model_inputs
    from amodal.evaluation.report import write_outputs
    from amodal.util.fs import atomic_dir, check_output

    shard = current_shard()
    methods = model_inputs(*config.methods)  # model folders and bundled models are inputs too
    extra = tuple(p for p in (config.lpips_weights, config.fvd_weights) if p is not None)
    extra += model_inputs(config.masks) if config.masks != "gt" else ()
    out = check_output(
        config.out, command="eval", overwrite=config.overwrite,
        inputs=(config.data, config.annotations, config.track_offsets, config.predictions, *methods, *extra),
    )
    index = index_dataset(
        config.dataset,
        config.data,
        config.split,
        annotations=config.annotations,
        track_offsets=config.track_offsets,
    )
    indices = _clip_indices(config, len(index), shard)
    if config.task == "completion":
        from amodal.evaluation.report import write_completion_outputs

        results = _evaluate_completion(config, index, indices, shard)
        if shard.is_main:
            with atomic_dir(out, command="eval") as tmp:
                write_completion_outputs(dataclasses.replace(config, out=tmp), results)
        return results
    work = _score_file if config.predictions is not None else _run_methods
    parts = run_sharded(shard, lambda: work(config, index, indices, shard))
    results = {}
    for name in parts[0]:
        table = FrameTable.concat([part[name][0] for part in parts])
        entries = None if parts[0][name][1] is None else {k: v for part in parts for k, v in part[name][1].items()}
        metrics = summarize(config.dataset, table)
        if table.num_samples > 1:
            metrics["top_k"] = {"k": table.num_samples, **summarize(config.dataset, table, table.num_samples)}
        results[name] = MethodResult(name, table, metrics, entries)
    if shard.is_main:
        with atomic_dir(out, command="eval") as tmp:
            write_outputs(dataclasses.replace(config, out=tmp), results)
    return results


# ----------------------------------------------------------------------------- content completion (stage 2)
def skipped_metrics(config: EvalConfig) -> dict:
    """``{name: reason}`` of the learned metrics this run does not compute: LPIPS and FVD without local weights."""
    out = {}
    if config.fvd_weights is None:
        out["fvd"] = "skipped: no local weights (pass --fvd-weights; nothing is downloaded)"
    if config.lpips_weights is None:
        out["lpips"] = "skipped: no local weights (pass --lpips-weights; nothing is downloaded)"
    return dict(sorted(out.items()))


def _given_masks(stage1, clip, name: str):
    """The amodal masks completion methods get: the truth, or the stage-1 method's Top-1 united with the modal masks."""
    if stage1 is None:
        return clip.amodal_masks
    predicted = stage1(clip.replace(amodal_masks=None, amodal_rgb=None)).top1
    if predicted.shape != clip.modal_masks.shape:
        raise InputError(f"--masks {name} returned masks {predicted.shape} for clip {clip.source} of {clip.modal_masks.shape}")
    return predicted | clip.modal_masks


def _run_completion(config: EvalConfig, index, indices, shard: Shard) -> dict:
    import numpy as np

    from amodal.evaluation import completion as cm
    from amodal.evaluation.completion_methods import CompletionOptions, check_samples, get_completion_method
    from amodal.evaluation.fvd import i3d_features
    from amodal.evaluation.scoring import score_completion

    options = CompletionOptions(samples=config.samples, seed=config.seed, steps=config.steps, guidance=config.guidance,
                                propagate=config.propagate)
    methods = {name: get_completion_method(name, options) for name in config.methods}
    lpips = None
    if config.lpips_weights is not None:
        from amodal.evaluation.lpips import load_lpips

        lpips = load_lpips(config.lpips_weights)
    i3d = None
    if config.fvd_weights is not None:
        import torch

        from amodal.evaluation.fvd import load_i3d

        i3d = load_i3d(config.fvd_weights, "cuda" if torch.cuda.is_available() else "cpu")
    stage1 = None
    if config.masks != "gt":
        stage1 = get_method(
            config.masks,
            MethodOptions(samples=1, seed=config.seed, steps=config.steps, guidance=config.guidance, use_depth=config.use_depth),
        )
    tables = {name: [] for name in methods}
    patches = {name: [] for name in methods}  # (clip, [per-level (N, 3, P) arrays]) of sample 0
    features = {name: [] for name in methods}  # (clip, (windows, 400) I3D features) of sample 0, with --fvd-weights
    truth, truth_features = [], []
    for i in _progress(indices, shard, config, "eval completion"):
        item = index.item(i)
        clip, annotation = item.clip, item.annotation
        if clip.amodal_rgb is None or clip.amodal_masks is None:
            raise InputError(
                f"{annotation.source}: completion is scored against each object's true appearance (amodal RGB), "
                f"which this {config.dataset} clip does not have; synthetic sets carry it"
            )
        masks = _given_masks(stage1, clip, config.masks)
        given = clip.replace(amodal_masks=masks, amodal_rgb=None)  # the method never sees the answer
        hidden = clip.amodal_masks & ~clip.modal_masks
        levels = cm.swd_levels(*clip.size)
        centres = [
            cm.swd_centres(hidden[j], levels, rng=np.random.default_rng([cm.SWD_SEED, i, j]))
            for j in range(clip.num_objects)
        ]

        def cut(videos) -> list:
            per_object = [cm.swd_patches(video, c) for video, c in zip(videos, centres, strict=True)]
            return [np.concatenate([p[lv] for p in per_object]) for lv in range(levels)]

        truth.append((i, cut(clip.amodal_rgb)))
        if i3d is not None:
            truth_features.append((i, i3d_features(i3d, clip.amodal_rgb, config.fvd_size)))
        for name, method in methods.items():
            samples = check_samples(method(given, masks), clip, name)
            tables[name].append(score_completion(annotation, clip.amodal_rgb, samples, i, lpips))
            patches[name].append((i, cut(samples[0])))
            if i3d is not None:
                features[name].append((i, i3d_features(i3d, samples[0], config.fvd_size)))
    return {
        "truth": truth,
        "truth_features": truth_features,
        "methods": {name: (FrameTable.concat(tables[name]), patches[name], features[name]) for name in methods},
    }


def _pooled_levels(chunks: list) -> list:
    """Per-level patch arrays of ``(clip, levels)`` chunks pooled in clip order (so any sharding gives one set)."""
    import numpy as np

    chunks = sorted(chunks, key=lambda c: c[0])
    depth = max((len(levels) for _, levels in chunks), default=0)
    return [np.concatenate([levels[lv] for _, levels in chunks if len(levels) > lv]) for lv in range(depth)]


def _pooled_features(chunks: list):
    """``(N, D)`` features of ``(clip, features)`` chunks stacked in clip order (so any sharding gives one set)."""
    import numpy as np

    chunks = sorted(chunks, key=lambda c: c[0])
    return np.concatenate([f for _, f in chunks]) if chunks else np.zeros((0, 0))


def _evaluate_completion(config: EvalConfig, index, indices, shard: Shard) -> dict[str, MethodResult]:
    from amodal.evaluation import completion as cm
    from amodal.evaluation.fvd import frechet_distance, fvd_skip_reason
    from amodal.evaluation.scoring import summarize_completion

    parts = run_sharded(shard, lambda: _run_completion(config, index, indices, shard))
    truth = _pooled_levels([c for part in parts for c in part["truth"]])
    skipped = skipped_metrics(config)
    truth_features = None
    if config.fvd_weights is not None:
        truth_features = _pooled_features([c for part in parts for c in part["truth_features"]])
        reason = fvd_skip_reason(len(truth_features))
        if reason is not None:
            skipped = dict(sorted({**skipped, "fvd": reason}.items()))
            truth_features = None
    results = {}
    for name in parts[0]["methods"]:
        table = FrameTable.concat([part["methods"][name][0] for part in parts])
        metrics = summarize_completion(table)
        swd = cm.swd_from_patches(_pooled_levels([c for part in parts for c in part["methods"][name][1]]), truth)
        metrics.update(swd_occ=swd["swd"], swd_occ_levels=swd["levels"], swd_patches=swd["patches"])
        if truth_features is not None:
            pred_features = _pooled_features([c for part in parts for c in part["methods"][name][2]])
            metrics.update(fvd=frechet_distance(pred_features, truth_features), fvd_videos=len(truth_features))
        samples = table["psnr_occ"].shape[1] if len(table) else 1
        if samples > 1:
            metrics["top_k"] = {"k": samples, **summarize_completion(table, samples)}
        metrics.update(task="completion", masks=config.masks, propagate=config.propagate, skipped=dict(skipped))
        results[name] = MethodResult(name, table, metrics, None)
    return results
