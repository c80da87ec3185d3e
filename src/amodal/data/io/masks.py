"""Reading object masks: folders of mask images and COCO RLE JSON files.

Every reader returns an :class:`ObjectMasks` whose arrays are ``(K, T, H, W)
bool`` with ``K`` objects over ``T`` frames, ordered like the frames they were
matched to.

Mask folders come in three layouts:

- **luminance** (default, one object): a pixel belongs to the object where the
  image's luminance (Pillow ``convert("L")``) is above 128. Palette PNGs work
  whatever their palette order (only the colour counts, not the index), and
  soft or anti-aliased masks are thresholded at 128 rather than rejected.
- **index** (DAVIS style, several objects): the raw palette index or gray
  value of a pixel is its object id, ``0`` is background.
- **per-object subfolders** (what :func:`amodal.data.io.writers.write_mask_pngs`
  writes): one numbered subfolder per object id, each a luminance folder.

Mask files are matched to frames by file stem when the names agree
(``frame_007.png`` with ``frame_007.jpg``), otherwise in natural order; the
counts must be equal either way.

The RLE JSON formats are described in :func:`read_rle_json` and ``docs/io.md``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from amodal.errors import InputError
from amodal.util.fs import load_json
from amodal.data.io import rle as rle_codec
from amodal.data.io.frames import IMAGE_SUFFIXES, list_images, natural_key, open_image

MASK_MODES = ("luminance", "index")
LUMINANCE_THRESHOLD = 128  # object where convert("L") > 128: the middle of 8-bit gray


@dataclass(frozen=True, eq=False)
class ObjectMasks:
    """Masks of ``K`` objects over ``T`` frames, as a reader found them.

    Attributes:
        modal: ``(K, T, H, W) bool`` visible masks, or ``None`` when the source has none.
        amodal: ``(K, T, H, W) bool`` full masks, or ``None`` when the source has none.
        object_ids: one id per object.
        category_ids: one category per object (``0`` when the source has none).
        frame_names: the source's own name for each frame, in frame order.
    """

    modal: np.ndarray | None
    amodal: np.ndarray | None
    object_ids: tuple[int, ...]
    category_ids: tuple[int, ...]
    frame_names: tuple[str, ...]


def match_to_frames(
    frame_names: Sequence[str], names: Sequence[str], where: str, what: str = "masks"
) -> list[int]:
    """For each frame, the index in ``names`` of its mask; raises ``InputError`` when they cannot be paired.

    Names are paired by equality when both lists hold the same names, and by
    position when no name is shared (two naming schemes, say ``00000`` and
    ``frame_000``). A partial overlap or a count mismatch is an error naming
    the first unmatched frame or mask.
    """
    frame_names, names = list(frame_names), list(names)
    if names == frame_names:
        return list(range(len(names)))
    seen: set[str] = set()
    for name in names:
        if name in seen:
            raise InputError(f"{where}: two {what} named '{name}'; keep one per frame")
        seen.add(name)
    shared = seen & set(frame_names)
    if len(names) != len(frame_names):
        if len(names) < len(frame_names):
            missing = [n for n in frame_names if n not in seen] if shared else frame_names[len(names) :]
            first = f"first frame without one: '{missing[0]}'"
        else:
            extra = [n for n in names if n not in set(frame_names)] if shared else names[len(frame_names) :]
            first = f"first extra: '{extra[0]}'"
        raise InputError(
            f"{where}: {len(names)} {what} for {len(frame_names)} frames ({first}); give exactly one per frame"
        )
    if not shared:
        return list(range(len(names)))
    index = {name: i for i, name in enumerate(names)}
    for name in frame_names:
        if name not in index:
            raise InputError(
                f"{where}: no {what} named '{name}' although others match the frames by name; "
                "name every mask after its frame"
            )
    return [index[name] for name in frame_names]


def _check_size(shape: tuple[int, ...], size: tuple[int, int] | None, file: Path | str) -> None:
    if size is not None and tuple(shape[:2]) != tuple(size):
        raise InputError(
            f"{file}: mask is {shape[1]}x{shape[0]} but the frames are {size[1]}x{size[0]} "
            "(width x height); masks must have the frames' size"
        )


def read_luminance_mask(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """One mask image as ``(H, W) bool``: luminance above 128.

    ``size`` ``(H, W)``, when given, must match. Non-binary values are
    thresholded, not rejected.
    """
    image = open_image(path)
    if image.mode.startswith("I;16") or image.mode == "I":
        # 16-bit masks: threshold at the middle of their range, not of 8 bits.
        mask = np.asarray(image).astype(np.int64) > 257 * LUMINANCE_THRESHOLD
    else:
        try:
            gray = image.convert("L")
        except ValueError as e:  # modes Pillow cannot convert, such as LAB (a TIFF under a .png name)
            raise InputError(f"{path}: cannot read a {image.mode} image as a mask ({e}); save it as a gray PNG") from None
        mask = np.asarray(gray) > LUMINANCE_THRESHOLD
    _check_size(mask.shape, size, path)
    return mask


def read_index_mask(path: str | os.PathLike, size: tuple[int, int] | None = None) -> np.ndarray:
    """One label image as ``(H, W)`` integers: the raw palette index or gray value, ``0`` = background.

    Accepts palette, 8/16-bit grayscale and 1-bit images, and RGB images whose
    three channels are equal; colour RGB is an ``InputError`` (its colours
    are not ids).
    """
    image = open_image(path)
    if image.mode in ("RGB", "RGBA"):
        rgb = np.asarray(image)[..., :3]
        if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 0], rgb[..., 2])):
            raise InputError(
                f"{path}: index mode needs palette or grayscale label images, this one is colour {image.mode}; "
                "save it as a palette PNG or use mask_mode='luminance'"
            )
        labels = rgb[..., 0]
    elif image.mode == "LA":
        labels = np.asarray(image)[..., 0]
    elif image.mode in ("P", "L", "1", "I") or image.mode.startswith("I;16"):
        labels = np.asarray(image)
        labels = labels.astype(np.uint8) if labels.dtype == np.bool_ else labels
    else:
        raise InputError(f"{path}: index mode cannot read {image.mode} images; save the labels as a palette PNG")
    _check_size(labels.shape, size, path)
    return labels


def _check_visible(masks: np.ndarray, ids: Sequence[int], where: str, how: str) -> None:
    for k, oid in enumerate(ids):
        if not masks[k].any():
            raise InputError(
                f"{where}: every mask of object {oid} is empty ({how}); each object must be visible in some frame"
            )


def read_mask_folder(
    folder: str | os.PathLike,
    frame_names: Sequence[str],
    size: tuple[int, int] | None = None,
    mode: str = "luminance",
    object_ids: Sequence[int] | None = None,
    require_visible: bool = True,
    what: str = "masks",
) -> ObjectMasks:
    """Read a folder of mask images matched to frames; the masks go in :attr:`ObjectMasks.modal`.

    Args:
        folder: the mask folder (see the module docstring for its layouts).
        frame_names: one name (file stem) per frame; masks are matched to them.
        size: ``(H, W)`` of the frames; every mask must have it.
        mode: ``"luminance"`` (one object, id 1) or ``"index"`` (pixel value = object id).
        object_ids: keep only these objects, in this order (index mode and
            per-object subfolders); an absent id is an error listing the present ones.
        require_visible: raise ``InputError`` when an object is empty in every frame.
        what: names the masks in error messages (``"masks"``, ``"amodal masks"``).

    Returns:
        ``ObjectMasks`` with ``modal`` ``(K, T, H, W) bool`` and ``amodal`` ``None``.
    """
    from tqdm import tqdm

    folder = Path(folder)
    if mode not in MASK_MODES:
        raise InputError(f"mask_mode must be one of {MASK_MODES}, got {mode!r}")
    if not folder.is_dir():
        raise InputError(f"{folder}: mask folder not found; pass a folder of mask images")
    subfolders = _object_subfolders(folder)
    if subfolders:
        if mode != "luminance":
            raise InputError(f"{folder}: holds one subfolder per object; read it with mask_mode='luminance'")
        return _read_object_subfolders(folder, subfolders, frame_names, size, object_ids, require_visible, what)

    files = list_images(folder, what)
    order = match_to_frames(frame_names, [f.stem for f in files], str(folder), what)
    files = [files[i] for i in order]
    progress = dict(desc=f"reading {folder.name}", unit="mask", leave=False, disable=None)
    if mode == "luminance":
        if object_ids is not None and [int(i) for i in object_ids] != [1]:
            raise InputError(
                f"{folder}: luminance masks hold one object (id 1), asked for ids {list(object_ids)}; "
                "use mask_mode='index' for label images with several objects"
            )
        masks = _read_masks(read_luminance_mask, tqdm(files, **progress), size)[None]
        ids: tuple[int, ...] = (1,)
        if require_visible:
            _check_visible(masks, ids, str(folder), f"no pixel has luminance above {LUMINANCE_THRESHOLD}")
    else:
        labels = _read_masks(read_index_mask, tqdm(files, **progress), size)
        present = [int(v) for v in np.unique(labels) if v != 0]
        if not present:
            raise InputError(f"{folder}: every label image is 0 (background); index mode needs object ids > 0")
        ids = _select_ids(present, object_ids, str(folder))
        masks = labels[None] == np.asarray(ids, dtype=labels.dtype)[:, None, None, None]
    return ObjectMasks(
        modal=masks, amodal=None, object_ids=ids, category_ids=(0,) * len(ids), frame_names=tuple(f.stem for f in files)
    )


def _read_masks(read, files, size: tuple[int, int] | None) -> np.ndarray:
    """``read(file, size)`` of every file, stacked; without ``size``, all must have the first one's size."""
    masks: list[np.ndarray] = []
    for file in files:
        mask = read(file, size)
        if masks and mask.shape != masks[0].shape:
            h, w = masks[0].shape
            raise InputError(
                f"{file}: mask is {mask.shape[1]}x{mask.shape[0]} but the first mask is {w}x{h} (width x height); "
                "all masks must have one size"
            )
        masks.append(mask)
    return np.stack(masks)


