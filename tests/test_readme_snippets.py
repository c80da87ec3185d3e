"""Every ```python block of README.md runs, in order, in one namespace, on a few frames of the bundled demo clip.

The snippets name the example folders ``clip/rgbs`` and ``clip/masks``; the test writes a short clip
there (in a temporary working directory) with amodal's own writers, so the snippets run as printed.
A snippet that raises fails the test.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
NUM_FRAMES = 8  # a few frames keep both stages' snippets to seconds on a CPU

pytestmark = pytest.mark.usefixtures("one_thread")


def python_snippets(text: str) -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


def write_example_clip(root: Path) -> None:
    """``root/clip/rgbs/*.png`` and ``root/clip/masks/1/*.png``: the demo clip's most hidden object, first frames."""
    from amodal.apps.demo import demo_clip
    from amodal.data.io.writers import write_frame_pngs, write_mask_pngs

    clip = demo_clip().frame_range(0, NUM_FRAMES)
    hidden = (clip.amodal_masks & ~clip.modal_masks).sum(axis=(1, 2, 3))
    k = int(np.argmax(hidden))
    names = clip.frame_names
    write_frame_pngs(root / "clip" / "rgbs", clip.frames, names)
    write_mask_pngs(root / "clip" / "masks", clip.modal_masks[k : k + 1], (1,), names)


def test_the_readme_has_python_snippets_for_both_stages_and_the_system():
    code = "\n".join(python_snippets(README.read_text()))
    for name in ("AmodalSegmentationPipeline", "ContentCompletionPipeline", "AmodalSystem"):
        assert name in code


def test_every_readme_python_snippet_runs(tmp_path, monkeypatch):
    snippets = python_snippets(README.read_text())
    assert len(snippets) >= 2
    write_example_clip(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "readme"}
    for index, snippet in enumerate(snippets):
        exec(compile(snippet, f"README.md python block {index + 1}", "exec"), namespace)
    clip, both = namespace["clip"], namespace["both"]
    assert clip.num_frames == NUM_FRAMES
    assert both.amodal_masks.shape == clip.modal_masks.shape and both.amodal_masks.dtype == np.bool_
    assert both.completion.rgb.shape == (*clip.modal_masks.shape, 3)
