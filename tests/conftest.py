"""Shared test fixtures.

Material from the project's shared folder is reached through ``AMODAL_SHARED``
(default: ``../shared`` beside the repository root); tests that need it skip
with a reason when it is absent.
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
