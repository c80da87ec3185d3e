"""Our stage-2 models: the completer contract, strict folders, crops, occluder pasting, training with exact resume, the pipeline."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from amodal.backbones.lite import LiteConfig
from amodal.cli import main
from amodal.completion.crops import crop_mask, crop_to_model, object_box, paste_from_model
from amodal.completion.model import (
    CompleterConfig,
    DiffusionCompleter,
    RegressionCompleter,
    build_completer,
    load_completer_folder,
)
from amodal.completion.pipeline import ContentCompletionPipeline, PipelineConfig
from amodal.errors import CheckpointError, InputError
from amodal.training.completion import (
    CompletionDataConfig,
    CompletionTrainConfig,
    CropPool,
    make_batch,
    paste_occluder,
    paste_reference,
    train_completion,
)

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = LiteConfig(in_channels=3, cond_channels=5, out_channels=3, channels=(8, 16), patch=2, heads=2, emb_dim=16, groups=4)


def tiny_config(objective="diffusion", **changes) -> CompleterConfig:
    values = {"objective": objective, "backbone": TINY, "num_frames": 4, "height": 16, "width": 32, **changes}
    return CompleterConfig(**values)


def tiny_clip(frames=10, seed=3):
    from amodal.data.synth import SynthConfig, generate_clip

    return generate_clip(SynthConfig(height=32, width=64, num_frames=frames, max_march_steps=16), seed)


@pytest.mark.parametrize("objective", ["diffusion", "regression"])
def test_completer_contract_and_strict_folders(objective, tmp_path):
    torch.manual_seed(0)
    model = build_completer(tiny_config(objective)).eval()
    assert isinstance(model, DiffusionCompleter if objective == "diffusion" else RegressionCompleter)
    rgb = torch.rand(2, 4, 3, 16, 32)
    amodal = torch.ones(2, 4, 16, 32)
    modal = (torch.rand(2, 4, 16, 32) > 0.5).float()
    out = model.samples(rgb, amodal, modal, 3, steps=2, generator=torch.Generator().manual_seed(0))
    assert out.shape == (2, 3, 4, 3, 16, 32) and out.min() >= 0 and out.max() <= 1
    again = model.samples(rgb, amodal, modal, 3, steps=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # deterministic given a seed
    if objective == "diffusion":
        assert not torch.equal(out[:, 0], out[:, 1])  # samples differ
    model.save_pretrained(tmp_path / "m")
    loaded = load_completer_folder(tmp_path / "m")
    reloaded = loaded.samples(rgb, amodal, modal, 3, steps=2, generator=torch.Generator().manual_seed(0))
    assert torch.equal(reloaded, out)
    # Strict: an unexpected key is named.
    from safetensors.torch import load_file, save_file

    weights = load_file(str(tmp_path / "m" / "model.safetensors"))
    weights["extra.bias"] = torch.zeros(1)
    save_file(weights, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"unexpected keys \['extra.bias'\]"):
        load_completer_folder(tmp_path / "m")


def test_config_refuses_wrong_channels_and_sizes():
    with pytest.raises(InputError, match="3/5/3"):
        CompleterConfig(backbone=LiteConfig())
    with pytest.raises(InputError, match="multiples of"):
        tiny_config(height=15)


def test_config_checks_the_noise_input():
    with pytest.raises(InputError, match="noise_input must be one of"):
        tiny_config(noise_input="sigma")
    with pytest.raises(InputError, match="diffusion objective only"):
        tiny_config("regression", noise_input="log_snr")


def _random_twin(tmp_path):
    """A regression twin with every weight random (its zero-initialised output layer included), saved as a folder."""
    twin = build_completer(tiny_config("regression")).eval()
    generator = torch.Generator().manual_seed(4)
    with torch.no_grad():
        for p in twin.parameters():
            p.copy_(torch.randn(p.shape, generator=generator) * 0.2)
    twin.save_pretrained(tmp_path / "twin")
    return twin


def test_regression_twin_starts_a_diffusion_completer_as_itself(tmp_path):
    """completer_from_regression: at (near) infinite noise the new denoiser returns the twin's answer, whatever the sample."""
    from amodal.completion.model import build_condition
    from amodal.training.completion import _initial_state

    twin = _random_twin(tmp_path)
    config = tiny_config(noise_input="log_snr")
    diffusion = build_completer(config).eval()
    diffusion.backbone.load_state_dict(_initial_state(str(tmp_path / "twin"), config))
    generator = torch.Generator().manual_seed(5)
    rgb, amodal = torch.rand(2, 4, 3, 16, 32, generator=generator), torch.ones(2, 4, 16, 32)
    modal = (torch.rand(2, 4, 16, 32, generator=generator) > 0.5).float()
    cond = build_condition(rgb, amodal, modal)
    with torch.no_grad():
        expected = twin(cond)
        for scale in (1.0, 2.0):  # a noisy sample at sigma 1e5: the network sees it at about unit variance
            x = torch.randn(2, 4, 3, 16, 32, generator=generator) * 1e5 * scale
            torch.testing.assert_close(diffusion(x, torch.full((2,), 1e5), cond), expected, rtol=1e-4, atol=1e-4)
        x = torch.randn(2, 4, 3, 16, 32, generator=generator)
        # At low noise the sample's own value counts (c_skip) and training takes over.
        assert not torch.allclose(diffusion(x, torch.ones(2), cond), expected, atol=1e-2)


