"""The synthetic world's settings: one frozen dataclass, loadable from a strict JSON file."""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from amodal.util.config import config_from_dict
from amodal.errors import InputError

# Shape classes and their category ids (the ``category_id`` of every clip and
# annotation). Ids start at 1 so that 0 keeps meaning "unknown" in ``Clip``.
# The last three are non-convex: a model that learns shape priors has to see
# holes and concavities, not only blobs.
CATEGORIES: dict[str, int] = {
    "sphere": 1,
    "box": 2,
    "cylinder": 3,
    "cone": 4,
    "capsule": 5,
    "dumbbell": 6,  # two spheres joined by a bar (a union of primitives)
    "torus": 7,
    "l_shape": 8,
    "u_shape": 9,
    # Articulated and non-rigid figures (amodal.data.synth.figures): limbs that swing, necks
    # that dip, bodies that arch and swell, so silhouettes change over a clip as real ones do.
    "person": 10,
    "animal": 11,  # four-legged, with neck, head and tail
    "worm": 12,  # a chain of capsules lifted by a travelling wave
    "blob": 13,  # lobes that drift about a core and swell
}
RIGID_CLASSES: tuple[str, ...] = tuple(CATEGORIES)[:9]  # the solids; the default world draws only these
ARTICULATED_CLASSES: tuple[str, ...] = tuple(CATEGORIES)[9:]
CATEGORY_NAMES: dict[int, str] = {v: k for k, v in CATEGORIES.items()}

# Procedural textures, evaluated in object-local (or ground/backdrop) coordinates.
TEXTURES: tuple[str, ...] = ("plain", "checker", "stripes", "noise")


