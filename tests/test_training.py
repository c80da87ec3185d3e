"""Training on Accelerate with tiny models: strict configs, data windows, exact resume, overfitting, the CLIs."""

import json

import numpy as np
import pytest
import torch

from amodal.cli import main
from amodal.errors import InputError
from amodal.checkpoints.registry import load_segmenter
from amodal.training import TrainConfig, export_checkpoint, train_segmentation
from amodal.training.checkpoint import list_checkpoints
from amodal.training.data import WindowSampler, open_pool
from amodal.training.loop import learning_rate_factor, validation_scores
from amodal.segmentation.model import SegmenterConfig

from tiny import randomize

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory):
    """A synth config for 32x64 clips of 8 frames (cheap to render) and a shared pool cache."""
    root = tmp_path_factory.mktemp("tiny_world")
    synth = root / "synth.json"
    synth.write_text(json.dumps({"height": 32, "width": 64, "num_frames": 8, "max_march_steps": 16}))
    return {"synth": str(synth), "cache": str(root / "cache")}


def tiny_config(tiny_world, **changes) -> dict:
    values = {
        "model": {
            "objective": "diffusion",
            "num_frames": 4,
            "height": 16,
            "width": 32,
            "backbone": {"channels": [8, 16], "patch": 2, "heads": 2, "emb_dim": 16, "groups": 4},
        },
        "data": {
            "source": "generator",
            "train_clips": 3,
            "val_clips": 3,
            "synth_config": tiny_world["synth"],
            "val_windows": 4,
            "cache_dir": tiny_world["cache"],
            "occluded_share": 0.0,
        },
        "steps": 6,
        "batch_size": 2,
        "warmup_steps": 2,
        "log_every": 1,
        "checkpoint_every": 3,
        "validate_every": 0,
        "val_steps": 2,
    }
    for key, value in changes.items():
        if isinstance(value, dict):
            values[key] = {**values[key], **value}
        else:
            values[key] = value
    return values


def losses(run_dir):
    lines = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
    return [(r["step"], r["loss"]) for r in lines if "loss" in r]


def test_config_is_strict(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"steps": 10, "lerning_rate": 1e-3}))
    with pytest.raises(InputError, match="unknown keys \\['lerning_rate'\\]"):
        TrainConfig.from_json(path)
    path.write_text(json.dumps({"steps": "ten"}))
    with pytest.raises(InputError, match="steps must be an integer"):
        TrainConfig.from_json(path)
    path.write_text(json.dumps({"model": {"backbone": {"channels": [8, 16], "groups": 3}}}))
    with pytest.raises(InputError, match="groups"):
        TrainConfig.from_json(path)
    with pytest.raises(InputError, match="cannot read"):
        TrainConfig.from_json(tmp_path / "missing.json")
    config = TrainConfig.from_dict({"model": {"backbone": {"channels": [8, 16], "groups": 4}}})
    assert config.model.backbone.channels == (8, 16)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_learning_rate_schedule():
    config = TrainConfig(steps=100, warmup_steps=10, lr_final_ratio=0.1)
    assert learning_rate_factor(0, config) == pytest.approx(0.1)
    assert learning_rate_factor(9, config) == pytest.approx(1.0)
    assert learning_rate_factor(55, config) == pytest.approx(0.55)
    assert learning_rate_factor(100, config) == pytest.approx(0.1)


def test_windows_are_native_size_and_a_function_of_the_step(tiny_world):
    config = TrainConfig.from_dict(tiny_config(tiny_world, data={"occluded_share": 0.5}))
    pool = open_pool(config.data, "train", 16, 32, tiny_world["cache"], progress=False)
    assert all(m.shape == (8, 16, 32) and m.dtype == bool for m in pool.modal)
    assert all(bool((a | ~m).all()) for m, a in zip(pool.modal, pool.amodal))  # amodal contains modal
    sampler = WindowSampler(pool, config.data, num_frames=4, seed=0)
    a, b, c = sampler.batch(5, 0, 3), sampler.batch(5, 0, 3), sampler.batch(6, 0, 3)
    assert a.modal.shape == (3, 4, 16, 32) and a.depth.shape == (3, 4, 16, 32)
    assert torch.equal(a.modal, b.modal) and torch.equal(a.depth, b.depth)
    assert not torch.equal(a.amodal, c.amodal)
    assert a.depth.min() >= -1 and a.depth.max() <= 1
    assert bool(((a.modal <= a.amodal)).all())


