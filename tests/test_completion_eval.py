"""Stage-2 (content completion) benchmark: the metrics analytically, the baselines, and ``amodal eval --task completion``."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from amodal import cli
from amodal.completion.baselines import copy_modal, mask_positions, propagate, temporal
from amodal.data.synth import SynthConfig, SynthSplit, generate_clip, write_split
from amodal.errors import InputError
from amodal.evaluation import completion as cm
from amodal.evaluation import completion_methods
from amodal.evaluation.completion_methods import get_completion_method, register_completion_method

TINY = SynthConfig(height=32, width=64, num_frames=8, num_objects=(2, 3))
OCCLUDED_SEED = 2  # a TINY clip where an object passes behind another and reappears


def _rand(shape, seed=0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


# ----------------------------------------------------------------------------- metrics
def test_identical_images_score_perfectly():
    true = _rand((3, 24, 32, 3))
    amodal = np.zeros((3, 24, 32), bool)
    amodal[:, 4:20, 6:26] = True
    modal = amodal.copy()
    modal[:, :, 16:] = False
    assert np.all(cm.psnr(true, true, amodal) == cm.PSNR_CAP_DB)
    assert np.all(cm.psnr_occ(true, true, amodal, modal) == cm.PSNR_CAP_DB)
    assert np.allclose(cm.ssim(true, true, amodal), 1.0) and np.allclose(cm.ssim_occ(true, true, amodal, modal), 1.0)
    assert np.all(cm.mae_occ(true, true, amodal, modal) == 0)
    assert np.all(cm.temporal_pair_errors(true, true, amodal, modal) == 0)
    assert cm.temporal_error_occ(true, true, amodal, modal) == 0


def test_a_constant_offset_gives_the_known_psnr_and_mae():
    true = np.full((2, 16, 16, 3), 100, np.uint8)
    pred = true + np.uint8(10)
    amodal = np.ones((2, 16, 16), bool)
    modal = np.zeros_like(amodal)
    modal[:, :8] = True
    expected = 10 * math.log10(255**2 / 100)  # MSE = 10^2
    assert cm.psnr(pred, true, amodal) == pytest.approx([expected] * 2)
    assert cm.psnr_occ(pred, true, amodal, modal) == pytest.approx([expected] * 2)
    assert cm.mae_occ(pred, true, amodal, modal) == pytest.approx([10.0, 10.0])
    # The offset is the same in both frames: no flicker beyond the truth's own change.
    assert cm.temporal_error_occ(pred, true, amodal, modal) == pytest.approx(0.0)


def test_only_the_region_counts_and_empty_regions_are_not_scored():
    true = np.full((2, 8, 8, 3), 50, np.uint8)
    pred = true.copy()
    pred[:, :, 4:] = 0  # wrong only outside the region
    amodal = np.zeros((2, 8, 8), bool)
    amodal[0, :, :4] = True  # frame 1: empty region
    psnr = cm.psnr(pred, true, amodal)
    assert psnr[0] == cm.PSNR_CAP_DB and np.isnan(psnr[1])
    assert np.isnan(cm.psnr_occ(pred, true, amodal, amodal)).all()  # nothing hidden


def test_ssim_drops_with_noise_and_stays_in_range():
    true = _rand((16, 16, 3), 1).astype(np.float64)
    noisy = np.clip(true + np.random.default_rng(2).normal(0, 40, true.shape), 0, 255)
    amodal = np.ones((16, 16), bool)
    value = float(cm.ssim(noisy, true, amodal))
    assert -1 <= value < 0.9


def test_silhouette_iou_of_known_shapes():
    pred = np.full((1, 10, 10, 3), 255, np.uint8)
    pred[0, 2:6, 2:6] = (10, 200, 30)  # a 4x4 square
    pred[0, 8, 8] = (252, 252, 249)  # one channel under the threshold: part of the silhouette
    pred[0, 9, 9] = (251, 251, 251)  # near-white: not part of it
    amodal = np.zeros((1, 10, 10), bool)
    amodal[0, 2:6, 2:8] = True  # 4x6
    assert cm.silhouette_iou(pred, amodal) == pytest.approx([16 / 25])
    assert np.isnan(cm.silhouette_iou(np.full((1, 4, 4, 3), 255, np.uint8), np.zeros((1, 4, 4), bool))).all()


def test_temporal_error_is_the_flicker_against_the_truth():
    true = np.full((3, 4, 4, 3), 100, np.uint8)  # static truth
    pred = true.copy()
    pred[1] = 130  # the completion flickers by 30 in frame 1
    amodal = np.ones((3, 4, 4), bool)
    modal = np.zeros_like(amodal)
    assert cm.temporal_pair_errors(pred, true, amodal, modal) == pytest.approx([30.0, 30.0])
    modal[:] = True  # nothing hidden: undefined
    assert np.isnan(cm.temporal_error_occ(pred, true, amodal, modal))


def test_swd_of_a_set_with_itself_is_zero_and_noise_is_farther():
    rng = np.random.default_rng(0)
    base = np.repeat(np.linspace(0, 255, 64)[None, None, :, None], 32, axis=1).repeat(3, axis=-1)
    trues = [np.clip(base + rng.normal(0, 5, (4, 32, 64, 3)), 0, 255).astype(np.uint8) for _ in range(3)]
    hidden = [np.zeros((4, 32, 64), bool) for _ in range(3)]
    for h in hidden:
        h[:, 8:24, 16:48] = True
    same = cm.swd_occ(trues, trues, hidden)
    assert same["swd"] == 0 and len(same["levels"]) == cm.swd_levels(32, 64) == 2
    assert same["patches"] == [3 * cm.SWD_PATCHES_PER_OBJECT] * 2
    noisy = [np.clip(t + rng.normal(0, 60, t.shape), 0, 255).astype(np.uint8) for t in trues]
    slight = [np.clip(t + rng.normal(0, 3, t.shape), 0, 255).astype(np.uint8) for t in trues]
    far, near = cm.swd_occ(noisy, trues, hidden)["swd"], cm.swd_occ(slight, trues, hidden)["swd"]
    assert far > near > 0
    assert cm.swd_occ(noisy, trues, hidden)["swd"] == far  # fixed seed: repeatable


def test_laplacian_pyramid_levels_sum_back_to_the_image_size():
    pyramid = cm.laplacian_pyramid(_rand((33, 50, 3)), 3)
    assert [p.shape[:2] for p in pyramid] == [(33, 50), (17, 25), (9, 13)]


# ----------------------------------------------------------------------------- baselines
@pytest.fixture(scope="module")
def clip():
    return generate_clip(TINY, OCCLUDED_SEED)


def test_copy_modal_keeps_visible_pixels_and_whitens_the_rest(clip):
    out = copy_modal(clip, clip.amodal_masks)
    assert out.shape == (clip.num_objects, *clip.frames.shape) and out.dtype == np.uint8
    for k, modal in enumerate(clip.modal_masks):
        assert np.array_equal(out[k][modal], clip.frames[modal])
        assert (out[k][~modal] == 255).all()


def test_temporal_beats_copy_modal_on_the_hidden_region(clip):
    truth, amodal, modal = clip.amodal_rgb, clip.amodal_masks, clip.modal_masks
    assert (amodal & ~modal).any()
    scores = {}
    for name, fn in (("copy-modal", copy_modal), ("temporal", temporal)):
        out = fn(clip, amodal)
        assert out.shape == truth.shape and out.dtype == np.uint8
        assert (out[~amodal] == 255).all()  # white outside the amodal masks
        value = cm.psnr_occ(out, truth, amodal, modal)
        scores[name] = np.nanmean(value)
    assert scores["temporal"] > scores["copy-modal"] + 5


def test_propagate_fills_only_pixels_another_frame_shows(clip):
    pixels, known = propagate(clip, clip.amodal_masks)
    assert np.array_equal(pixels, temporal(clip, clip.amodal_masks))
    hidden = clip.amodal_masks & ~clip.modal_masks
    assert (known >= clip.modal_masks).all() and not (known & ~clip.amodal_masks).any()
    assert (known & hidden).any()  # the object reappears: part of what was hidden is known
    assert (pixels[~known] == 255).all() and not (pixels[known] == 255).all(axis=-1).all()
    # A pixel marked known holds a colour some frame of the clip shows.
    k, t, y, x = np.argwhere(known & hidden)[0]
    assert (clip.frames.reshape(-1, 3) == pixels[k, t, y, x]).all(axis=1).any()


def test_frame_scores_match_the_whole_frame_metrics(clip):
    out = temporal(clip, clip.amodal_masks)
    out[:, :, :2, :2] = 0  # a stray pixel far from the objects counts against the silhouette
    for k in range(clip.num_objects):
        args = (out[k], clip.amodal_rgb[k], clip.amodal_masks[k], clip.modal_masks[k])
        got = cm.frame_scores(*args)
        np.testing.assert_allclose(got["ssim"], cm.ssim(*args[:3]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["ssim_occ"], cm.ssim_occ(*args), rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["psnr_occ"], cm.psnr_occ(*args), rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["psnr"], cm.psnr(*args[:3]), rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["mae_occ"], cm.mae_occ(*args), rtol=0, atol=1e-12)
        np.testing.assert_allclose(got["silhouette_iou"], cm.silhouette_iou(out[k], clip.amodal_masks[k]))
        assert np.isnan(got["temporal_occ"][0])
        np.testing.assert_allclose(got["temporal_occ"][1:], cm.temporal_pair_errors(*args))


def test_mask_positions_follow_a_box_leaving_the_frame():
    masks = np.zeros((3, 10, 20), bool)
    for t, x in enumerate((8, 13, 16)):  # a 6-wide box moving right, cut by the right edge at t = 2
        masks[t, 3:6, x : x + 6] = True
    positions = mask_positions(masks)
    assert positions[:, 1] == pytest.approx([10.5, 15.5, 18.5])
    assert positions[:, 0] == pytest.approx([4.0, 4.0, 4.0])


@pytest.fixture(autouse=True)
def _registry(monkeypatch):
    """Names a test registers are gone after it."""
    monkeypatch.setattr(completion_methods, "_ADDED", {})


def test_the_completion_registry():
    with pytest.raises(InputError, match="unknown completion method"):
        get_completion_method("no-such-model")
    register_completion_method("white", lambda options: lambda clip, masks: np.full(
        (options.samples, clip.num_objects, *clip.frames.shape), 255, np.uint8))
    assert get_completion_method("white")(generate_clip(TINY.replace(num_frames=2), 0), None).shape[0] == 1


# ----------------------------------------------------------------------------- amodal eval --task completion
@pytest.fixture(scope="module")
def split(tmp_path_factory):
    root = tmp_path_factory.mktemp("completion") / "data"
    write_split(SynthSplit(out=root, split="test", videos=3, seed=0, synth=TINY), progress=False)
    return root


@pytest.fixture
def amodal(monkeypatch, capsys):
    monkeypatch.setattr(cli, "COMMANDS", ("eval",))

    def run(*argv):
        code = cli.main(["eval", *map(str, argv)])
        out = capsys.readouterr()
        return code, out.out, out.err

    return run


METRIC_KEYS = {"psnr_occ", "ssim_occ", "mae_occ", "psnr", "ssim", "silhouette_iou", "temporal_occ", "swd_occ",
               "frames", "occluded_frames", "objects", "method", "dataset", "task", "masks", "skipped"}


def test_eval_completion_one_method_with_ground_truth_masks(amodal, split, tmp_path):
    out = tmp_path / "out"
    code, stdout, err = amodal("--task", "completion", "--dataset", "synthetic", "--data", split,
                               "--method", "temporal", "--out", out, "--quiet")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert METRIC_KEYS <= set(metrics) and "top_k" not in metrics
    assert metrics["method"] == "temporal" and metrics["masks"] == "gt" and metrics["task"] == "completion"
    assert metrics["occluded_frames"] > 0 and metrics["psnr_occ"] > 0 and metrics["swd_occ"] > 0
    assert set(metrics["skipped"]) == {"lpips", "fvd"} and "fvd" not in metrics
    assert "no local weights" in metrics["skipped"]["lpips"] and "--fvd-weights" in metrics["skipped"]["fvd"]
    report = (out / "report.md").read_text()
    assert "| temporal |" in report and "psnr_occ by visible fraction" in report
    assert {p.name for p in out.iterdir()} >= {"frames.csv", "report.md", "metrics.json",
                                                "psnr_occ_vs_visible_fraction.png", "psnr_occ_over_time.png"}
    assert "psnr_occ=" in stdout


def test_eval_completion_top_k_several_methods_and_end_to_end(amodal, split, tmp_path):
    def noisy(options):
        def method(clip, masks):
            base = temporal(clip, masks)
            rng = np.random.default_rng(options.seed)
            noise = rng.integers(-40, 41, (options.samples, *base.shape))
            out = np.clip(base[None].astype(int) + noise * np.arange(options.samples)[:, None, None, None, None, None], 0, 255)
            return np.where(masks[None, ..., None], out, 255).astype(np.uint8)
        return method

    register_completion_method("noisy-temporal", noisy)
    out = tmp_path / "out"
    code, _, err = amodal("--task", "completion", "--dataset", "synthetic", "--data", split, "--method", "copy-modal",
                          "--method", "noisy-temporal", "--samples", "2", "--masks", "convex", "--out", out,
                          "--no-plots", "--quiet")
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"copy-modal", "noisy-temporal"}
    top = metrics["noisy-temporal"]["top_k"]
    assert top["k"] == 2 and top["psnr_occ"] >= metrics["noisy-temporal"]["psnr_occ"]
    assert metrics["noisy-temporal"]["masks"] == "convex"


def test_eval_completion_refuses_what_it_cannot_do(amodal, split, tmp_path):
    base = ("--task", "completion", "--dataset", "synthetic", "--data", split, "--out", tmp_path / "o", "--quiet")
    code, _, err = amodal(*base, "--method", "no-such-model")
    assert code != 0 and "unknown completion method" in err and "default-completion-regression" in err
    code, _, err = amodal(*base, "--method", "default")  # stage 1's model: said so, with where it goes
    assert code != 0 and "--method default: a stage-1 (segmentation) model, which --masks takes" in err
    assert "default-completion" in err
    code, _, err = amodal(*base, "--method", "temporal", "--window", "4")
    assert code != 0 and "--window" in err
    code, _, err = amodal("--dataset", "synthetic", "--data", split, "--method", "modal", "--masks", "convex",
                          "--out", tmp_path / "o", "--quiet")
    assert code != 0 and "--task completion" in err