def test_init_from_refuses_starts_that_do_not_fit(tmp_path):
    from amodal.training.completion import _initial_state

    _random_twin(tmp_path)
    with pytest.raises(InputError, match='noise_input "log_snr"'):
        _initial_state(str(tmp_path / "twin"), tiny_config())
    build_completer(tiny_config()).save_pretrained(tmp_path / "diffusion")
    with pytest.raises(InputError, match="only a regression twin can start a diffusion completer"):
        _initial_state(str(tmp_path / "diffusion"), tiny_config("regression"))
    with pytest.raises(InputError, match="noise_input log_sigma"):
        _initial_state(str(tmp_path / "diffusion"), tiny_config(noise_input="log_snr"))
    assert set(_initial_state(str(tmp_path / "diffusion"), tiny_config())) == set(_initial_state(str(tmp_path / "twin"), tiny_config("regression")))



def test_a_training_run_that_cannot_start_leaves_no_run_folder(tmp_path, capsys):
    import dataclasses

    _random_twin(tmp_path)
    config = dataclasses.replace(_train_config(tmp_path), init_from=str(tmp_path / "twin"))  # log_sigma: refused
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    assert main(["train", "completion", "--config", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("amodal: error: init_from ") and "log_snr" in err[0]
    assert not (tmp_path / "run").exists()


def test_stages_are_told_apart_by_the_registry(tmp_path):
    from amodal.checkpoints.registry import load_completer, load_segmenter

    build_completer(tiny_config()).save_pretrained(tmp_path / "completer")
    with pytest.raises(InputError, match="a completion model, not a segmentation model"):
        load_segmenter(tmp_path / "completer")
    with pytest.raises(InputError, match="a segmentation model, not a completion model"):
        load_completer("default")
    assert isinstance(load_completer(tmp_path / "completer"), DiffusionCompleter)


def test_object_box_has_the_model_aspect_and_holds_the_object():
    amodal = np.zeros((3, 40, 60), bool)
    amodal[0, 10:20, 5:15] = True
    amodal[2, 12:30, 10:20] = True
    box = object_box(amodal, margin=0.1, size=(16, 32))
    assert abs(box.width / box.height - 2) < 0.1
    assert box.top <= 10 and box.left <= 5 and box.top + box.height >= 30 and box.left + box.width >= 20
    assert object_box(np.zeros((2, 8, 8), bool), 0.1, (16, 32)) is None


def test_crop_and_paste_back_reproduce_the_object():
    rng = np.random.default_rng(0)
    frames = np.full((2, 40, 60, 3), 255, np.uint8)
    amodal = np.zeros((2, 40, 60), bool)
    amodal[:, 8:24, 10:42] = True
    frames[amodal] = rng.integers(0, 255, (int(amodal.sum()), 3), dtype=np.uint8) // 64 * 64  # blocky, survives resizing
    box = object_box(amodal, margin=0.0, size=(16, 32))
    modal_rgb, amodal_c, modal_c = crop_to_model(frames, amodal, amodal, box, (16, 32))
    assert modal_rgb.shape == (2, 3, 16, 32) and bool((amodal_c >= modal_c).all())
    back = paste_from_model(modal_rgb, box, (40, 60))
    inside = amodal & np.pad(np.ones((2, 12, 28), bool), ((0, 0), (10, 18), (12, 20)))  # away from the edges
    assert np.abs(back[inside].astype(int) - frames[inside].astype(int)).mean() < 30
    assert (back[:, :4] == 255).all()  # outside the box: white
    assert crop_mask(np.ones((1, 4, 4), bool), object_box(np.ones((1, 4, 4), bool), 0.5, (16, 32)), (16, 32)).sum() > 0


def test_a_pasted_occluder_hides_about_the_share_asked_and_only_the_object():
    rng = np.random.default_rng(0)
    amodal = np.zeros((6, 32, 64), bool)
    amodal[:, 8:24, 16:48] = True
    shape = np.zeros((32, 64), bool)
    shape[:, 20:36] = True
    for target in (0.4, 0.7):
        modal = paste_occluder(amodal.copy(), amodal, shape, target, rng, tries=16)
        assert not (modal & ~amodal).any()
        assert abs(modal.sum() / amodal.sum() - target) < 0.2


def test_the_reference_rule_occludes_relative_to_what_was_visible():
    """Occluders go on until less than 0.7 of the *visible* area is left: an object already half hidden
    loses a further 30% of its visible part, not of the whole object (the rule the ablation measures)."""
    rng = np.random.default_rng(2)
    amodal = np.zeros((6, 32, 64), bool)
    amodal[:, 8:24, 16:48] = True
    modal = amodal.copy()
    modal[:, :, 32:] = False  # already half hidden
    shape = np.zeros((32, 64), bool)
    shape[10:20, 10:20] = True
    out = paste_reference(modal, amodal, [shape] * 4, rng)
    assert not (out & ~modal).any()
    kept = out.sum() / modal.sum()
    assert kept < 0.7
    # A small occluder is pasted again and again (at most 4 times) until the rule holds.
    tiny = np.zeros((32, 64), bool)
    tiny[0, 0] = True
    few = paste_reference(modal, amodal, [tiny] * 4, np.random.default_rng(3))
    assert 0.9 < few.sum() / modal.sum() < 1.0
    with pytest.raises(InputError, match="occlusion_rule"):
        CompletionDataConfig(occlusion_rule="iou")


def test_batches_keep_visible_pixels_and_white_elsewhere():
    rng = np.random.default_rng(1)
    n, t, h, w = 3, 4, 16, 32
    amodal = np.zeros((n, t, h, w), bool)
    amodal[:, :, 4:12, 8:24] = True
    pool = CropPool(rng.integers(0, 255, (n, t, h, w, 3), dtype=np.uint8), rng.integers(0, 255, (n, t, h, w, 3), dtype=np.uint8),
                    amodal.copy(), amodal)
    batch = make_batch(pool, [0, 1, 2], CompletionDataConfig(paste_share=1.0, flip=False), rng)
    modal = batch.modal > 0.5
    assert bool((batch.modal <= batch.amodal).all()) and modal.sum() < amodal.sum()  # something was hidden
    assert bool((batch.modal_rgb.permute(0, 1, 3, 4, 2)[~modal] == 1).all())  # hidden and background: white


def _train_config(tmp_path, steps=4) -> CompletionTrainConfig:
    synth = tmp_path / "synth.json"
    synth.write_text(json.dumps({"height": 32, "width": 64, "num_frames": 8, "max_march_steps": 16}))
    return CompletionTrainConfig(
        model=tiny_config(),
        data=CompletionDataConfig(train_clips=2, val_clips=2, val_windows=2, synth_config=str(synth),
                                  cache_dir=str(tmp_path / "cache")),
        steps=steps, batch_size=2, warmup_steps=1, log_every=1, checkpoint_every=2, validate_every=0, val_steps=2,
    )


def test_training_resumes_exactly(tmp_path):
    config = _train_config(tmp_path)
    whole = train_completion(config, tmp_path / "whole", progress=False)
    first = train_completion(config, tmp_path / "resumed", stop_at=2, progress=False)
    assert first.model_dir is None and first.step == 2
    second = train_completion(config, tmp_path / "resumed", progress=False)
    a = load_completer_folder(whole.model_dir).backbone.state_dict()
    b = load_completer_folder(second.model_dir).backbone.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    logs = [json.loads(line) for line in (tmp_path / "resumed" / "log.jsonl").read_text().splitlines()]
    whole_logs = [json.loads(line) for line in (tmp_path / "whole" / "log.jsonl").read_text().splitlines()]
    assert [r.get("loss") for r in logs] == [r.get("loss") for r in whole_logs]
    assert "psnr_occ" in logs[-1]["val"] and np.isfinite(logs[-1]["val"]["psnr_occ"])


def test_train_completion_and_export_from_the_command_line(tmp_path, capsys):
    config = _train_config(tmp_path, steps=2)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.to_dict()))
    assert main(["train", "completion", "--config", str(path), "--out", str(tmp_path / "run"), "--no-progress"]) == 0
    assert main(["train", "export", str(tmp_path / "run"), "--out", str(tmp_path / "exported")]) == 0
    assert isinstance(load_completer_folder(tmp_path / "exported"), DiffusionCompleter)


