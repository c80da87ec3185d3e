"""``amodal eval``: scoring reference prediction files, running methods, reports, bad input, sharding."""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_datasets import write_movi_video, write_synthetic_split

from amodal import cli
from amodal.evaluation import methods as registry
from amodal.evaluation.methods import Prediction, register_method
from amodal.data.io import rle

from tiny import SCENE_H as H, SCENE_W as W, sailvos_predictions, tiny_scene, write_sailvos_clip

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def amodal(monkeypatch, capsys):
    """Run ``amodal eval ...`` in this process; returns (exit code, stdout, stderr)."""
    monkeypatch.setattr(cli, "COMMANDS", ("eval",))  # only the command under test is built

    def run(*argv):
        code = cli.main(["eval", *map(str, argv)])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


def _metrics(folder: Path) -> dict:
    return json.loads((folder / "metrics.json").read_text())


# ----------------------------------------------------------------------------- reference prediction files
def test_scores_sailvos_predictions_as_the_reference(amodal, shared_dir, tmp_path):
    folder = shared_dir / "fixtures" / "official_metrics" / "sailvos"
    expected = json.loads((folder / "official_metrics.json").read_text())
    code, out, err = amodal(
        "--dataset",
        "sailvos",
        "--annotations",
        folder / "annotations.json",
        "--predictions",
        folder / "predictions.json",
        "--out",
        tmp_path / "out",
        "--quiet",
    )
    assert code == 0, err
    got = _metrics(tmp_path / "out")
    assert got["miou"] == pytest.approx(expected["miou"], abs=1e-6)
    assert got["miou_occ"] == pytest.approx(expected["miou_occ"], abs=1e-6)
    assert {"miou_occ_strict", "frames", "method", "dataset"} <= set(got)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| predictions | 0.9612 | 0.8666 |" in report and "## Top-1 mIoU by category" in report
    for png in ("iou_vs_visible_fraction.png", "iou_over_time.png"):
        assert Image.open(tmp_path / "out" / png).size[0] > 100
    assert "miou=0.9612" in out


def test_scores_tao_amodal_predictions_as_the_reference(amodal, shared_dir, tmp_path):
    folder = shared_dir / "fixtures" / "official_metrics" / "tao_amodal"
    expected = json.loads((folder / "official_metrics.json").read_text())
    code, _, err = amodal(
        "--dataset",
        "tao-amodal",
        "--annotations",
        folder / "annotations.json",
        "--track-offsets",
        folder / "track_ids_abs2rel.json",
        "--predictions",
        folder / "predictions.json",
        "--out",
        tmp_path,
        "--quiet",
        "--no-plots",
    )
    assert code == 0, err
    got = _metrics(tmp_path)
    for key in ("miou", "ap25", "ap50", "ap75"):
        assert got[key] == pytest.approx(expected[key], abs=1e-6)
    assert "not COCO AP" in (tmp_path / "report.md").read_text()


def test_scores_a_sailvos_prediction_file(amodal, tmp_path):
    """The file the bad-prediction tests below break: valid, and scored per frame as IoU with the amodal truth."""
    annotations, scene = write_sailvos_clip(tmp_path / "sailvos")
    (tmp_path / "predictions.json").write_text(json.dumps(sailvos_predictions(scene["modal"][0])))
    code, _, err = amodal(
        "--dataset", "sailvos", "--annotations", annotations, "--predictions", tmp_path / "predictions.json",
        "--out", tmp_path / "out", "--quiet", "--no-plots",
    )
    assert code == 0, err
    modal, truth = scene["modal"][0], scene["amodal"][0]
    per_frame = (modal & truth).sum(axis=(1, 2)) / (modal | truth).sum(axis=(1, 2))
    assert per_frame.min() < 1 == per_frame.max()  # the bar hides part of the square in some frames only
    assert _metrics(tmp_path / "out")["miou"] == pytest.approx(float(per_frame.mean()), abs=1e-6)