@dataclass(frozen=True)
class SynthConfig:
    """How synthetic clips look and move. ``generate_clip(config, seed)`` is a pure function of both.

    Units are scene units (think metres) and seconds. Tuple fields given as
    ``(low, high)`` are ranges each clip draws from uniformly.
    """

    height: int = 128  # frame height in pixels; half the paper's 256x512 so CPU training stays affordable
    width: int = 256  # frame width in pixels; 2:1 like the paper's training resolution
    num_frames: int = 24  # frames per clip, as in Kubric MOVi (24 frames)
    fps: float = 12.0  # frame rate; MOVi's 12 fps, also sets the physical time step of the motion
    num_objects: tuple[int, int] = (2, 5)  # inclusive range of objects per clip; 2 is the least that can occlude
    # Classes to draw from (uniformly); see CATEGORIES. The default keeps the rigid solids of the
    # world's first version (the synthetic test split of docs/results.md); configs/synth/articulated.json
    # adds the figures.
    shape_classes: tuple[str, ...] = RIGID_CLASSES
    object_scale: tuple[float, float] = (0.3, 0.6)  # object half-size range; 0.3-0.6 fills 5-20% of the frame width
    occlusion_rate: float = 0.6  # chance that each object after the first is steered across the line of sight to an earlier one
    full_occlusion_rate: float = 0.5  # chance that such a crossing is planned to hide its target completely for a stretch
    fall_rate: float = 0.25  # chance that a non-occluding object is dropped from above instead of starting on the ground
    slide_rate: float = 0.6  # chance that a grounded, non-occluding object slides; the rest stay put (still spinning)
    max_speed: float = 1.5  # fastest sliding speed (units/s); faster smears an object across the arena in a 2 s clip
    max_spin_degrees: float = 180.0  # fastest spin about the vertical axis (degrees/s)
    camera_motion: bool = True  # whether the camera orbits and pans during the clip
    camera_orbit_degrees: float = 30.0  # largest azimuth swept by the orbiting camera over one clip
    camera_pan: float = 0.5  # largest shift of the camera's look-at point over one clip (units)
    camera_distance: tuple[float, float] = (7.0, 9.0)  # camera distance from the arena centre; keeps the 2.8-unit arena in view
    camera_height: tuple[float, float] = (1.5, 3.0)  # camera height; low enough that nearer objects hide farther ones
    fov_degrees: float = 55.0  # horizontal field of view
    object_textures: tuple[str, ...] = TEXTURES  # textures objects draw from (in object-local coordinates, so they move with it)
    background_textures: tuple[str, ...] = ("checker", "stripes", "noise")  # textures of the floor and the backdrop
    shadows: bool = True  # soft contact shadows on the floor under each object (a depth cue; never on objects)
    max_march_steps: int = 64  # sphere-tracing iterations per ray; 64 resolves grazing rays at this resolution

    def __post_init__(self) -> None:
        def fail(name: str, need: str) -> None:
            raise InputError(f"synth config: {name} must be {need}, got {getattr(self, name)!r}")

        for name in ("height", "width"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 8:
                fail(name, "an integer >= 8")
        if not isinstance(self.num_frames, int) or self.num_frames < 1:
            fail("num_frames", "an integer >= 1")
        if not self.fps > 0:
            fail("fps", "> 0")
        lo, hi = _pair(self, "num_objects", int)
        if not 1 <= lo <= hi <= 16:
            fail("num_objects", "a range [low, high] with 1 <= low <= high <= 16")
        for name in ("shape_classes", "object_textures", "background_textures"):
            known = tuple(CATEGORIES) if name == "shape_classes" else TEXTURES
            values = getattr(self, name)
            if isinstance(values, str) or not isinstance(values, tuple) or not values:
                fail(name, f"a non-empty list drawn from {list(known)}")
            unknown = [v for v in values if v not in known]
            if unknown:
                fail(name, f"drawn from {list(known)} (unknown: {unknown})")
        for name in ("object_scale", "camera_distance", "camera_height"):
            lo, hi = _pair(self, name, float)
            if not 0 < lo <= hi:
                fail(name, "a range [low, high] with 0 < low <= high")
        if not self.object_scale[1] <= 1.0:
            fail("object_scale", "at most 1.0 (larger objects do not fit the arena)")
        if not self.camera_distance[0] >= 5.0:
            fail("camera_distance", "at least 5.0 (the camera must stay outside the arena)")
        for name in ("occlusion_rate", "full_occlusion_rate", "fall_rate", "slide_rate"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                fail(name, "in [0, 1]")
        for name in ("max_speed", "max_spin_degrees", "camera_orbit_degrees", "camera_pan"):
            if not getattr(self, name) >= 0:
                fail(name, ">= 0")
        if not 10.0 <= self.fov_degrees <= 120.0:
            fail("fov_degrees", "in [10, 120]")
        if not isinstance(self.max_march_steps, int) or self.max_march_steps < 8:
            fail("max_march_steps", "an integer >= 8")

    @classmethod
    def from_dict(cls, values: dict, where: str = "synth config") -> "SynthConfig":
        """Build a config from JSON-style values; unknown keys and wrong types are errors.

        Lists become tuples; ``where`` names the source (a file) in error messages.
        """
        return config_from_dict(cls, values, where)

    @classmethod
    def from_json(cls, path: str | os.PathLike) -> "SynthConfig":
        """Load a config from a JSON object of fields (any subset; the rest keep their defaults)."""
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise InputError(f"{path}: cannot read the synth config ({e.strerror}); check the --config path") from None
        try:
            values = json.loads(text)
        except json.JSONDecodeError as e:
            raise InputError(f"{path}: not valid JSON ({e.msg} at line {e.lineno}); fix the file") from None
        return cls.from_dict(values, where=str(path))

    def to_dict(self) -> dict:
        """All fields as JSON-ready values (tuples become lists); ``from_dict`` reads it back."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def replace(self, **changes) -> "SynthConfig":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _pair(config: SynthConfig, name: str, kind: type) -> tuple:
    value = getattr(config, name)
    ok = isinstance(value, tuple) and len(value) == 2
    ok = ok and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    if kind is int:
        ok = ok and all(isinstance(v, int) for v in value)
    if not ok:
        raise InputError(f"synth config: {name} must be a pair [low, high] of {kind.__name__}s, got {value!r}")
    return value