def test_the_pipeline_keeps_what_is_visible_and_fills_only_the_amodal_region():
    torch.manual_seed(0)
    clip = tiny_clip()
    pipe = ContentCompletionPipeline(build_completer(tiny_config()).eval(), PipelineConfig(progress=False))
    out = pipe(clip, num_inference_steps=2, num_samples=2)
    k, t, h, w = clip.modal_masks.shape
    assert out.rgb.shape == (k, t, h, w, 3) and out.samples.shape == (2, k, t, h, w, 3) and out.spread.shape == (k, t, h, w)
    frames = np.broadcast_to(clip.frames[None], out.rgb.shape)
    assert (out.rgb[clip.modal_masks] == frames[clip.modal_masks]).all()
    assert (out.rgb[~clip.amodal_masks] == 255).all()
    assert (out.rgba[..., 3] == np.where(clip.amodal_masks, 255, 0)).all()
    again = pipe(clip, num_inference_steps=2, num_samples=2)
    assert np.array_equal(out.samples, again.samples)


def test_the_pipeline_propagates_what_other_frames_show_and_the_model_sees_it():
    """By default the pixels another frame shows are copied into the hidden part and given to the
    model as known; ``propagate=False`` leaves every hidden pixel to the model."""
    from amodal.completion.baselines import propagate

    torch.manual_seed(0)
    clip = tiny_clip()
    model = build_completer(tiny_config("regression")).eval()
    with torch.no_grad():  # a fresh model's output layer is zero: give every weight a say
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.2)
    pixels, known = propagate(clip, clip.amodal_masks)
    hidden_known = known & ~clip.modal_masks
    assert hidden_known.any()
    on = ContentCompletionPipeline(model, PipelineConfig(progress=False))(clip)
    off = ContentCompletionPipeline(model, PipelineConfig(progress=False, propagate=False))(clip)
    assert (on.rgb[known] == pixels[known]).all()
    assert not (off.rgb[hidden_known] == pixels[hidden_known]).all()
    # What the model paints elsewhere depends on what it was told: the conditions differ.
    rest = clip.amodal_masks & ~known
    assert rest.any() and not np.array_equal(on.rgb[rest], off.rgb[rest])


