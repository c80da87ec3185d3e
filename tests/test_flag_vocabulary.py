"""One vocabulary across commands: the same thing has the same flag names in every command that takes it."""

import argparse

import pytest

from amodal import cli


def _commands():
    """``{"segment": parser, "train segmentation": parser, ...}``: every command that runs something."""
    found = {}

    def walk(parser, prefix):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    leaf = not any(isinstance(a, argparse._SubParsersAction) for a in sub._actions)
                    if leaf:
                        found[prefix + name] = sub
                    walk(sub, prefix + name + " ")

    walk(cli.build_parser(), "")
    return found


COMMANDS = _commands()


def flags(name: str) -> set[str]:
    return {o for a in COMMANDS[name]._actions for o in a.option_strings}


def dest_of(name: str, flag: str) -> str:
    return next(a.dest for a in COMMANDS[name]._actions if flag in a.option_strings)


# The synonyms: every command that takes one spelling takes all of them, for the same setting.
SYNONYMS = [
    ("--quiet", "--no-progress"),  # no progress bars
    ("--frames", "--video"),  # the input video: a folder of frames or a video file
]


@pytest.mark.parametrize("spellings", SYNONYMS, ids=lambda s: "/".join(s))
def test_a_command_taking_one_spelling_takes_all(spellings):
    for name in COMMANDS:
        given = [s for s in spellings if s in flags(name)]
        if not given:
            continue
        assert given == list(spellings), f"`amodal {name}` takes {given} but not the others of {spellings}"


def test_progress_flags_are_one_setting():
    for name in COMMANDS:
        if "--quiet" in flags(name) and "--no-progress" in flags(name):
            assert dest_of(name, "--quiet") == dest_of(name, "--no-progress"), name


def test_every_command_that_runs_a_model_on_a_video_shares_its_flags():
    # segment and run: stage 1 (and 2) on a video on disk; complete: stage 2 on one.
    for name in ("segment", "run", "complete"):
        missing = {"--frames", "--video", "--resolution", "--samples", "--steps", "--guidance", "--seed",
                   "--device", "--dtype", "--quiet", "--no-progress", "--out", "--overwrite"} - flags(name)
        assert not missing, f"`amodal {name}` lacks {sorted(missing)}"
    for name in ("segment", "run"):
        missing = {"--masks", "--rle", "--mask-mode", "--objects", "--depth", "--depth-model", "--no-depth",
                   "--save-depth", "--window", "--overlap", "--blend", "--batch-size", "--pad", "--fps",
                   "--no-legend", "--model"} - flags(name)
        assert not missing, f"`amodal {name}` lacks {sorted(missing)}"
    # Commands that draw overlay videos can leave the legend out; every stage-2 model is --completion-model.
    for name in ("segment", "run", "demo", "overlay"):
        assert "--no-legend" in flags(name), name
    for name in ("run", "demo", "complete", "bench"):
        assert "--completion-model" in flags(name), name
    for name in ("demo", "run"):
        assert {"--model", "--segmentation-model"} <= flags(name), name
        assert dest_of(name, "--model") == dest_of(name, "--segmentation-model"), name
    for name in ("segment", "run", "demo", "eval", "complete"):
        assert {"--samples", "--steps", "--guidance", "--seed"} <= flags(name), name


def test_old_spellings_still_parse_and_mean_the_same():
    from amodal.cli.flags import resolution_of

    parser = cli.build_parser()
    for name in ("segment", "run", "complete"):
        base = [name, "--frames", "f", "--out", "o"] + {"segment": ["--masks", "m"], "run": ["--masks", "m"],
                                                       "complete": ["--masks", "m", "--amodal", "a"]}[name]
        new = parser.parse_args([*base, "--resolution", "32x64"])
        old = parser.parse_args([*base, "--height", "32", "--width", "64"])
        assert resolution_of(new) == resolution_of(old) == (32, 64)
        assert parser.parse_args([*base, "--no-progress"]).quiet and parser.parse_args([*base, "--quiet"]).quiet
    video = parser.parse_args(["run", "--video", "clip.mp4", "--masks", "m", "--out", "o"])
    assert video.video == "clip.mp4"


def test_old_spellings_are_not_listed_twice_in_help(capsys):
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["run", "--help"])
    text = capsys.readouterr().out
    assert "--resolution HxW" in text and "--height" not in text and "--width" not in text


def test_run_refuses_pad_with_the_reason(capsys, tmp_path):
    code = cli.main(["run", "--quiet", "--frames", str(tmp_path), "--masks", str(tmp_path), "--pad", "0.25",
                     "--out", str(tmp_path / "out")])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("amodal: error: --pad") and "inside the frame" in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_the_cli_spells_the_sample_levels_the_pipeline_takes():
    from amodal.cli.flags import SAMPLE_LEVELS as spelled
    from amodal.segmentation.protocol import SAMPLE_LEVELS

    assert spelled == SAMPLE_LEVELS