def _bad_predictions(tmp_path: Path, edit) -> tuple[Path, Path]:
    annotations, scene = write_sailvos_clip(tmp_path / "sailvos")
    predictions = sailvos_predictions(scene["modal"][0])
    edit(predictions)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(predictions))
    return annotations, path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p.pop("(100003, 24)"), r"bad\.json: no prediction for \(100003, 24\)"),
        (
            lambda p: p["(100002, 24)"].update(diffvas_res_rle={"size": [128, 256], "counts": "0"}),
            rf"bad\.json: \(100002, 24\): mask is 256x128 but expected {W}x{H}",
        ),
        (
            lambda p: p["(100001, 24)"]["diffvas_res_rle"].update(counts="0000"),
            r"bad\.json: \(100001, 24\): corrupt RLE counts",
        ),
        (
            lambda p: p.update({"(100000, 24)": [1, 2]}),
            r"entry \(100000, 24\) must be an object with a \"diffvas_res_rle\"",
        ),
    ],
)
def test_bad_predictions_name_the_first_bad_entry_and_write_nothing(amodal, tmp_path, edit, message):
    annotations, predictions = _bad_predictions(tmp_path, edit)
    code, _, err = amodal(
        "--dataset",
        "sailvos",
        "--annotations",
        annotations,
        "--predictions",
        predictions,
        "--out",
        tmp_path / "out",
        "--quiet",
    )
    assert code == 2
    assert err.startswith("amodal: error: ") and len(err.strip().splitlines()) == 1
    assert re.search(message, err), err
    assert not (tmp_path / "out").exists()


def test_prediction_file_that_is_not_an_object(amodal, tmp_path):
    annotations, _ = write_sailvos_clip(tmp_path / "sailvos")
    path = tmp_path / "list.json"
    path.write_text("[1, 2]")
    code, _, err = amodal(
        "--dataset", "sailvos", "--annotations", annotations, "--predictions", path, "--out", tmp_path / "out"
    )
    assert code == 2 and "list.json: expected a non-empty JSON object" in err
    code, _, err = amodal(
        "--dataset",
        "sailvos",
        "--annotations",
        annotations,
        "--predictions",
        path,
        "--method",
        "modal",
        "--out",
        tmp_path / "out",
    )
    assert code == 2 and "pass either --method" in err


# ----------------------------------------------------------------------------- running methods
def test_baselines_on_a_synthetic_split_and_the_round_trip(amodal, tmp_path):
    write_synthetic_split(tmp_path / "data", videos=2, frames=8)
    out = tmp_path / "run"
    code, _, err = amodal(
        "--dataset",
        "synthetic",
        "--data",
        tmp_path / "data",
        "--method",
        "modal",
        "--method",
        "convex",
        "--method",
        "temporal",
        "--out",
        out,
        "--quiet",
    )
    assert code == 0, err
    got = _metrics(out)
    assert set(got) == {"modal", "convex", "temporal"}
    # The modal baseline never finds a hidden pixel: the reference protocol drops
    # every occluded frame (undefined mean), the strict one scores them 0.
    assert got["modal"]["miou_occ"] is None and got["modal"]["miou_occ_strict"] == 0.0
    assert got["temporal"]["miou"] > got["convex"]["miou"] > got["modal"]["miou"]
    assert got["temporal"]["miou_occ_strict"] > 0.9
    report = (out / "report.md").read_text()
    assert "| temporal |" in report and "## Top-1 mIoU by visible fraction" in report
    predictions = json.loads((out / "predictions_temporal.json").read_text())
    assert len(predictions) == 2 * 2 * 8 and "(1000, 1)" in predictions
    # The written predictions, scored as a reference file, give the same numbers.
    code, _, err = amodal(
        "--dataset",
        "synthetic",
        "--data",
        tmp_path / "data",
        "--predictions",
        out / "predictions_temporal.json",
        "--out",
        tmp_path / "rescored",
        "--quiet",
        "--no-plots",
    )
    assert code == 0, err
    rescored = _metrics(tmp_path / "rescored")
    for key in ("miou", "miou_occ", "miou_occ_strict"):
        assert rescored[key] == pytest.approx(got["temporal"][key], abs=1e-12)


