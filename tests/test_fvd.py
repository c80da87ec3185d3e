"""FVD from local Kinetics I3D safetensors: the reference layout and forward pass, strict loading, the Fréchet
distance in closed form, windows, and ``amodal eval --task completion --fvd-weights``."""

import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from amodal.errors import CheckpointError, InputError
from amodal.evaluation import fvd
from amodal.evaluation.fvd import InceptionI3d, frechet_distance, frechet_distance_gaussians, i3d_features, load_i3d

pytestmark = pytest.mark.usefixtures("one_thread")

MIXED = ("Mixed_3b", "Mixed_3c", "Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f", "Mixed_5b", "Mixed_5c")


def random_state(seed=0) -> dict:
    """Random I3D weights in the reference layout, with BatchNorm statistics away from the identity."""
    torch.manual_seed(seed)
    model = InceptionI3d()
    with torch.no_grad():
        for name, value in model.state_dict().items():
            if name.endswith("running_mean") or name.endswith("bn.bias"):
                value.uniform_(-0.1, 0.1)
            elif name.endswith("running_var") or name.endswith("bn.weight"):
                value.uniform_(0.5, 1.5)
    return {k: v.contiguous() for k, v in model.state_dict().items()}


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    folder = tmp_path_factory.mktemp("i3d")
    save_file(random_state(), str(folder / "model.safetensors"))
    return folder


