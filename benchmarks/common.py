"""What the benchmark scripts share: their parser, the repeated arguments, torch threads, tables, JSON.

A script run as ``python benchmarks/NAME.py`` has its own folder first on ``sys.path``, so the
scripts import this module as ``from common import ...``. Nothing here imports torch at import
time, so every script's ``--help`` stays quick.

- :func:`make_parser`: the parser of a script, its module docstring as the description (kept as
  written), with the arguments of :data:`ARGUMENTS` it names;
- :func:`set_threads`: ``--threads`` applied to torch; :func:`load_diffusion_model`: ``--model``;
- :class:`Table`: a markdown table printed as its rows come;
- :func:`write_rows`: the rows (and the arguments that made them) written atomically as JSON;
- :func:`print_json`: the one JSON object the speed scripts print.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Sequence, TextIO

from amodal.util.fs import write_json

REPO = Path(__file__).resolve().parents[1]

# The arguments several scripts take: one meaning, one default and one help text each. A script
# changes a keyword only where its meaning differs (``make_parser(..., seed={"help": ...})``).
ARGUMENTS: dict[str, dict[str, Any]] = {
    "config": {
        "default": "configs/default.json",
        "help": "training config whose validation windows to use (default: %(default)s, the bundled default's)",
    },
    "model": {"default": "default", "help": "diffusion model (name or folder)"},
    "seed": {"type": int, "default": 0, "help": "seed of the diffusion noise"},
    "threads": {"type": int, "default": 1, "help": "torch CPU threads"},
    "cache": {"default": "runs/cache", "help": "window cache folder of training"},
    "json": {"default": None, "help": "write the rows here as JSON"},
}


def make_parser(doc: str | None, *shared: str, **changes: dict[str, Any]) -> argparse.ArgumentParser:
    """A script's parser: ``doc`` as the description, then the ``shared`` arguments in that order.

    ``shared`` names entries of :data:`ARGUMENTS` (``"seed"`` adds ``--seed``); ``changes`` maps
    one of those names to the keywords that differ for this script.
    """
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_shared(parser, *shared, **changes)
    return parser


def add_shared(parser: argparse.ArgumentParser, *shared: str, **changes: dict[str, Any]) -> None:
    """Add the named arguments of :data:`ARGUMENTS` to ``parser`` (see :func:`make_parser`)."""
    unknown = sorted(set(shared) - set(ARGUMENTS)) + sorted(set(changes) - set(shared))
    if unknown:
        raise ValueError(f"not shared arguments of this call: {', '.join(unknown)}")
    for name in shared:
        parser.add_argument(f"--{name}", **{**ARGUMENTS[name], **changes.get(name, {})})


def set_threads(threads: int | None) -> None:
    """Run torch on ``threads`` CPU threads; ``None`` (or 0) leaves torch's own choice."""
    if threads:
        import torch

        torch.set_num_threads(threads)


def load_diffusion_model(name: str):
    """The segmenter ``name`` (registry name or folder); exits with a message when it is not a diffusion model."""
    from amodal.checkpoints.registry import load_segmenter

    model = load_segmenter(name)
    if model.config.objective != "diffusion":
        raise SystemExit(f"{name}: not a diffusion model")
    return model


def shared_dir() -> Path:
    """The project's shared folder: ``AMODAL_SHARED``, or ``shared`` beside the repository."""
    return Path(os.environ.get("AMODAL_SHARED", REPO.parent / "shared"))


def cell(value: Any, spec: str = "") -> str:
    """One table cell: ``value`` formatted with ``spec``; ``None`` and NaN as ``n/a``, text as it is."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if isinstance(value, str):
        return value
    return format(value, spec)


class Table:
    """A markdown table: header and separator first, then one line a row, each printed as it comes.

    ``columns`` are ``(title, spec)`` pairs; :meth:`row` formats its values with the specs (see
    :func:`cell`). Lines go to ``file`` (standard output by default) and are flushed at once, so a
    long run shows its rows while it works; with ``echo=False`` nothing is printed. :meth:`text`
    gives the whole table, ``lines`` its lines.
    """

    def __init__(self, columns: Sequence[tuple[str, str]], echo: bool = True, file: TextIO | None = None) -> None:
        self.specs = [spec for _, spec in columns]
        self.echo, self.file = echo, file
        self.lines: list[str] = []
        self._print("| " + " | ".join(title for title, _ in columns) + " |")
        self._print("| " + " | ".join("---" for _ in columns) + " |")

    def row(self, *values: Any) -> str:
        """Print and keep one row; its values in column order."""
        if len(values) != len(self.specs):
            raise ValueError(f"a row of {len(values)} values for {len(self.specs)} columns")
        line = "| " + " | ".join(cell(value, spec) for value, spec in zip(values, self.specs)) + " |"
        self._print(line)
        return line

    def text(self) -> str:
        """The table as markdown text, ending with a newline."""
        return "\n".join(self.lines) + "\n"

    def _print(self, line: str) -> None:
        self.lines.append(line)
        if self.echo:
            print(line, file=self.file or sys.stdout, flush=True)


def write_rows(path: str | os.PathLike | None, rows: Any, args: argparse.Namespace | None = None) -> None:
    """Write ``{"args": ..., "rows": rows}`` to ``path`` as JSON, atomically; nothing when ``path`` is None.

    ``args`` are the script's parsed arguments (paths as text), so the file says what made it.
    """
    if path is None:
        return
    payload = {"args": json.loads(json.dumps(vars(args), default=str)) if args is not None else None, "rows": rows}
    write_json(path, payload)


def print_json(obj: Any) -> None:
    """Print ``obj`` as indented JSON (the one object the speed scripts print)."""
    print(json.dumps(obj, indent=2), flush=True)


def completion_parser(doc: str | None, model_help: str) -> argparse.ArgumentParser:
    """The parser of a stage-2 script on validation windows: config, model, seed, threads, json, cache."""
    parser = make_parser(
        doc,
        "config", "model", "seed", "threads", "json",
        config={"default": "configs/completion/default-completion.json",
                "help": "stage-2 training config whose validation windows to use (default: %(default)s)"},
        model={"default": "default-completion", "help": model_help},
    )
    parser.add_argument("--cache", default="runs/cache-completion", help="crop cache folder of stage-2 training")
    return parser


def completion_validation(config_path: str, cache: str):
    """``(CompletionTrainConfig, CompletionBatch)``: a stage-2 config and its fixed validation windows."""
    from amodal.training.completion import CompletionTrainConfig, open_crop_pool, validation_batch

    config = CompletionTrainConfig.from_json(config_path)
    return config, validation_batch(open_crop_pool(config, "val", cache, progress=False), config.data)