def _select_ids(present: Sequence[int], wanted: Sequence[int] | None, where: str) -> tuple[int, ...]:
    if wanted is None:
        return tuple(present)
    ids = tuple(int(i) for i in wanted)
    if not ids:
        raise InputError(f"{where}: asked for no object ids; present ids: {list(present)} (pass none to keep all)")
    for oid in ids:
        if oid not in present:
            raise InputError(f"{where}: object id {oid} not found; present ids: {list(present)}")
    if len(set(ids)) != len(ids):
        raise InputError(f"{where}: object ids {list(ids)} repeat an id")
    return ids


def _object_subfolders(folder: Path) -> list[Path]:
    """Numbered subfolders of a folder that holds no image itself: the per-object layout."""
    if any(p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir()):
        return []
    subs = [p for p in folder.iterdir() if p.is_dir() and p.name.isdigit()]
    return sorted(subs, key=lambda p: natural_key(p.name))


def _read_object_subfolders(folder, subfolders, frame_names, size, object_ids, require_visible, what) -> ObjectMasks:
    by_id = {int(p.name): p for p in subfolders}
    ids = _select_ids(list(by_id), object_ids, str(folder))
    rows = []
    for oid in ids:
        rows.append(read_mask_folder(by_id[oid], frame_names, size, "luminance", require_visible=require_visible, what=what))
        size = rows[0].modal.shape[2:]  # every object's masks must have the first object's size
    return ObjectMasks(
        modal=np.concatenate([r.modal for r in rows]),
        amodal=None,
        object_ids=ids,
        category_ids=(0,) * len(ids),
        frame_names=rows[0].frame_names,
    )