def test_windows_score_every_frame_once(amodal, tmp_path):
    write_synthetic_split(tmp_path / "data", videos=1, frames=7)
    runs = {}
    for window in (None, 3):
        out = tmp_path / f"w{window}"
        extra = ("--window", window) if window else ()
        code, _, err = amodal(
            "--dataset",
            "synthetic",
            "--data",
            tmp_path / "data",
            "--method",
            "convex",
            "--out",
            out,
            "--quiet",
            "--no-plots",
            *extra,
        )
        assert code == 0, err
        runs[window] = _metrics(out)
    assert runs[3] == runs[None] and runs[3]["frames"] == 2 * 7


def test_top_k_picks_the_best_sample_per_object(amodal, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "_ADDED", dict(registry._ADDED))

    def hypotheses(options):
        def method(clip):
            # Sample 0 the visible mask, sample 1 the truth, the rest empty: Top-1 is the
            # modal baseline, Top-k with k >= 2 is perfect.
            samples = np.zeros((options.samples, *clip.modal_masks.shape), bool)
            samples[0] = clip.modal_masks
            samples[1] = clip.amodal_masks
            return Prediction(samples)

        return method

    register_method("two-guesses", hypotheses)
    write_synthetic_split(tmp_path / "data", videos=1, frames=4)
    code, _, err = amodal(
        "--dataset",
        "synthetic",
        "--data",
        tmp_path / "data",
        "--method",
        "two-guesses",
        "--samples",
        3,
        "--out",
        tmp_path / "out",
        "--quiet",
        "--no-plots",
    )
    assert code == 0, err
    got = _metrics(tmp_path / "out")
    assert got["top_k"]["k"] == 3
    assert got["top_k"]["miou"] == pytest.approx(1.0, abs=1e-6) and got["miou"] < 0.99
    assert "| two-guesses (top-3) | 1.0000 |" in (tmp_path / "out" / "report.md").read_text()


def test_movi_run_reports_whole_frame_and_cropped(amodal, tmp_path):
    write_movi_video(tmp_path / "movi" / "test" / "000001", frames=5)
    code, _, err = amodal(
        "--dataset",
        "movi",
        "--data",
        tmp_path / "movi",
        "--method",
        "convex",
        "--method",
        "temporal",
        "--out",
        tmp_path / "out",
        "--quiet",
        "--no-plots",
    )
    assert code == 0, err
    got = _metrics(tmp_path / "out")
    assert {"miou", "miou_occ", "miou_occ_strict", "miou_cropped", "miou_occ_cropped", "objects"} <= set(got["convex"])
    assert got["convex"]["objects"] == 2
    assert got["temporal"]["miou"] >= got["convex"]["miou"]
    assert "('000001', 0, 0)" in json.loads((tmp_path / "out" / "predictions_convex.json").read_text())


def _write_tao_split(root: Path, frames: int = 5) -> None:
    """The tiny scene as a TAO-Amodal video: the square's modal RLEs and amodal boxes, frames as JPEG."""
    scene = tiny_scene(frames)
    video = root / "val" / "DATASET" / "vid7"
    video.mkdir(parents=True)
    names = []
    for t in range(frames):
        Image.fromarray(scene["frames"][t]).save(video / f"frame{t:04d}.jpg", quality=95)
        names.append(f"val/DATASET/vid7/frame{t:04d}.jpg")
    ys, xs = np.nonzero(scene["amodal"][0, 0])
    boxes = [[float(xs.min()) + 4 * t, float(ys.min()), 12.0, 12.0] for t in range(frames)]
    track = {
        "track_id": 12,
        "category_id": 5,
        "video_id": 7,
        "file_names": names,
        "height": H,
        "width": W,
        "rles": [rle.encode(m)["counts"] for m in scene["modal"][0]],
        "amodal_bboxes": boxes,
    }
    (root / "annotations.json").write_text(json.dumps([track]))
    (root / "track_ids_abs2rel.json").write_text(json.dumps({"7": 11}))


