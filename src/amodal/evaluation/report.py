"""What an evaluation writes into its output folder (every file written atomically).

- ``metrics.json``: the reported numbers. One method (or one prediction
  file): a flat object (``miou``, ``miou_occ``, ``miou_occ_strict`` for mask
  datasets, ``miou``, ``ap25``, ``ap50``, ``ap75`` for TAO-Amodal, plus frame
  counts, ``method`` and ``dataset``; ``top_k`` when several samples were
  scored). Several methods: one such object per method name.
- ``report.md``: one row per method (and per Top-k), then Top-1 mIoU by
  visible-fraction bin and by category, each category named as the annotation file names it
  (:func:`category_names`), its id in brackets.
- ``iou_vs_visible_fraction.png``, ``iou_over_time.png``: Top-1 IoU per frame
  against the object's visible fraction, and mean IoU per frame index.
- ``frames.csv``: every scored frame with its Top-1 scores.
- ``predictions.json`` (one method) or ``predictions_<method>.json``: sample 0
  in the reference format, so results compare with published ones (run mode only).

A completion run (``--task completion``) writes the same files but its own numbers
(:func:`write_completion_outputs`): ``metrics.json`` with ``psnr_occ``, ``ssim_occ``,
``mae_occ``, ``psnr``, ``ssim``, ``silhouette_iou``, ``temporal_occ``, ``swd_occ`` (and
``lpips_occ``, ``fvd`` with local weights, ``top_k``, ``skipped``), ``report.md``,
``psnr_occ_vs_visible_fraction.png``, ``psnr_occ_over_time.png`` and ``frames.csv``; no
predictions file.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np

from amodal.evaluation.scoring import breakdown, protocol_of
from amodal.evaluation.table import ID_COLUMNS
from amodal.util.fs import atomic_path, write_json

_MAIN_KEYS = {
    "sailvos": ("miou", "miou_occ", "miou_occ_strict"),
    "tao": ("miou", "ap25", "ap50", "ap75"),
    "movi": ("miou", "miou_occ", "miou_occ_strict", "miou_cropped", "miou_occ_cropped", "miou_occ_strict_cropped"),
}


def _finite(value):
    """JSON has no NaN: undefined means (no frames) are written as null."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)


def metrics_json(config, results: dict) -> dict:
    """The content of ``metrics.json`` (see the module docstring)."""
    per = {name: {**_finite(r.metrics), "method": name, "dataset": config.dataset} for name, r in results.items()}
    return next(iter(per.values())) if len(per) == 1 else per


def _breakdown_table(tables: dict, names: list[str], key: str, header: str, labels: dict | None = None) -> list[str]:
    """Markdown rows of top-1 mIoU per bin of ``key``, one column per method, frames in brackets.

    ``labels`` maps a bin's own label (a category id) to what the row shows; others show as they are.
    """
    labels = labels or {}
    lines = [f"| {header} | " + " | ".join(names) + " |", "|---" * (1 + len(names)) + "|"]
    for i, (label, _, _) in enumerate(tables[names[0]][key]):
        cells = [f"{_fmt(tables[n][key][i][2])} ({tables[n][key][i][1]})" for n in names]
        lines.append(f"| {labels.get(label, label)} | " + " | ".join(cells) + " |")
    return lines


def category_names(config) -> dict[int, str]:
    """``{category id: name}`` from the evaluated annotation file, empty when it names none.

    Names come from a top-level ``categories`` list of ``{"id", "name"}`` (COCO, TAO) or from
    entries that carry ``category_name`` beside ``category_id`` (SAIL-VOS-format sets such as
    ``amodal data synth``'s). A file that cannot be read gives no names: the report then shows ids.
    """
    import json

    path = config.annotations
    if path is None and config.data is not None:
        path = Path(config.data) / config.split / "annotations.json"
    if path is None or not Path(path).is_file():
        return {}
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    names: dict[int, str] = {}
    entries = data
    if isinstance(data, dict):
        for category in data.get("categories") or []:
            if isinstance(category, dict) and isinstance(category.get("id"), int) and isinstance(category.get("name"), str):
                names[category["id"]] = category["name"]
        entries = data.get("annotations") or data.get("tracks") or []
    if isinstance(entries, list):
        for entry in entries:
            if isinstance(entry, dict) and isinstance(entry.get("category_id"), int) and isinstance(entry.get("category_name"), str):
                names.setdefault(entry["category_id"], entry["category_name"])
    return names


def _category_labels(config, tables: dict) -> dict[int, str]:
    """Row labels ``name (id)`` for the categories of the report that the annotation file names."""
    present = {label for table in tables.values() for label, _, _ in table["category"]}
    if not present:
        return {}
    names = category_names(config)
    return {c: f"{names[c]} ({c})" for c in present if c in names}


