"""Every command's --help ends with worked examples, and every example parses with that command's flags."""

import re
import shlex

import pytest

from amodal import cli


def _subparsers(parser):
    import argparse

    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield name, sub
                yield from ((f"{name} {n}", s) for n, s in _subparsers(sub))


def _example_lines(text: str):
    """The argv after ``amodal`` of each example line of ``text`` (continuations joined, comments and ``...`` skipped)."""
    joined = re.sub(r"\\\n\s*", " ", text)
    for line in joined.splitlines():
        line = line.split("#")[0].strip()
        if "..." in line or "amodal " not in line:
            continue
        yield shlex.split(line[line.index("amodal ") + len("amodal "):])


def examples():
    """``(command, argv)`` for each ``amodal ...`` line of every command's and subcommand's examples."""
    out = []
    for name in cli.COMMANDS:
        module = __import__(f"amodal.cli.{name}", fromlist=["EXAMPLE"])
        texts = [getattr(module, "EXAMPLE", "")] + [v for k, v in vars(module).items() if k.endswith("_EXAMPLE") and isinstance(v, str)]
        for text in texts:
            out += [(name, argv) for argv in _example_lines(text)]
    for name, sub in _subparsers(cli.build_parser()):  # what each subcommand's own --help shows
        out += [(name, argv) for argv in _example_lines((sub.epilog or "").partition("example:")[2])]
    return out


@pytest.mark.parametrize("name", cli.COMMANDS)
def test_help_ends_with_examples(name, capsys):
    with pytest.raises(SystemExit) as done:
        cli.build_parser().parse_args([name, "--help"])
    assert done.value.code == 0
    assert "example:" in capsys.readouterr().out


def _leaf_commands():
    """Every subcommand that runs something (``train segmentation``, ``convert official``, ...), not a group."""
    import argparse

    return [name for name, sub in _subparsers(cli.build_parser())
            if not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)]


@pytest.mark.parametrize("name", _leaf_commands())
def test_every_subcommand_has_a_description_and_a_worked_example(name, capsys):
    with pytest.raises(SystemExit) as done:
        cli.build_parser().parse_args([*name.split(), "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    usage, _, rest = text.partition("\n\n")
    description = rest.split("\n\n")[0]
    assert not description.startswith(("positional arguments", "options")), f"{name}: no description"
    examples_shown = list(_example_lines(text.partition("example:")[2]))
    assert any(argv[: len(name.split())] == name.split() for argv in examples_shown), f"{name}: no worked example of itself"


@pytest.mark.parametrize("name,argv", examples(), ids=lambda v: " ".join(v) if isinstance(v, list) else v)
def test_examples_parse(name, argv):
    args = cli.build_parser().parse_args(argv)
    assert callable(getattr(args, "func", None))


def test_each_default_is_shown_once_and_never_as_none():
    for name, sub in _subparsers(cli.build_parser()):
        for action in sub._actions:
            shown = sub.formatter_class(prog="x")._get_help_string(action) % {"default": action.default} if action.help else ""
            assert shown.count("default:") <= 1, (name, action.option_strings, shown)
            assert "(default: None)" not in shown and "(default: False)" not in shown, (name, action.option_strings)
