"""Shared test fixtures.

Material from the project's shared folder is reached through ``AMODAL_SHARED``
(default: ``../shared`` beside the repository root); tests that need it skip
with a reason when it is absent. Modules that run models opt into
:func:`one_thread` with ``pytestmark = pytest.mark.usefixtures("one_thread")``.
Tiny models and other shared helpers live in ``tiny.py``.
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
    """The tiny random official-layout checkpoint with the reference pipeline's inputs and outputs."""
    path = Path(os.environ.get("AMODAL_OFFICIAL_FIXTURE", shared_root() / "fixtures" / "official_tiny"))
    if not (path / "checkpoint" / "model_index.json").is_file():
        pytest.skip(f"official test vectors not found at {path} (set AMODAL_OFFICIAL_FIXTURE)")
    return path


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