def reference_i3d(tensors, x):
    """The reference InceptionI3d's forward pass written out from its tensor names: TF "SAME" padding
    (``pad = max((ceil(n / s) - 1) s + k - n, 0)``, the odd pixel at the end), conv-BN(eps 1e-3)-ReLU units,
    four-branch mixed layers, a 2-frame average pool over the remaining frame, the logits unit, the mean over time."""
    def pad(z, kernel, stride):
        amounts = []
        for n, k, s in zip(z.shape[2:], kernel, stride):
            total = max((math.ceil(n / s) - 1) * s + k - n, 0)
            amounts.append((total // 2, total - total // 2))
        return F.pad(z, [p for pair in reversed(amounts) for p in pair])

    def unit(z, name, stride=(1, 1, 1)):
        w = tensors[f"{name}.conv3d.weight"]
        z = F.conv3d(pad(z, w.shape[2:], stride), w, tensors.get(f"{name}.conv3d.bias"), stride)
        if f"{name}.bn.weight" not in tensors:
            return z
        bn = [tensors[f"{name}.bn.{k}"] for k in ("running_mean", "running_var", "weight", "bias")]
        return F.relu(F.batch_norm(z, *bn, training=False, eps=1e-3))

    def pool(z, kernel, stride):
        return F.max_pool3d(pad(z, kernel, stride), kernel, stride)

    x = unit(x, "Conv3d_1a_7x7", (2, 2, 2))
    x = pool(x, (1, 3, 3), (1, 2, 2))
    x = unit(unit(x, "Conv3d_2b_1x1"), "Conv3d_2c_3x3")
    x = pool(x, (1, 3, 3), (1, 2, 2))
    for name in MIXED:
        if name == "Mixed_4b":
            x = pool(x, (3, 3, 3), (2, 2, 2))
        if name == "Mixed_5b":
            x = pool(x, (2, 2, 2), (2, 2, 2))
        x = torch.cat([unit(x, f"{name}.b0"), unit(unit(x, f"{name}.b1a"), f"{name}.b1b"),
                       unit(unit(x, f"{name}.b2a"), f"{name}.b2b"), unit(pool(x, (3, 3, 3), (1, 1, 1)), f"{name}.b3b")], 1)
    x = F.avg_pool3d(x, (2, *x.shape[3:]), 1)
    return unit(x, "logits")[:, :, :, 0, 0].mean(2)


# ----------------------------------------------------------------------------- network and weights
def test_state_dict_is_the_reference_layout():
    state = InceptionI3d().state_dict()
    assert len(state) == 3 * 5 + 9 * 6 * 5 + 2
    assert {"Conv3d_1a_7x7.conv3d.weight", "Conv3d_1a_7x7.bn.running_var", "Mixed_3b.b1b.conv3d.weight",
            "Mixed_5c.b3b.bn.running_mean", "logits.conv3d.bias"} <= set(state)
    assert tuple(state["Conv3d_1a_7x7.conv3d.weight"].shape) == (64, 3, 7, 7, 7)
    assert tuple(state["Mixed_4b.b0.conv3d.weight"].shape) == (192, 480, 1, 1, 1)
    assert tuple(state["logits.conv3d.weight"].shape) == (400, 1024, 1, 1, 1)
    assert sum(v.numel() for v in state.values()) == 12_711_824


def test_forward_matches_the_reference_written_out(weights):
    model = load_i3d(weights)
    tensors = load_file(str(weights / "model.safetensors"))
    for frames, height, width in ((9, 40, 48), (20, 33, 35)):  # odd sizes exercise the uneven "SAME" padding
        x = torch.rand(2, 3, frames, height, width) * 2 - 1
        with torch.no_grad():
            got, want = model(x), reference_i3d(tensors, x)
        assert got.shape == (2, 400) and torch.allclose(got, want, atol=1e-5)
    with pytest.raises(InputError, match="T >= 9"):
        model(torch.zeros(1, 3, 8, 32, 32))


def test_loading_is_strict_and_never_unpickles(weights, tmp_path):
    tensors = load_file(str(weights / "model.safetensors"))
    counted = {**tensors, "Mixed_3b.b0.bn.num_batches_tracked": torch.tensor(0)}  # what torch >= 0.4 adds: ignored
    save_file(counted, str(tmp_path / "counted.safetensors"))
    load_i3d(tmp_path / "counted.safetensors")
    broken = dict(tensors)
    del broken["Mixed_4c.b2b.bn.running_var"]
    broken["extra"] = torch.zeros(1)
    save_file(broken, str(tmp_path / "broken.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing \['Mixed_4c.b2b.bn.running_var'\].*unexpected \['extra'\]"):
        load_i3d(tmp_path / "broken.safetensors")
    charades = {**tensors, "logits.conv3d.weight": torch.zeros(157, 1024, 1, 1, 1), "logits.conv3d.bias": torch.zeros(157)}
    save_file(charades, str(tmp_path / "charades.safetensors"))
    with pytest.raises(CheckpointError, match=r"logits.conv3d.\w+ has shape \(157"):
        load_i3d(tmp_path / "charades.safetensors")
    torch.save({"a": torch.zeros(1)}, tmp_path / "rgb_imagenet.pt")
    with pytest.raises(CheckpointError, match="--fvd-weights .*only .safetensors"):
        load_i3d(tmp_path / "rgb_imagenet.pt")
    with pytest.raises(InputError, match="--fvd-weights .*not found"):
        load_i3d(tmp_path / "nowhere")


# ----------------------------------------------------------------------------- windows and features
def test_windows_cover_every_frame_and_short_clips_repeat_their_last_frame():
    assert fvd.fvd_window_starts(16) == [0] and fvd.fvd_window_starts(5) == [0]
    assert fvd.fvd_window_starts(32) == [0, 16] and fvd.fvd_window_starts(40) == [0, 16, 24]
    video = np.arange(5, dtype=np.uint8)[:, None, None, None] * np.ones((5, 2, 3, 3), np.uint8)
    windows = fvd.video_windows(video)
    assert windows.shape == (1, 16, 2, 3, 3)
    assert (windows[0, :5] == video).all() and (windows[0, 5:] == 4).all()
    long = np.random.default_rng(0).integers(0, 256, (40, 2, 3, 3), dtype=np.uint8)
    assert (fvd.video_windows(long)[2] == long[24:]).all()


def test_features_see_224_frames_by_default(weights):
    model = load_i3d(weights)
    seen = []
    model.Conv3d_1a_7x7.register_forward_pre_hook(lambda module, args: seen.append((tuple(args[0].shape), args[0].min().item(), args[0].max().item())))
    video = np.zeros((5, 20, 30, 3), np.uint8)
    video[:, 5:15, 10:20] = 255
    features = i3d_features(model, [video])
    shape, lo, hi = seen[0]
    assert features.shape == (1, 400) and features.dtype == np.float64
    assert shape == (1, 3, 16, 224, 224) and -1 <= lo < hi <= 1


# ----------------------------------------------------------------------------- Fréchet distance
def _rotation(d, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((d, d)))
    return q


def test_frechet_distance_of_gaussians_in_closed_form():
    from scipy.linalg import sqrtm

    d = 6
    mu1, mu2 = np.zeros(d), np.arange(d, dtype=float)
    a = np.array([0.1, 0.5, 1.0, 2.0, 4.0, 9.0])
    r = _rotation(d, 0)
    sigma2 = r @ np.diag(a) @ r.T
    # sigma1 = I: (sigma1 sigma2)^(1/2) = sigma2^(1/2), so d = |mu1 - mu2|^2 + sum (1 - sqrt(a))^2.
    want = ((mu1 - mu2) ** 2).sum() + ((1 - np.sqrt(a)) ** 2).sum()
    assert frechet_distance_gaussians(mu1, np.eye(d), mu2, sigma2) == pytest.approx(want, rel=1e-10)
    # One dimension: (m1 - m2)^2 + (s1 - s2)^2.
    assert frechet_distance_gaussians([1.0], [[4.0]], [-2.0], [[9.0]]) == pytest.approx(9 + 1)
    # General full-rank covariances: the textbook formula with scipy's sqrtm; symmetric; 0 for one Gaussian.
    b = np.random.default_rng(1).standard_normal((d, d))
    sigma1 = b @ b.T + 0.1 * np.eye(d)
    textbook = ((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2 - 2 * sqrtm(sigma1 @ sigma2).real)
    assert frechet_distance_gaussians(mu1, sigma1, mu2, sigma2) == pytest.approx(textbook, rel=1e-8)
    assert frechet_distance_gaussians(mu2, sigma2, mu1, sigma1) == pytest.approx(textbook, rel=1e-8)
    assert frechet_distance_gaussians(mu2, sigma2, mu2, sigma2) == pytest.approx(0, abs=1e-9)


def test_frechet_distance_of_feature_sets():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((50, 8)) @ rng.standard_normal((8, 8)) + 3.0
    assert frechet_distance(x, x) == pytest.approx(0, abs=1e-9)
    shift = rng.standard_normal(8)
    assert frechet_distance(x, x + shift) == pytest.approx((shift**2).sum(), rel=1e-9)  # only the mean moves
    # Scaling by c scales the mean by c and the covariance by c^2: d = (1 - c)^2 (|mu|^2 + tr sigma).
    c = 2.5
    mu, sigma = x.mean(0), np.cov(x, rowvar=False)
    assert frechet_distance(x, c * x) == pytest.approx((1 - c) ** 2 * ((mu**2).sum() + np.trace(sigma)), rel=1e-9)
    few = rng.standard_normal((5, 400))  # fewer samples than dimensions: singular covariances, still exact
    assert frechet_distance(few, few) == pytest.approx(0, abs=1e-8)
    assert frechet_distance(few, few + 1) == pytest.approx(400, rel=1e-9)
    with pytest.raises(InputError, match="N >= 2"):
        frechet_distance(x[:1], x)


# ----------------------------------------------------------------------------- amodal eval
def _split(root, videos=2, num_objects=(2, 3)):
    from amodal.data.synth import SynthConfig, SynthSplit, write_split

    world = SynthConfig(height=48, width=96, num_frames=6, num_objects=num_objects)
    write_split(SynthSplit(out=root, split="test", videos=videos, seed=4, synth=world), progress=False)
    return root


def _evaluate(data, out, weights, methods):
    from amodal.evaluation.run import EvalConfig, run_evaluation

    # 32x32 frames keep the test fast; the CLI always runs I3D at 224.
    config = EvalConfig(dataset="synthetic", out=out, data=data, methods=methods, task="completion",
                        fvd_weights=weights, fvd_size=32, plots=False, progress=False)
    run_evaluation(config)
    return json.loads((out / "metrics.json").read_text())


def test_eval_writes_fvd_and_an_exact_completion_scores_zero(weights, tmp_path):
    from amodal.data.datasets import index_dataset
    from amodal.evaluation.completion_methods import register_completion_method

    data = _split(tmp_path / "data")
    index = index_dataset("synthetic", data, "test")
    truth = {index.item(i).clip.source: index.item(i).clip.amodal_rgb for i in range(len(index))}
    register_completion_method("oracle", lambda options: lambda clip, masks: truth[clip.source][None])
    metrics = _evaluate(data, tmp_path / "out", weights, ("temporal", "oracle"))
    objects = sum(len(video) for video in truth.values())
    for row in metrics.values():
        assert "fvd" not in row["skipped"] and row["fvd_videos"] == objects  # 6 frames: one padded window per object
    assert math.isfinite(metrics["temporal"]["fvd"]) and metrics["temporal"]["fvd"] > 0
    assert metrics["oracle"]["fvd"] == pytest.approx(0, abs=1e-9)
    report = (tmp_path / "out" / "report.md").read_text()
    assert "| swd_occ | fvd |" in report and "`fvd` (with --fvd-weights)" in report


def test_eval_skips_fvd_with_fewer_than_two_videos(weights, tmp_path):
    data = _split(tmp_path / "data", videos=1, num_objects=(1, 1))
    metrics = _evaluate(data, tmp_path / "out", weights, ("temporal",))
    assert "fvd" not in metrics and "at least 2 videos" in metrics["skipped"]["fvd"]


def test_cli_refuses_bad_fvd_weights_in_one_line(weights, tmp_path, capsys):
    from amodal.cli import main

    data = _split(tmp_path / "data", videos=1)
    inputs = tmp_path / "weights"
    inputs.mkdir()
    torch.save({"a": torch.zeros(1)}, inputs / "rgb_imagenet.pt")
    for path, says in ((inputs / "nowhere", "not found"), (inputs / "rgb_imagenet.pt", "only .safetensors"),
                       (inputs, "not found")):
        code = main(["eval", "--task", "completion", "--dataset", "synthetic", "--data", str(data), "--method", "temporal",
                     "--fvd-weights", str(path), "--quiet", "--out", str(tmp_path / "out")])
        err = capsys.readouterr().err
        assert code == 2 and err.startswith("amodal: error: --fvd-weights") and says in err and err.count("\n") == 1