def test_validation_scores():
    from amodal.training.data import Batch

    modal = torch.zeros(1, 2, 4, 4)
    modal[0, :, :, :2] = 1
    amodal = torch.zeros(1, 2, 4, 4)
    amodal[0, :, :, :3] = 1
    batch = Batch(modal, amodal, torch.zeros_like(modal), torch.tensor([False]))
    perfect = validation_scores(amodal > 0.5, batch)
    torch.testing.assert_close(perfect, torch.tensor([[1.0, 1.0]]))
    modal_only = validation_scores(modal > 0.5, batch)
    torch.testing.assert_close(modal_only, torch.tensor([[8 / 12, 0.0]]))


LOGIT_SELF_CONDITIONED = {
    "objective": "diffusion",
    "parameterization": "logit",
    "self_condition": True,
    "backbone": {"channels": [8, 16], "patch": 2, "heads": 2, "emb_dim": 16, "groups": 4, "cond_channels": 4},
}


@pytest.mark.parametrize("model", [{"objective": "diffusion"}, {"objective": "regression"}, LOGIT_SELF_CONDITIONED])
def test_exact_resume(tiny_world, tmp_path, model):
    """N steps straight == N/2 steps, a 'kill', and a resume for N/2 more: same losses, same weights."""
    config = TrainConfig.from_dict(tiny_config(tiny_world, model=model))
    straight = train_segmentation(config, tmp_path / "straight", progress=False)
    first = train_segmentation(config, tmp_path / "resumed", stop_at=3, progress=False)
    assert first.step == 3 and first.model_dir is None
    # A killed run may have logged past its last checkpoint; the resume drops those lines.
    with open(tmp_path / "resumed" / "log.jsonl", "a") as f:
        f.write(json.dumps({"step": 4, "loss": 123.0}) + "\n")
    second = train_segmentation(config, tmp_path / "resumed", progress=False)
    assert second.step == 6
    a, b = losses(tmp_path / "straight"), losses(tmp_path / "resumed")
    assert [s for s, _ in a] == [1, 2, 3, 4, 5, 6] == [s for s, _ in b]
    np.testing.assert_allclose([l for _, l in a], [l for _, l in b], rtol=1e-6, atol=1e-7)
    from safetensors.torch import load_file

    wa = load_file(str(straight.model_dir / "model.safetensors"))
    wb = load_file(str(second.model_dir / "model.safetensors"))
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-6, atol=1e-7)


def test_checkpoints_hold_no_pickles(tiny_world, tmp_path):
    config = TrainConfig.from_dict(tiny_config(tiny_world, steps=3, keep_checkpoints=1))
    train_segmentation(config, tmp_path / "run", progress=False)
    found = list_checkpoints(tmp_path / "run" / "checkpoints")
    assert [p.name for p in found] == ["step_00000003"]
    names = sorted(p.name for p in found[0].iterdir())
    assert names == ["ema.safetensors", "model.safetensors", "optimizer.safetensors", "rng.safetensors", "state.json"]
    state = json.loads((found[0] / "state.json").read_text())
    assert state["step"] == 3 and state["data_position"] == {"step": 3}
    assert {"python", "numpy"} <= set(state["rng"]) and "scheduler" in state
    # A run folder refuses a different config.
    with pytest.raises(InputError, match="different config"):
        train_segmentation(config.replace(lr=0.1), tmp_path / "run", progress=False)