def test_report_names_categories_as_the_annotation_file_does(amodal, tmp_path):
    from amodal.evaluation.report import category_names

    _write_tao_split(tmp_path / "tao")
    path = tmp_path / "tao" / "annotations.json"
    tracks = json.loads(path.read_text())
    tracks[0]["category_name"] = "dog"
    path.write_text(json.dumps(tracks))
    code, _, err = amodal("--dataset", "tao-amodal", "--data", tmp_path / "tao", "--annotations", path,
                          "--method", "modal", "--out", tmp_path / "out", "--quiet", "--no-plots")
    assert code == 0, err
    report = (tmp_path / "out" / "report.md").read_text()
    assert "## Top-1 mIoU by category" in report and "| dog (5) |" in report
    # A COCO-style file's top-level categories name them too; a file without names leaves the ids.
    coco = tmp_path / "coco.json"
    coco.write_text(json.dumps({"categories": [{"id": 5, "name": "dog"}, {"id": 7, "name": "cat"}], "annotations": []}))
    config = type("Config", (), {"annotations": coco, "data": None, "split": "test"})()
    assert category_names(config) == {5: "dog", 7: "cat"}
    path.write_text(json.dumps([{**tracks[0], "category_name": None}]))
    config.annotations = path
    assert category_names(config) == {}


def test_tao_amodal_run_and_round_trip(amodal, tmp_path):
    _write_tao_split(tmp_path / "tao")
    code, _, err = amodal(
        "--dataset",
        "tao-amodal",
        "--data",
        tmp_path / "tao",
        "--annotations",
        tmp_path / "tao" / "annotations.json",
        "--method",
        "modal",
        "--out",
        tmp_path / "out",
        "--quiet",
        "--no-plots",
    )
    assert code == 0, err
    got = _metrics(tmp_path / "out")
    predictions = json.loads((tmp_path / "out" / "predictions.json").read_text())
    assert predictions["(7, 'frame0004.jpg', '2')"]["diffvas_res_bbox"] == [
        22.0,
        14.0,
        6.0,
        12.0,
    ]  # cut to 6 px by the bar
    assert 0 < got["miou"] < 1 and got["ap75"] < 1
    code, _, err = amodal(
        "--dataset",
        "tao-amodal",
        "--annotations",
        tmp_path / "tao" / "annotations.json",
        "--predictions",
        tmp_path / "out" / "predictions.json",
        "--out",
        tmp_path / "rescored",
        "--quiet",
        "--no-plots",
    )
    assert code == 0, err
    assert _metrics(tmp_path / "rescored")["miou"] == pytest.approx(got["miou"], abs=1e-12)