def test_object_windows_with_nothing_left_to_paint_are_not_run_and_change_nothing():
    """With propagation, an object-window whose amodal pixels are all known is skipped; the other
    windows get the noise they would get anyway, so every pixel the model paints is unchanged."""
    from amodal.completion.baselines import propagate
    from amodal.completion.pipeline import complete_crops

    clip = tiny_clip(frames=12)
    model = build_completer(tiny_config()).eval()
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0.0, 0.2)
    pixels, known = propagate(clip, clip.amodal_masks)
    hidden = (clip.amodal_masks & ~clip.modal_masks).sum((1, 2, 3))
    assert len(hidden) > 1 and hidden.max() > 0
    first, other = int(np.argmin(hidden)), int(np.argmax(hidden))
    known[first] |= clip.amodal_masks[first]  # nothing of this object is left to paint
    known[other] = clip.modal_masks[other]  # nothing of this one was propagated
    rows = []
    original = model.samples

    def counting(modal_rgb, *args, **kwargs):
        rows.append(len(modal_rgb))
        return original(modal_rgb, *args, **kwargs)

    model.samples = counting
    kwargs = dict(steps=2, guidance=1.5, num_samples=2, seed=5, batch_size=4, progress=False, known=(pixels, known))
    skipped = complete_crops(model, clip, clip.amodal_masks, **kwargs)
    ran = sum(rows)
    rows.clear()
    everything = complete_crops(model, clip, clip.amodal_masks, paint_known=True, **kwargs)
    assert ran < sum(rows)
    painted = clip.amodal_masks & ~known
    assert painted.any()
    for s in range(2):
        assert np.array_equal(skipped[s][painted], everything[s][painted])
    assert (skipped[:, first] == 255).all()  # never run


