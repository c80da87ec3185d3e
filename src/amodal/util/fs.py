"""Safe outputs: the one output policy, atomic file and folder writes, and the one JSON reader.

The policy, stated once (:func:`check_output` enforces it before any work starts):

- never write into, over or above an input: real paths are compared, links resolved;
- an existing ``--out`` folder is replaced only when it is empty or an earlier output of the same
  command (it holds :data:`MARKER`), otherwise only with ``--overwrite``; an existing ``--out``
  file only with ``--overwrite``; a file is never replaced by a folder, nor a folder by a file,
  and the current folder is never replaced;
- the output's parent must be creatable and writable, checked by creating a temporary folder there.

Every writer writes to a temporary sibling (``.NAME.amodal-tmp-PID-...``) and renames it into
place, so an interrupted run leaves the old output, the new one, or nothing. A temporary sibling
is removed when its writer fails, is interrupted (SIGINT) or terminated (SIGTERM, which
:func:`exit_cleanly_on_sigterm` turns into an exception); one left by a SIGKILL is removed by the
next write of the same output, once its process is gone.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import tempfile
from pathlib import Path
from typing import Any, Callable, Iterator

from amodal.errors import InputError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` on success.

    The temporary name keeps the final suffix (or ``suffix``) so libraries that
    pick a format from the file extension still work. On an exception the
    temporary file is removed and ``path`` is untouched.
    """
    path = Path(os.path.abspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(
        prefix=_temp_prefix(path), suffix=suffix if suffix is not None else path.suffix, dir=path.parent
    )
    os.close(fd)
    tmp_path = Path(tmp)
    os.chmod(tmp_path, 0o666 & ~_umask())  # mkstemp makes private files; outputs get the usual mode
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_dir(path: str | os.PathLike, command: str | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; move it to ``path`` on success.

    An existing ``path`` is replaced only once the new folder is complete. With ``command``, the
    folder gets :data:`MARKER` naming it, so a later run of the same command may replace it.
    """
    path = Path(os.path.abspath(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp_path = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), dir=path.parent))
    os.chmod(tmp_path, 0o777 & ~_umask())  # mkdtemp makes private folders; outputs get the usual mode
    try:
        yield tmp_path
        if command is not None:
            mark_output(tmp_path, command)
        _usual_modes(tmp_path)
        if path.exists():
            old = Path(tempfile.mkdtemp(prefix=_temp_prefix(path), dir=path.parent))
            os.replace(path, old / "x")
            os.replace(tmp_path, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp_path, path)
    except BaseException:
        shutil.rmtree(tmp_path, ignore_errors=True)
        raise


# Temporaries ------------------------------------------------------------------------------------
_TEMP_TAG = ".amodal-tmp-"  # in every temporary name, followed by the writing process's id


def _temp_prefix(path: Path) -> str:
    return f".{path.name}{_TEMP_TAG}{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove temporaries of ``path`` left by processes that no longer run (a SIGKILL); returns them."""
    removed = []
    head = f".{path.name}{_TEMP_TAG}"
    try:
        siblings = list(path.parent.iterdir())
    except OSError:
        return removed
    for sibling in siblings:
        if not sibling.name.startswith(head):
            continue
        pid = sibling.name[len(head) :].split("-", 1)[0]
        if not pid.isdigit() or _alive(int(pid)):
            continue
        if sibling.is_dir() and not sibling.is_symlink():
            shutil.rmtree(sibling, ignore_errors=True)
        else:
            sibling.unlink(missing_ok=True)
        removed.append(sibling)
    return removed


def remove_stale_temporaries_in(folder: Path) -> list[Path]:
    """:func:`remove_stale_temporaries` for every output in ``folder`` (e.g. a run's checkpoint folder)."""
    removed = []
    for sibling in list(Path(folder).iterdir()):
        name = sibling.name
        if name.startswith(".") and _TEMP_TAG in name:
            removed += remove_stale_temporaries(Path(folder) / name[1 : name.index(_TEMP_TAG)])
    return removed


class Terminated(BaseException):
    """SIGTERM as an exception, so that ``finally`` blocks and temporaries are cleaned up."""


def exit_cleanly_on_sigterm() -> None:
    """Turn SIGTERM into :class:`Terminated` in the main thread (a no-op elsewhere)."""

    def handler(signum, frame):
        raise Terminated(f"terminated by signal {signum}")

    try:
        signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread
        pass


# The output policy ------------------------------------------------------------------------------
MARKER = ".amodal-output.json"  # in every output folder: which command wrote it


def mark_output(folder: Path, command: str) -> None:
    """Record in ``folder`` that ``amodal COMMAND`` wrote it."""
    (Path(folder) / MARKER).write_text(json.dumps({"command": command}) + "\n")


def output_command(folder: Path) -> str | None:
    """The command that wrote ``folder``, from its marker, or ``None``."""
    try:
        value = json.loads((Path(folder) / MARKER).read_text()).get("command")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return None
    return value if isinstance(value, str) else None


def _real(path: str | os.PathLike) -> Path:
    return Path(os.path.realpath(os.path.expanduser(os.fspath(path))))


def _nearest_existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_output(
    out: str | os.PathLike,
    *,
    command: str,
    inputs: tuple = (),
    kind: str = "folder",
    overwrite: bool = False,
    resume: bool = False,
    earlier: Callable[[Path], bool] | None = None,
    flag: str = "--out",
) -> Path:
    """Apply the output policy (module docstring) to ``out`` before any work; returns its absolute path.

    Args:
        out: the output path as the user gave it.
        command: the command writing it (``"segment"``, ``"data synth"``); named in its marker.
        inputs: paths the command reads (``None`` entries and bundled names are skipped).
        kind: ``"folder"`` or ``"file"``.
        overwrite: the user's ``--overwrite``: replace an existing output that amodal did not write.
        resume: the command continues an earlier output of its own in place (training, synthesis).
        earlier: tells an earlier output of this command written before outputs carried a marker.
        flag: the argument named in messages.

    Raises:
        InputError: one line naming the argument, the conflict and the fix.
    """
    text = os.fspath(out)
    if not text.strip():
        raise InputError(f"{flag}: empty path; pass a {kind} path")
    real = _real(out)
    if real == _real(os.getcwd()) or real in _real(os.getcwd()).parents:
        raise InputError(f"{flag} {text}: is the current folder or above it; pass a new {kind} below it")
    for given in inputs:
        if given is None or not os.path.exists(os.fspath(given)):
            continue
        source = _real(given)
        if real == source:
            raise InputError(f"{flag} {text}: is the input {given}; amodal never overwrites its inputs, choose another {kind}")
        if source.is_relative_to(real) and not resume:  # commands that resume add files, they never delete
            raise InputError(f"{flag} {text}: contains the input {given}; replacing it would delete the input, choose another {kind}")
        if real.is_relative_to(source) and source.is_dir():
            raise InputError(f"{flag} {text}: is inside the input folder {given}; amodal never writes into its inputs")
    if os.path.lexists(real):
        if kind == "folder" and not real.is_dir():
            raise InputError(f"{flag} {text}: is an existing file; amodal never replaces a file with a folder, choose a folder path")
        if kind == "file" and real.is_dir():
            raise InputError(f"{flag} {text}: is an existing folder; pass a file path")
        if kind == "folder":
            ours = output_command(real)
            if ours is None and earlier is not None and earlier(real):
                ours = command
            empty = not any(real.iterdir())
            if ours is not None and ours != command and not overwrite:
                raise InputError(
                    f"{flag} {text}: holds the output of `amodal {ours}`, not `amodal {command}`; "
                    "choose another folder or pass --overwrite"
                )
            if ours is None and not empty and not overwrite:
                raise InputError(
                    f"{flag} {text}: exists and was not written by `amodal {command}`; "
                    "choose a new folder or pass --overwrite to replace it"
                )
        elif not overwrite and not resume:
            raise InputError(f"{flag} {text}: exists; choose a new file name or pass --overwrite to replace it")
    _check_creatable(real, text, flag)
    return Path(os.path.abspath(os.path.expanduser(text)))


def _check_creatable(real: Path, text: str, flag: str) -> None:
    """Create (and remove) a temporary folder where ``real`` will be written, or raise naming why not."""
    anchor = _nearest_existing(real.parent)
    if not anchor.is_dir():
        raise InputError(f"{flag} {text}: {anchor} is a file, so nothing can be created under it; choose another path")
    try:
        probe = tempfile.mkdtemp(prefix=f".{real.name}{_TEMP_TAG}{os.getpid()}-", dir=anchor)
        os.rmdir(probe)
    except OSError as e:
        raise InputError(f"{flag} {text}: cannot be created ({e.strerror or e} in {anchor}); choose a writable folder") from None


def _usual_modes(folder: Path) -> None:
    """Give a finished folder the modes of any installed file (0755 folders, 0644 files, less the umask).

    Temporary files and folders start private, and some writers (safetensors, PIL) keep that mode.
    """
    mask = _umask()
    for root, dirs, files in os.walk(folder):
        os.chmod(root, 0o777 & ~mask)
        for name in files:
            file = Path(root) / name
            if not file.is_symlink():
                os.chmod(file, (0o777 if os.access(file, os.X_OK) else 0o666) & ~mask)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def strict_json(obj: Any) -> Any:
    """``obj`` with every non-finite float (NaN, infinity) as ``None``: strict JSON, which every parser reads."""
    if isinstance(obj, float):
        return obj if obj == obj and obj not in (float("inf"), float("-inf")) else None
    if isinstance(obj, dict):
        return {k: strict_json(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [strict_json(v) for v in obj]
    return obj


def write_json(path: str | os.PathLike, obj: Any, indent: int | None = 2) -> None:
    """Write ``obj`` as strict JSON (non-finite floats as ``null``) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(strict_json(obj), f, indent=indent, allow_nan=False)
            f.write("\n")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def load_json(path: str | os.PathLike, what: str) -> Any:
    """Parse a JSON file; ``InputError`` naming the file when it is missing or not JSON.

    ``what`` names the file in messages (``"SAIL-VOS annotation file"``, ``"RLE JSON file"``).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: {what} not found; pass the path of an existing file")
    try:
        with open(path) as f:
            return json.load(f)
    except json.JSONDecodeError as e:
        raise InputError(f"{path}: not valid JSON (line {e.lineno}: {e.msg}); pass a {what}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: cannot read this {what} ({e})") from None