def _stem(name: str) -> str:
    return Path(name).stem if Path(name).suffix.lower() in IMAGE_SUFFIXES else Path(name).name


def read_rle_json(
    path: str | os.PathLike,
    frame_names: Sequence[str] | None = None,
    size: tuple[int, int] | None = None,
    object_ids: Sequence[int] | None = None,
    frames_dir: str | os.PathLike | None = None,
    require_visible: bool = True,
) -> ObjectMasks:
    """Read object masks from a COCO RLE JSON file in either accepted format.

    **Per-object format** (what :func:`amodal.data.io.writers.write_rle_json` writes)::

        {"size": [H, W],
         "frames": ["frame_000", ...],                   # T frame names
         "objects": [{"id": 1, "category_id": 0,
                      "modal":  [RLE or null, ...],      # T entries, optional
                      "amodal": [RLE or null, ...]}]}    # T entries, optional

    An RLE is ``{"size": [H, W], "counts": str or list}``; ``null`` is an empty
    mask. Each object needs ``modal`` or ``amodal`` (all objects the same keys).

    **SAIL-VOS list format** (the curated evaluation annotations): a list of
    one-object clips with ``obj_id``, ``category_id``, ``image_file_names``,
    ``visible_mask`` (read as modal) and ``segmentation`` (read as amodal).
    Clips sharing ``image_file_names`` are objects of one video. When the file
    holds several videos, the one whose image folder (``video003/images``) ends
    the path ``frames_dir`` is taken.

    Args:
        path: the JSON file.
        frame_names: the frames' names; masks are matched to them by name, or
            by position when the naming schemes differ.
        size: ``(H, W)`` of the frames; every RLE must have it.
        object_ids: keep only these objects, in this order.
        frames_dir: the frames folder, to pick a video in a SAIL-VOS file.
        require_visible: raise ``InputError`` when an object's modal masks are
            all empty.

    Returns:
        ``ObjectMasks`` with ``(K, T, H, W) bool`` arrays.
    """
    path = Path(path)
    data = load_json(path, "RLE JSON file")
    if isinstance(data, list):
        entries = _sailvos_entries(data, path, frames_dir)
    elif isinstance(data, dict) and "objects" in data:
        entries = _per_object_entries(data, path)
    else:
        raise InputError(
            f"{path}: not an RLE JSON this reader knows; expected a dict with 'objects' "
            "(see docs/io.md) or a SAIL-VOS list of clips"
        )
    names, objects = entries
    if not objects:
        raise InputError(f"{path}: holds no objects")
    order = list(range(len(names))) if frame_names is None else match_to_frames(frame_names, names, str(path))
    present = [o["id"] for o in objects]
    ids = _select_ids(present, object_ids, str(path))
    objects = [objects[present.index(oid)] for oid in ids]

    def decode_all(key: str) -> np.ndarray | None:
        if objects[0][key] is None:
            return None
        out = []
        for obj in objects:
            frames = []
            for t in order:
                where = f"{path}: object {obj['id']} {key} frame '{names[t]}'"
                frames.append(_decode_or_empty(obj[key][t], obj["size"], size, where))
            out.append(np.stack(frames))
        return np.stack(out)

    modal, amodal = decode_all("modal"), decode_all("amodal")
    if require_visible and modal is not None:
        _check_visible(modal, ids, str(path), "no visible pixel in any frame")
    return ObjectMasks(
        modal=modal,
        amodal=amodal,
        object_ids=ids,
        category_ids=tuple(o["category_id"] for o in objects),
        frame_names=tuple(names[t] for t in order),
    )


