"""The one clip data model every reader, model and metric uses.

Layout, stated once for the whole library (NumPy, at I/O and evaluation level):

- ``frames``: ``(T, H, W, 3) uint8`` RGB.
- ``modal_masks``: ``(K, T, H, W) bool``, the visible part of each of ``K`` objects.
- ``amodal_masks``: ``(K, T, H, W) bool``, the full extent, hidden parts included.
- ``depth``: ``(T, H, W) float32`` *inverse* depth (nearness): larger is closer
  to the camera, any positive scale. This is what monocular depth models such as
  Depth Anything V2 output, and what the models are conditioned on after
  per-clip normalisation to ``[-1, 1]``. Synthetic clips store ``1 / z``.
- ``amodal_rgb``: ``(K, T, H, W, 3) uint8``, each object as it looks unoccluded;
  pixels outside its amodal mask are white (255), as the completion stage expects.

Inside the models, video tensors are ``(B, T, C, H, W)`` float (see
``amodal.backbones``); conversion happens only at that boundary.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from amodal.errors import InputError


@dataclass(frozen=True, eq=False)
class Clip:
    """A video with one or more objects, their modal masks and optional ground truth.

    Attributes:
        frames: ``(T, H, W, 3) uint8`` RGB frames.
        modal_masks: ``(K, T, H, W) bool`` visible masks, one row per object.
        amodal_masks: ``(K, T, H, W) bool`` full masks, or ``None`` when unknown.
        depth: ``(T, H, W) float32`` inverse depth (larger is nearer), or ``None``.
        amodal_rgb: ``(K, T, H, W, 3) uint8`` unoccluded object appearance on
            white, or ``None``.
        object_ids: one id per object (defaults to ``1..K``).
        category_ids: one category per object (``0`` when unknown).
        fps: frame rate, used by video writers and the SVD ``fps`` conditioning.
        source: where the clip came from (a path or a generator description).
        frame_names: one name per frame (file stem), used by writers and the
            reference prediction formats; defaults to ``frame_00000`` ...
    """

    frames: np.ndarray
    modal_masks: np.ndarray
    amodal_masks: np.ndarray | None = None
    depth: np.ndarray | None = None
    amodal_rgb: np.ndarray | None = None
    object_ids: tuple[int, ...] = ()
    category_ids: tuple[int, ...] = ()
    fps: float = 8.0
    source: str = ""
    frame_names: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        frames, modal = self.frames, self.modal_masks
        if not isinstance(frames, np.ndarray) or frames.ndim != 4 or frames.shape[-1] != 3:
            raise InputError(f"{self._where()}frames must be a (T, H, W, 3) array, got shape {getattr(frames, 'shape', None)}")
        if frames.dtype != np.uint8:
            raise InputError(f"{self._where()}frames must be uint8, got {frames.dtype}")
        t, h, w = frames.shape[:3]
        if t == 0:
            raise InputError(f"{self._where()}the clip has no frames")
        if not isinstance(modal, np.ndarray) or modal.ndim != 4:
            raise InputError(f"{self._where()}modal_masks must be a (K, T, H, W) array, got shape {getattr(modal, 'shape', None)}")
        if modal.dtype != np.bool_:
            raise InputError(f"{self._where()}modal_masks must be bool, got {modal.dtype}")
        k = modal.shape[0]
        if modal.shape[1:] != (t, h, w):
            raise InputError(
                f"{self._where()}modal_masks shape {modal.shape[1:]} does not match frames (T, H, W) = {(t, h, w)}"
            )
        if self.amodal_masks is not None:
            if self.amodal_masks.shape != modal.shape or self.amodal_masks.dtype != np.bool_:
                raise InputError(
                    f"{self._where()}amodal_masks must be bool with shape {modal.shape}, got "
                    f"{self.amodal_masks.dtype} {self.amodal_masks.shape}"
                )
        if self.depth is not None:
            if self.depth.shape != (t, h, w):
                raise InputError(f"{self._where()}depth must have shape {(t, h, w)}, got {self.depth.shape}")
            if self.depth.dtype != np.float32:
                object.__setattr__(self, "depth", self.depth.astype(np.float32))
        if self.amodal_rgb is not None:
            if self.amodal_rgb.shape != (k, t, h, w, 3) or self.amodal_rgb.dtype != np.uint8:
                raise InputError(
                    f"{self._where()}amodal_rgb must be uint8 with shape {(k, t, h, w, 3)}, got "
                    f"{self.amodal_rgb.dtype} {self.amodal_rgb.shape}"
                )
        ids = tuple(int(i) for i in self.object_ids) or tuple(range(1, k + 1))
        if len(ids) != k:
            raise InputError(f"{self._where()}{len(ids)} object ids for {k} objects")
        if len(set(ids)) != k:
            raise InputError(f"{self._where()}object ids must be unique, got {ids}")
        object.__setattr__(self, "object_ids", ids)
        cats = tuple(int(c) for c in self.category_ids) or (0,) * k
        if len(cats) != k:
            raise InputError(f"{self._where()}{len(cats)} category ids for {k} objects")
        object.__setattr__(self, "category_ids", cats)
        names = tuple(str(n) for n in self.frame_names) or tuple(f"frame_{i:05d}" for i in range(t))
        if len(names) != t:
            raise InputError(f"{self._where()}{len(names)} frame names for {t} frames")
        object.__setattr__(self, "frame_names", names)

    @classmethod
    def from_arrays(cls, modal_masks: np.ndarray, frames: np.ndarray | None = None, depth: np.ndarray | None = None,
                    *, object_ids=(), fps: float = 8.0) -> "Clip":
        """A clip from plain NumPy arrays, checked with one-line errors that name the argument and the fix.

        Args:
            modal_masks: ``(K, T, H, W) bool``, or ``(T, H, W) bool`` for one object (``K = 1``).
            frames: ``(T, H, W, 3) uint8`` RGB, or ``None`` for a mask-only clip whose frames are
                black: a read-only zero-stride view that takes no memory. Stage 1 reads only masks
                and depth; stage 2 needs the real frames.
            depth: ``(T, H, W)`` floating-point inverse depth (larger is nearer, any positive
                scale), stored as ``float32``, or ``None``.
            object_ids: one id per object (default ``1..K``); fps: the frame rate.
        """
        modal = object_masks(modal_masks, "modal_masks")
        k, t, h, w = modal.shape
        if frames is None:
            frames = np.broadcast_to(np.zeros((1, 1, 1, 3), np.uint8), (t, h, w, 3))
        else:
            frames = _array(frames, "frames")
            if frames.ndim != 4 or frames.shape[-1] != 3:
                raise InputError(f"frames: must be (T, H, W, 3) RGB, got shape {frames.shape}; "
                                 "a gray video: np.repeat(frames[..., None], 3, axis=-1)")
            if frames.dtype != np.uint8:
                raise InputError(f"frames: must be uint8 (0..255), got {frames.dtype}; "
                                 "from floats in [0, 1]: (frames * 255).round().astype(np.uint8)")
            if frames.shape[:3] != (t, h, w):
                raise InputError(f"modal_masks: (T, H, W) = {(t, h, w)} does not match the frames' {frames.shape[:3]}; "
                                 "pass one mask per object and frame, at the frames' size")
        if depth is not None:
            depth = _array(depth, "depth")
            if depth.shape != (t, h, w):
                raise InputError(f"depth: must be (T, H, W) = {(t, h, w)} like the masks, got shape {depth.shape}")
            if not np.issubdtype(depth.dtype, np.floating):
                raise InputError(f"depth: must be floating-point inverse depth (larger is nearer), got {depth.dtype}; "
                                 "pass depth.astype(np.float32)")
        return cls(frames=frames, modal_masks=modal, depth=depth, object_ids=tuple(object_ids), fps=fps)

    def _where(self) -> str:
        return f"{self.source}: " if self.source else ""

    @property
    def num_frames(self) -> int:
        return int(self.frames.shape[0])

    @property
    def num_objects(self) -> int:
        return int(self.modal_masks.shape[0])

    @property
    def size(self) -> tuple[int, int]:
        """``(H, W)`` in pixels."""
        return int(self.frames.shape[1]), int(self.frames.shape[2])

    def replace(self, **changes) -> "Clip":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def frame_range(self, start: int, stop: int) -> "Clip":
        """The frames ``[start, stop)`` as a new clip (a window of a longer video)."""
        if not 0 <= start < stop <= self.num_frames:
            raise InputError(f"{self._where()}frame range [{start}, {stop}) is outside 0..{self.num_frames}")
        s = slice(start, stop)
        return dataclasses.replace(
            self,
            frames=self.frames[s],
            modal_masks=self.modal_masks[:, s],
            amodal_masks=None if self.amodal_masks is None else self.amodal_masks[:, s],
            depth=None if self.depth is None else self.depth[s],
            amodal_rgb=None if self.amodal_rgb is None else self.amodal_rgb[:, s],
            frame_names=self.frame_names[s],
        )

    def select_objects(self, object_ids) -> "Clip":
        """The clip restricted to the objects with these ids, in the order given."""
        rows = []
        for oid in object_ids:
            if int(oid) not in self.object_ids:
                raise InputError(
                    f"{self._where()}object id {oid} is not in this clip; present ids: {list(self.object_ids)}"
                )
            rows.append(self.object_ids.index(int(oid)))
        return dataclasses.replace(
            self,
            modal_masks=self.modal_masks[rows],
            amodal_masks=None if self.amodal_masks is None else self.amodal_masks[rows],
            amodal_rgb=None if self.amodal_rgb is None else self.amodal_rgb[rows],
            object_ids=tuple(self.object_ids[r] for r in rows),
            category_ids=tuple(self.category_ids[r] for r in rows),
        )

    def visible_fraction(self) -> np.ndarray:
        """``(K, T) float64``: modal area over amodal area (``nan`` where the amodal mask is empty).

        Raises ``InputError`` when the clip has no amodal masks.
        """
        if self.amodal_masks is None:
            raise InputError(f"{self._where()}visible_fraction needs amodal masks")
        modal = self.modal_masks.reshape(*self.modal_masks.shape[:2], -1).sum(-1)
        amodal = self.amodal_masks.reshape(*self.amodal_masks.shape[:2], -1).sum(-1)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(amodal > 0, modal / np.maximum(amodal, 1), np.nan)


def _array(value, name: str) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise InputError(f"{name}: expected a numpy array, got {type(value).__name__}; "
                         "pass np.asarray(...) (a torch tensor: tensor.cpu().numpy())")
    return value


def object_masks(masks: np.ndarray, name: str) -> np.ndarray:
    """``masks`` as ``(K, T, H, W) bool``; ``(T, H, W) bool`` is one object. Else a one-line error naming ``name``."""
    masks = _array(masks, name)
    if masks.ndim not in (3, 4):
        raise InputError(f"{name}: must be (K, T, H, W), or (T, H, W) for one object, got shape {masks.shape}")
    if masks.dtype != np.bool_:
        raise InputError(f"{name}: must be bool, got {masks.dtype}; pass {name} > 0 (or .astype(bool))")
    return masks[None] if masks.ndim == 3 else masks


def as_clip(source, first: str, **arrays) -> Clip:
    """What a pipeline call is about, as a :class:`Clip`: the one converter all pipelines use.

    ``source`` is a :class:`Clip` (then no ``arrays`` may be given: it carries its own), or the
    array named ``first`` (``"modal_masks"`` or ``"frames"``), completed by the keyword
    ``arrays`` (``None``: not given) into :meth:`Clip.from_arrays`.
    """
    given = {name: value for name, value in arrays.items() if value is not None}
    if isinstance(source, Clip):
        if given:
            name = next(iter(given))
            raise InputError(f"{name}: given beside an amodal.Clip, which carries its own; "
                             f"pass arrays alone, or clip.replace({name}=...)")
        return source
    if not isinstance(source, np.ndarray):
        raise InputError(f"{first}: expected an amodal.Clip or a numpy array, got {type(source).__name__}")
    given[first] = source
    if "modal_masks" not in given:
        raise InputError("modal_masks: missing; with the frames given as an array, "
                         "pass modal_masks= (K, T, H, W) bool, or (T, H, W) bool for one object")
    return Clip.from_arrays(**given)
