"""The benchmark scripts: each one's ``--help`` runs and names its flags, every command line the docs
cite still parses, and the shared helpers of ``benchmarks/common.py`` (parser, threads, tables, JSON)
do what the scripts rely on. Nothing here runs a benchmark."""

from __future__ import annotations

import argparse
import ast
import importlib.util
import io
import json
import os
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import math

import pytest

REPO = Path(__file__).resolve().parents[1]
BENCHMARKS = REPO / "benchmarks"

# Each script (and subcommand) with the flags its help must name.
HELP = {
    "bench_metrics.py": ["--data", "--rounds"],
    "bench_official.py": ["step", "quirk"],
    "bench_official.py step": ["--height", "--width", "--frames", "--steps", "--no-warmup"],
    "completion_steps.py": ["--config", "--model", "--steps", "--guidance", "--samples", "--cache", "--json"],
    "completion_noise_levels.py": ["--config", "--model", "--twin", "--cache", "--sigmas", "--guidance", "--json"],
    "completion_gallery.py": ["--data", "--split", "--limit", "--objects", "--frames", "--method", "--seed", "--threads", "--out", "--overwrite"],
    "completion_propagation.py": ["--data", "--split", "--limit", "--time", "--model", "--threads", "--json"],
    "compose_synthetic.py": ["--scenes", "--frames", "--size", "--shift", "--threads", "--json"],
    "bench_synth.py": ["--clips", "--seed", "--config", "--write", "--workers"],
    "noise_levels.py": ["--config", "--model", "--sigmas", "--seed", "--threads", "--cache", "--json"],
    "sampling_drift.py": ["--config", "--model", "--steps", "--guidance", "--sigma-min", "--samples", "--levels", "--seed", "--threads", "--cache", "--json"],
    "stage1.py": [
        "--data", "--split", "--limit", "--model", "--regression", "--steps", "--guidance", "--samples",
        "--vote", "--only", "--seed", "--threads", "--out",
    ],
    "training_curves.py": ["runs", "--markdown", "--plot"],
    "gpu_check.py": ["--device", "--tiny", "--only", "--out"],
    "svd_encoder_cache.py": ["--steps", "--frames", "--size", "--clips", "--flops", "--threads", "--json"],
    "windowing.py": ["--model", "--frames", "--videos", "--seed", "--steps", "--overlaps", "--threads", "--json"],
}

# Where command lines of the scripts are cited (the scripts' own docstrings too).
CITING = [*sorted((REPO / "docs").glob("*.md")), REPO / "README.md", REPO / "src/amodal/assets/weights/TRAINING.md"]


def test_every_script_is_covered():
    scripts = {p.name for p in BENCHMARKS.glob("*.py")} - {"common.py"}
    assert scripts == {key.split()[0] for key in HELP}