def _decode_or_empty(entry, file_size, size, where: str) -> np.ndarray:
    if entry is None:
        if file_size is None and size is None:
            raise InputError(f"{where}: null mask and no size to make it empty; add a top-level 'size'")
        return np.zeros(tuple(size or file_size), dtype=bool)
    shape = rle_codec.size_of(entry, where)  # checked before anything is decoded
    _check_size(shape, size, where)
    if file_size is not None and shape != tuple(file_size):
        raise InputError(
            f"{where}: RLE size {list(shape)} differs from the file's size {list(file_size)}; all masks must have one size"
        )
    return rle_codec.decode(entry, where=where)


def _per_object_entries(data: dict, path: Path) -> tuple[list[str], list[dict]]:
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames or not all(_is_name(n) for n in frames):
        raise InputError(f"{path}: 'frames' must be a non-empty list of frame names (printable strings)")
    size = data.get("size")
    if size is not None and not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) for s in size)):
        raise InputError(f"{path}: 'size' must be [H, W], got {size!r}")
    if not isinstance(data["objects"], list):
        raise InputError(f"{path}: 'objects' must be a list of objects")
    objects = []
    keys = None
    for i, obj in enumerate(data["objects"]):
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), int):
            raise InputError(f"{path}: objects[{i}] must be a dict with an integer 'id'")
        has = tuple(k for k in ("modal", "amodal") if k in obj)
        if not has:
            raise InputError(f"{path}: object {obj['id']} has neither 'modal' nor 'amodal' masks")
        if keys is not None and has != keys:
            raise InputError(f"{path}: object {obj['id']} has {list(has)} but earlier objects have {list(keys)}")
        keys = has
        for key in has:
            if not isinstance(obj[key], list) or len(obj[key]) != len(frames):
                raise InputError(
                    f"{path}: object {obj['id']} '{key}' must list one RLE or null per frame ({len(frames)})"
                )
        objects.append(
            {
                "id": obj["id"],
                "category_id": _integer(obj.get("category_id", 0), f"{path}: object {obj['id']} 'category_id'"),
                "modal": obj.get("modal"),
                "amodal": obj.get("amodal"),
                "size": size,
            }
        )
    if len({o["id"] for o in objects}) != len(objects):
        raise InputError(f"{path}: object ids repeat: {[o['id'] for o in objects]}")
    if size is None:  # without a top-level size, every mask takes the size of the first one
        first = next((r for o in objects for k in keys for r in o[k] if r is not None), None)
        if first is not None:
            size = list(rle_codec.size_of(first, f"{path}: object {objects[0]['id']}"))
        for o in objects:
            o["size"] = size
    return [_stem(n) for n in frames], objects


