"""``generate_clip``: one synthetic clip as a pure function of ``(config, seed)``."""

from __future__ import annotations

import numpy as np

from amodal.clip import Clip
from amodal.errors import InputError
from amodal.data.synth.config import SynthConfig
from amodal.data.synth.render import render_scene
from amodal.data.synth.scene import plan_scene


def generate_clip(config: SynthConfig, seed: int) -> Clip:
    """Plan and render one synthetic clip; the same ``config`` and ``seed`` give identical bytes.

    Returns a :class:`amodal.Clip` with, for ``K`` objects, ``T`` frames of ``H x W``:

    - ``frames``: ``(T, H, W, 3) uint8`` RGB;
    - ``modal_masks`` / ``amodal_masks``: ``(K, T, H, W) bool``; the amodal mask is
      the object rendered alone, so it is clipped to the image but not by other objects;
    - ``depth``: ``(T, H, W) float32`` inverse camera z-depth ``1 / z`` (``z`` in scene
      units, about metres), always positive;
    - ``amodal_rgb``: ``(K, T, H, W, 3) uint8``, each object rendered alone on white;
    - ``object_ids`` ``1..K``; ``category_ids`` from :data:`amodal.data.synth.CATEGORIES`.

    Objects may leave the frame, so an amodal mask can be empty on some frames.
    """
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InputError(f"seed must be a non-negative integer, got {seed!r}")
    rng = np.random.Generator(np.random.PCG64(int(seed)))
    scene = plan_scene(config, rng)
    out = render_scene(scene, config.height, config.width, config.max_march_steps, config.shadows)
    return Clip(
        frames=out.frames,
        modal_masks=out.modal_masks,
        amodal_masks=out.amodal_masks,
        depth=(1.0 / out.depth).astype(np.float32),
        amodal_rgb=out.amodal_rgb,
        object_ids=tuple(range(1, len(scene.objects) + 1)),
        category_ids=tuple(obj.shape.category_id for obj in scene.objects),
        fps=config.fps,
        source=f"synth:seed={int(seed)}",
    )