def report_markdown(config, results: dict) -> str:
    """The content of ``report.md``."""
    protocol = protocol_of(config.dataset)
    keys = _MAIN_KEYS[protocol]
    count_keys = ("objects", "frames") if protocol == "movi" else ("frames",)
    source = config.annotations if config.annotations is not None else f"{config.data}, split {config.split}"
    lines = [
        "# Evaluation report",
        "",
        f"- dataset: `{config.dataset}` ({source})",
        f"- {'prediction file' if config.predictions is not None else 'methods'}: "
        + (
            f"`{config.predictions}`" if config.predictions is not None else ", ".join(f"`{m}`" for m in config.methods)
        ),
        f"- clips: {len(set(next(iter(results.values())).table['clip'].tolist()))}"
        + (f", windows of {config.window} frames" if config.window else "")
        + (f", samples per object: {config.samples}" if config.predictions is None else ""),
        "",
        "## Results",
        "",
        "| method | " + " | ".join(keys + count_keys) + " |",
        "|---" * (1 + len(keys) + len(count_keys)) + "|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(r.metrics.get(k)) for k in keys + count_keys) + " |")
        if "top_k" in r.metrics:
            top = r.metrics["top_k"]
            lines.append(
                f"| {name} (top-{top['k']}) | " + " | ".join(_fmt(top.get(k)) for k in keys + count_keys) + " |"
            )
    lines += ["", _definitions(protocol), ""]
    tables = {name: breakdown(r.table) for name, r in results.items()}
    names = list(results)
    lines += [
        "## Top-1 mIoU by visible fraction",
        "",
        "Visible fraction: modal area over amodal area"
        + (" (amodal *box* area for TAO-Amodal)" if protocol == "tao" else "")
        + "; frames in brackets.",
        "",
    ]
    lines += _breakdown_table(tables, names, "visible_fraction", "visible fraction")
    if tables[names[0]]["category"]:
        lines += ["", "## Top-1 mIoU by category", ""]
        lines += _breakdown_table(tables, names, "category", "category", _category_labels(config, tables))
    if config.plots:
        lines += [
            "",
            "## Plots",
            "",
            "![IoU against visible fraction](iou_vs_visible_fraction.png)",
            "",
            "![IoU over time](iou_over_time.png)",
        ]
    return "\n".join(lines) + "\n"


def _definitions(protocol: str) -> str:
    if protocol == "sailvos":
        return (
            "`miou`: mask IoU after resizing the prediction to the ground truth as the reference does and adding the "
            "modal mask, mean over all frames. `miou_occ` (reference protocol): IoU of the occluded parts eroded 5x5, "
            "frames with IoU < 1e-6 dropped, which also drops frames where the hidden part is missed entirely. "
            "`miou_occ_strict`: the same IoU over every frame whose eroded occluded ground truth is non-empty."
        )
    if protocol == "tao":
        return (
            "`miou`: IoU of the predicted amodal box with the annotated one, mean over all frames. `apT`: share of "
            "frames with box IoU > T/100. This is the reference's definition, not COCO AP (no scores, no matching)."
        )
    return (
        "Visible frames only, per object then averaged over objects. `miou`: whole-frame IoU; `miou_occ`: IoU of the "
        "occluded parts (no erosion) over occluded frames, frames with IoU < 1e-6 dropped; "
        "`miou_occ_strict`: over every "
        "occluded frame. `_cropped`: the same inside the modal box enlarged 2x."
    )


def _figure():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.2), dpi=100)
    FigureCanvasAgg(fig)
    return fig, fig.add_subplot(1, 1, 1)