@pytest.mark.parametrize("model", [{"objective": "regression"}, {"objective": "diffusion"}, LOGIT_SELF_CONDITIONED])
def test_tiny_overfit(tiny_world, tmp_path, model):
    """A few dozen steps on three clips make the loss drop clearly."""
    values = tiny_config(tiny_world, model=model, steps=40, lr=3e-3, warmup_steps=5, checkpoint_every=40)
    values.update(cond_noise=0.0, depth_dropout=0.0, cond_dropout=0.0, p_mean=0.0, p_std=0.5)
    train_segmentation(TrainConfig.from_dict(values), tmp_path / "run", progress=False)
    curve = [l for _, l in losses(tmp_path / "run")]
    assert np.mean(curve[-8:]) < 0.6 * np.mean(curve[:4])


def test_train_and_bench_cli(tiny_world, tmp_path, capsys):
    config_path = tmp_path / "tiny.json"
    config_path.write_text(json.dumps(tiny_config(tiny_world, steps=3, validate_every=3)))
    assert main(["train", "segmentation", "--config", str(config_path), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    log = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    val = [r["val"] for r in log if "val" in r]
    assert len(val) == 1 and 0.0 <= val[0]["mIoU"] <= 1.0
    model = load_segmenter(tmp_path / "run" / "model")
    assert (model.num_frames, model.height, model.width) == (4, 16, 32)

    assert main(["train", "export", str(tmp_path / "run"), "--out", str(tmp_path / "exported")]) == 0
    assert load_segmenter(tmp_path / "exported").config == model.config
    # a new folder inside the run (as the curriculum's exports do), never the run or its checkpoints
    assert main(["train", "export", str(tmp_path / "run"), "--out", str(tmp_path / "run" / "export-3")]) == 0
    assert load_segmenter(tmp_path / "run" / "export-3").config == model.config
    assert main(["train", "export", str(tmp_path / "run"), "--out", str(tmp_path / "boxes"), "--box-mode", "crop"]) == 0
    assert load_segmenter(tmp_path / "boxes").default_box_mode == "crop"
    for bad in (tmp_path / "run", tmp_path / "run" / "checkpoints" / "x", tmp_path / "run" / "config.json"):
        assert main(["train", "export", str(tmp_path / "run"), "--out", str(bad), "--overwrite"]) == 2
    assert (tmp_path / "run" / "config.json").is_file() and list((tmp_path / "run" / "checkpoints").iterdir())

    capsys.readouterr()
    bench_json = tmp_path / "bench.json"
    argv = ["bench", "--model", str(tmp_path / "run" / "model"), "--steps", "1", "2", "--repeats", "1", "--json", str(bench_json)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "s/frame" in out and "peak RSS" in out
    results = json.loads(bench_json.read_text())
    assert [r["steps"] for r in results] == [1, 2]
    assert all(r["sec_per_frame"] > 0 and r["peak_rss_mib"] > 0 for r in results)

    assert main(["train", "segmentation", "--config", str(tmp_path / "nope.json")]) == 2
    assert "amodal: error:" in capsys.readouterr().err


def test_export_without_checkpoints_is_an_input_error(tmp_path, tiny_world):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "config.json").write_text(json.dumps(tiny_config(tiny_world)))
    with pytest.raises(InputError, match="no checkpoints"):
        export_checkpoint(tmp_path / "run", tmp_path / "out")


def test_crops_follow_the_object(tiny_world):
    config = TrainConfig.from_dict(tiny_config(tiny_world, data={"crop": [8, 16]}))
    pool = open_pool(config.data, "train", 16, 32, tiny_world["cache"], progress=False)
    sampler = WindowSampler(pool, config.data, num_frames=4, seed=0)
    batch = sampler.batch(0, 0, 6)
    assert batch.modal.shape == (6, 4, 8, 16) and batch.depth.shape == (6, 4, 8, 16)
    assert bool((batch.amodal.flatten(1).sum(1) > 0).all())  # the object is in every crop
    with pytest.raises(InputError, match="multiples of 4"):
        TrainConfig.from_dict(tiny_config(tiny_world, data={"crop": [6, 16]}))
    with pytest.raises(InputError, match="fit in 16x32"):
        TrainConfig.from_dict(tiny_config(tiny_world, data={"crop": [32, 16]}))


@pytest.mark.parametrize("objective", ["diffusion", "regression"])
def test_init_from_a_model_without_priors_widens_it(tiny_world, tmp_path, objective):
    """A stage with prior channels starts from a model without them: the new inputs start at zero."""
    base = TrainConfig.from_dict(tiny_config(tiny_world, model={"objective": objective}, steps=2, checkpoint_every=2))
    first = train_segmentation(base, tmp_path / "base", progress=False)
    widened = tiny_config(
        tiny_world,
        model={"objective": objective, "priors": ["temporal", "convex"], "backbone": {**base.model.backbone.to_dict(), "cond_channels": 5}},
        steps=2,
        checkpoint_every=2,
        validate_every=2,
        init_from=str(first.model_dir),
    )
    second = train_segmentation(TrainConfig.from_dict(widened), tmp_path / "widened", progress=False)
    model = load_segmenter(second.model_dir)
    assert model.config.priors == ("temporal", "convex") and model.config.backbone.cond_channels == 5
    assert [s for s, _ in losses(tmp_path / "widened")] == [1, 2]
    # Anything else that differs is still refused.
    other = dict(widened, model={**widened["model"], "backbone": {**widened["model"]["backbone"], "emb_dim": 32}})
    with pytest.raises(InputError, match="init_from"):
        train_segmentation(TrainConfig.from_dict(other), tmp_path / "other", progress=False)


def test_a_regression_twin_starts_a_self_conditioned_logit_diffusion_model(tiny_world, tmp_path):
    """Noise-level curriculum: the twin (the denoiser's infinite-noise limit) starts the diffusion run."""
    twin = TrainConfig.from_dict(tiny_config(tiny_world, model={"objective": "regression"}, steps=2, checkpoint_every=2))
    first = train_segmentation(twin, tmp_path / "twin", progress=False)
    values = tiny_config(tiny_world, model=LOGIT_SELF_CONDITIONED, steps=2, checkpoint_every=2, validate_every=2)
    values["init_from"] = str(first.model_dir)
    second = train_segmentation(TrainConfig.from_dict(values), tmp_path / "diffusion", progress=False)
    model = load_segmenter(second.model_dir)
    assert (model.config.parameterization, model.config.self_condition) == ("logit", True)
    assert [s for s, _ in losses(tmp_path / "diffusion")] == [1, 2]
    # A v-prediction model cannot start from logits, and a diffusion model cannot start a regression one.
    vpred = dict(values, model={**LOGIT_SELF_CONDITIONED, "parameterization": "vpred"})
    with pytest.raises(InputError, match="parameterization 'logit'"):
        train_segmentation(TrainConfig.from_dict(vpred), tmp_path / "vpred", progress=False)
    back = tiny_config(tiny_world, model={"objective": "regression"}, steps=2, init_from=str(second.model_dir))
    with pytest.raises(InputError, match="cannot start"):
        train_segmentation(TrainConfig.from_dict(back), tmp_path / "back", progress=False)


def test_infinite_share_trains_at_the_regression_inputs(tiny_world):
    """With every window at infinite noise the loss no longer depends on the noise drawn: the input is gone."""
    from amodal.segmentation.model import build_segmenter
    from amodal.training.objective import diffusion_loss

    values = tiny_config(tiny_world, model={**LOGIT_SELF_CONDITIONED, "self_condition": False, "backbone": {**LOGIT_SELF_CONDITIONED["backbone"], "cond_channels": 3}})
    values.update(cond_noise=0.0, depth_dropout=0.0, cond_dropout=0.0)
    config = TrainConfig.from_dict(values)
    pool = open_pool(config.data, "train", 16, 32, tiny_world["cache"], progress=False)
    batch = WindowSampler(pool, config.data, num_frames=4, seed=0).batch(0, 0, 2)
    model = randomize(build_segmenter(config.model))  # no zero-initialised output: the noisy input matters
    with torch.no_grad():
        loss = lambda c, seed: float(diffusion_loss(model, batch, c, torch.Generator().manual_seed(seed)))  # noqa: E731
        finite = [loss(config, seed) for seed in (0, 1)]
        infinite = [loss(config.replace(infinite_share=1.0), seed) for seed in (0, 1)]
    assert abs(finite[0] - finite[1]) > 1e-4
    assert abs(infinite[0] - infinite[1]) < 1e-6


def test_guidance_distillation_learns_the_guided_estimate(tiny_world, tmp_path):
    """A student equal to its teacher is at the loss minimum for guidance 1 and pulled away for guidance > 1;
    a short run lowers the loss, and the teacher's condition layout is checked."""
    from amodal.segmentation.model import build_segmenter, null_condition
    from amodal.training.loop import distillation_teacher
    from amodal.training.objective import distillation_loss

    values = tiny_config(tiny_world, model=LOGIT_SELF_CONDITIONED, steps=2, checkpoint_every=2)
    teacher_run = train_segmentation(TrainConfig.from_dict(values), tmp_path / "teacher", progress=False)
    values = dict(values, distill_from=str(teacher_run.model_dir), init_from=str(teacher_run.model_dir),
                  cond_noise=0.0, depth_dropout=0.0, self_condition_rate=0.0)
    config = TrainConfig.from_dict(values)
    teacher = distillation_teacher(config)
    assert not any(p.requires_grad for p in teacher.parameters())
    student = load_segmenter(teacher_run.model_dir)
    randomize(student)
    randomize(teacher)
    teacher.load_state_dict(student.state_dict())
    pool = open_pool(config.data, "train", 16, 32, tiny_world["cache"], progress=False)
    batch = WindowSampler(pool, config.data, num_frames=4, seed=0).batch(0, 0, 2)

    def gradient_norm(guidance: float) -> float:
        student.zero_grad()
        loss = distillation_loss(student, teacher, batch, config.replace(distill_guidance=guidance), torch.Generator().manual_seed(0))
        loss.backward()
        return float(sum((p.grad**2).sum() for p in student.parameters() if p.grad is not None) ** 0.5)

    assert gradient_norm(1.0) < 1e-5 < gradient_norm(3.0)
    # The guided target itself: D_u + w (D_c - D_u), mapped to a probability and clipped.
    x = torch.zeros(1, 4, 1, 16, 32)
    cond = torch.ones(1, 4, 3, 16, 32)  # modal, depth, depth flag (the tiny model has no priors)
    with torch.no_grad():
        d_u, d_c = teacher(torch.cat([x, x]), torch.full((2,), 1.0), torch.cat([null_condition(cond), cond])).chunk(2)
    assert d_u.shape == d_c.shape == x.shape

    run = train_segmentation(config.replace(steps=4, checkpoint_every=4), tmp_path / "student", progress=False)
    assert load_segmenter(run.model_dir).config == config.model
    other = values | {"model": {**LOGIT_SELF_CONDITIONED, "self_condition": False}, "init_from": ""}
    other["model"]["backbone"] = {**LOGIT_SELF_CONDITIONED["backbone"], "cond_channels": 3}
    with pytest.raises(InputError, match="teacher's condition"):
        distillation_teacher(TrainConfig.from_dict(other))
    with pytest.raises(InputError, match="distill_from needs a diffusion"):
        regression = {**values["model"], "objective": "regression", "parameterization": "vpred", "self_condition": False}
        regression["backbone"] = {**regression["backbone"], "cond_channels": 3}
        TrainConfig.from_dict(values | {"model": regression})


def test_export_records_a_measured_sampling_setting(tiny_world, tmp_path):
    run = tmp_path / "run"
    train_segmentation(TrainConfig.from_dict(tiny_config(tiny_world, steps=2, checkpoint_every=2)), run, progress=False)
    assert main(["train", "export", str(run), "--out", str(tmp_path / "m"), "--sampling-steps", "1", "--sampling-guidance", "2"]) == 0
    model = load_segmenter(tmp_path / "m")
    assert (model.default_steps, model.default_guidance) == (1, 2.0)
    assert main(["train", "export", str(run), "--out", str(tmp_path / "m2"), "--sampling-steps", "0"]) == 2
    assert not (tmp_path / "m2").exists()
    twin = tmp_path / "twin"
    train_segmentation(TrainConfig.from_dict(tiny_config(tiny_world, model={"objective": "regression"}, steps=2, checkpoint_every=2)), twin, progress=False)
    assert main(["train", "export", str(twin), "--out", str(tmp_path / "m3"), "--sampling-steps", "1"]) == 2
    # How samples are thresholded is recorded for either objective (a one-step twin's samples differ only by it).
    assert load_segmenter(tmp_path / "m").default_sample_levels == "fixed"
    assert main(["train", "export", str(twin), "--out", str(tmp_path / "m4"), "--sample-levels", "stratified"]) == 0
    assert load_segmenter(tmp_path / "m4").default_sample_levels == "stratified"
    with pytest.raises(InputError, match="sample_levels"):
        SegmenterConfig(sample_levels="random")


def test_box_crop_pool_shows_each_object_through_its_boxes():
    from amodal.clip import Clip
    from amodal.training.config import DataConfig
    from amodal.training.data import build_pool

    t, h, w = 4, 64, 128
    modal = np.zeros((2, t, h, w), bool)
    amodal = np.zeros_like(modal)
    for i in range(t):
        amodal[0, i, 20:30, 10 + i : 30 + i] = True  # a small object, 10 x 20, moving right
        modal[0, i] = amodal[0, i]
        modal[0, i, :, 20 + i :] = False  # its right half hidden
    amodal[1, :, 40:60, 60:120] = True
    modal[1] = amodal[1]
    clip = Clip(frames=np.zeros((t, h, w, 3), np.uint8), modal_masks=modal, amodal_masks=amodal,
                depth=np.ones((t, h, w), np.float32))
    whole = build_pool([clip], 32, 64)
    boxed = build_pool([clip], 32, 64, box_crop_margin=0.25)
    assert len(boxed) == 2 and len(boxed.depth) == 2  # one crop (and its depth) per object
    assert boxed.amodal[0].mean() > 4 * whole.amodal[0].mean()  # the small object fills its crop
    assert (boxed.modal[0] <= boxed.amodal[0]).all() and boxed.hidden_frames(0, 0.95).all()
    assert np.isnan(boxed.depth[1]).any()  # the wide object's crop reaches past the frame: no depth there
    with pytest.raises(InputError, match="box_crop_margin"):
        DataConfig(box_crop_margin=-1)


def test_false_fill_weight_lands_where_a_prior_claims_what_the_truth_leaves_out():
    from amodal.training.data import Batch
    from amodal.training.objective import pixel_weights

    # A "walker": two legs with a gap between them; the convex hull fills the gap, the truth does not.
    modal = torch.zeros(1, 2, 16, 16)
    modal[..., 4:12, 3:6] = 1
    modal[..., 4:12, 10:13] = 1
    batch = Batch(modal, modal.clone(), torch.zeros_like(modal), torch.tensor([False]))
    model = {"priors": ["convex"], "backbone": {"cond_channels": 4}}
    plain = TrainConfig.from_dict({"model": model})
    weighted = TrainConfig.from_dict({"model": model, "false_fill_weight": 2.0})
    assert torch.equal(pixel_weights(batch, plain), torch.ones(1, 2, 1, 16, 16))
    w = pixel_weights(batch, weighted)[0, 0, 0]
    assert w[8, 8] == 3.0  # the gap: in the hull, not in the object
    assert w[8, 4] == 1.0 and w[0, 0] == 1.0  # the object itself, and the background outside the hull
    with pytest.raises(InputError):
        TrainConfig.from_dict({"false_fill_weight": -1})
