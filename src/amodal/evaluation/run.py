"""``run_evaluation``: run methods on a dataset, or score a prediction file, and write the report.

Two modes, one output folder layout (see :mod:`amodal.evaluation.report`):

- **run**: each method of ``methods`` predicts every clip (split into windows
  when ``window`` is set); its predictions are scored and written in the
  reference format.
- **score**: a reference-format prediction file is scored against the
  annotations; no frames are read.

Under ``accelerate launch`` the clips are shared out among the processes and
the per-frame rows merged (:mod:`amodal.evaluation.shard`); the numbers are
the same as with one process.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from amodal.data.datasets import DATASET_KINDS, index_dataset
from amodal.data.datasets.base import split_item
from amodal.errors import InputError
from amodal.evaluation import reference_formats as formats
from amodal.evaluation.methods import MethodOptions, get_method
from amodal.evaluation.scoring import mask_boxes, protocol_of, score_boxes, score_masks, summarize
from amodal.evaluation.shard import Shard, current_shard, run_sharded
from amodal.evaluation.table import FrameTable


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
    steps: int | None = None  # denoising steps of diffusion models; None = each model's own best
    guidance: float | None = None  # classifier-free guidance scale of diffusion models; None = each model's own
    use_depth: bool = True  # False: learned models run mask-only even when the data has depth
    window: int | None = None  # score clips in windows of this many frames (None: whole clips, as the reference)
    limit: int | None = None  # only the first N clips, for quick checks
    plots: bool = True  # write the PNG plots (matplotlib)
    progress: bool = True  # progress bar on stderr
    overwrite: bool = False  # replace an existing out folder that amodal eval did not write

    def __post_init__(self) -> None:
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
        samples=config.samples, seed=config.seed, steps=config.steps, guidance=config.guidance, use_depth=config.use_depth
    )
    methods = {name: get_method(name, options) for name in config.methods}
    tables = {name: [] for name in methods}
    entries = {name: {} for name in methods}
    for i in _progress(indices, shard, config, "eval"):
        item = index.item(i)
        for part, window in split_item(item, config.window):
            scored = range(window.scored_from - window.start, window.stop - window.start)
            clip, annotation = part.clip, part.annotation
            for name, method in methods.items():
                samples = method(clip).samples
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
    from amodal.evaluation.report import write_outputs
    from amodal.util.fs import atomic_dir, check_output

    shard = current_shard()
    methods = tuple(m for m in config.methods if Path(m).exists())  # model folders are inputs too
    out = check_output(
        config.out, command="eval", overwrite=config.overwrite,
        inputs=(config.data, config.annotations, config.track_offsets, config.predictions, *methods),
    )
    index = index_dataset(
        config.dataset,
        config.data,
        config.split,
        annotations=config.annotations,
        track_offsets=config.track_offsets,
    )
    indices = _clip_indices(config, len(index), shard)
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