def _save(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")


def write_plots(config, results: dict, out: Path) -> list[Path]:
    """Write the two PNG plots; returns their paths."""
    edges = np.linspace(0, 1, 11)
    fig, ax = _figure()
    for name, r in results.items():
        rows = r.table["scored"] & np.isfinite(r.table["visible_fraction"])
        x, y = r.table["visible_fraction"][rows], r.table["iou"][rows, 0]
        points = ax.scatter(x, y, s=6, alpha=0.3)
        which = np.clip(np.digitize(x, edges) - 1, 0, len(edges) - 2)
        means = [y[which == b].mean() if (which == b).any() else np.nan for b in range(len(edges) - 1)]
        ax.plot((edges[:-1] + edges[1:]) / 2, means, marker="o", color=points.get_facecolor()[0][:3], label=name)
    ax.set(xlabel="visible fraction of the object", ylabel="Top-1 IoU", xlim=(0, 1.02), ylim=(0, 1.02))
    ax.set_title(f"IoU against visible fraction ({config.dataset})")
    ax.legend(loc="lower right")
    paths = [out / "iou_vs_visible_fraction.png"]
    _save(fig, paths[0])
    fig, ax = _figure()
    for name, r in results.items():
        rows = r.table["scored"]
        frames, iou = r.table["frame"][rows], r.table["iou"][rows, 0]
        if frames.size:
            counts = np.bincount(frames)
            sums = np.bincount(frames, weights=iou)
            used = counts > 0
            ax.plot(np.flatnonzero(used), sums[used] / counts[used], marker=".", label=name)
    ax.set(xlabel="frame", ylabel="mean Top-1 IoU", ylim=(0, 1.02))
    ax.set_title(f"IoU over time ({config.dataset})")
    ax.legend(loc="lower right")
    paths.append(out / "iou_over_time.png")
    _save(fig, paths[1])
    return paths


def write_frames_csv(results: dict, path: Path) -> None:
    """Every scored frame of every method with its Top-1 scores."""
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        first = next(iter(results.values())).table
        extra = [c for c in first.columns if c not in ID_COLUMNS]
        writer.writerow(
            ["method", "clip", "video", "object_id", "category_id", "frame", "visible_fraction", "scored", *extra]
        )
        for name, r in results.items():
            t = r.table
            for i in range(len(t)):
                values = [t[c][i, 0] if t[c].ndim == 2 else t[c][i] for c in extra]
                writer.writerow(
                    [
                        name,
                        t["clip"][i],
                        t["video"][i],
                        t["object_id"][i],
                        t["category_id"][i],
                        t["frame"][i],
                        f"{t['visible_fraction'][i]:.6f}",
                        int(t["scored"][i]),
                        *(f"{v:.6f}" if isinstance(v, float) else int(v) for v in values),
                    ]
                )


def write_outputs(config, results: dict) -> list[Path]:
    """Write every output file of the run into ``config.out``; returns the paths written."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, r in results.items():
        if r.entries is not None:
            stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(name).name)
            path = out / ("predictions.json" if len(results) == 1 else f"predictions_{stem}.json")
            write_json(path, r.entries, indent=None)
            written.append(path)
    write_frames_csv(results, out / "frames.csv")
    written.append(out / "frames.csv")
    if config.plots:
        written += write_plots(config, results, out)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(report_markdown(config, results))
    written.append(out / "report.md")
    # Written last: its presence says the run finished.
    write_json(out / "metrics.json", metrics_json(config, results))
    written.append(out / "metrics.json")
    return written


# ----------------------------------------------------------------------------- content completion (stage 2)
COMPLETION_KEYS = ("psnr_occ", "ssim_occ", "mae_occ", "psnr", "ssim", "silhouette_iou", "temporal_occ", "swd_occ")
_COMPLETION_COUNTS = ("objects", "frames", "occluded_frames")


def _completion_definitions() -> str:
    from amodal.evaluation import completion as cm
    from amodal.evaluation import fvd

    return (
        "Against each object's true unoccluded appearance on white; the *hidden region* is the true amodal mask "
        "minus the modal mask. `psnr_occ` / `psnr`: 10 log10(255^2 / MSE) on the hidden / whole amodal region, "
        f"frames pooled, {cm.PSNR_CAP_DB:g} dB for an exact match. `ssim_occ` / `ssim`: Gaussian SSIM "
        f"(sigma {cm.SSIM_SIGMA}, {cm.SSIM_TAPS} taps, per channel then averaged) of the whole frame, averaged over "
        "the region. `mae_occ`: mean absolute error on the hidden region (0-255). `silhouette_iou`: IoU of the "
        f"completion's non-white pixels (any channel < {cm.SILHOUETTE_THRESHOLD}) with the true amodal mask. "
        "`temporal_occ`: per object, mean over consecutive frames of |mean abs change of the completion - that of "
        "the truth| over the two frames' hidden regions, then over objects (0-255). `swd_occ`: sliced Wasserstein "
        f"distance x 1e3 between {cm.SWD_PATCH}x{cm.SWD_PATCH} Laplacian-pyramid patches centred on hidden pixels "
        f"(up to {cm.SWD_PATCHES_PER_OBJECT} per object and level), whole set, Top-1 only (Karras et al. 2018). "
        "`lpips_occ` (with --lpips-weights): LPIPS-Alex v0.1's per-pixel map (layers upsampled to the frame) "
        "averaged over the hidden region. `fvd` (with --fvd-weights): Fréchet distance between Gaussians fitted "
        f"to Kinetics-400 I3D logits (averaged over time) of {fvd.FVD_FRAMES}-frame windows of the completed and the "
        f"true objects on white, frames resized to {fvd.I3D_SIZE}x{fvd.I3D_SIZE}, whole set, Top-1 only "
        "(Unterthiner et al. 2018); noisy on small sets."
    )


def completion_report_markdown(config, results: dict) -> str:
    """The content of ``report.md`` for a completion run."""
    first = next(iter(results.values()))
    keys = COMPLETION_KEYS + tuple(k for k in ("lpips_occ", "fvd") if k in first.metrics) + _COMPLETION_COUNTS
    source = config.annotations if config.annotations is not None else f"{config.data}, split {config.split}"
    masks = "ground truth" if config.masks == "gt" else f"predicted by `{config.masks}` (end to end)"
    lines = [
        "# Completion evaluation report",
        "",
        f"- dataset: `{config.dataset}` ({source})",
        "- completion methods: " + ", ".join(f"`{m}`" for m in config.methods),
        f"- amodal masks: {masks}",
        f"- clips: {len(set(first.table['clip'].tolist()))}, samples per object: {config.samples}",
        "",
        "## Results",
        "",
        "| method | " + " | ".join(keys) + " |",
        "|---" * (1 + len(keys)) + "|",
    ]
    for name, r in results.items():
        lines.append(f"| {name} | " + " | ".join(_fmt(r.metrics.get(k)) for k in keys) + " |")
        if "top_k" in r.metrics:
            top = r.metrics["top_k"]
            lines.append(f"| {name} (top-{top['k']}) | " + " | ".join(_fmt(top.get(k)) for k in keys) + " |")
    lines += ["", _completion_definitions(), ""]
    skipped = first.metrics.get("skipped", {})
    if skipped:
        lines += ["Not computed: " + "; ".join(f"`{k}` {v}" for k, v in skipped.items()) + ".", ""]
    names = list(results)
    for column, title, where in (
        ("psnr_occ", "Top-1 psnr_occ by visible fraction", "occluded"),
        ("psnr", "Top-1 psnr by visible fraction", "scored"),
    ):
        tables = {
            n: breakdown(r.table, column, r.table["scored"] & r.table[where]) for n, r in results.items()
        }
        lines += ["## " + title, "", "Visible fraction: modal area over amodal area; frames in brackets.", ""]
        lines += _breakdown_table(tables, names, "visible_fraction", "visible fraction")
        lines.append("")
    if config.plots:
        lines += [
            "## Plots",
            "",
            "![psnr_occ against visible fraction](psnr_occ_vs_visible_fraction.png)",
            "",
            "![psnr_occ over time](psnr_occ_over_time.png)",
        ]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_completion_plots(config, results: dict, out: Path) -> list[Path]:
    """Top-1 ``psnr_occ`` per occluded frame against visible fraction (with bin means), and per frame index."""
    edges = np.linspace(0, 1, 11)
    fig, ax = _figure()
    for name, r in results.items():
        rows = r.table["scored"] & r.table["occluded"] & np.isfinite(r.table["visible_fraction"])
        x, y = r.table["visible_fraction"][rows], r.table["psnr_occ"][rows, 0]
        points = ax.scatter(x, y, s=6, alpha=0.3)
        which = np.clip(np.digitize(x, edges) - 1, 0, len(edges) - 2)
        means = [y[which == b].mean() if (which == b).any() else np.nan for b in range(len(edges) - 1)]
        ax.plot((edges[:-1] + edges[1:]) / 2, means, marker="o", color=points.get_facecolor()[0][:3], label=name)
    ax.set(xlabel="visible fraction of the object", ylabel="Top-1 PSNR of the hidden region (dB)", xlim=(0, 1.02))
    ax.set_title(f"Completion against visible fraction ({config.dataset})")
    ax.legend(loc="upper left")
    paths = [out / "psnr_occ_vs_visible_fraction.png"]
    _save(fig, paths[0])
    fig, ax = _figure()
    for name, r in results.items():
        rows = r.table["scored"] & r.table["occluded"]
        frames, value = r.table["frame"][rows], r.table["psnr_occ"][rows, 0]
        if frames.size:
            counts = np.bincount(frames)
            sums = np.bincount(frames, weights=value)
            used = counts > 0
            ax.plot(np.flatnonzero(used), sums[used] / counts[used], marker=".", label=name)
    ax.set(xlabel="frame", ylabel="mean Top-1 PSNR of the hidden region (dB)")
    ax.set_title(f"Completion over time ({config.dataset})")
    ax.legend(loc="upper left")
    paths.append(out / "psnr_occ_over_time.png")
    _save(fig, paths[1])
    return paths


def write_completion_outputs(config, results: dict) -> list[Path]:
    """Write every output file of a completion run into ``config.out``; returns the paths written."""
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    write_frames_csv(results, out / "frames.csv")
    written = [out / "frames.csv"]
    if config.plots:
        written += write_completion_plots(config, results, out)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(completion_report_markdown(config, results))
    written.append(out / "report.md")
    # Written last: its presence says the run finished.
    write_json(out / "metrics.json", metrics_json(config, results))
    written.append(out / "metrics.json")
    return written
