"""``amodal app``: both stages in a web page (Gradio), for people who would rather click than type.

The flow: load a clip (the bundled example, or an uploaded video / zip of frames with its modal
masks), click the objects on the first frame, choose models, steps and samples, run stage 1 and
stage 2, scrub through the frames (modal and amodal overlays, the uncertainty map, the completed
objects side by side), and download a zip of everything ``amodal run --export layers`` writes.

The module splits in two. The functions above :func:`build_app` are plain Python on
:class:`amodal.Clip` arrays and files (what the tests call): :func:`load_example`,
:func:`load_upload`, :func:`object_at`, :func:`run_job`, :func:`frame_views`. :func:`build_app`
wires them into a Gradio page; gradio is imported there and nowhere else, so importing this
module (or ``amodal``) does not import it.

Errors a user can cause (a file that is not a video, masks that do not match the frames, a video
over the limits) are :class:`amodal.errors.InputError`; the page shows their one-line message in
its status line, never a traceback.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Callable, Sequence

import numpy as np

from amodal.clip import Clip
from amodal.errors import AmodalError, InputError

SEGMENTATION_MODELS = ("default", "default-regression", "default-boxes")  # bundled stage-1 models the page offers
COMPLETION_MODELS = ("default-completion", "default-completion-regression")  # bundled stage-2 models
DEMO_EXAMPLE = "demo: bundled synthetic clip (5 objects)"
MASK_MODES = ("auto", "index", "luminance")  # "auto" guesses from the mask images (guess_mask_mode)
MASK_MID_TONE_SHARE = 0.05  # at most this share of mid tones among lit pixels reads as a one-object mask
ZIP_ROOT = "amodal-run"  # the one folder every member of the download sits in


@dataclass(frozen=True)
class AppConfig:
    """Settings of one ``amodal app`` server (the flags of ``amodal app``)."""

    host: str = "127.0.0.1"  # interface to listen on; localhost keeps the page private to this machine
    port: int = 7860  # Gradio's usual port
    max_upload_mb: float = 200.0  # largest file accepted per upload; the server refuses bigger ones before reading them
    # Longest clip accepted: the whole clip is held in memory (stage 2 needs every frame of a
    # window at once) and stage 2 costs about a second per object-frame on a CPU.
    max_frames: int = 120
    max_frame_pixels: int = 1920 * 1080  # largest frame (width x height); bigger frames would not fit a run in memory
    max_unzipped_mb: float = 2000.0  # a zip may expand to at most this much (zip bombs are refused, not unpacked)
    model: str = "default"  # stage-1 model selected when the page opens (a bundled name or a model folder)
    completion_model: str = "default-completion"  # stage-2 model selected when the page opens
    device: str = "cpu"  # where both models run: "cpu" or "cuda"
    example_frames: int = 16  # the bundled example is cut to its first frames, one model window, so it runs in seconds
    layer_size: int = 576  # side of the object layers in the zip (``amodal run --layer-size``; SV4D takes 576)
    max_samples: int = 4  # most stage-1 samples the page offers; each one costs a full stage-1 pass
    work_dir: str | None = None  # where runs and their zips are written; None: a temporary folder of this process
    keep_runs: int = 8  # older run folders are deleted, so a long-running server does not fill the disk

    def __post_init__(self) -> None:
        if not 1 <= self.port <= 65535:
            raise InputError(f"--port must be in 1..65535, got {self.port}")
        if not self.max_upload_mb > 0:
            raise InputError(f"--max-upload-mb must be > 0, got {self.max_upload_mb}")
        if self.max_frames < 1:
            raise InputError(f"--max-frames must be >= 1, got {self.max_frames}")
        if self.example_frames < 1 or self.max_samples < 1 or self.keep_runs < 1 or self.max_frame_pixels < 1:
            raise InputError("example_frames, max_samples, keep_runs and max_frame_pixels must be >= 1")

    @property
    def segmentation_models(self) -> tuple[str, ...]:
        """The stage-1 models a request may name: the bundled ones and the one the server was started with."""
        return tuple(dict.fromkeys((self.model, *SEGMENTATION_MODELS)))

    @property
    def completion_models(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys((self.completion_model, *COMPLETION_MODELS)))


def error_message(error: BaseException) -> str:
    """The one line a page shows for ``error``: its message for an input error, its type too otherwise."""
    text = " ".join(str(error).split())
    if isinstance(error, AmodalError):
        return text or type(error).__name__
    return f"unexpected error ({type(error).__name__}: {text or 'no message'}); the server log has the details"


# Inputs ------------------------------------------------------------------------------------------
def examples(config: AppConfig) -> dict[str, Callable[[], Clip]]:
    """Example name -> a function loading it: the bundled demo clip, and the shared real clips when present."""
    from amodal.apps.demo import demo_clip

    found: dict[str, Callable[[], Clip]] = {DEMO_EXAMPLE: demo_clip}
    shared = Path(os.environ.get("AMODAL_SHARED", Path(__file__).resolve().parents[3].parent / "shared"))
    real = shared / "data" / "real_clips"
    if real.is_dir():
        for folder in sorted(p for p in real.iterdir() if (p / "rgbs").is_dir() and (p / "masks").is_dir()):
            found[f"real: {folder.name} (no ground truth)"] = functools.partial(_real_clip, folder)
    return found


def _real_clip(folder: Path) -> Clip:
    from amodal.data.io.loader import load_clip

    return load_clip(frames=folder / "rgbs", masks=folder / "masks", mask_mode="luminance")


def load_example(name: str, config: AppConfig) -> Clip:
    """The example called ``name``, cut to its first ``config.example_frames`` frames, without its ground truth."""
    loaders = examples(config)
    if name not in loaders:
        raise InputError(f"unknown example {name!r}; choose one of: {', '.join(loaders)}")
    return dataclasses.replace(cut(loaders[name](), min(config.example_frames, config.max_frames)), source=name)


def cut(clip: Clip, num_frames: int) -> Clip:
    """The first ``num_frames`` frames of ``clip``, no ground truth; objects hidden in all of them are dropped."""
    t = min(num_frames, clip.num_frames)
    keep = np.flatnonzero(clip.modal_masks[:, :t].any(axis=(1, 2, 3)))
    if keep.size == 0:
        raise InputError(f"{clip.source}: no object is visible in the first {t} frames")
    return Clip(
        frames=clip.frames[:t],
        modal_masks=clip.modal_masks[keep, :t],
        depth=None if clip.depth is None else clip.depth[:t],
        object_ids=tuple(clip.object_ids[k] for k in keep),
        category_ids=tuple(clip.category_ids[k] for k in keep),
        fps=clip.fps,
        source=clip.source,
        frame_names=clip.frame_names[:t],
    )


def load_upload(video: str | os.PathLike | None, masks: str | os.PathLike | None, mask_mode: str = "auto",
                config: AppConfig = AppConfig()) -> Clip:
    """Read an uploaded video (or zip of frames) and its modal masks into a :class:`amodal.Clip`.

    Args:
        video: a video file (``.mp4``, ``.mov``, ``.avi``, ``.mkv``, ``.webm``) or a ``.zip`` of frame images.
        masks: a ``.zip`` of mask PNGs (index / palette label images, one-object luminance masks, or one
            numbered folder per object) or a COCO RLE ``.json`` (``docs/io.md``), matched to the frames.
        mask_mode: ``"index"``, ``"luminance"`` or ``"auto"`` (:func:`guess_mask_mode`).

    Raises ``InputError`` with one line naming the uploaded file for anything the readers refuse
    and for uploads over ``config``'s limits.
    """
    from amodal.data.io.frames import VIDEO_SUFFIXES, is_video_file, probe_frames
    from amodal.data.io.loader import load_clip

    if video is None:
        raise InputError("upload a video (or a zip of frames) first")
    if masks is None:
        raise InputError("upload the modal masks too: a zip of mask PNGs or an RLE JSON file")
    if mask_mode not in MASK_MODES:
        raise InputError(f"mask kind must be one of {', '.join(MASK_MODES)}, got {mask_mode!r}")
    video, masks = Path(video), Path(masks)
    for path in (video, masks):
        _check_upload_size(path, config)
    names = {}  # temporary path -> what the user called it, for messages
    with tempfile.TemporaryDirectory(prefix="amodal-app-upload-") as tmp:
        tmp = Path(tmp)
        try:
            if video.suffix.lower() == ".zip":
                frames_dir = _extract_zip(video, tmp / "frames", config)
                names[str(tmp / "frames")] = video.name
                source = {"frames": frames_dir}
            elif is_video_file(video):
                source = {"video": video}
            else:
                raise InputError(
                    f"{video.name}: not a video; upload a video file ({', '.join(VIDEO_SUFFIXES)}) or a .zip of frame images"
                )
            names[str(video)] = video.name
            info = probe_frames(next(iter(source.values())))
            if info.num_frames > config.max_frames:
                raise InputError(
                    f"{video.name}: {info.num_frames} frames, more than this server's limit of {config.max_frames} "
                    "(--max-frames); upload a shorter clip"
                )
            if info.height * info.width > config.max_frame_pixels:
                raise InputError(
                    f"{video.name}: frames of {info.width}x{info.height} are larger than this server takes "
                    f"({config.max_frame_pixels} pixels); downscale the video"
                )
            names[str(masks)] = masks.name
            if masks.suffix.lower() == ".json":
                mask_source = {"rle": masks}
            elif masks.suffix.lower() == ".zip":
                folder = _extract_zip(masks, tmp / "masks", config)
                names[str(tmp / "masks")] = masks.name
                mode = guess_mask_mode(folder) if mask_mode == "auto" else mask_mode
                mask_source = {"masks": folder, "mask_mode": mode}
            else:
                raise InputError(f"{masks.name}: masks must be a .zip of mask PNGs or a COCO RLE .json file")
            clip = load_clip(**source, **mask_source)
        except InputError as e:
            raise InputError(_rename(str(e), names)) from None
    if clip.num_frames > config.max_frames:  # a container may understate its count
        raise InputError(f"{video.name}: {clip.num_frames} frames, more than this server's limit of {config.max_frames} (--max-frames)")
    return dataclasses.replace(clip, source=video.name)


def _rename(message: str, names: dict[str, str]) -> str:
    """``message`` with temporary paths replaced by the names the user uploaded (longest first)."""
    for path in sorted(names, key=len, reverse=True):
        message = message.replace(path, names[path])
    return message


def _check_upload_size(path: Path, config: AppConfig) -> None:
    if not path.is_file():
        raise InputError(f"{path.name}: the upload did not arrive; upload it again")
    size = path.stat().st_size
    if size > config.max_upload_mb * 2**20:
        raise InputError(
            f"{path.name}: {size / 2**20:.1f} MB, more than this server's limit of {config.max_upload_mb:g} MB (--max-upload-mb)"
        )


def _skipped(name: str) -> bool:
    """Members a zip tool adds that are not part of the content (macOS resource forks, hidden files)."""
    parts = PurePosixPath(name).parts
    return not parts or parts[0] == "__MACOSX" or any(p.startswith(".") and p != ".." for p in parts)


def _extract_zip(path: Path, into: Path, config: AppConfig) -> Path:
    """Unpack the zip ``path`` into ``into``; returns the folder holding its content.

    A zip whose content sits in one top-level folder (what zipping a folder gives) returns that
    folder, unless its name is an object id (the per-object mask layout). Members that would land
    outside ``into`` and zips that expand past ``config.max_unzipped_mb`` are refused.
    """
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError):
        raise InputError(f"{path.name}: not a zip archive (or a damaged one)") from None
    with archive:
        members = [m for m in archive.infolist() if not m.is_dir() and not _skipped(m.filename)]
        if not members:
            raise InputError(f"{path.name}: the zip is empty")
        if sum(m.file_size for m in members) > config.max_unzipped_mb * 2**20:
            raise InputError(f"{path.name}: unzips to more than {config.max_unzipped_mb:g} MB; upload a smaller zip")
        into.mkdir(parents=True)
        for member in members:
            parts = PurePosixPath(member.filename.replace("\\", "/")).parts
            if member.filename.startswith(("/", "\\")) or ".." in parts or ":" in parts[0]:
                raise InputError(f"{path.name}: member {member.filename!r} points outside the zip; refusing it")
            target = into.joinpath(*parts)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with archive.open(member) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as e:
                raise InputError(f"{path.name}: cannot unpack {member.filename} ({e})") from None
    root = into
    while True:
        entries = list(root.iterdir())
        if len(entries) == 1 and entries[0].is_dir() and not entries[0].name.isdigit():
            root = entries[0]
            continue
        return root


def guess_mask_mode(folder: str | os.PathLike) -> str:
    """``"luminance"`` for one-object masks (the object bright, the rest dark), else ``"index"`` (label images).

    Palette PNGs from the wild may put the object at any palette index (the shared real clips put
    it at 0) and may use a hundred indices for soft, anti-aliased edges; what tells them apart
    from label images is their luminance: near black or near white almost everywhere, with some
    pixel bright (> 128). Label images are dark (gray ids 1..K, or the DAVIS palette's dark
    colours) or full of mid tones. Colour RGB masks read as luminance. A folder of numbered
    object subfolders reads as luminance (its only layout).
    """
    from amodal.data.io.frames import IMAGE_SUFFIXES, open_image

    folder = Path(folder)
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES]
    if not files:
        return "luminance"  # per-object subfolders, or nothing: the reader says what is wrong
    lit = mid = 0  # pixels not near black; of those, mid tones (neither near black nor near white)
    bright = False
    for file in files:
        image = open_image(file)
        if image.mode in ("RGB", "RGBA"):
            rgb = np.asarray(image)[..., :3]
            if not (np.array_equal(rgb[..., 0], rgb[..., 1]) and np.array_equal(rgb[..., 1], rgb[..., 2])):
                return "luminance"
        gray = np.asarray(image.convert("L"))
        lit += int((gray >= 32).sum())
        mid += int(((gray >= 32) & (gray <= 223)).sum())
        bright = bright or bool((gray > 128).any())
    # Soft edges of a one-object mask are a thin rim: 0.2% of the lit pixels on the shared giraffe.
    return "luminance" if bright and mid <= MASK_MID_TONE_SHARE * lit else "index"


# Picking objects ---------------------------------------------------------------------------------
def object_at(clip: Clip, x: float, y: float, frame: int = 0) -> int:
    """The id of the object whose modal mask is at pixel ``(x, y)`` of ``frame`` (or within a few pixels of it).

    Raises ``InputError`` for a click on the background.
    """
    _, h, w = clip.modal_masks.shape[1:]
    col, row = int(round(float(x))), int(round(float(y)))
    if not (0 <= col < w and 0 <= row < h):
        raise InputError(f"({col}, {row}) is outside the {w}x{h} frame")
    masks = clip.modal_masks[:, frame]  # (K, H, W)
    hits = np.flatnonzero(masks[:, row, col])
    if hits.size:
        return clip.object_ids[int(hits[np.argmin(masks[hits].sum(axis=(1, 2)))])]  # the smallest: the frontmost, usually
    # Small or thin objects are hard to hit: take the nearest within a few pixels.
    radius = max(3, min(h, w) // 40)
    y0, x0 = max(0, row - radius), max(0, col - radius)
    window = masks[:, y0 : row + radius + 1, x0 : col + radius + 1]
    best, best_d = None, float(radius * radius) + 0.5
    for k in np.flatnonzero(window.any(axis=(1, 2))):
        ys, xs = np.nonzero(window[k])
        d = float(((ys + y0 - row) ** 2 + (xs + x0 - col) ** 2).min())
        if d <= best_d:
            best, best_d = int(k), d
    if best is None:
        raise InputError(
            f"no object at ({col}, {row}) on the first frame: click inside a coloured mask, or tick the object in the list"
        )
    return clip.object_ids[best]


def toggle(selected: Sequence[int] | None, object_id: int) -> list[int]:
    """``selected`` with ``object_id`` added, or removed when it was there."""
    selected = [int(i) for i in selected or ()]
    return [i for i in selected if i != object_id] if object_id in selected else [*selected, int(object_id)]


def view_scale(clip: Clip) -> int:
    """The integer factor the page enlarges the clip's pictures by (small synthetic clips are 128 pixels high)."""
    from amodal.viz.overlay import display_scale

    return display_scale(clip.size[0])