@pytest.fixture(scope="module")
def helps() -> dict[str, subprocess.CompletedProcess]:
    """Every ``--help`` of :data:`HELP`, run at once in their own processes, as the docs run them."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    running = {
        key: subprocess.Popen(
            [sys.executable, str(BENCHMARKS / key.split()[0]), *key.split()[1:], "--help"],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for key in HELP
    }
    done = {}
    for key, process in running.items():
        out, err = process.communicate(timeout=120)
        done[key] = subprocess.CompletedProcess(process.args, process.returncode, out, err)
    return done


@pytest.mark.parametrize("key", sorted(HELP))
def test_help_runs_and_names_the_flags(helps, key):
    result = helps[key]
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: ")
    missing = [flag for flag in HELP[key] if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", result.stdout)]
    assert not missing, f"{key} --help does not name {missing}:\n{result.stdout}"
    if " " not in key:  # the description is the module docstring, kept as written
        doc = ast.get_docstring(ast.parse((BENCHMARKS / key).read_text()), clean=False)
        assert doc.splitlines()[0] in result.stdout


def cited_command_lines() -> list[tuple[str, str, list[str]]]:
    """``(where, script, argv)`` for every ``python benchmarks/NAME.py ...`` cited in full."""
    found = []
    for path in [*CITING, *sorted(BENCHMARKS.glob("*.py"))]:
        if path.name == "common.py":
            continue
        text = path.read_text()
        python = r"(?:[\w./-]*/)?(python3? benchmarks/"  # python, .venv/bin/python, ...
        spans = re.findall(rf"`{python}[^`]*)`", text)  # inline code, which may wrap lines
        spans += re.findall(rf"^\s*{python}\S+\.py.*)$", text, re.M)  # lines of code blocks
        for span in spans:
            command = " ".join(span.split("#")[0].split())
            if "..." in command:
                continue
            words = shlex.split(command)
            found.append((f"{path.relative_to(REPO)}: {command}", Path(words[1]).name, words[2:]))
    return found


@pytest.fixture(scope="module")
def scripts():
    """Each script imported as a module (as a script, it finds ``common`` beside it)."""
    other = sys.modules.pop("common", None)  # a module of that name from elsewhere would shadow benchmarks/common.py
    sys.path.insert(0, str(BENCHMARKS))
    try:
        modules = {}
        for path in sorted(BENCHMARKS.glob("*.py")):
            if path.name == "common.py":
                continue
            spec = importlib.util.spec_from_file_location(f"benchmark_{path.stem}", path)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
            modules[path.name] = module
        yield modules
    finally:
        sys.path.remove(str(BENCHMARKS))
        sys.modules.pop("common", None)
        if other is not None:
            sys.modules["common"] = other


CITED = cited_command_lines()


def test_the_docs_cite_command_lines():
    cited = {script for _, script, _ in CITED}
    assert {"stage1.py", "windowing.py", "sampling_drift.py", "noise_levels.py", "bench_official.py"} <= cited


@pytest.mark.parametrize("where, script, argv", CITED, ids=[where for where, _, _ in CITED])
def test_cited_command_lines_parse(scripts, where, script, argv):
    parser = scripts[script].build_parser()
    try:
        parser.parse_args(argv)
    except SystemExit as e:  # argparse's way of refusing a command line
        pytest.fail(f"{where}: does not parse (exit {e.code})")


# ---- common.py -------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def common(scripts):
    return sys.modules["common"]


def test_parser_has_the_shared_arguments_with_one_help_each(common):
    doc = "First line.\n\n    python benchmarks/x.py --seed 3   # kept as written\n"
    parser = common.make_parser(doc, "model", "seed", "json", seed={"help": "seed of sample A"})
    text = parser.format_help()
    assert "    python benchmarks/x.py --seed 3   # kept as written" in text
    assert common.ARGUMENTS["model"]["help"] in text and "seed of sample A" in text
    args = parser.parse_args([])
    assert (args.model, args.seed, args.json) == ("default", 0, None)
    assert parser.parse_args(["--seed", "3"]).seed == 3
    with pytest.raises(ValueError, match="colour"):
        common.make_parser(doc, "colour")
    with pytest.raises(ValueError, match="seed"):
        common.make_parser(doc, "model", seed={"help": "a change of an argument not added"})


def test_set_threads_sets_torch_threads_only_when_asked(common, monkeypatch):
    calls = []
    monkeypatch.setitem(sys.modules, "torch", types.SimpleNamespace(set_num_threads=calls.append))
    common.set_threads(None)
    common.set_threads(3)
    assert calls == [3]


class _Recorder(io.StringIO):
    """A stream that records what it held at each flush."""

    def __init__(self):
        super().__init__()
        self.flushed: list[str] = []

    def flush(self):
        self.flushed.append(self.getvalue())


def test_table_prints_header_separator_and_a_line_a_row_as_they_come(common):
    out = _Recorder()
    table = common.Table([("name", ""), ("mIoU", ".4f"), ("steps", "d"), ("s/frame", ".3f")], file=out)
    assert out.getvalue() == "| name | mIoU | steps | s/frame |\n| --- | --- | --- | --- |\n"
    rows = [("a", 0.5, 2, 1.23456), ("b", float("nan"), 8, None), ("c, Top-3", 0.91234, 25, "(same run)")]
    for i, row in enumerate(rows):
        line = table.row(*row)
        assert out.flushed[-1].endswith(line + "\n")  # on the stream before the next row is computed
        assert len(out.getvalue().splitlines()) == 3 + i
    lines = out.getvalue().splitlines()
    assert lines[2:] == [
        "| a | 0.5000 | 2 | 1.235 |",
        "| b | n/a | 8 | n/a |",
        "| c, Top-3 | 0.9123 | 25 | (same run) |",
    ]
    assert table.text() == out.getvalue()
    assert all(line.count("|") == 5 for line in lines)
    with pytest.raises(ValueError, match="3 values for 4 columns"):
        table.row("d", 1.0, 2)


def test_table_without_echo_prints_nothing(common, capsys):
    table = common.Table([("sigma", "g"), ("mIoU", ".3f")], echo=False)
    table.row(0.05, 0.98765)
    assert capsys.readouterr().out == ""
    assert table.text() == "| sigma | mIoU |\n| --- | --- |\n| 0.05 | 0.988 |\n"


def test_write_rows_round_trips_atomically(common, tmp_path):
    rows = [{"steps": 1, "miou": 0.9, "name": "diffusion 1 steps"}, {"steps": 2, "miou": 0.8125, "name": "x"}]
    args = argparse.Namespace(config=Path("configs/default.json"), steps=[1, 2], json="out.json", threads=None)
    path = tmp_path / "new" / "rows.json"
    common.write_rows(path, rows, args)
    data = json.loads(path.read_text())
    assert data == {"args": {"config": "configs/default.json", "steps": [1, 2], "json": "out.json", "threads": None}, "rows": rows}
    common.write_rows(path, rows[:1], args)  # replaces the file
    assert json.loads(path.read_text())["rows"] == rows[:1]
    assert sorted(p.name for p in path.parent.iterdir()) == ["rows.json"]  # no temporaries left
    common.write_rows(None, rows, args)  # no --json: nothing written
    assert sorted(p.name for p in path.parent.iterdir()) == ["rows.json"]


def test_print_json_prints_one_indented_object(common, capsys):
    common.print_json({"speedup": 6.5, "clips": [1, 2]})
    out = capsys.readouterr().out
    assert json.loads(out) == {"speedup": 6.5, "clips": [1, 2]}
    assert out.endswith("}\n") and "\n  " in out


def test_gpu_check_dry_run_on_the_tiny_architecture(tmp_path):
    """The prepared GPU script runs end to end (on the CPU, tiny weights) before device time is spent on it."""
    out = tmp_path / "gpu_check.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, str(BENCHMARKS / "gpu_check.py"), "--tiny", "--device", "cpu", "--out", str(out)],
                            cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    records = json.loads(out.read_text())["records"]
    parts = {r["part"] for r in records}
    assert parts == {"sample", "train"} and all("error" not in r for r in records)
    assert all(r["finite"] for r in records if r["part"] == "sample")
    train = [r for r in records if r["part"] == "train"]
    assert {r["gradient_checkpointing"] for r in train} == {False, True}
    assert all(0 < r["trainable_params"] < r["params"] for r in train)


def test_sampling_drift_auroc_counts_ties_half(scripts):
    auroc = scripts["sampling_drift.py"].auroc
    assert auroc([0, 1, 2, 3], [0, 0, 1, 1]) == 1.0
    assert auroc([3, 2, 1, 0], [0, 0, 1, 1]) == 0.0
    assert auroc([0, 0, 0, 0], [0, 1, 0, 1]) == 0.5
    assert auroc([0, 1, 1, 2], [0, 1, 0, 1]) == 0.875  # pairs: 1>0, 1=1 (half), 2>0, 2>1
    assert math.isnan(auroc([1, 2], [1, 1]))
