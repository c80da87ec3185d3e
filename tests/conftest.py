"""Shared test fixtures.

The suite stands on its own: :func:`official_tiny` builds a tiny random
checkpoint in the official Diffusion-VAS layout and :func:`tiny_clips` clip
folders laid out like the shared real clips, in code, once per session.

Material from the project's shared folder is reached through ``AMODAL_SHARED``
(default: ``../shared`` beside the repository root); only the tests that check
that material itself (parity with the reference pipeline's output, the
reference metric numbers, the real clips) use it, and they skip with a reason
when it is absent. Modules that run models opt into :func:`one_thread` with
``pytestmark = pytest.mark.usefixtures("one_thread")``. Tiny models and other
shared helpers live in ``tiny.py``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    return Path(os.environ.get("AMODAL_SHARED", REPO_ROOT.parent / "shared")).resolve()


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if not root.is_dir():
        pytest.skip(f"shared material not found at {root} (set AMODAL_SHARED to its path)")
    return root


@pytest.fixture(scope="session")
def real_clips_dir(shared_dir) -> Path:
    path = shared_dir / "data" / "real_clips"
    if not path.is_dir():
        pytest.skip(f"real clips not found at {path}")
    return path


@pytest.fixture(scope="module")
def fixture_dir() -> Path:
    """The shared folder's tiny random official-layout checkpoint with the reference pipeline's inputs and outputs.

    Only for parity with the reference; tests that just need an official-layout
    checkpoint use :func:`official_checkpoint`.
    """
    path = Path(os.environ.get("AMODAL_OFFICIAL_FIXTURE", shared_root() / "fixtures" / "official_tiny"))
    if not (path / "checkpoint" / "model_index.json").is_file():
        pytest.skip(f"official test vectors not found at {path} (set AMODAL_OFFICIAL_FIXTURE)")
    return path


@pytest.fixture(scope="session")
def official_tiny(tmp_path_factory) -> Path:
    """A folder like the shared ``fixtures/official_tiny``, built in code: ``checkpoint/`` and ``meta.json``.

    ``checkpoint/`` is a tiny random Diffusion-VAS checkpoint in the official
    layout (the shared fixture's configs, seeded random weights, the extra
    12-channel ``conv_in2``); ``meta.json`` gives its 8 x 64 x 128 geometry. With
    ``AMODAL_OFFICIAL_FIXTURE`` set, that folder is used instead, so every official test
    (fine-tuning included) runs on any fixture of the same layout.
    See :func:`tiny.build_official_checkpoint`.
    """
    import torch

    from tiny import build_official_checkpoint

    swapped = os.environ.get("AMODAL_OFFICIAL_FIXTURE")
    if swapped:  # any fixture of the same layout: every official test then runs on it
        path = Path(swapped)
        if not (path / "checkpoint" / "model_index.json").is_file() or not (path / "meta.json").is_file():
            pytest.exit(f"AMODAL_OFFICIAL_FIXTURE={swapped}: expected checkpoint/model_index.json and meta.json there")
        return path
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return build_official_checkpoint(tmp_path_factory.mktemp("official") / "official_tiny")
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="session")
def official_checkpoint(official_tiny) -> Path:
    """The built official-layout checkpoint folder (``model_index.json``, ``unet/``, ``vae/``, ...)."""
    return official_tiny / "checkpoint"


@pytest.fixture(scope="session")
def tiny_clips(tmp_path_factory) -> dict[str, Path]:
    """Clip folders built in code, laid out like the shared real clips: name -> folder with ``rgbs/`` and ``masks/``.

    25 frames of 48x64: a square moving behind a bar (:func:`tiny.tiny_scene`),
    the square being the one object. ``"binary"``: JPEG frames, palette masks
    with index 1 white. ``"inverted"``: PNG frames, palette masks whose index 0
    is white (the giraffe clip's quirk). Masks read with the luminance rule:
    object where ``Image.convert("L") > 128``.
    """
    from tiny import CLIP_VARIANTS, write_tiny_clip

    root = tmp_path_factory.mktemp("clips")
    return {name: write_tiny_clip(root / name, name) for name in CLIP_VARIANTS}


@pytest.fixture(scope="session")
def tiny_clip(tiny_clips) -> Path:
    """The ``"binary"`` clip of :func:`tiny_clips`."""
    return tiny_clips["binary"]


@pytest.fixture(scope="module")
def one_thread():
    """One torch thread for a module's tests and fixtures.

    Tiny tensors gain nothing from threads, and on a shared 2-core machine two
    threads wait on each other (10x slower here).
    """
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