# ----------------------------------------------------------------------------- sharding
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
def test_two_accelerate_processes_give_the_numbers_of_one(amodal, tmp_path):
    write_synthetic_split(tmp_path / "data", videos=3, frames=5)
    common = [
        "eval",
        "--dataset",
        "synthetic",
        "--data",
        str(tmp_path / "data"),
        "--method",
        "convex",
        "--method",
        "temporal",
        "--quiet",
        "--no-plots",
    ]
    code, _, err = amodal(*common[1:], "--out", tmp_path / "one")
    assert code == 0, err
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO / "src"))
    launch = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        "2",
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
        "--main_process_port",
        str(_free_port()),
        "-m",
        "amodal",
        *common,
        "--out",
        str(tmp_path / "two"),
    ]
    done = subprocess.run(launch, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    assert _metrics(tmp_path / "two") == _metrics(tmp_path / "one")
    for name in ("predictions_convex.json", "predictions_temporal.json"):
        assert json.loads((tmp_path / "two" / name).read_text()) == json.loads((tmp_path / "one" / name).read_text())
    assert done.stdout.count("wrote ") == 1  # only the main process reports


def test_a_process_group_is_closed_before_the_interpreter_exits(tmp_path):
    # An open gloo group at exit aborts the process at random; the group must be gone by then.
    script = """
import atexit, os
import torch.distributed as dist
atexit.register(lambda: print("open at exit:", dist.is_initialized()))  # runs last (LIFO)
dist.init_process_group("gloo", init_method="file://" + os.environ["STORE"], rank=0, world_size=1)
from amodal.util.processes import leave_group_at_exit
leave_group_at_exit()
leave_group_at_exit()  # registering twice closes once
print("open now:", dist.is_initialized())
"""
    env = dict(os.environ, STORE=str(tmp_path / "store"), PYTHONPATH=str(REPO / "src"))
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == ["open now: True", "open at exit: False"]


def test_eval_with_true_amodal_boxes(amodal, tmp_path):
    write_synthetic_split(tmp_path / "data", videos=2, frames=5)
    common = ["--dataset", "synthetic", "--data", tmp_path / "data", "--method", "modal", "--method", "convex",
              "--quiet", "--no-plots"]
    assert amodal(*common, "--out", tmp_path / "free")[0] == 0
    code, out, err = amodal(*common, "--amodal-boxes", "gt", "--out", tmp_path / "boxed")
    assert code == 0, err
    free, boxed = _metrics(tmp_path / "free"), _metrics(tmp_path / "boxed")
    assert boxed["modal"]["miou"] == free["modal"]["miou"]  # the visible mask is inside its amodal box
    assert boxed["convex"]["miou"] >= free["convex"]["miou"] - 1e-9  # cutting to the true box never loses truth
    code, _, err = amodal(*common, "--amodal-boxes", "file.json", "--out", tmp_path / "bad")
    assert code == 2 and "invalid choice" in err


def test_tao_amodal_with_its_own_amodal_boxes(amodal, tmp_path):
    _write_tao_split(tmp_path / "tao")
    common = ["--dataset", "tao-amodal", "--data", tmp_path / "tao", "--annotations", tmp_path / "tao" / "annotations.json",
              "--method", "convex", "--quiet", "--no-plots"]
    assert amodal(*common, "--out", tmp_path / "free")[0] == 0
    code, _, err = amodal(*common, "--amodal-boxes", "gt", "--out", tmp_path / "boxed")
    assert code == 0, err
    free, boxed = _metrics(tmp_path / "free"), _metrics(tmp_path / "boxed")
    assert boxed["ap50"] >= free["ap50"] and boxed["miou"] >= free["miou"]  # never outside the true boxes
    boxes = json.loads((tmp_path / "tao" / "annotations.json").read_text())[0]["amodal_bboxes"]
    predicted = json.loads((tmp_path / "boxed" / "predictions.json").read_text())
    for t, (x, y, w, h) in enumerate(boxes):
        px, py, pw, ph = predicted[f"(7, 'frame{t:04d}.jpg', '2')"]["diffvas_res_bbox"]
        assert px >= x - 1e-6 and py >= y - 1e-6 and px + pw <= x + w + 1e-6 and py + ph <= y + h + 1e-6


def test_levels_reach_the_bundled_models_top_k(amodal, tmp_path):
    """The bundled twin is deterministic: with its recorded stratified levels its three samples are
    level sets (Top-3 at least Top-1, and above it somewhere); `--levels fixed` gives three copies."""
    write_synthetic_split(tmp_path / "data", videos=3, frames=12)
    got = {}
    for levels in ("stratified", "fixed"):
        out = tmp_path / levels
        args = ["--dataset", "synthetic", "--data", tmp_path / "data", "--method", "default-regression",
                "--samples", 3, "--out", out, "--quiet", "--no-plots"]
        code, _, err = amodal(*args, *(["--levels", "fixed"] if levels == "fixed" else []))
        assert code == 0, err
        got[levels] = _metrics(out)
    fixed, stratified = got["fixed"], got["stratified"]
    assert stratified["miou"] == pytest.approx(fixed["miou"], abs=1e-9)  # Top-1 is the same reading
    assert fixed["top_k"]["miou"] == pytest.approx(fixed["miou"], abs=1e-9)
    assert stratified["top_k"]["miou"] > stratified["miou"]
    code, _, err = amodal("--dataset", "synthetic", "--data", tmp_path / "data", "--method", "default",
                          "--levels", "random", "--out", tmp_path / "bad", "--quiet")
    assert code == 2 and "--levels" in err
