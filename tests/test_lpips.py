"""LPIPS-Alex from local safetensors: the reference formula, strict loading, and ``amodal eval --lpips-weights``."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from amodal.errors import CheckpointError, InputError
from amodal.evaluation.lpips import LPIPS, load_lpips, lpips_region

pytestmark = pytest.mark.usefixtures("one_thread")


def random_weights(path, seed=0):
    """Random LPIPS-Alex weights in the reference layout (positive lin weights, as trained ones are)."""
    torch.manual_seed(seed)
    model = LPIPS()
    with torch.no_grad():
        for lin in model.lins:
            lin.weight.uniform_(0.0, 1.0)
        model.shift.copy_(torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1))
        model.scale.copy_(torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1))
    path.mkdir()
    save_file(model.reference_state_dict(), str(path / "model.safetensors"))
    return path


def reference_lpips(tensors, x, y):
    """The reference's spatial LPIPS written out from its tensor names: slices of AlexNet, unit-normalised
    features, squared difference, 1x1 lin, bilinear upsampling, sum over layers."""
    def feats(z):
        z = (z - tensors["scaling_layer.shift"]) / tensors["scaling_layer.scale"]
        out = []
        for i, (index, pool, stride, pad) in enumerate([(0, False, 4, 2), (3, True, 1, 2), (6, True, 1, 1), (8, False, 1, 1), (10, False, 1, 1)]):
            if pool:
                z = F.max_pool2d(z, 3, 2)
            z = F.relu(F.conv2d(z, tensors[f"net.slice{i + 1}.{index}.weight"], tensors[f"net.slice{i + 1}.{index}.bias"], stride, pad))
            out.append(z)
        return out

    total = 0
    for i, (a, b) in enumerate(zip(feats(x), feats(y))):
        a = a / (a.norm(dim=1, keepdim=True) + 1e-10)
        b = b / (b.norm(dim=1, keepdim=True) + 1e-10)
        d = F.conv2d((a - b) ** 2, tensors[f"lin{i}.model.1.weight"])
        total = total + F.interpolate(d, size=x.shape[-2:], mode="bilinear", align_corners=False)
    return total[:, 0]


def test_lpips_matches_the_reference_formula_and_is_a_distance(tmp_path):
    from safetensors.torch import load_file

    folder = random_weights(tmp_path / "lpips")
    model = load_lpips(folder)
    x = torch.rand(2, 3, 64, 96) * 2 - 1
    y = torch.rand(2, 3, 64, 96) * 2 - 1
    with torch.no_grad():
        got = model.lpips_map(x, y)
        want = reference_lpips(load_file(str(folder / "model.safetensors")), x, y)
        assert torch.allclose(got, want, atol=1e-5)
        assert torch.allclose(model.lpips_map(x, x), torch.zeros(2, 64, 96))
        assert torch.allclose(got, model.lpips_map(y, x), atol=1e-6)
        assert (got.mean(dim=(1, 2)) > 0).all()


def test_lpips_region_averages_the_map_inside_the_region(tmp_path):
    model = load_lpips(random_weights(tmp_path / "lpips"))
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (3, 48, 64, 3), dtype=np.uint8)
    b = a.copy()
    b[:, 20:40, 30:60] = 255 - b[:, 20:40, 30:60]
    region = np.zeros((3, 48, 64), bool)
    region[0:2, 20:40, 30:60] = True
    values = lpips_region(model, b, a, region)
    assert np.isnan(values[2]) and (values[:2] > 0).all()
    changed_only_outside = lpips_region(model, a, a, region)
    assert np.allclose(changed_only_outside[:2], 0)


def test_lpips_loading_is_strict_and_never_unpickles(tmp_path):
    folder = random_weights(tmp_path / "lpips")
    from safetensors.torch import load_file

    tensors = load_file(str(folder / "model.safetensors"))
    del tensors["lin4.model.1.weight"]
    tensors["extra"] = torch.zeros(1)
    save_file(tensors, str(tmp_path / "broken.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing \['lin4.model.1.weight'\].*unexpected \['extra'\]"):
        load_lpips(tmp_path / "broken.safetensors")
    torch.save({"a": torch.zeros(1)}, tmp_path / "alex.pth")
    with pytest.raises(CheckpointError, match="only .safetensors"):
        load_lpips(tmp_path / "alex.pth")
    with pytest.raises(InputError, match="not found"):
        load_lpips(tmp_path / "nowhere")


def test_eval_adds_lpips_occ_with_local_weights_and_checks_fvd_weights(tmp_path, capsys):
    from amodal.cli import main
    from amodal.data.synth import SynthConfig, SynthSplit, write_split

    data = tmp_path / "data"
    world = SynthConfig(height=48, width=96, num_frames=6, num_objects=(2, 3))
    write_split(SynthSplit(out=data, split="test", videos=2, seed=4, synth=world), progress=False)
    weights = random_weights(tmp_path / "lpips")
    out = tmp_path / "out"
    assert main(["eval", "--task", "completion", "--dataset", "synthetic", "--data", str(data), "--method", "temporal",
                 "--method", "copy-modal", "--lpips-weights", str(weights), "--no-plots", "--quiet", "--out", str(out)]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics) == {"temporal", "copy-modal"}
    for row in metrics.values():
        assert row["lpips_occ"] > 0 and "lpips" not in row["skipped"]
        assert "fvd" not in row and "no local weights" in row["skipped"]["fvd"]
    capsys.readouterr()
    # LPIPS weights are not I3D weights: refused in one line, naming what is missing (tests/test_fvd.py runs FVD).
    assert main(["eval", "--task", "completion", "--dataset", "synthetic", "--data", str(data), "--method", "temporal",
                 "--fvd-weights", str(weights), "--out", str(tmp_path / "o2")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("amodal: error:") and "not Kinetics-400 InceptionI3d weights" in err and "Conv3d_1a_7x7" in err
