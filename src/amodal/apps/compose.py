"""``amodal compose``: re-compose a video from its completed objects (amodal.compose), read from and written to folders.

Inputs: the frames, the modal masks (one folder, or one subfolder per object id) and the output
of ``amodal complete`` (or ``OUT/completion`` of ``amodal run``), whose ``<id>/rgba/<frame>.png``
are the layers. Outputs in ``OUT`` (written to a temporary folder, renamed into place when
complete): ``frames/<frame>.png`` and ``video.mp4``, the edited video; ``masks/<id>/`` and
``amodal/<id>/``, each object's visible and full masks after the edit (0/255 PNGs);
``plate/<frame>.png``, the background with every object taken out; ``summary.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from amodal.errors import InputError


@dataclass(frozen=True)
class ComposeCommand:
    """What ``amodal compose`` runs."""

    frames: str  # folder of frames or a video file
    masks: str  # modal masks: one folder (one object) or subfolders named by object id
    completed: str  # `amodal complete` output: <id>/rgba/<frame>.png
    edit: str  # the edit JSON (amodal.compose.read_edit)
    out: str
    hole_margin: int = 1  # pixels each visible mask grows by before it is cut out of the plate
    fps: float = 8.0  # frame rate of video.mp4
    paint_with: str | None = None  # a completion model paints the background no frame shows; None: the border fill
    overwrite: bool = False


def read_layers(folder: Path, object_ids: tuple[int, ...], names: tuple[str, ...], size: tuple[int, int]) -> np.ndarray:
    """``(K, T, H, W, 4) uint8`` from ``folder/<id>/rgba/<name>.png``; errors name the missing file."""
    from PIL import Image

    out = np.zeros((len(object_ids), len(names), *size, 4), np.uint8)
    for k, oid in enumerate(object_ids):
        for t, name in enumerate(names):
            path = folder / str(oid) / "rgba" / f"{name}.png"
            if not path.is_file():
                raise InputError(f"--completed {folder}: no {path.relative_to(folder)} (the output of `amodal complete` holds <id>/rgba/<frame>.png)")
            image = np.asarray(Image.open(path).convert("RGBA"))
            if image.shape[:2] != tuple(size):
                raise InputError(f"{path}: {image.shape[1]}x{image.shape[0]}, but the frames are {size[1]}x{size[0]}")
            out[k, t] = image
    return out


def run_compose(command: ComposeCommand) -> dict:
    """Read, re-compose, write; returns the summary (also ``OUT/summary.json``)."""
    from PIL import Image

    from amodal.compose import read_edit, recompose
    from amodal.data.io.frames import frame_names, read_frames
    from amodal.data.io.masks import read_mask_folder
    from amodal.data.io.video import write_video
    from amodal.util.fs import atomic_dir, check_output

    if command.hole_margin < 0:
        raise InputError(f"--hole-margin must be >= 0, got {command.hole_margin}")
    from amodal.checkpoints.registry import model_inputs, resolve

    out = check_output(command.out, command="compose", overwrite=command.overwrite,
                       inputs=(command.frames, command.masks, command.completed, command.edit, *model_inputs(command.paint_with)))
    paint = None
    if command.paint_with is not None:
        from amodal.apps.complete import completion_pipeline
        from amodal.compose import completion_painter

        resolve(command.paint_with, "completion", flag="--paint-with")
        paint = completion_painter(completion_pipeline(command.paint_with, progress=False))
    start = time.perf_counter()
    frames = read_frames(command.frames)
    names = frame_names(command.frames)
    size = frames.shape[1:3]
    modal = read_mask_folder(command.masks, names, size, what="modal masks")
    edit = read_edit(command.edit, modal.object_ids, len(names))
    layers = read_layers(Path(command.completed), modal.object_ids, names, size)
    result = recompose(frames, modal.modal, layers, modal.object_ids, edit, hole_margin=command.hole_margin, paint=paint)
    with atomic_dir(out, command="compose") as tmp:
        for kind, images in (("frames", result.frames), ("plate", result.plate)):
            (tmp / kind).mkdir()
            for name, image in zip(names, images):
                Image.fromarray(image).save(tmp / kind / f"{name}.png")
        for kind, masks in (("masks", result.modal_masks), ("amodal", result.amodal_masks)):
            for k, oid in enumerate(modal.object_ids):
                folder = tmp / kind / str(oid)
                folder.mkdir(parents=True)
                for name, mask in zip(names, masks[k]):
                    Image.fromarray(mask.astype(np.uint8) * 255).save(folder / f"{name}.png")
        write_video(tmp / "video.mp4", iter(result.frames), command.fps)
        summary = {
            "frames": len(names),
            "objects": list(modal.object_ids),
            "edited": [e.object_id for e in edit.objects],
            "never_seen_pixels": int(result.never_seen.sum()),
            "settings": {"hole_margin": command.hole_margin, "edit": str(command.edit), "paint_with": command.paint_with},
            "seconds": round(time.perf_counter() - start, 3),
        }
        (tmp / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary
