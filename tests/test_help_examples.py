"""Every command's --help ends with worked examples, and every example parses with that command's flags."""

import re
import shlex

import pytest

from amodal import cli


def examples():
    """``(command, argv)`` for each ``amodal ...`` line of every command's examples (continuations joined)."""
    out = []
    for name in cli.COMMANDS:
        module = __import__(f"amodal.cli.{name}", fromlist=["EXAMPLE"])
        texts = [getattr(module, "EXAMPLE", "")] + [v for k, v in vars(module).items() if k.endswith("_EXAMPLE") and isinstance(v, str)]
        for text in texts:
            joined = re.sub(r"\\\n\s*", " ", text)
            for line in joined.splitlines():
                line = line.split("#")[0].strip()
                if "..." in line or "amodal " not in line:
                    continue
                argv = shlex.split(line[line.index("amodal ") + len("amodal "):])
                out.append((name, argv))
    return out


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_help_ends_with_examples(name, capsys):
    with pytest.raises(SystemExit) as done:
        cli.build_parser().parse_args([name, "--help"])
    assert done.value.code == 0
    assert "example:" in capsys.readouterr().out


@pytest.mark.parametrize("name,argv", examples(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_examples_parse(name, argv):
    args = cli.build_parser().parse_args(argv)
    assert callable(getattr(args, "func", None))


def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from ((f"{name} {n}", s) for n, s in _subparsers(sub))


def test_each_default_is_shown_once_and_never_as_none():
    for name, sub in _subparsers(cli.build_parser()):
        for action in sub._actions:
            shown = sub.formatter_class(prog="x")._get_help_string(action) % {"default": action.default} if action.help else ""
            assert shown.count("default:") <= 1, (name, action.option_strings, shown)
            assert "(default: None)" not in shown and "(default: False)" not in shown, (name, action.option_strings)