def first_frame_view(clip: Clip, selected: Sequence[int] = ()) -> np.ndarray:
    """The first frame with every object's modal mask, selected objects outlined in white, the legend below.

    ``(s H + strip, s W, 3) uint8``, enlarged by ``s =`` :func:`view_scale`: a click at ``(x, y)`` on
    it is the pixel ``(x / s, y / s)`` of the frame.
    """
    from amodal.viz.overlay import boundary, enlarge, overlay_frame

    scale = view_scale(clip)
    modal = enlarge(clip.modal_masks[:, 0], scale, (1, 2))
    image = overlay_frame(enlarge(clip.frames[0], scale), modal, object_ids=clip.object_ids).copy()
    chosen = {int(i) for i in selected or ()}
    for k, oid in enumerate(clip.object_ids):
        if oid in chosen:
            image[: modal.shape[1]][boundary(modal[k], 2 * scale)] = 255
    return image


# Running -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunSettings:
    """What one press of "Run" asks for."""

    model: str = "default"  # stage-1 model: one of AppConfig.segmentation_models
    completion_model: str = "default-completion"  # stage-2 model: one of AppConfig.completion_models
    # Denoising steps of stage 1; None = the model's own best (1 for default). More steps (the paper's 25) make the
    # samples differ more, so the uncertainty map says more, at lower accuracy (README, "Models").
    steps: int | None = None
    completion_steps: int | None = None  # denoising steps of stage 2; None = the model's own best
    samples: int = 1  # stage-1 hypotheses per object; > 1 gives the uncertainty map
    seed: int = 0  # seed of both stages


