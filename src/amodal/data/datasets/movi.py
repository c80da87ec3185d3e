"""MOVi-B / MOVi-D as distributed for amodal work (the layout C2F-Seg and EoRaS read).

One folder per video under ``DIR/<split>/``::

    DIR/<split>/<video>/metadata.json                # {"metadata": {"num_frames", "height", "width", ...},
                                                     #  "instances": [{...}, ...]}  (one per object)
    DIR/<split>/<video>/rgba_full_00000.png          # RGBA frames (alpha ignored)
    DIR/<split>/<video>/segmentation_full_00000.png  # modal index map: 0 background, k + 1 object k
    DIR/<split>/<video>/segmentation_<k>_00000.png   # amodal mask of object k (non-zero = object)
    DIR/<split>/<video>/depth_full_00000.tiff        # float z-depth (optional); inverse depth = 1 / z

Frame numbers have five digits. **One clip per video** with all its objects:
object ``k`` (0-based, as in the file names) gets object id ``k + 1``, the
value it has in the index map. Objects that leave the view keep their rows:
frames where an object is not visible have an empty modal mask, which the
MOVi protocol skips.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from amodal.data.datasets.base import Annotation, DatasetItem, check_size
from amodal.errors import InputError
from amodal.util.fs import load_json
from amodal.data.io.frames import natural_key, open_image, read_image

DEFAULT_FPS = 12.0  # MOVi renders 24 frames at 12 fps when metadata gives no rate


def _read_array(path: Path) -> np.ndarray:
    return np.asarray(open_image(path))


class MoviIndex:
    """The video folders of a MOVi split, one clip per video.

    Args:
        root: the dataset folder; videos are read from ``root/split``.
        split: the split folder name.
    """

    kind = "movi"

    def __init__(self, root: str | os.PathLike, split: str = "test"):
        self.folder = Path(root) / split
        if not self.folder.is_dir():
            raise InputError(
                f"{self.folder}: MOVi split folder not found; pass --data with a folder holding {split}/<video>/"
            )
        self._videos = sorted(
            (p for p in self.folder.iterdir() if p.is_dir() and (p / "metadata.json").is_file()),
            key=lambda p: natural_key(p.name),
        )
        if not self._videos:
            raise InputError(
                f"{self.folder}: no video folders with a metadata.json; see docs/datasets.md for the MOVi layout"
            )

    def __len__(self) -> int:
        return len(self._videos)

    def _layout(self, video: Path) -> tuple[int, int, list[dict], float]:
        meta_path = video / "metadata.json"
        meta = load_json(meta_path, "MOVi metadata file")
        info = meta.get("metadata", {}) if isinstance(meta, dict) else None
        instances = meta.get("instances") if isinstance(meta, dict) else None
        if not isinstance(info, dict) or not isinstance(instances, list) or not instances:
            raise InputError(
                f"{meta_path}: expected {{'metadata': {{...}}, 'instances': [...]}} with at least one instance"
            )
        frames = info.get("num_frames")
        if frames is None:
            frames = len(list(video.glob("rgba_full_*.png")))
        if not isinstance(frames, int) or frames < 1:
            raise InputError(f"{meta_path}: 'num_frames' must be a positive integer, got {frames!r}")
        return frames, len(instances), instances, float(info.get("frame_rate", DEFAULT_FPS))

    def annotation(self, index: int, cropped: bool = False) -> Annotation:
        # MOVi frames are small (256x256): masks are always whole frames, whatever ``cropped`` says.
        video = self._videos[index]
        t, k, instances, fps = self._layout(video)
        index_maps = np.stack([self._index_map(video / f"segmentation_full_{f:05d}.png") for f in range(t)])
        size = index_maps.shape[1:]
        modal = index_maps[None] == np.arange(1, k + 1)[:, None, None, None]  # (K, T, H, W)
        amodal = np.zeros_like(modal)
        for obj in range(k):
            for f in range(t):
                path = video / f"segmentation_{obj}_{f:05d}.png"
                amodal[obj, f] = check_size(self._index_map(path), size, path) != 0
        categories = []
        for inst in instances:
            cat = inst.get("category", 0) if isinstance(inst, dict) else 0
            categories.append(int(cat) if isinstance(cat, int) or (isinstance(cat, str) and cat.isdigit()) else 0)
        return Annotation(
            video=video.name,
            modal_masks=modal,
            amodal_masks=amodal,
            amodal_boxes=None,
            object_ids=tuple(range(1, k + 1)),
            category_ids=tuple(categories),
            object_keys=tuple(range(k)),
            frame_keys=tuple(range(t)),
            frame_names=tuple(f"{f:05d}" for f in range(t)),
            fps=fps,
            source=str(video),
        )

    def item(self, index: int) -> DatasetItem:
        video = self._videos[index]
        annotation = self.annotation(index)
        size = annotation.size
        paths = [video / f"rgba_full_{f:05d}.png" for f in range(annotation.num_frames)]
        frames = np.stack([check_size(read_image(p), size, p) for p in paths])
        depth = None
        if (video / "depth_full_00000.tiff").is_file():
            layers = []
            for f in range(annotation.num_frames):
                path = video / f"depth_full_{f:05d}.tiff"
                z = check_size(_read_array(path).astype(np.float32).squeeze(), size, path)
                if not np.isfinite(z).all():
                    raise InputError(f"{path}: depth holds non-finite values")
                with np.errstate(divide="ignore"):
                    layers.append(np.where(z > 0, 1.0 / np.maximum(z, 1e-12), 0).astype(np.float32))
            depth = np.stack(layers)
        return DatasetItem(annotation.to_clip(frames, depth=depth), annotation)

    @staticmethod
    def _index_map(path: Path) -> np.ndarray:
        array = _read_array(path)
        if array.ndim != 2:
            raise InputError(
                f"{path}: expected a single-channel index map (palette or gray PNG), got shape {array.shape}"
            )
        return array
