"""Every bundled model folder has a model card that names it and says what it is."""

import json
import re

import pytest

from amodal.checkpoints.registry import BUNDLED, bundled_path


@pytest.mark.parametrize("name", sorted(BUNDLED))
def test_each_bundled_model_has_a_card_naming_it(name):
    folder = bundled_path(name)
    card = folder / "README.md"
    assert card.is_file(), f"{folder}: no model card (README.md)"
    text = card.read_text()
    assert text.startswith(f"# Model card: `{name}`\n"), "the card names its own model first"
    for heading in ("## What it was trained on", "## How good it is", "## What it does badly"):
        assert heading in text, (name, heading)
    assert "MIT" in text  # the licence
    # Its sampling settings are the ones its config records.
    config = json.loads((folder / "config.json").read_text())
    assert f"`sampling_steps: {config['sampling_steps']}`" in text
    assert f"`sampling_guidance: {config['sampling_guidance']}`" in text
    if config["format"] == "amodal-segmenter":  # and, for stage 1, how its samples are read
        assert f"`sample_levels: {config.get('sample_levels', 'fixed')}`" in text, name
    # Numbers come with the command that produced them.
    assert re.search(r"`amodal (eval|bench) [^`]*`", text), name


def test_cards_ship_with_the_package():
    import tomllib
    from pathlib import Path

    pyproject = tomllib.loads((Path(__file__).resolve().parent.parent / "pyproject.toml").read_text())
    assert "assets/**/*" in pyproject["tool"]["setuptools"]["package-data"]["amodal"]