@dataclass
class RunResult:
    """One run's arrays (for the viewer) and its files.

    Attributes:
        clip: the clip of the selected objects that ran.
        amodal_masks: ``(K, T, H, W) bool`` stage 1's masks.
        frequency: ``(K, T, H, W) float32`` share of samples marking each pixel amodal, or ``None`` (one sample).
        completed: ``(K, T, H, W, 3) uint8`` each object completed on white (stage 2).
        folder: the run folder (what ``amodal run --export layers`` writes).
        zip_path: the zip of ``folder``.
        summary: ``folder/summary.json``.
    """

    clip: Clip
    amodal_masks: np.ndarray
    frequency: np.ndarray | None
    completed: np.ndarray
    folder: Path
    zip_path: Path
    summary: dict


@functools.lru_cache(maxsize=4)
def _segmenter(name: str, device: str):
    """Stage-1 models stay loaded between requests: loading costs more than a small clip's run."""
    from amodal.checkpoints.registry import load_segmenter

    return load_segmenter(name, device=device)


@functools.lru_cache(maxsize=4)
def _completer(name: str, device: str):
    from amodal.checkpoints.registry import load_completer

    return load_completer(name, device=device)


@functools.lru_cache(maxsize=None)
def _process_work_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix="amodal-app-"))


