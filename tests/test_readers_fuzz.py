"""Property-based tests of the readers on hostile input: random bytes, truncated or corrupted valid
files, JSON of the wrong shape, wrong sizes.

The property is the project's rule for bad input: a reader either returns what it documents
(dtype and shape), or raises ``InputError`` / ``CheckpointError`` whose message is one line naming
the file. Never another exception type, never a hang, never a huge allocation.

Every test is derandomized (the same examples on every run) and small enough that the module runs
in seconds.
"""

from __future__ import annotations

import copy
import io
import json
import os
import struct
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from amodal.data.datasets.base import Annotation
from amodal.data.io import rle as rle_codec
from amodal.data.io.frames import list_images, open_image, read_frames, read_image
from amodal.data.io.masks import read_index_mask, read_luminance_mask, read_mask_folder, read_rle_json
from amodal.data.synth.config import SynthConfig
from amodal.errors import CheckpointError, InputError
from amodal.evaluation.reference_formats import predicted_boxes, predicted_masks, read_predictions
from amodal.training.config import TrainConfig

# AMODAL_FUZZ_EXAMPLES=1000 searches deeper locally; CI runs the default, the same examples every time.
EXAMPLES = int(os.environ.get("AMODAL_FUZZ_EXAMPLES", "60"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
FEW = settings(FUZZ, max_examples=max(1, EXAMPLES // 2))


# ----------------------------------------------------------------------------- the property
@contextmanager
def scratch():
    """A fresh folder per example (pytest's ``tmp_path`` is per test, not per example)."""
    with tempfile.TemporaryDirectory(prefix="amodal-fuzz-") as folder:
        yield Path(folder)


def attempt(call, *names: str):
    """``call()``, or ``None`` when it raised an allowed error: an ``InputError`` or ``CheckpointError``
    whose message is one line naming one of ``names`` (file or folder names)."""
    try:
        return call()
    except (InputError, CheckpointError) as e:
        message = str(e)
        assert message.strip(), f"empty message from {type(e).__name__}"
        assert "\n" not in message and "\r" not in message, f"message is not one line: {message!r}"
        assert any(name in message for name in names), f"message names none of {names}: {message!r}"
        return None


# ----------------------------------------------------------------------------- strategies
NASTY = st.sampled_from(
    [0, -1, 1, 3, 2**31, 2**63, -(2**64), 10**30, 1.5, -0.0, float("nan"), float("inf"), "", "x", "12",
     "\n", True, False, None, [], {}, [1, 2], [[1]], [-1, 4], {"size": [2, 2], "counts": "x"}]
)  # fmt: skip
LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6) | NASTY
JSON = st.recursive(
    LEAVES, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner, max_size=4),
    max_leaves=12,
)


def _paths(value, path=()):
    yield path
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _paths(item, path + (key,))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _paths(item, path + (i,))


@st.composite
def mutated(draw, document):
    """``document`` with one to three parts replaced by random JSON, deleted, or (lists) cut short."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 3))):
        path = draw(st.sampled_from(list(_paths(document))))
        if not path:
            return copy.deepcopy(draw(JSON))
        parent = document
        for key in path[:-1]:
            parent = parent[key]
        action = draw(st.sampled_from(["replace", "replace", "delete", "duplicate"]))
        if action == "replace":  # copies: a later step may edit inside it, and Hypothesis reuses its values
            parent[path[-1]] = copy.deepcopy(draw(JSON))
        elif action == "delete":
            del parent[path[-1]]
        elif isinstance(parent, list):
            parent.append(copy.deepcopy(parent[path[-1]]))
        else:
            parent[path[-1]] = [parent[path[-1]], copy.deepcopy(parent[path[-1]])]
    return document


@st.composite
def damaged(draw, data: bytes):
    """``data`` cut at a random point, with a few bytes flipped, or both."""
    data = bytearray(data)
    how = draw(st.sampled_from(["cut", "flip", "both"]))
    if how in ("flip", "both"):
        for _ in range(draw(st.integers(1, 4))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] ^= draw(st.integers(1, 255))
    if how in ("cut", "both"):
        data = data[: draw(st.integers(0, len(data) - 1))]
    return bytes(data)


def json_bytes(value) -> bytes:
    return json.dumps(value).encode()


# ----------------------------------------------------------------------------- images
IMAGE_MODES = ("1", "L", "P", "LA", "RGB", "RGBA", "I;16")
FORMATS = {".png": ("PNG", IMAGE_MODES), ".bmp": ("BMP", ("1", "L", "P", "RGB")), ".jpg": ("JPEG", ("L", "RGB", "CMYK"))}


def make_image(mode: str, h: int, w: int, seed: int) -> Image.Image:
    rng = np.random.default_rng(seed)
    if mode in ("I;16", "I"):
        return Image.fromarray(rng.integers(0, 65536, (h, w)).astype(np.uint16)).convert(mode)
    if mode == "P":
        image = Image.fromarray(rng.integers(0, 4, (h, w)).astype(np.uint8), "L").convert("P")
        image.putpalette([255, 255, 255, 0, 0, 0, 200, 10, 10, 10, 10, 200])  # index 0 white
        return image
    bands = len(Image.new(mode, (1, 1)).getbands())
    array = rng.choice([0, 255], (h, w, bands)).astype(np.uint8)
    return Image.fromarray(array[..., 0] if bands == 1 else array).convert(mode)


def image_bytes(mode: str, h: int, w: int, seed: int, suffix: str = ".png") -> bytes:
    buffer = io.BytesIO()
    make_image(mode, h, w, seed).save(buffer, FORMATS[suffix][0])
    return buffer.getvalue()


def png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def png_header(w: int, h: int, bit_depth: int = 8, colour: int = 0) -> bytes:
    """A PNG signature and IHDR claiming ``w x h`` pixels, with one tiny IDAT: a decompression bomb's shape."""
    ihdr = struct.pack(">IIBBBBB", w, h, bit_depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + png_chunk(b"IDAT", zlib.compress(b"\0" * 64))


SIGNATURES = st.sampled_from([b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"GIF89a", b"P5\n", b"II*\0"])
IMAGE_FILES = st.one_of(
    st.builds(lambda head, tail: head + tail, SIGNATURES, st.binary(max_size=200)),
    st.sampled_from(sorted(FORMATS)).flatmap(
        lambda suffix: st.tuples(st.sampled_from(FORMATS[suffix][1]), st.integers(1, 6), st.integers(1, 6), st.integers(0, 9))
        .map(lambda a: image_bytes(*a, suffix=suffix))
        .flatmap(lambda data: damaged(data) | st.just(data))
    ),
)
BOMBS = [png_header(60000, 60000), png_header(10000, 10000), png_header(15000, 15000, 16, 2), png_header(2**31 - 1, 1), png_header(0, 5)]


def check_luminance(mask, size):
    assert mask.dtype == bool and mask.ndim == 2
    assert size is None or mask.shape == size


@FUZZ
@given(data=IMAGE_FILES, suffix=st.sampled_from(sorted(FORMATS)), size=st.none() | st.just((3, 4)))
@example(data=BOMBS[0], suffix=".png", size=None)
@example(data=BOMBS[1], suffix=".png", size=None)
@example(data=BOMBS[2], suffix=".png", size=None)
@example(data=BOMBS[3], suffix=".png", size=None)
@example(data=BOMBS[4], suffix=".png", size=None)
def test_single_image_readers_accept_or_name_the_file(data, suffix, size):
    with scratch() as folder:
        path = folder / f"fuzzed_mask{suffix}"
        path.write_bytes(data)
        mask = attempt(lambda: read_luminance_mask(path, size), path.name)
        if mask is not None:
            check_luminance(mask, size)
        labels = attempt(lambda: read_index_mask(path, size), path.name)
        if labels is not None:
            assert labels.ndim == 2 and labels.dtype.kind in "ui" and (size is None or labels.shape == size)
        rgb = attempt(lambda: read_image(path), path.name)
        if rgb is not None:
            assert rgb.dtype == np.uint8 and rgb.ndim == 3 and rgb.shape[2] == 3
        image = attempt(lambda: open_image(path), path.name)
        if image is not None:
            assert image.size[0] >= 1 and image.size[1] >= 1


# ----------------------------------------------------------------------------- mask and frame folders
@st.composite
def image_folder_files(draw, count: int, h: int, w: int):
    """``count`` files for an ``h x w`` folder: mostly valid images, some damaged, wrongly sized or junk."""
    files = []
    for t in range(count):
        suffix = draw(st.sampled_from([".png", ".png", ".jpg", ".bmp"]))
        mode = draw(st.sampled_from(FORMATS[suffix][1]))
        kind = draw(st.sampled_from(["valid"] * 4 + ["damaged", "resized", "junk"]))
        hh, ww = (h, w) if kind != "resized" else (h + draw(st.integers(1, 2)), w)
        data = image_bytes(mode, hh, ww, t, suffix)
        if kind == "damaged":
            data = draw(damaged(data))
        elif kind == "junk":
            data = draw(st.binary(max_size=64))
        files.append((suffix, data))
    return files


NAMINGS = st.sampled_from(["same", "other", "missing", "extra", "duplicate"])


def folder_names(naming: str, count: int) -> tuple[list[str], list[str]]:
    """(frame names, mask file stems) for one way of naming the masks."""
    frames = [f"frame_{i:03d}" for i in range(count)]
    if naming == "same":
        return frames, list(reversed(frames))
    if naming == "other":
        return frames, [f"{i:05d}" for i in range(count)]
    if naming == "missing":
        return frames, frames[:-1] if count > 1 else ["elsewhere"]
    if naming == "extra":
        return frames, frames + ["frame_999"]
    return frames, frames[:1] * count


def write_folder(folder: Path, stems: list[str], files) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for stem, (suffix, data) in zip(stems, files):
        (folder / f"{stem}{suffix}").write_bytes(data)
    return folder


@FUZZ
@given(
    shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5)),
    data=st.data(),
    naming=NAMINGS,
    mode=st.sampled_from(["luminance", "index"]),
    layout=st.sampled_from(["flat", "flat", "subfolders"]),
    give_size=st.booleans(),
    object_ids=st.none() | st.lists(st.integers(0, 4), max_size=3),
    require_visible=st.booleans(),
)
def test_mask_folders_accept_or_name_the_folder(shape, data, naming, mode, layout, give_size, object_ids, require_visible):
    t, h, w = shape
    with scratch() as root:
        folder = root / "fuzzed_masks"
        frames, stems = folder_names(naming, t)
        if layout == "flat":
            write_folder(folder, stems, data.draw(image_folder_files(len(stems), h, w)))
        else:
            for oid in data.draw(st.lists(st.integers(0, 3), min_size=1, max_size=2, unique=True)):
                write_folder(folder / str(oid), stems, data.draw(image_folder_files(len(stems), h, w)))
        size = (h, w) if give_size else None
        out = attempt(
            lambda: read_mask_folder(folder, frames, size, mode, object_ids, require_visible), folder.name
        )
        if out is not None:
            k = len(out.object_ids)
            assert out.amodal is None and out.modal.dtype == bool
            assert out.modal.ndim == 4 and out.modal.shape[:2] == (k, t) and k >= 1
            assert size is None or out.modal.shape[2:] == size
            assert len(out.category_ids) == k and len(out.frame_names) == t


@FEW
@given(shape=st.tuples(st.integers(1, 3), st.integers(1, 5), st.integers(1, 5)), data=st.data(),
       start=st.integers(0, 3), stop=st.none() | st.integers(0, 4))  # fmt: skip
def test_frame_folders_accept_or_name_the_folder(shape, data, start, stop):
    t, h, w = shape
    with scratch() as root:
        folder = write_folder(root / "fuzzed_rgbs", [f"frame_{i}" for i in range(t)], data.draw(image_folder_files(t, h, w)))
        if data.draw(st.booleans()):
            (folder / "notes.txt").write_bytes(b"\xff\xfe not an image")
        files = attempt(lambda: list_images(folder), folder.name)
        assert files is not None and len(files) == t
        frames = attempt(lambda: read_frames(folder, start, stop), folder.name)
        if frames is not None:
            assert frames.dtype == np.uint8 and frames.ndim == 4 and frames.shape[3] == 3
            assert frames.shape[0] == len(range(t)[start:stop])


# ----------------------------------------------------------------------------- RLE JSON
def valid_masks(k: int, t: int, h: int, w: int, seed: int) -> np.ndarray:
    masks = np.random.default_rng(seed).random((k, t, h, w)) < 0.4
    masks[:, :, 0, 0] = True  # visible in every frame
    return masks


def per_object_document(k=2, t=2, h=3, w=4, seed=0, list_counts=False) -> dict:
    masks = valid_masks(k, t, h, w, seed)

    def encode(m):
        if not list_counts:
            return rle_codec.encode(m)
        flat = np.concatenate([[False], m.T.ravel()])  # column-major, starting with a run of zeros
        edges = np.flatnonzero(flat[1:] != flat[:-1])
        return {"size": [h, w], "counts": np.diff(np.concatenate([[0], edges, [h * w]])).tolist()}

    return {
        "size": [h, w],
        "frames": [f"frame_{i:03d}.png" for i in range(t)],
        "objects": [
            {"id": i + 1, "category_id": 3, "modal": [encode(m) for m in masks[i]], "amodal": [encode(m) for m in masks[i]]}
            for i in range(k)
        ],
    }


def sailvos_document(k=2, t=2, h=3, w=4, seed=0, videos=1) -> list:
    clips = []
    for v in range(videos):
        masks = valid_masks(k, t, h, w, seed + v)
        for i in range(k):
            clips.append(
                {
                    "obj_id": 20 + i,
                    "category_id": 4,
                    "image_file_names": [f"video{v:03d}/images/{j:06d}.png" for j in range(t)],
                    "visible_mask": [rle_codec.encode(m) for m in masks[i]],
                    "segmentation": [rle_codec.encode(m) for m in masks[i]],
                }
            )
    return clips


DOCUMENTS = [per_object_document(), per_object_document(list_counts=True), sailvos_document(), sailvos_document(videos=2)]
BAD_RLES = [
    {"size": [100000, 100000], "counts": [10**10]},  # a tiny entry for a 10 GB mask
    {"size": [100000, 100000], "counts": "0"},
    {"size": [3, 4], "counts": [2, 3]},  # covers 5 of 12 pixels
    {"size": [3, 4], "counts": "1"},
    {"size": [3, 4], "counts": [12, 10**30]},
    {"size": [float("inf"), 4], "counts": [12]},
    {"size": {"0": 3}, "counts": [12]},
    {"size": [-3, -4], "counts": [12]},
    {"size": [3, 4], "counts": "\u00e9\u00e9"},
    {"size": [3, 4], "counts": [[1], [2]]},
]


def with_rle(document, rle, where=("objects", 0, "modal", 0)):
    document = copy.deepcopy(document)
    parent = document
    for key in where[:-1]:
        parent = parent[key]
    parent[where[-1]] = rle
    return document


def check_object_masks(out, t, size):
    k = len(out.object_ids)
    assert k >= 1 and len(out.category_ids) == k and len(out.frame_names) == t
    assert out.modal is not None or out.amodal is not None
    for masks in (out.modal, out.amodal):
        if masks is not None:
            assert masks.dtype == bool and masks.ndim == 4 and masks.shape[:2] == (k, t)
            assert size is None or masks.shape[2:] == size
    if out.modal is not None and out.amodal is not None:
        assert out.modal.shape == out.amodal.shape


def read_rle_bytes(data: bytes, frames, size, object_ids, frames_dir="video001/images"):
    with scratch() as folder:
        path = folder / "fuzzed_rle.json"
        path.write_bytes(data)
        out = attempt(
            lambda: read_rle_json(path, frames, size, object_ids, frames_dir=folder / frames_dir), path.name
        )
        if out is not None:
            check_object_masks(out, len(frames) if frames is not None else len(out.frame_names), size)


RLE_ARGS = dict(
    frames=st.none() | st.just([f"frame_{i:03d}" for i in range(2)]) | st.just(["a", "b", "c"]),
    size=st.none() | st.just((3, 4)) | st.just((4, 3)),
    object_ids=st.none() | st.lists(st.sampled_from([1, 2, 20, 21, 5]), max_size=2),
)


@FUZZ
@given(document=st.sampled_from(DOCUMENTS).flatmap(mutated), **RLE_ARGS)
@example(document=with_rle(DOCUMENTS[0], BAD_RLES[0]), frames=None, size=(3, 4), object_ids=None)
@example(document={"frames": ["a"], "objects": [{"id": 1, "modal": [BAD_RLES[0]]}]}, frames=None, size=None, object_ids=None)
@example(document={"frames": ["a"], "objects": [{"id": 1, "modal": [BAD_RLES[1]]}]}, frames=None, size=None, object_ids=None)
@example(document=with_rle({k: v for k, v in DOCUMENTS[0].items() if k != "size"}, rle_codec.encode(np.ones((2, 2), bool))),
         frames=None, size=None, object_ids=None)  # fmt: skip
@example(document=with_rle(DOCUMENTS[2], BAD_RLES[0], (0, "visible_mask", 0)), frames=None, size=None, object_ids=None)
@example(document=with_rle(DOCUMENTS[0], "x", ("frames", 0)), frames=None, size=None, object_ids=[])
@example(document=with_rle(with_rle(DOCUMENTS[0], "a\nb", ("frames", 0)), {}), frames=None, size=None, object_ids=None)
@example(document=with_rle(with_rle(DOCUMENTS[2], "v/a\nb.png", (0, "image_file_names", 0)), {}, (0, "segmentation", 0)),
         frames=["q", "r"], size=None, object_ids=None)  # fmt: skip
def test_rle_json_of_the_wrong_shape(document, frames, size, object_ids):
    read_rle_bytes(json_bytes(document), frames, size, object_ids)


@FUZZ
@given(rle=st.sampled_from(BAD_RLES) | JSON | st.fixed_dictionaries({"size": JSON, "counts": JSON}), **RLE_ARGS)
def test_rle_json_with_bad_rle_entries(rle, frames, size, object_ids):
    read_rle_bytes(json_bytes(with_rle(DOCUMENTS[0], rle)), frames, size, object_ids)
    read_rle_bytes(json_bytes(with_rle(DOCUMENTS[2], rle, (1, "segmentation", 1))), frames, size, object_ids)


@FUZZ
@given(data=st.sampled_from([json_bytes(d) for d in DOCUMENTS]).flatmap(damaged) | st.binary(max_size=120), **RLE_ARGS)
def test_rle_json_truncated_or_random_bytes(data, frames, size, object_ids):
    read_rle_bytes(data, frames, size, object_ids)


@FUZZ
@given(rle=st.sampled_from(BAD_RLES) | JSON | st.fixed_dictionaries({"size": JSON, "counts": JSON}))
@example(rle=rle_codec.encode(valid_masks(1, 1, 5, 7, 3)[0, 0]))
def test_rle_decode_returns_a_mask_or_names_the_entry(rle):
    where = "fuzzed.json: objects[0]"
    mask = attempt(lambda: rle_codec.decode(rle, where=where), where)
    if mask is not None:
        assert mask.dtype == bool and mask.ndim == 2
        assert list(mask.shape) == [int(s) for s in rle["size"]]


def test_rle_decode_round_trips_and_rejects_short_counts():
    """The properties above accept any bool mask; these pin the values."""
    masks = valid_masks(1, 3, 5, 7, 1)[0]
    for mask in masks:
        np.testing.assert_array_equal(rle_codec.decode(rle_codec.encode(mask)), mask)
    with pytest.raises(InputError, match="cover"):
        rle_codec.decode({"size": [3, 4], "counts": [2, 3]}, where="x.json")  # garbage pixels otherwise


# ----------------------------------------------------------------------------- prediction files
PRED_T, PRED_OBJECTS, PRED_IMAGES = 2, (24, 25), 100000


def prediction_annotation() -> Annotation:
    masks = valid_masks(len(PRED_OBJECTS), PRED_T, 4, 6, 0)
    return Annotation(
        video="7",
        modal_masks=masks,
        amodal_masks=masks,
        amodal_boxes=np.tile([0.0, 0.0, 2.0, 2.0], (len(PRED_OBJECTS), PRED_T, 1)),
        object_ids=PRED_OBJECTS,
        category_ids=(1, 1),
        object_keys=PRED_OBJECTS,
        frame_keys=tuple(PRED_IMAGES + t for t in range(PRED_T)),
        frame_names=tuple(f"{t:06d}" for t in range(PRED_T)),
        source="fuzz annotations",
    )


ANNOTATION = prediction_annotation()
MASK_PREDICTIONS = {
    str((PRED_IMAGES + t, oid)): {"diffvas_res_rle": rle_codec.encode(ANNOTATION.amodal_masks[k, t])}
    for k, oid in enumerate(PRED_OBJECTS)
    for t in range(PRED_T)
}
BOX_PREDICTIONS = {
    str((7, str(PRED_IMAGES + t), str(oid))): {"diffvas_res_bbox": [1.0, 2.0, 3.0, 4.0]}
    for oid in PRED_OBJECTS
    for t in range(PRED_T)
}


def score_prediction_bytes(data: bytes):
    with scratch() as folder:
        path = folder / "fuzzed_predictions.json"
        path.write_bytes(data)
        predictions = attempt(lambda: read_predictions(path), path.name)
        if predictions is None:
            return
        assert isinstance(predictions, dict) and predictions
        masks = attempt(lambda: predicted_masks("sailvos", predictions, path, ANNOTATION), path.name)
        if masks is not None:
            assert masks.dtype == bool and masks.ndim == 5 and masks.shape[:3] == (1, len(PRED_OBJECTS), PRED_T)
        boxes = attempt(lambda: predicted_boxes(predictions, path, ANNOTATION), path.name)
        if boxes is not None:
            assert boxes.dtype == np.float64 and boxes.shape == (1, len(PRED_OBJECTS), PRED_T, 4)
            assert np.isfinite(boxes).all()


def test_valid_prediction_files_are_read():
    for document in (MASK_PREDICTIONS, BOX_PREDICTIONS):
        with scratch() as folder:
            path = folder / "predictions.json"
            path.write_bytes(json_bytes(document))
            predictions = read_predictions(path)
    masks = predicted_masks("sailvos", read_predictions_of(MASK_PREDICTIONS), "p.json", ANNOTATION)
    np.testing.assert_array_equal(masks[0], ANNOTATION.amodal_masks)
    boxes = predicted_boxes(read_predictions_of(BOX_PREDICTIONS), "p.json", ANNOTATION)
    assert (boxes == [1.0, 2.0, 3.0, 4.0]).all()
    assert predictions


def read_predictions_of(document):
    with scratch() as folder:
        path = folder / "predictions.json"
        path.write_bytes(json_bytes(document))
        return read_predictions(path)


@FUZZ
@given(document=st.sampled_from([MASK_PREDICTIONS, BOX_PREDICTIONS]).flatmap(mutated))
@example(document=with_rle(MASK_PREDICTIONS, BAD_RLES[0], (f"({PRED_IMAGES}, 24)", "diffvas_res_rle")))
@example(document=with_rle(MASK_PREDICTIONS, BAD_RLES[5], (f"({PRED_IMAGES}, 24)", "diffvas_res_rle")))
@example(document=with_rle(MASK_PREDICTIONS, BAD_RLES[6], (f"({PRED_IMAGES}, 24)", "diffvas_res_rle")))
@example(document=with_rle(MASK_PREDICTIONS, BAD_RLES[8], (f"({PRED_IMAGES}, 24)", "diffvas_res_rle")))
@example(document=with_rle(MASK_PREDICTIONS, BAD_RLES[9], (f"({PRED_IMAGES}, 24)", "diffvas_res_rle")))
def test_prediction_files_of_the_wrong_shape(document):
    score_prediction_bytes(json_bytes(document))


@FUZZ
@given(
    rle=st.sampled_from(BAD_RLES) | JSON | st.fixed_dictionaries({"size": JSON, "counts": JSON}),
    box=JSON | st.lists(LEAVES, min_size=4, max_size=4),
)
def test_prediction_entries_with_bad_values(rle, box):
    key = f"({PRED_IMAGES + 1}, 25)"
    score_prediction_bytes(json_bytes(with_rle(MASK_PREDICTIONS, rle, (key, "diffvas_res_rle"))))
    key = str((7, str(PRED_IMAGES + 1), "25"))
    score_prediction_bytes(json_bytes(with_rle(BOX_PREDICTIONS, box, (key, "diffvas_res_bbox"))))


@FUZZ
@given(data=st.sampled_from([json_bytes(MASK_PREDICTIONS), json_bytes(BOX_PREDICTIONS)]).flatmap(damaged)
       | st.binary(max_size=120))  # fmt: skip
def test_prediction_files_truncated_or_random_bytes(data):
    score_prediction_bytes(data)


# ----------------------------------------------------------------------------- config files
CONFIGS = {
    TrainConfig: TrainConfig().to_dict(),
    SynthConfig: SynthConfig().to_dict(),
}


def load_config_bytes(cls, data: bytes):
    with scratch() as folder:
        path = folder / "fuzzed_config.json"
        path.write_bytes(data)
        config = attempt(lambda: cls.from_json(path), path.name)
        if config is not None:
            assert isinstance(config, cls)


@FUZZ
@given(cls_document=st.sampled_from(list(CONFIGS.items())).flatmap(lambda item: st.tuples(st.just(item[0]), mutated(item[1]))))
@example(cls_document=(TrainConfig, {"lr": 10**400}))
@example(cls_document=(SynthConfig, {"fps": 10**400}))
@example(cls_document=(TrainConfig, {"lr": float("nan")}))
@example(cls_document=(TrainConfig, {"data": {"crop": [10**400, 2]}}))
def test_config_json_of_the_wrong_shape(cls_document):
    cls, document = cls_document
    load_config_bytes(cls, json_bytes(document))


def utf8(data: bytes) -> bytes:
    return data.decode("utf-8", "replace").encode()


@FUZZ
@given(cls=st.sampled_from(list(CONFIGS)), data=st.data())
def test_config_json_truncated_or_random_bytes(cls, data):
    valid = json_bytes(CONFIGS[cls])
    load_config_bytes(cls, utf8(data.draw(damaged(valid) | st.binary(max_size=120))))


@pytest.mark.xfail(
    strict=True, raises=UnicodeDecodeError,
    reason="TrainConfig.from_json and SynthConfig.from_json (src/amodal/training/config.py, "
    "src/amodal/data/synth/config.py) read the file with read_text() and let UnicodeDecodeError out",
)  # fmt: skip
@pytest.mark.parametrize("cls", list(CONFIGS), ids=lambda cls: cls.__name__)
def test_config_json_that_is_not_utf8(cls):
    load_config_bytes(cls, b"\xff\xfe{}")