def test_the_pipeline_refuses_masks_that_do_not_fit():
    clip = tiny_clip()
    pipe = ContentCompletionPipeline(build_completer(tiny_config("regression")).eval(), PipelineConfig(progress=False))
    with pytest.raises(InputError, match="does not match the clip's modal masks"):
        pipe(clip, clip.amodal_masks[:, :3])
    shrunk = clip.amodal_masks.copy()
    shrunk[0] = False
    with pytest.raises(InputError, match="visible outside its amodal mask"):
        pipe(clip, shrunk)
    with pytest.raises(InputError, match="must be bool"):
        pipe(clip, clip.amodal_masks.astype(np.uint8))


COMPLETION_CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs" / "completion").rglob("*.json"))


@pytest.mark.parametrize("path", COMPLETION_CONFIGS, ids=lambda p: p.name)
def test_the_shipped_completion_recipes_load_and_train_two_steps(path, tmp_path):
    import dataclasses

    config = CompletionTrainConfig.from_json(path)
    assert CompletionTrainConfig.from_json(path).to_dict() == json.loads(json.dumps(config.to_dict()))
    tiny = _train_config(tmp_path)
    # The recipe's own objective, loss and optimisation settings; only sizes and data shrink.
    config = dataclasses.replace(
        config,
        model=dataclasses.replace(config.model, backbone=TINY, num_frames=4, height=16, width=32),
        data=dataclasses.replace(config.data, train_clips=2, val_clips=2, val_windows=2, synth_config=tiny.data.synth_config,
                                 cache_dir=tiny.data.cache_dir),
        steps=2, batch_size=2, warmup_steps=1, checkpoint_every=1, validate_every=0, val_steps=2, log_every=1,
    )
    if config.init_from:
        # A later stage starts from an earlier run's model: the folder a command of the README writes.
        readme = (path.parent / "README.md").read_text()
        run = config.init_from.removesuffix("/model")
        assert config.init_from.endswith("/model") and f"--out {run} " in readme, config.init_from
        start = tmp_path / "start"
        # A run named "...-regression..." is a twin; a diffusion recipe may start from one (surgery).
        twin = "regression" in Path(config.init_from).parent.name
        start_model = dataclasses.replace(config.model, objective="regression", noise_input="log_sigma") if twin else config.model
        build_completer(start_model).save_pretrained(start)
        config = dataclasses.replace(config, init_from=str(start))
    result = train_completion(config, tmp_path / "run", progress=False)
    assert result.step == 2 and load_completer_folder(result.model_dir).config.objective == config.model.objective


def test_the_pipeline_takes_arrays_per_call_settings_and_generators():
    torch.manual_seed(0)
    clip = tiny_clip()
    config = PipelineConfig(progress=False)
    pipe = ContentCompletionPipeline(build_completer(tiny_config()).eval(), config)
    assert pipe.to("cpu") is pipe
    out = pipe(clip, num_inference_steps=2, num_samples=2, seed=5)
    arrays = pipe(clip.frames, clip.amodal_masks, modal_masks=clip.modal_masks, num_inference_steps=2, num_samples=2,
                  generator=torch.Generator().manual_seed(5))
    assert np.array_equal(out.samples, arrays.samples) and pipe.config is config
    assert not np.array_equal(out.samples, pipe(clip, num_inference_steps=2, num_samples=2, seed=6).samples)
    one = pipe(clip.frames, clip.amodal_masks[0], modal_masks=clip.modal_masks[0], num_inference_steps=2)
    assert one.rgb.shape == (1, *clip.frames.shape) and one.object_ids == (1,)
    with pytest.raises(InputError, match="modal_masks: missing"):
        pipe(clip.frames, clip.amodal_masks)
    with pytest.raises(InputError, match="modal_masks: given beside an amodal.Clip"):
        pipe(clip, clip.amodal_masks, modal_masks=clip.modal_masks)
    with pytest.raises(InputError, match="frames: must be uint8"):
        pipe(clip.frames / 255.0, clip.amodal_masks, modal_masks=clip.modal_masks)
    with pytest.raises(InputError, match="seed and generator"):
        pipe(clip, seed=1, generator=torch.Generator())
    with pytest.raises(InputError, match="num_inference_steps"):
        pipe(clip, num_inference_steps=0)
    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="device cuda"):
            pipe.to("cuda")
