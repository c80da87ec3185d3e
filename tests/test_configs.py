"""The training configs in configs/: each loads strictly, each documented one trains, and the docs point at files that exist.

Every config runs for two optimiser steps with its own model, objective and training settings,
on two tiny generated videos (data sizes, steps, batch and output folders overridden in code).
A curriculum stage whose ``init_from`` is an earlier stage's run folder starts from that stage's
tiny run, so each chain runs in the documented order.
"""

from __future__ import annotations

import dataclasses
import json
import math
import re
import shlex
from pathlib import Path

import pytest
import torch

from amodal.errors import InputError
from amodal.training import TrainConfig, train_segmentation

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "configs"
TRAINING_MD = ROOT / "src" / "amodal" / "assets" / "weights" / "TRAINING.md"
RECIPES = {"default.json": "default", "default-regression.json": "default-regression"}
COMMAND_DOCS = (CONFIGS / "curriculum" / "README.md", CONFIGS / "archive" / "README.md")


@pytest.fixture(scope="module", autouse=True)
def _one_thread():
    """Tiny batches gain nothing from threads, and the test machine is shared."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def config_files() -> list[Path]:
    """The stage-1 configs (stage 2's, in configs/completion/, are tested in test_completion_model.py;
    the world's, in configs/synth/, in test_figures.py)."""
    return sorted(p for p in CONFIGS.rglob("*.json") if not {"completion", "synth"} & set(p.relative_to(CONFIGS).parts))


def rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def commands(markdown: Path) -> list[list[str]]:
    """The ``amodal train`` command lines of the bash blocks of ``markdown``, in order, as argv lists."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", markdown.read_text(), re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("#", 1)[0].strip()
            if line.startswith("amodal train "):
                out.append(shlex.split(line)[2:])
    return out


def option(argv: list[str], name: str) -> str | None:
    return argv[argv.index(name) + 1] if name in argv else None


def run_commands() -> dict[str, tuple[str, Path]]:
    """``runs/NAME`` -> (the config that a documented command trains there, the README it is in)."""
    found = {}
    for doc in COMMAND_DOCS:
        for argv in commands(doc):
            if argv[0] == "segmentation":
                found[option(argv, "--out")] = (option(argv, "--config"), doc)
    return found


# ----------------------------------------------------------------------------- loading, names, docs


@pytest.mark.parametrize("path", config_files(), ids=rel)
def test_every_config_loads_strictly(path):
    config = TrainConfig.from_json(path)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_config_names_are_unambiguous():
    """A hyphen before a digit reads as a minus sign: names spell minus as ``m`` (``pmean-m0.4``)."""
    stems = [p.stem for p in config_files()]
    assert not [s for s in stems if re.search(r"-\d", s)]
    assert len(set(stems)) == len(stems), "two configs of the same name in different folders"


def test_every_config_is_documented_in_its_folder_readme():
    for path in config_files():
        readme = path.parent / "README.md"
        assert readme.is_file(), f"{rel(path.parent)} has no README.md"
        assert path.name in readme.read_text(), f"{rel(path)} is not mentioned in {rel(readme)}"


def _mentioned_paths(text: str) -> set[str]:
    return {m.rstrip(".,:;)") for m in re.findall(r"(?<![\w/.])configs/[\w.*/-]*", text)}


def _help_text(capsys, *argv: str) -> str:
    from amodal.cli import main

    assert main([*argv, "--help"]) == 0
    return capsys.readouterr().out


def test_every_config_path_in_the_docs_exists(capsys):
    sources = {rel(p): p.read_text() for p in [ROOT / "README.md", TRAINING_MD, *sorted((ROOT / "docs").glob("*.md"))]}
    sources.update({rel(p): p.read_text() for p in sorted((ROOT / "benchmarks").glob("*.py"))})
    sources.update({rel(p): p.read_text() for p in sorted(CONFIGS.rglob("README.md"))})
    sources["amodal train --help"] = _help_text(capsys, "train")
    sources["amodal train segmentation --help"] = _help_text(capsys, "train", "segmentation")
    assert "configs/default.json" in sources["amodal train --help"]
    missing = []
    for where, text in sources.items():
        for mention in _mentioned_paths(text):
            if not (list(ROOT.glob(mention)) if "*" in mention else (ROOT / mention).exists()):
                missing.append(f"{where}: {mention}")
    # Bare file names in the configs/ READMEs are relative to the README's folder.
    for readme in CONFIGS.rglob("README.md"):
        for name in re.findall(r"`([\w.-]+\.json)`", readme.read_text()):
            if not (readme.parent / name).is_file() and not list(CONFIGS.rglob(name)):
                missing.append(f"{rel(readme)}: {name}")
    assert not missing, missing


def test_the_recipes_are_the_bundled_models_without_runs_paths():
    """configs/default*.json: the shipped models' exact model configs with their last stage's settings, from scratch."""
    from amodal.checkpoints.registry import bundled_path
    from amodal.segmentation.model import read_segmenter_config

    def model_fields(model) -> dict:
        # The best sampling settings (steps, guidance, sample levels) are measured after training, not
        # trained: the recipes may omit them.
        return {k: v for k, v in model.to_dict().items() if not k.startswith("sampling_") and k != "sample_levels"}

    for name, bundled in RECIPES.items():
        recipe = TrainConfig.from_json(CONFIGS / name)
        assert recipe.init_from == "", f"{name} must run from scratch"
        assert model_fields(recipe.model) == model_fields(read_segmenter_config(bundled_path(bundled))), name
        last = TrainConfig.from_json(CONFIGS / "curriculum" / f"{'default' if bundled == 'default' else 'regression'}-stage6.json")
        assert recipe == last.replace(init_from=""), f"{name} differs from the last curriculum stage"
    finetune = TrainConfig.from_json(CONFIGS / "finetune-default.json")
    assert finetune.init_from == "default"
    assert model_fields(finetune.model) == model_fields(read_segmenter_config(bundled_path("default")))
    for path in config_files():
        init = TrainConfig.from_json(path).init_from
        assert path.parent != CONFIGS or not init.startswith("runs/"), f"{rel(path)} starts from a run a new user does not have"


def test_documented_commands_chain_in_order():
    """Each ``init_from: runs/...`` is written by an earlier documented command; stopped runs are exported at the stop.

    The archive's stage-6 ablation starts from a curriculum run, so the archive comes second.
    """
    made: set[str] = set()
    stopped: dict[str, int] = {}
    for doc in COMMAND_DOCS:
        for argv in commands(doc):
            if argv[0] == "segmentation":
                config_path, out = option(argv, "--config"), option(argv, "--out")
                assert out == f"runs/{Path(config_path).stem}", f"{doc.name}: --out {out} is not runs/<config name>"
                init = TrainConfig.from_json(ROOT / config_path).init_from
                if init.startswith("runs/"):
                    assert init in made, f"{doc.name}: {config_path} starts from {init}, which no earlier command writes"
                if option(argv, "--stop-at"):
                    stopped[out] = int(option(argv, "--stop-at"))
                else:
                    made.add(f"{out}/model")
            else:
                assert argv[0] == "export"
                run, out, checkpoint = argv[1], option(argv, "--out"), option(argv, "--checkpoint")
                if run in stopped:
                    assert checkpoint == f"{run}/checkpoints/step_{stopped[run]:08d}", f"{doc.name}: {argv}"
                made.add(out)


def test_training_md_has_the_commands_of_the_config_readmes():
    """TRAINING.md (shipped with the weights) and configs/*/README.md give the same commands."""
    training = {shlex.join(argv) for argv in commands(TRAINING_MD)}
    curriculum = {shlex.join(argv) for argv in commands(COMMAND_DOCS[0])}
    archive = {shlex.join(argv) for argv in commands(COMMAND_DOCS[1])}
    completion = {shlex.join(argv) for argv in commands(CONFIGS / "completion" / "README.md")}
    assert curriculum <= training and completion <= training
    assert training <= curriculum | archive | completion
    # The two bundled models come out of the curriculum's last exports.
    assert "export runs/regression-stage8 --out src/amodal/assets/weights/default-regression --sample-levels stratified" in curriculum
    assert "export runs/default-distill --out src/amodal/assets/weights/default --overwrite --sample-levels stratified" in curriculum


def _flat(values: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in values.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


def _differences(a: Path, b: Path) -> set[str]:
    fa, fb = (_flat(TrainConfig.from_json(p).to_dict()) for p in (a, b))
    return {k for k in fa if fa[k] != fb[k]}


def test_documented_differences_between_stages():
    """TRAINING.md: each v-prediction stage differs from the regression stage of its number only in
    objective, init_from and (stage 5) the noise levels; stage 6 of default in the model fields it names."""
    curriculum, archive = CONFIGS / "curriculum", CONFIGS / "archive"
    noise = {"p_mean", "p_std", "model.sigma_max"}
    for n in range(1, 6):
        allowed = {"model.objective", "init_from"} | (noise if n == 5 else set())
        assert _differences(archive / f"vpred-stage{n}.json", curriculum / f"regression-stage{n}.json") <= allowed, n
    sampling = {"model.sampling_steps", "model.sampling_guidance"}  # each model's own best settings
    stage6 = {"model.objective", "model.parameterization", "model.self_condition", "model.backbone.cond_channels"} | noise | sampling
    assert _differences(curriculum / "default-stage6.json", curriculum / "regression-stage6.json") <= stage6


def test_init_from_takes_a_bundled_model_name():
    from amodal.checkpoints.registry import load_segmenter
    from amodal.training.loop import initial_state

    config = TrainConfig.from_json(CONFIGS / "finetune-default.json")
    state = initial_state("default", config.model)
    bundled = load_segmenter("default").backbone.state_dict()
    assert state.keys() == bundled.keys() and all(torch.equal(state[k], bundled[k]) for k in state)


def test_a_wrong_init_from_fails_before_any_data_is_made(tmp_path):
    config = TrainConfig.from_json(CONFIGS / "curriculum" / "regression-stage4.json")
    config = config.replace(
        init_from=str(tmp_path / "missing" / "model"), data=dataclasses.replace(config.data, cache_dir=str(tmp_path / "cache"))
    )
    with pytest.raises(InputError, match="init_from .*no such folder"):
        train_segmentation(config, tmp_path / "run", progress=False)
    assert not (tmp_path / "cache").exists()
    # A bundled model of another kind is refused by name, also before the data.
    with pytest.raises(InputError, match="init_from default"):
        train_segmentation(config.replace(init_from="default"), tmp_path / "run2", progress=False)
    assert not (tmp_path / "cache").exists()


# ----------------------------------------------------------------------------- two steps of each


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """``train(config_path)``: the config's two-step tiny run (memoised), its curriculum predecessors first."""
    root = tmp_path_factory.mktemp("config_runs")
    synth = root / "synth.json"
    # Small cheap frames (letterboxed up to each model's 64x128), as long as a model window.
    synth.write_text(json.dumps({"height": 32, "width": 64, "num_frames": 16, "max_march_steps": 16}))
    produced_by = run_commands()
    done: dict[str, object] = {}

    def start_of(init: str) -> str:
        if not init.startswith("runs/"):
            return init  # "" or a bundled model name
        run = "/".join(init.split("/")[:2])
        assert run in produced_by, f"init_from {init}: no documented command trains {run}"
        return str(train(ROOT / produced_by[run][0]).model_dir)

    def train(path: Path):
        key = rel(path)
        if key not in done:
            config = TrainConfig.from_json(path)
            data = dataclasses.replace(
                config.data, train_clips=2, val_clips=2, synth_config=str(synth), val_windows=1, cache_dir=str(root / "cache")
            )
            tiny = config.replace(
                data=data,
                init_from=start_of(config.init_from),
                distill_from=start_of(config.distill_from),  # a teacher is a documented run too
                steps=2,
                batch_size=min(config.batch_size, 2),
                warmup_steps=1,
                log_every=1,
                checkpoint_every=2,
                validate_every=0,  # once, at the end
                val_steps=min(config.val_steps, 2),
            )
            done[key] = (train_segmentation(tiny, root / key.replace("/", "_"), progress=False), config)
        return done[key][0]

    train.config_of = lambda path: done[rel(path)][1]
    return train


@pytest.mark.parametrize("path", config_files(), ids=rel)
def test_each_config_trains_two_steps(tiny_runs, path):
    from amodal.segmentation.model import read_segmenter_config

    result = tiny_runs(path)
    assert result.step == 2 and result.model_dir is not None
    assert read_segmenter_config(result.model_dir) == tiny_runs.config_of(path).model
    log = [json.loads(line) for line in (result.out_dir / "log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log if "loss" in r] == [1, 2]
    assert all(math.isfinite(r["loss"]) for r in log if "loss" in r)
    assert [r["val"]["windows"] for r in log if "val" in r] == [1]
