"""The ``amodal`` command line: a thin layer that builds a config and calls one library function.

Each subcommand lives in its own module ``amodal.cli.<name>`` exposing
``register(subparsers)``, which adds its parser and sets ``func`` to a handler
taking the parsed arguments. Heavy imports happen inside the handlers so that
``amodal --help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from amodal import __version__
from amodal.errors import AmodalError

# Order is the order shown by `amodal --help`.
COMMANDS = ("demo", "segment", "run", "eval", "data", "overlay", "train", "bench", "complete", "convert")


class _Formatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keep the worked examples' line breaks and show every default."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="amodal",
        description="Video amodal segmentation and content completion with video diffusion priors.",
        formatter_class=_Formatter,
        epilog="Run `amodal COMMAND --help` for a worked example of each command.",
    )
    parser.add_argument("--version", action="version", version=f"amodal {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"amodal.cli.{name}").register(subparsers)
    return parser


def add_command(subparsers, name: str, help: str, example: str) -> argparse.ArgumentParser:
    """Add a subcommand parser whose ``--help`` ends with a worked example."""
    return subparsers.add_parser(
        name,
        help=help,
        description=help,
        epilog="example:\n" + example,
        formatter_class=_Formatter,
    )


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except AmodalError as e:
        print(f"amodal: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("amodal: interrupted", file=sys.stderr)
        return 130
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
