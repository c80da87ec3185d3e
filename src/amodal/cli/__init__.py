"""The ``amodal`` command line: a thin layer that builds a config and calls one library function.

Each subcommand lives in its own module ``amodal.cli.<name>`` exposing
``register(subparsers)``, which adds its parser and sets ``func`` to a handler
taking the parsed arguments. Heavy imports happen inside the handlers so that
``amodal --help`` is instant.

Whatever goes wrong, a user sees one line, ``amodal: error: ...``, and a non-zero exit status:
2 for bad input (argument errors included), 1 for anything unexpected, 130 / 143 when
interrupted or terminated. ``--debug`` (or ``AMODAL_DEBUG=1``) prints the traceback as well.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from amodal import __version__
from amodal.errors import AmodalError

# Order is the order shown by `amodal --help`.
COMMANDS = ("demo", "segment", "run", "eval", "annotate", "compose", "data", "overlay", "train", "bench", "complete", "convert", "app")


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keep the worked examples' line breaks; show a default once, and only one that says something.

    A help text that already names its default (``default: ...``) is left alone; flags whose
    default is ``None`` or ``False`` (unset, off) and required arguments get none.
    """

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "default:" in text or "(default" in text
            or action.required
            or default is None
            or default is False
            or default is argparse.SUPPRESS
            or default == []
            or not action.option_strings
        ):
            return text
        return f"{text} (default: %(default)s)"


class _Parser(argparse.ArgumentParser):
    """Argument errors as the one line every other error is: ``amodal: error: <message> (see --help)``."""

    def error(self, message: str):
        print(f"amodal: error: {message} (see `{self.prog} --help`)", file=sys.stderr)
        raise SystemExit(2)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="amodal",
        description="Video amodal segmentation and content completion with video diffusion priors.",
        formatter_class=_Formatter,
        epilog="Run `amodal COMMAND --help` for a worked example of each command.",
    )
    parser.add_argument("--version", action="version", version=f"amodal {__version__}")
    parser.add_argument("--debug", action="store_true", help="print the traceback of an error (also AMODAL_DEBUG=1)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True, parser_class=_Parser)
    for name in COMMANDS:
        importlib.import_module(f"amodal.cli.{name}").register(subparsers)
    return parser


def add_overwrite(parser: argparse.ArgumentParser, what: str = "--out") -> None:
    """The one ``--overwrite`` flag: replace an existing output that this command did not write."""
    parser.add_argument(
        "--overwrite", action="store_true",
        help=f"replace an existing {what} that is not an earlier output of this command (inputs are never replaced)",
    )


def add_command(subparsers, name: str, help: str, example: str) -> argparse.ArgumentParser:
    """Add a subcommand parser whose ``--help`` ends with a worked example."""
    return subparsers.add_parser(
        name,
        help=help,
        description=help,
        epilog="example:\n" + example,
        formatter_class=_Formatter,
    )


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def main(argv: list[str] | None = None) -> int:
    from amodal.util.fs import Terminated, exit_cleanly_on_sigterm

    argv = sys.argv[1:] if argv is None else list(argv)
    debug = "--debug" in argv[:1] or os.environ.get("AMODAL_DEBUG", "") not in ("", "0")
    exit_cleanly_on_sigterm()
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        return int(args.func(args) or 0)
    except SystemExit as e:  # argparse: --help, --version, or an argument error already printed
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except AmodalError as e:
        _report(_one_line(e), debug)
        return 2
    except KeyboardInterrupt:
        print("amodal: interrupted", file=sys.stderr)
        return 130
    except Terminated:
        print("amodal: terminated", file=sys.stderr)
        return 143
    except MemoryError:
        _report("out of memory; use a smaller --resolution, --batch-size or --window, or fewer --samples", debug)
        return 1
    except Exception as e:  # noqa: BLE001  the one place every unexpected error is turned into a line
        _report(f"{type(e).__name__}: {_one_line(e) or 'no message'} (rerun with --debug for the traceback)", debug)
        return 1


def _report(message: str, debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc()
    print(f"amodal: error: {message}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