def work_root(config: AppConfig) -> Path:
    """The folder runs are written into (``config.work_dir``, or a temporary folder of this process)."""
    if config.work_dir is None:
        return _process_work_dir()
    root = Path(config.work_dir)
    root.mkdir(parents=True, exist_ok=True)
    return root


def _remove_old_runs(root: Path, keep: int) -> None:
    runs = sorted((p for p in root.glob("run-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[: max(0, len(runs) - keep)]:
        shutil.rmtree(old, ignore_errors=True)


def check_settings(settings: RunSettings, config: AppConfig) -> None:
    """Refuse a model the page does not offer (a request may name anything) and out-of-range numbers."""
    if settings.model not in config.segmentation_models:
        raise InputError(f"stage-1 model {settings.model!r}: choose one of {', '.join(config.segmentation_models)}")
    if settings.completion_model not in config.completion_models:
        raise InputError(f"stage-2 model {settings.completion_model!r}: choose one of {', '.join(config.completion_models)}")
    for name, steps in (("stage-1", settings.steps), ("stage-2", settings.completion_steps)):
        if steps is not None and not 1 <= steps <= 100:
            raise InputError(f"{name} steps must be in 1..100 (or 0 for the model's own), got {steps}")
    if not 1 <= settings.samples <= config.max_samples:
        raise InputError(f"samples must be in 1..{config.max_samples}, got {settings.samples}")
    if not 0 <= settings.seed < 2**63:
        raise InputError(f"seed must be in [0, 2**63), got {settings.seed}")


def select_objects(clip: Clip, object_ids: Sequence[int] | None) -> Clip:
    """``clip`` with only the objects ``object_ids`` (in the clip's order)."""
    wanted = {int(i) for i in object_ids or ()}
    if not wanted:
        raise InputError("no object selected: click an object on the first frame, or tick it in the list")
    unknown = sorted(wanted - set(clip.object_ids))
    if unknown:
        raise InputError(f"object id(s) {unknown} are not in this clip; its objects are {list(clip.object_ids)}")
    keep = [k for k, oid in enumerate(clip.object_ids) if oid in wanted]
    return dataclasses.replace(
        clip, modal_masks=clip.modal_masks[keep], object_ids=tuple(clip.object_ids[k] for k in keep),
        category_ids=tuple(clip.category_ids[k] for k in keep), amodal_masks=None, amodal_rgb=None,
    )


def run_job(clip: Clip, object_ids: Sequence[int], settings: RunSettings, config: AppConfig = AppConfig(),
            progress: Callable | None = None) -> RunResult:
    """Run both stages on the selected objects of ``clip``, write the outputs of ``amodal run`` and zip them.

    ``progress(fraction, desc=...)``, when given, hears where the run is (a ``gr.Progress``).
    """
    from amodal.apps.run import BYTES_PER_OBJECT_PIXEL
    from amodal.completion.pipeline import ContentCompletionPipeline, PipelineConfig
    from amodal.segmentation.pipeline import AmodalSegmentationPipeline, SegmentationConfig
    from amodal.system import AmodalSystem
    from amodal.util.checks import check_device, check_fits_in_memory

    report = progress or (lambda *args, **kwargs: None)
    check_settings(settings, config)
    check_device(config.device)
    clip = select_objects(clip, object_ids)
    t, h, w = clip.frames.shape[:3]
    check_fits_in_memory(
        t * h * w * (3 + clip.num_objects * (BYTES_PER_OBJECT_PIXEL + settings.samples * 8)),
        f"running {clip.num_objects} object(s) over {t} frames of {w}x{h}", "select fewer objects or upload a shorter clip",
    )
    timings: dict[str, float] = {}
    start = time.perf_counter()
    report(0.02, desc="loading the models")
    segmentation_config = SegmentationConfig(steps=settings.steps, samples=settings.samples, seed=settings.seed)
    system = AmodalSystem(
        AmodalSegmentationPipeline(_segmenter(settings.model, config.device), segmentation_config),
        ContentCompletionPipeline(
            _completer(settings.completion_model, config.device), PipelineConfig(steps=settings.completion_steps, seed=settings.seed)
        ),
    )
    timings["model_load"] = time.perf_counter() - start
    # The stages run one after the other as AmodalSystem.__call__ runs them, so the page can say which is running.
    report(0.1, desc="stage 1: amodal masks")
    t0 = time.perf_counter()
    segmentation = system.segmentation(clip)
    timings["segmentation"] = time.perf_counter() - t0
    report(0.4, desc="stage 2: completing the objects")
    t0 = time.perf_counter()
    completion = system.completion(clip, segmentation.amodal_masks, seed=settings.seed)
    timings["completion"] = time.perf_counter() - t0

    report(0.85, desc="writing the outputs")
    root = work_root(config)
    _remove_old_runs(root, config.keep_runs - 1)
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=root))
    folder = run_dir / ZIP_ROOT
    summary = write_outputs(folder, clip, system.segmentation, segmentation, completion, settings, timings, config)
    report(0.95, desc="zipping")
    zip_path = zip_folder(folder, run_dir / f"{ZIP_ROOT}.zip")
    report(1.0, desc="done")
    return RunResult(clip, segmentation.amodal_masks, segmentation.frequency, completion.rgb, folder, zip_path, summary)


@dataclass(frozen=True)
class _ClipSource:
    """An in-memory clip seen as the :class:`~amodal.data.io.stream.VideoSource` the run writers read."""

    clip: Clip

    frames = property(lambda self: self.clip.source or "upload")
    frame_names = property(lambda self: self.clip.frame_names)
    size = property(lambda self: self.clip.size)
    fps = property(lambda self: self.clip.fps)
    object_ids = property(lambda self: self.clip.object_ids)
    category_ids = property(lambda self: self.clip.category_ids)
    num_frames = property(lambda self: self.clip.num_frames)

    def iter_frames(self):
        return iter(self.clip.frames)

    def iter_modal(self):
        return iter(self.clip.modal_masks.transpose(1, 0, 2, 3))  # (K, H, W) per frame


def write_outputs(folder: Path, clip: Clip, pipeline, segmentation, completion, settings: RunSettings,
                  timings: dict, config: AppConfig) -> dict:
    """Write what ``amodal run --export layers`` writes into ``folder``; returns ``summary.json``'s content.

    ``segmentation/`` (mask PNGs, RLE JSON files, overlay MP4 and GIF, uncertainty with several
    samples, modal masks, summary), ``completion/<id>/{rgb,rgba,overlay}/``, ``layers/`` and
    ``summary.json``, through the writers of ``amodal segment``, ``amodal complete`` and ``amodal run``.
    ``pipeline`` is the stage-1 pipeline that gave ``segmentation`` (its model and settings go in the summary).
    """
    from amodal.apps.complete import write_result
    from amodal.apps.layers import write_layers
    from amodal.apps.run import write_modal_folders
    from amodal.apps.segment import SegmentationWriter, SegmentRunConfig, write_overlays, run_summary
    from amodal.util.fs import write_json

    source = _ClipSource(clip)
    stage1 = folder / "segmentation"
    t0 = time.perf_counter()
    stage1.mkdir(parents=True)
    writer = SegmentationWriter(stage1, source, with_uncertainty=settings.samples > 1)
    for t in range(clip.num_frames):
        frequency = None if segmentation.frequency is None else segmentation.frequency[:, t]
        writer.add(t, clip.modal_masks[:, t], segmentation.amodal_masks[:, t], frequency)
    writer.finish((0, 0), padded=False)
    run_config = SegmentRunConfig(
        frames=clip.source or "upload", masks="upload", out=str(stage1), model=settings.model, device=config.device,
        pipeline=pipeline.config,
    )
    write_overlays(stage1, source, clip.object_ids, run_config, settings.samples > 1, (0, 0))
    write_modal_folders(clip, stage1 / "modal")
    depth_kind = "precomputed" if clip.depth is not None else "none"
    stage1_summary = run_summary(run_config, source, pipeline, writer.areas, clip.size, depth_kind, timings)
    write_json(stage1 / "summary.json", stage1_summary)
    write_result(completion, clip.frame_names, folder / "completion")
    write_layers(folder / "layers", completion.rgb, completion.rgba, clip.modal_masks, segmentation.amodal_masks,
                 clip.object_ids, clip.frame_names, depth=clip.depth, size=config.layer_size)
    timings["writing"] = time.perf_counter() - t0
    summary = {
        "segmentation": "segmentation",
        "completion": "completion",
        "layers": "layers",
        "segmentation_model": settings.model,
        "completion_model": settings.completion_model,
        "objects": list(clip.object_ids),
        "frames": clip.num_frames,
        "source": clip.source,
        "settings": dataclasses.asdict(settings),
        "timings_s": {k: round(v, 3) for k, v in timings.items()},
        "seconds_per_frame": round((timings["segmentation"] + timings["completion"]) / clip.num_frames, 4),
    }
    write_json(folder / "summary.json", summary)
    return summary


def zip_folder(folder: Path, zip_path: Path) -> Path:
    """Zip ``folder`` into ``zip_path``, every member under ``<folder name>/`` (PNGs and MP4s are stored, not recompressed)."""
    with zipfile.ZipFile(zip_path, "w") as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                compress = zipfile.ZIP_DEFLATED if path.suffix.lower() in (".json", ".txt") else zipfile.ZIP_STORED
                archive.write(path, PurePosixPath(folder.name, *path.relative_to(folder).parts).as_posix(),
                              compress_type=compress)
    return zip_path


def frame_views(result: RunResult, t: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray]:
    """Frame ``t`` of a run as four ``(H', W', 3) uint8`` pictures, enlarged by :func:`view_scale`.

    Returns: the modal overlay; the amodal overlay (hidden parts hatched); the uncertainty map
    (bright where stage 1's samples disagree, :func:`amodal.viz.overlay.uncertainty_frame`), or
    ``None`` with one sample; the completed objects side by side.
    """
    from amodal.viz.overlay import enlarge, overlay_frame, side_by_side, uncertainty_frame

    clip = result.clip
    t = int(np.clip(int(t), 0, clip.num_frames - 1))
    scale = view_scale(clip)
    frame = enlarge(clip.frames[t], scale)
    modal = enlarge(clip.modal_masks[:, t], scale, (1, 2))
    amodal = enlarge(result.amodal_masks[:, t], scale, (1, 2))
    modal_view = overlay_frame(frame, modal, object_ids=clip.object_ids)
    amodal_view = overlay_frame(frame, modal, amodal, object_ids=clip.object_ids)
    uncertainty = None
    if result.frequency is not None:
        uncertainty = uncertainty_frame(frame, enlarge(result.frequency[:, t], scale, (1, 2)))
    completed = side_by_side(object_crops(result, t, clip.size[0] * scale), [f"object {oid}" for oid in clip.object_ids])
    return modal_view, amodal_view, uncertainty, completed


def object_crops(result: RunResult, t: int, height: int) -> list[np.ndarray]:
    """Each completed object of frame ``t`` as a ``(height, W_k, 3) uint8`` panel: cut to its amodal box over the
    whole clip (so it stays put while scrubbing) plus a margin, scaled (nearest neighbour) to ``height``."""
    from PIL import Image

    crops = []
    for k in range(result.amodal_masks.shape[0]):
        ys, xs = np.nonzero(result.amodal_masks[k].any(axis=0))
        if ys.size == 0:
            crop = result.completed[k, t]
        else:
            margin = max(2, int(np.ptp(ys) + np.ptp(xs)) // 20)
            crop = result.completed[k, t, max(0, ys.min() - margin): ys.max() + margin + 1,
                                    max(0, xs.min() - margin): xs.max() + margin + 1]
        size = (max(1, round(crop.shape[1] * height / crop.shape[0])), int(height))
        panel = np.asarray(Image.fromarray(crop).resize(size, Image.Resampling.NEAREST))
        pad = max(0, height // 2 - panel.shape[1])  # room for the label under a tall, thin object
        crops.append(np.pad(panel, ((0, 0), (pad // 2, pad - pad // 2), (0, 0)), constant_values=255))
    return crops


def describe(clip: Clip) -> str:
    """One line about a loaded clip for the status line."""
    h, w = clip.size
    depth = "with depth" if clip.depth is not None else "no depth: stage 1 runs mask-only"
    return (f"Loaded **{clip.source or 'clip'}**: {clip.num_frames} frames of {w}x{h}, objects "
            f"{', '.join(map(str, clip.object_ids))} ({depth}). Click the objects to complete on the first frame, then Run.")


# The page ----------------------------------------------------------------------------------------
ZIP_HELP = """\
- `segmentation/`: amodal mask PNGs per object, `amodal.json` (COCO RLE), `coco_instances.json`,
  `predictions_sailvos.json`, `overlay.mp4` / `.gif`, with samples > 1 `uncertainty/` and
  `uncertainty.mp4`, the modal masks, `summary.json`
- `completion/<object>/`: `rgb/`, `rgba/` and `overlay/` PNGs of each completed object
- `layers/<object>/`: square object-centred `rgb/` and `rgba/` frames, crop boxes, depth order
- `summary.json`: objects, frames, models, settings, seconds per stage
"""


def build_app(config: AppConfig = AppConfig()):
    """The Gradio page (a ``gr.Blocks``), queued so that runs wait their turn one at a time."""
    import gradio as gr

    names = list(examples(config))

    def failed(error: BaseException) -> str:
        if not isinstance(error, AmodalError):
            import traceback

            traceback.print_exc()
        return f"**Error:** {error_message(error)}"

    keep = gr.update  # an output left as it is

    def loaded(clip: Clip):
        t_max = max(1, clip.num_frames - 1)
        return (clip, None, first_frame_view(clip), gr.update(choices=[(f"object {i}", i) for i in clip.object_ids], value=[]),
                describe(clip), gr.update(maximum=t_max, value=0), None, None, None, None, None)

    def on_example(name):
        try:
            return loaded(load_example(name, config))
        except Exception as e:  # noqa: BLE001  shown in the page
            return (keep(),) * 4 + (failed(e),) + (keep(),) * 6

    def on_upload(video, masks, mode):
        try:
            return loaded(load_upload(video, masks, mode, config))
        except Exception as e:  # noqa: BLE001
            return (keep(),) * 4 + (failed(e),) + (keep(),) * 6

    def on_click(clip, selected, evt):
        if clip is None:
            return keep(), "**Error:** load a clip first"
        try:
            x, y = evt.index[:2]
            scale = view_scale(clip)
            if y >= clip.size[0] * scale:
                raise InputError("that is the legend: click on an object in the frame above it")
            oid = object_at(clip, x / scale, y / scale)
        except Exception as e:  # noqa: BLE001
            return keep(), failed(e)
        chosen = toggle(selected, oid)
        verb = "selected" if oid in chosen else "deselected"
        return chosen, f"Object {oid} {verb}; selected: {', '.join(map(str, chosen)) or 'none'}."

    # Gradio finds the event argument by its type; this module's annotations are strings (PEP 563).
    on_click.__annotations__["evt"] = gr.SelectData

    def on_selection(clip, selected):
        return None if clip is None else first_frame_view(clip, selected or ())

    def on_run(clip, selected, model, completion_model, steps, completion_steps, samples, seed,
               progress=gr.Progress(track_tqdm=True)):
        if clip is None:
            return (keep(), "**Error:** load a clip first") + (keep(),) * 6
        try:
            settings = RunSettings(model=model, completion_model=completion_model,
                                   steps=int(steps) if steps else None,
                                   completion_steps=int(completion_steps) if completion_steps else None,
                                   samples=int(samples), seed=int(seed or 0))
            result = run_job(clip, selected, settings, config, progress)
        except Exception as e:  # noqa: BLE001
            return (keep(), failed(e)) + (keep(),) * 6
        timings = result.summary["timings_s"]
        status = (f"Done: object(s) {', '.join(map(str, result.clip.object_ids))}, {result.clip.num_frames} frames; "
                  f"stage 1 {timings['segmentation']:.1f} s, stage 2 {timings['completion']:.1f} s. "
                  "Scrub the frames below; the zip holds every output.")
        views = frame_views(result, 0)
        return (result, status, gr.update(maximum=max(1, result.clip.num_frames - 1), value=0), *views, str(result.zip_path))

    def on_frame(result, t):
        if result is None:
            return (keep(),) * 4
        return frame_views(result, t)

    with gr.Blocks(title="amodal", analytics_enabled=False) as demo:
        gr.Markdown(
            "# amodal: see the hidden parts of objects\n"
            "Load a clip, click the objects you want on its first frame, and run: stage 1 predicts each object's "
            "full (amodal) mask, stage 2 paints its hidden parts. Everything runs on this machine."
        )
        clip_state = gr.State(None)
        result_state = gr.State(None)
        with gr.Row(elem_id="inputs"):
            with gr.Column(scale=1):
                with gr.Tab("Example"):
                    example = gr.Dropdown(names, value=names[0], label="example clip", elem_id="example")
                    load_example_button = gr.Button("Load example", elem_id="load-example")
                with gr.Tab("Upload"):
                    video = gr.File(label="video (.mp4, .mov, .avi, .mkv, .webm) or a .zip of frames",
                                    file_types=[".mp4", ".mov", ".avi", ".mkv", ".webm", ".zip"], elem_id="upload-video")
                    masks = gr.File(label="modal masks: a .zip of mask PNGs (label images or one folder per object) or an RLE .json",
                                    file_types=[".zip", ".json"], elem_id="upload-masks")
                    mode = gr.Radio(list(MASK_MODES), value="auto", label="mask kind",
                                    info="index: pixel value = object id; luminance: one object, white on black")
                    load_upload_button = gr.Button("Load upload", elem_id="load-upload")
                with gr.Accordion("Settings", open=False, elem_id="settings"):
                    model = gr.Dropdown(list(config.segmentation_models), value=config.model, label="stage-1 model")
                    completion_model = gr.Dropdown(list(config.completion_models), value=config.completion_model,
                                                   label="stage-2 model")
                    steps = gr.Number(0, precision=0, minimum=0, maximum=100, elem_id="steps",
                                      label="stage-1 steps (0: the model's own; 25, the paper's, makes samples differ more)")
                    completion_steps = gr.Number(0, precision=0, minimum=0, maximum=100, label="stage-2 steps (0: the model's own)")
                    samples = gr.Slider(1, config.max_samples, value=1, step=1,
                                        label="stage-1 samples (more than 1 gives the uncertainty map)", elem_id="samples")
                    seed = gr.Number(0, precision=0, minimum=0, label="seed")
            with gr.Column(scale=2):
                first = gr.Image(label="first frame: click the objects to complete", interactive=False, format="png",
                                 elem_id="first-frame")
                objects = gr.CheckboxGroup([], label="selected objects", elem_id="objects")
                run_button = gr.Button("Run", variant="primary", elem_id="run")
                status = gr.Markdown("Load the example or upload a clip to start.", elem_id="status")
        with gr.Column(elem_id="results"):
            frame = gr.Slider(0, 1, value=0, step=1, label="frame", elem_id="frame")
            with gr.Row():
                modal_view = gr.Image(label="modal (visible) masks", interactive=False, format="png", elem_id="view-modal")
                amodal_view = gr.Image(label="amodal masks (hidden parts hatched)", interactive=False, format="png",
                                       elem_id="view-amodal")
            with gr.Row():
                uncertainty_view = gr.Image(label="uncertainty (bright: the samples disagree; needs samples > 1)",
                                            interactive=False, format="png", elem_id="view-uncertainty")
                with gr.Column():
                    download = gr.File(label="all outputs (zip): what `amodal run --export layers` writes",
                                       interactive=False, elem_id="download")
                    gr.Markdown(ZIP_HELP)
            gr.Markdown("**Completed objects (stage 2)**, each cut to the part of the frame it covers over the clip")
            completed_view = gr.Image(label="completed objects", show_label=False, interactive=False, format="png",
                                      elem_id="view-completed")

        views = [modal_view, amodal_view, uncertainty_view, completed_view]
        load_outputs = [clip_state, result_state, first, objects, status, frame, *views, download]
        load_example_button.click(on_example, [example], load_outputs)
        load_upload_button.click(on_upload, [video, masks, mode], load_outputs)
        first.select(on_click, [clip_state, objects], [objects, status])
        objects.change(on_selection, [clip_state, objects], [first])
        run_button.click(on_run, [clip_state, objects, model, completion_model, steps, completion_steps, samples, seed],
                         [result_state, status, frame, *views, download], concurrency_id="models")
        frame.change(on_frame, [result_state, frame], views)
    demo.queue(default_concurrency_limit=1)  # one run at a time: a second waits in the queue with its position shown
    return demo


def _launch_options(config: AppConfig, **overrides) -> dict:
    options = dict(
        server_name=config.host, server_port=config.port, share=False, ssr_mode=False, quiet=True, show_error=False,
        max_file_size=int(config.max_upload_mb * 2**20), enable_monitoring=False, mcp_server=False,
    )
    if config.work_dir is not None:
        options["allowed_paths"] = [str(work_root(config))]
    options.update(overrides)
    return options


def offline() -> None:
    """No telemetry and no version check: the page works on a machine without network."""
    os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"


def start(config: AppConfig = AppConfig()):
    """Start the server in the background; returns ``(demo, url)``. ``demo.close()`` stops it (tests, notebooks)."""
    offline()
    demo = build_app(config)
    _launch(demo, config, prevent_thread_lock=True)
    return demo, demo.local_url


def serve(config: AppConfig = AppConfig()) -> None:
    """Serve the page until interrupted (``amodal app``)."""
    offline()
    demo = build_app(config)
    _launch(demo, config, prevent_thread_lock=True)
    print(f"amodal app: http://{config.host}:{config.port} (Ctrl+C stops it)", flush=True)
    demo.block_thread()  # until Ctrl+C, which closes the server


def _launch(demo, config: AppConfig, **overrides) -> None:
    try:
        demo.launch(**_launch_options(config, **overrides))
    except OSError as e:  # the port is taken, or the host is not an interface of this machine
        reason = " ".join(str(e).split(". ")[0].split())  # gradio's first sentence says what; the rest is about its own API
        raise InputError(f"cannot listen on {config.host}:{config.port} ({reason}); pass another --port or --host") from None
