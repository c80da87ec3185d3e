"""The one depth normaliser, used by training and by every pipeline.

Models see inverse depth (larger is nearer) mapped to ``[-1, 1]`` with one min-max over the clip
or window, as the reference does. Pixels outside the frame (the letterbox margins a pipeline
adds, marked ``nan``) read as far away (``-1``); a constant clip maps to zeros.
"""

from __future__ import annotations

import numpy as np

FLAT = 1e-12  # a depth range below this is constant: no nearer or farther to tell


def normalize_depth(depth: np.ndarray) -> np.ndarray:
    """``(T, H, W)`` inverse depth, ``nan`` off the frame -> ``(T, H, W) float32`` in ``[-1, 1]``."""
    depth = np.asarray(depth, dtype=np.float32)
    valid = ~np.isnan(depth)
    if not valid.any():
        return np.full(depth.shape, -1.0, dtype=np.float32)
    low, high = depth[valid].min(), depth[valid].max()
    out = np.zeros_like(depth) if high - low < FLAT else (depth - low) / (high - low) * 2 - 1
    return np.where(valid, out, np.float32(-1.0)).astype(np.float32)