def _is_name(name) -> bool:
    """A frame or file name from a JSON file: a non-empty printable string (messages quote it on one line)."""
    return isinstance(name, str) and name != "" and name.isprintable()


def _integer(value, where: str) -> int:
    """An integer field (integer-valued numbers and strings accepted, as ``int()`` reads them); ``InputError`` otherwise."""
    try:
        if isinstance(value, bool) or (isinstance(value, float) and not value.is_integer()):
            raise ValueError
        return int(value)
    except (TypeError, ValueError, OverflowError):
        raise InputError(f"{where} must be an integer, got {value!r}") from None


def _sailvos_entries(data: list, path: Path, frames_dir) -> tuple[list[str], list[dict]]:
    videos: dict[tuple[str, ...], list[dict]] = {}
    for i, clip in enumerate(data):
        needed = ("obj_id", "image_file_names", "visible_mask", "segmentation")
        if not isinstance(clip, dict) or any(k not in clip for k in needed):
            raise InputError(f"{path}: clip [{i}] is not a SAIL-VOS clip (needs {', '.join(needed)})")
        names = clip["image_file_names"]
        if not isinstance(names, list) or not names or not all(_is_name(n) for n in names):
            raise InputError(f"{path}: clip [{i}] 'image_file_names' must be a non-empty list of file names")
        files = tuple(names)
        for key in ("visible_mask", "segmentation"):
            if not isinstance(clip[key], list):
                raise InputError(f"{path}: clip [{i}] '{key}' must list one RLE or null per image")
            if len(clip[key]) != len(files):
                raise InputError(f"{path}: clip [{i}] has {len(clip[key])} '{key}' entries for {len(files)} images")
        videos.setdefault(files, []).append(clip)
    if len(videos) == 1:
        files, clips = next(iter(videos.items()))
    else:
        folders = {files: Path(files[0]).parent.parts for files in videos}
        tail = Path(frames_dir).resolve().parts if frames_dir is not None else ()
        chosen = [files for files, parts in folders.items() if parts and tail[-len(parts) :] == parts]
        if len(chosen) != 1:
            listed = ", ".join(sorted("/".join(parts) for parts in folders.values()))
            raise InputError(
                f"{path}: holds {len(videos)} videos ({listed}); pass the frames folder of one of them "
                "(its path must end with that folder)"
            )
        files, clips = chosen[0], videos[chosen[0]]
    # A null entry (object absent from a frame) takes the size of the video's other masks.
    first = next((rle for c in clips for rle in c["visible_mask"] + c["segmentation"] if rle is not None), None)
    size = list(rle_codec.size_of(first, f"{path}: video {Path(files[0]).parent}")) if first is not None else None
    objects = [
        {
            "id": _integer(c["obj_id"], f"{path}: 'obj_id'"),
            "category_id": _integer(c.get("category_id", 0), f"{path}: obj_id {c['obj_id']!r} 'category_id'"),
            "modal": c["visible_mask"],
            "amodal": c["segmentation"],
            "size": size,
        }
        for c in clips
    ]
    if len({o["id"] for o in objects}) != len(objects):
        raise InputError(f"{path}: obj_id repeats within video {Path(files[0]).parent}")
    return [_stem(n) for n in files], objects
