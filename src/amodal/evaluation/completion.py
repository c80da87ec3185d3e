"""Content-completion (stage 2) metrics: pure functions on NumPy arrays, no networks.

Conventions shared by every function here:

- RGB videos are ``uint8`` (any integer or float dtype is accepted and read as
  values in ``[0, 255]``), shape ``(..., H, W, 3)``; masks are ``bool`` with the
  same leading shape ``(..., H, W)``. One object of one clip is ``(T, H, W, 3)``
  with ``(T, H, W)`` masks; per-frame functions return ``(T,) float64``.
- A *completion* of an object is its appearance on white (255) outside what
  it thinks is its extent, as :attr:`amodal.Clip.amodal_rgb`.
- The **hidden region** of an object in a frame is its true amodal mask minus
  its modal (visible) mask: the pixels a completion has to invent. ``_occ``
  metrics are computed there; ``psnr`` and ``ssim`` on the whole true amodal
  mask. Frames whose region is empty are not scored: ``nan``.

The metrics (``docs/evaluation.md``, section *Completion*, has the same text):

- :func:`psnr` / :func:`psnr_occ`: ``10 log10(255^2 / MSE)``, the MSE over the
  region's pixels and the three channels; identical regions (MSE 0) give
  :data:`PSNR_CAP_DB`.
- :func:`mae_occ`: mean absolute error over the region's pixels and channels, in
  ``[0, 255]`` units.
- :func:`ssim` / :func:`ssim_occ`: SSIM (Wang et al. 2004) with an 11-tap
  Gaussian window (sigma 1.5), ``K1 = 0.01``, ``K2 = 0.03``, ``L = 255``, population
  (co)variances, computed **per channel** on the full frame and averaged over the
  three channels, then averaged over the region's pixels.
- :func:`silhouette_iou`: IoU of the completion's silhouette (pixels with any
  channel below :data:`SILHOUETTE_THRESHOLD`) with the true amodal mask.
- :func:`temporal_error_occ`: flicker of the hidden region against the truth's
  own frame-to-frame change (see :func:`temporal_pair_errors`).
- :func:`swd_occ`: sliced Wasserstein distance between Laplacian-pyramid patches
  of completed and true hidden regions over a whole set (Karras et al. 2018).
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from amodal.errors import InputError

PSNR_MAX = 255.0  # the peak value of the PSNR
PSNR_CAP_DB = 100.0  # PSNR of an exact match (MSE 0), so that means over frames stay finite
SILHOUETTE_THRESHOLD = 250  # a completion pixel is part of the object when any channel is below this
SSIM_SIGMA = 1.5  # Gaussian window of SSIM (Wang et al. 2004)
SSIM_TAPS = 11  # window width in pixels: radius 5
SSIM_K1, SSIM_K2 = 0.01, 0.03  # SSIM stabilising constants, times L = 255

SWD_PATCH = 7  # patch side in pixels at each pyramid level (Karras et al.: 7x7 neighbourhoods)
SWD_MIN_SIDE = 16  # the pyramid goes down to the last level whose shorter side is at least this (Karras: 16)
SWD_DIRECTIONS = 128  # random projection directions per repeat
SWD_REPEATS = 4  # repeats of the projection, averaged
SWD_PATCHES_PER_OBJECT = 64  # patches per (object, pyramid level), drawn among the object's hidden pixels of all frames
SWD_SEED = 0  # seeds both the patch centres and the projections; fixed so runs compare
SWD_SCALE = 1e3  # reported SWD is times 1e3, as in Karras et al.'s tables


# ----------------------------------------------------------------------------- helpers
def _as_float(video: np.ndarray) -> np.ndarray:
    video = np.asarray(video)
    if video.ndim < 3 or video.shape[-1] != 3:
        raise InputError(f"expected (..., H, W, 3) RGB, got shape {video.shape}")
    return video.astype(np.float64)


def _check(pred: np.ndarray, true: np.ndarray, *masks: np.ndarray) -> None:
    if np.shape(pred) != np.shape(true):
        raise InputError(f"completion {np.shape(pred)} and truth {np.shape(true)} differ in shape")
    for mask in masks:
        if np.shape(mask) != np.shape(pred)[:-1]:
            raise InputError(f"mask {np.shape(mask)} does not match the RGB {np.shape(pred)} (without channels)")


def hidden_region(amodal: np.ndarray, modal: np.ndarray) -> np.ndarray:
    """``(..., H, W) bool``: the true amodal mask minus the modal mask."""
    return np.asarray(amodal, bool) & ~np.asarray(modal, bool)


def region_mean(values: np.ndarray, region: np.ndarray) -> np.ndarray:
    """Mean of ``values`` ``(..., H, W)`` over the pixels of ``region`` ``(..., H, W) bool``: ``(...)``, ``nan`` if empty."""
    region = np.asarray(region, bool)
    count = region.sum(axis=(-2, -1))
    total = np.where(region, values, 0.0).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / np.maximum(count, 1), np.nan)


def region_mse(pred: np.ndarray, true: np.ndarray, region: np.ndarray) -> np.ndarray:
    """``(...) float64``: squared error over the region's pixels and the 3 channels (``nan`` for an empty region)."""
    _check(pred, true, region)
    err = ((_as_float(pred) - _as_float(true)) ** 2).mean(axis=-1)
    return region_mean(err, region)


def psnr_from_mse(mse: np.ndarray) -> np.ndarray:
    """``10 log10(255^2 / mse)`` in dB, :data:`PSNR_CAP_DB` where ``mse`` is 0 (or that small), ``nan`` kept."""
    mse = np.asarray(mse, np.float64)
    floor = PSNR_MAX**2 * 10.0 ** (-PSNR_CAP_DB / 10.0)
    with np.errstate(invalid="ignore"):
        return np.where(np.isnan(mse), np.nan, 10.0 * np.log10(PSNR_MAX**2 / np.maximum(mse, floor)))


# ----------------------------------------------------------------------------- PSNR, MAE
def psnr(pred: np.ndarray, true: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """PSNR (dB) of each frame on the whole true amodal region.

    Args:
        pred: ``(..., H, W, 3) uint8`` completion in ``[0, 255]``.
        true: ``(..., H, W, 3) uint8`` true unoccluded appearance.
        amodal: ``(..., H, W) bool`` true amodal mask.

    Returns:
        ``(...) float64``: ``10 log10(255^2 / MSE)`` with the MSE over the region's
        pixels and channels; :data:`PSNR_CAP_DB` for an exact match; ``nan`` where the region is empty.
    """
    return psnr_from_mse(region_mse(pred, true, amodal))


def psnr_occ(pred: np.ndarray, true: np.ndarray, amodal: np.ndarray, modal: np.ndarray) -> np.ndarray:
    """PSNR (dB) of each frame on the hidden region (true amodal minus modal); as :func:`psnr` otherwise.

    Args:
        pred, true: ``(..., H, W, 3) uint8`` in ``[0, 255]``.
        amodal, modal: ``(..., H, W) bool`` true amodal and modal masks.

    Returns:
        ``(...) float64``, ``nan`` where nothing is hidden.
    """
    return psnr_from_mse(region_mse(pred, true, hidden_region(amodal, modal)))


def mae_occ(pred: np.ndarray, true: np.ndarray, amodal: np.ndarray, modal: np.ndarray) -> np.ndarray:
    """Mean absolute error of each frame on the hidden region, over pixels and channels, in ``[0, 255]`` units.

    Args:
        pred, true: ``(..., H, W, 3) uint8``.
        amodal, modal: ``(..., H, W) bool``.

    Returns:
        ``(...) float64`` in ``[0, 255]``, ``nan`` where nothing is hidden.
    """
    region = hidden_region(amodal, modal)
    _check(pred, true, region)
    return region_mean(np.abs(_as_float(pred) - _as_float(true)).mean(axis=-1), region)


# ----------------------------------------------------------------------------- SSIM
def ssim_map(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Per-pixel SSIM of whole frames, per channel then averaged over the 3 channels.

    Gaussian window, sigma :data:`SSIM_SIGMA`, :data:`SSIM_TAPS` taps (scipy
    ``gaussian_filter`` with ``truncate=3.5``, borders reflected), ``C1 = (0.01 L)^2``,
    ``C2 = (0.03 L)^2`` with ``L = 255``, population (co)variances.

    Args:
        pred, true: ``(..., H, W, 3)`` values in ``[0, 255]``.

    Returns:
        ``(..., H, W) float64``, 1 where the two agree exactly.
    """
    from scipy.ndimage import gaussian_filter

    _check(pred, true)
    x, y = _as_float(pred), _as_float(true)
    sigma = (0.0,) * (x.ndim - 3) + (SSIM_SIGMA, SSIM_SIGMA, 0.0)
    truncate = ((SSIM_TAPS - 1) / 2) / SSIM_SIGMA - 1e-9  # radius int(truncate * sigma + 0.5) = 5

    def blur(a: np.ndarray) -> np.ndarray:
        return gaussian_filter(a, sigma=sigma, truncate=truncate, mode="reflect")

    c1, c2 = (SSIM_K1 * PSNR_MAX) ** 2, (SSIM_K2 * PSNR_MAX) ** 2
    mx, my = blur(x), blur(y)
    sxx = blur(x * x) - mx * mx
    syy = blur(y * y) - my * my
    sxy = blur(x * y) - mx * my
    value = ((2 * mx * my + c1) * (2 * sxy + c2)) / ((mx * mx + my * my + c1) * (sxx + syy + c2))
    return value.mean(axis=-1)


def ssim(pred: np.ndarray, true: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """SSIM of each frame: the :func:`ssim_map` of the whole frame averaged over the true amodal mask.

    Args:
        pred, true: ``(..., H, W, 3) uint8``.
        amodal: ``(..., H, W) bool``.

    Returns:
        ``(...) float64`` in ``[-1, 1]``, ``nan`` where the region is empty.
    """
    return region_mean(ssim_map(pred, true), amodal)


def ssim_occ(pred: np.ndarray, true: np.ndarray, amodal: np.ndarray, modal: np.ndarray) -> np.ndarray:
    """SSIM of each frame averaged over the hidden region (the map is still computed on the whole frame).

    Returns:
        ``(...) float64`` in ``[-1, 1]``, ``nan`` where nothing is hidden.
    """
    return region_mean(ssim_map(pred, true), hidden_region(amodal, modal))


# ----------------------------------------------------------------------------- silhouette
def silhouette(rgb: np.ndarray) -> np.ndarray:
    """``(..., H, W) bool``: pixels of a completion on white that are not white (any channel < :data:`SILHOUETTE_THRESHOLD`)."""
    return (np.asarray(rgb) < SILHOUETTE_THRESHOLD).any(axis=-1)


def silhouette_iou(pred: np.ndarray, amodal: np.ndarray) -> np.ndarray:
    """IoU of the completion's silhouette with the true amodal mask, per frame.

    Args:
        pred: ``(..., H, W, 3) uint8`` completion on white.
        amodal: ``(..., H, W) bool`` true amodal mask.

    Returns:
        ``(...) float64`` in ``[0, 1]``; ``nan`` where both are empty.
    """
    shape = silhouette(pred)
    amodal = np.asarray(amodal, bool)
    if shape.shape != amodal.shape:
        raise InputError(f"mask {amodal.shape} does not match the RGB {np.shape(pred)}")
    inter = (shape & amodal).sum(axis=(-2, -1))
    union = (shape | amodal).sum(axis=(-2, -1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.maximum(union, 1), np.nan)


# ----------------------------------------------------------------------------- temporal
def temporal_pair_errors(pred: np.ndarray, true: np.ndarray, amodal: np.ndarray, modal: np.ndarray) -> np.ndarray:
    """Flicker of one object's completed hidden region, per consecutive frame pair.

    For the pair ``(t, t + 1)`` let ``R = H_t | H_{t+1}``, the union of the two
    frames' hidden regions, and for a video ``x`` let
    ``d_x = mean over p in R and channels of |x_{t+1}(p) - x_t(p)|`` (``[0, 255]`` units).
    The pair's error is ``|d_pred - d_true|``: how much more (or less) the
    completion changes there than the truth does (object motion is in both).

    Args:
        pred, true: ``(T, H, W, 3) uint8`` one object's completion and truth.
        amodal, modal: ``(T, H, W) bool`` its true masks.

    Returns:
        ``(T - 1,) float64``, ``nan`` for pairs with an empty ``R``.
    """
    _check(pred, true, amodal, modal)
    if np.ndim(pred) != 4:
        raise InputError(f"temporal errors need one object's (T, H, W, 3) video, got {np.shape(pred)}")
    hidden = hidden_region(amodal, modal)
    region = hidden[1:] | hidden[:-1]
    x, y = _as_float(pred), _as_float(true)
    change_pred = region_mean(np.abs(x[1:] - x[:-1]).mean(axis=-1), region)
    change_true = region_mean(np.abs(y[1:] - y[:-1]).mean(axis=-1), region)
    return np.abs(change_pred - change_true)


def temporal_error_occ(pred: np.ndarray, true: np.ndarray, amodal: np.ndarray, modal: np.ndarray) -> float:
    """One object's temporal error: the mean of :func:`temporal_pair_errors` over the pairs where it is defined.

    Returns:
        ``float`` in ``[0, 255]`` units (0: the completion changes exactly as the
        truth does); ``nan`` when no pair has a hidden pixel.
    """
    errors = temporal_pair_errors(pred, true, amodal, modal)
    errors = errors[np.isfinite(errors)]
    return float(errors.mean()) if errors.size else float("nan")


# ----------------------------------------------------------------------------- SWD
_BINOMIAL = np.array([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0  # Karras et al.'s 5x5 filter, separable (matches cv2.pyrDown)


def _smooth(image: np.ndarray, gain: float = 1.0) -> np.ndarray:
    from scipy.ndimage import correlate1d

    out = correlate1d(image, _BINOMIAL * gain, axis=0, mode="mirror")
    return correlate1d(out, _BINOMIAL * gain, axis=1, mode="mirror")


def swd_levels(height: int, width: int) -> int:
    """Pyramid levels: the full size, then halvings while the shorter side stays >= :data:`SWD_MIN_SIDE` (at least 1)."""
    side, levels = min(height, width), 0
    while side >= SWD_MIN_SIDE:
        levels, side = levels + 1, side // 2
    return max(levels, 1)


def laplacian_pyramid(image: np.ndarray, levels: int) -> list[np.ndarray]:
    """Laplacian pyramid of one ``(H, W, 3)`` image (as Karras et al.'s ``generate_laplacian_pyramid``).

    Level ``l`` is ``ceil(H / 2^l) x ceil(W / 2^l)``; every level but the last holds the
    band-pass detail (the level minus the upsampled next one), the last the low-pass image.
    """
    pyramid = [np.asarray(image, np.float32)]
    for _ in range(1, levels):
        down = _smooth(pyramid[-1])[::2, ::2]
        up = np.zeros((2 * down.shape[0], 2 * down.shape[1], down.shape[2]), np.float32)
        up[::2, ::2] = down
        pyramid[-1] = pyramid[-1] - _smooth(up, 2.0)[: pyramid[-1].shape[0], : pyramid[-1].shape[1]]
        pyramid.append(down)
    return pyramid


def _block_any(mask: np.ndarray, factor: int) -> np.ndarray:
    """``(t, h, w) bool`` with each ``factor x factor`` block set when any of its pixels is."""
    if factor == 1:
        return mask
    t, h, w = mask.shape
    hp, wp = -(-h // factor) * factor, -(-w // factor) * factor
    padded = np.zeros((t, hp, wp), bool)
    padded[:, :h, :w] = mask
    return padded.reshape(t, hp // factor, factor, wp // factor, factor).any(axis=(2, 4))


def swd_centres(
    hidden: np.ndarray, levels: int, count: int = SWD_PATCHES_PER_OBJECT, rng: np.random.Generator | None = None
) -> list[np.ndarray]:
    """Patch centres on one object's hidden pixels, ``count`` per pyramid level at most.

    At level ``l`` a pixel is hidden when any pixel of its ``2^l x 2^l`` block is;
    centres are drawn uniformly without replacement among the hidden pixels of all frames.

    Args:
        hidden: ``(T, H, W) bool`` the object's hidden region.
        levels: pyramid levels (:func:`swd_levels`).
        count: centres per level (fewer when fewer pixels are hidden).
        rng: where the draws come from (default: seeded with :data:`SWD_SEED`).

    Returns:
        One ``(N, 3) int64`` array ``(frame, y, x)`` per level, sorted.
    """
    rng = np.random.default_rng(SWD_SEED) if rng is None else rng
    out = []
    for level in range(levels):
        where = np.argwhere(_block_any(np.asarray(hidden, bool), 2**level))
        if len(where) > count:
            where = where[np.sort(rng.choice(len(where), count, replace=False))]
        out.append(where.astype(np.int64))
    return out


def swd_patches(video: np.ndarray, centres: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The :data:`SWD_PATCH`-square patches of a ``(T, H, W, 3)`` video's Laplacian pyramids at ``centres``.

    Pyramids are built only for the frames a centre falls in; levels are padded
    by reflection so patches at the border are whole.

    Returns:
        One ``(N, 3, SWD_PATCH * SWD_PATCH) float32`` array per level (channel first, as Karras et al.).
    """
    levels = len(centres)
    frames = sorted({int(f) for c in centres for f in c[:, 0]})
    pyramids = {f: laplacian_pyramid(video[f], levels) for f in frames}
    r = SWD_PATCH // 2
    offsets = np.arange(-r, r + 1)
    out = []
    for level, where in enumerate(centres):
        patches = np.zeros((len(where), 3, SWD_PATCH * SWD_PATCH), np.float32)
        for f in np.unique(where[:, 0]) if len(where) else ():
            rows = where[:, 0] == f
            image = np.pad(pyramids[int(f)][level], ((r, r), (r, r), (0, 0)), mode="symmetric")
            ys = where[rows, 1][:, None, None] + r + offsets[None, :, None]
            xs = where[rows, 2][:, None, None] + r + offsets[None, None, :]
            patches[rows] = image[ys, xs].reshape(-1, SWD_PATCH * SWD_PATCH, 3).transpose(0, 2, 1)
        out.append(patches)
    return out


def finalize_descriptors(patches: np.ndarray) -> np.ndarray:
    """Karras et al.'s normalisation: each channel to zero mean and unit std over the set, then flattened.

    ``(N, 3, P) -> (N, 3 P) float64``; a constant channel stays 0.
    """
    d = np.asarray(patches, np.float64)
    d = d - d.mean(axis=(0, 2), keepdims=True)
    std = d.std(axis=(0, 2), keepdims=True)
    return (d / np.where(std > 0, std, 1.0)).reshape(len(d), -1)


def sliced_wasserstein(
    a: np.ndarray, b: np.ndarray, repeats: int = SWD_REPEATS, directions: int = SWD_DIRECTIONS, seed: int = SWD_SEED
) -> float:
    """Sliced Wasserstein distance between two equally sized sets of descriptors ``(N, D)``.

    ``repeats`` times: ``directions`` random unit directions, both sets projected
    and sorted, mean absolute difference of the sorted projections; the mean over repeats.
    """
    if a.ndim != 2 or a.shape != b.shape:
        raise InputError(f"sliced Wasserstein needs two (N, D) sets of one shape, got {a.shape} and {b.shape}")
    rng = np.random.default_rng(seed)
    results = []
    for _ in range(repeats):
        dirs = rng.standard_normal((a.shape[1], directions))
        dirs /= np.sqrt((dirs**2).sum(axis=0, keepdims=True))
        pa, pb = np.sort(a @ dirs, axis=0), np.sort(b @ dirs, axis=0)
        results.append(np.abs(pa - pb).mean())
    return float(np.mean(results))


def swd_from_patches(pred: Sequence[np.ndarray], true: Sequence[np.ndarray], seed: int = SWD_SEED) -> dict:
    """SWD per pyramid level from paired patch sets (one ``(N, 3, P)`` array per level each) and their mean.

    Each set is normalised with its own statistics (:func:`finalize_descriptors`);
    levels with fewer than 2 patches give ``nan``.

    Returns:
        ``{"swd": mean over levels x 1e3, "levels": [per level x 1e3], "patches": [N per level]}``.
    """
    levels, counts = [], []
    for p, t in zip(pred, true, strict=True):
        counts.append(int(len(t)))
        if len(t) < 2:
            levels.append(float("nan"))
            continue
        levels.append(SWD_SCALE * sliced_wasserstein(finalize_descriptors(p), finalize_descriptors(t), seed=seed))
    finite = [v for v in levels if np.isfinite(v)]
    return {"swd": float(np.mean(finite)) if finite else float("nan"), "levels": levels, "patches": counts}


def swd_occ(
    preds: Iterable[np.ndarray],
    trues: Iterable[np.ndarray],
    hiddens: Iterable[np.ndarray],
    count: int = SWD_PATCHES_PER_OBJECT,
    seed: int = SWD_SEED,
) -> dict:
    """SWD between completed and true hidden regions over a whole set of objects (a distribution score).

    For each object (one ``(T, H, W, 3)`` completion, its truth and its ``(T, H, W)``
    hidden region), up to ``count`` patch centres per pyramid level are drawn
    among its hidden pixels (:func:`swd_centres`, object ``i`` seeded with
    ``(seed, i)``); the patches of both videos are cut at the same centres
    (:func:`swd_patches`) and pooled over the set; then :func:`swd_from_patches`.
    All objects must share one frame size (it sets the pyramid's depth).

    Returns:
        As :func:`swd_from_patches`; 0 for a set against itself.
    """
    pred_sets: list[list[np.ndarray]] = []
    true_sets: list[list[np.ndarray]] = []
    levels = None
    for i, (pred, true, hidden) in enumerate(zip(preds, trues, hiddens, strict=True)):
        _check(pred, true, hidden)
        n = swd_levels(*np.shape(hidden)[-2:])
        if levels is not None and n != levels:
            raise InputError("swd_occ: every object of the set must have one frame size")
        levels = n
        centres = swd_centres(hidden, n, count, np.random.default_rng([seed, i]))
        pred_sets.append(swd_patches(pred, centres))
        true_sets.append(swd_patches(true, centres))
    if levels is None:
        return {"swd": float("nan"), "levels": [], "patches": []}
    return swd_from_patches(
        [np.concatenate([s[lv] for s in pred_sets]) for lv in range(levels)],
        [np.concatenate([s[lv] for s in true_sets]) for lv in range(levels)],
        seed=seed,
    )


# ----------------------------------------------------------------------------- all per-frame scores at once
FRAME_METRICS = ("psnr_occ", "ssim_occ", "mae_occ", "psnr", "ssim", "silhouette_iou", "temporal_occ")


def frame_scores(pred: np.ndarray, true: np.ndarray, amodal: np.ndarray, modal: np.ndarray) -> dict:
    """Every per-frame metric of one object's completion, the SSIM map computed once.

    Args:
        pred, true: ``(T, H, W, 3) uint8`` completion and truth of one object.
        amodal, modal: ``(T, H, W) bool`` its true masks.

    Returns:
        ``{name: (T,) float64}`` for each of :data:`FRAME_METRICS`; ``temporal_occ[t]``
        is the error of the pair ``(t - 1, t)`` (``nan`` at ``t = 0``); frames with an
        empty true amodal mask are ``nan`` throughout.
    """
    _check(pred, true, amodal, modal)
    t = len(pred)
    amodal, modal = np.asarray(amodal, bool), np.asarray(modal, bool)
    out = {name: np.full(t, np.nan) for name in FRAME_METRICS}
    rows = np.flatnonzero(amodal.any(axis=(1, 2)))
    if rows.size:
        out["silhouette_iou"][rows] = silhouette_iou(pred[rows], amodal[rows])  # whole frame: strays count
        # Every other score looks only inside the amodal masks, and SSIM's window reaches SSIM_TAPS // 2
        # pixels further: a crop to the masks' box with that margin gives the whole frame's numbers
        # (where the crop meets the frame edge the border rule is the same; elsewhere the window stays inside).
        r = SSIM_TAPS // 2
        ys, xs = np.flatnonzero(amodal.any(axis=(0, 2))), np.flatnonzero(amodal.any(axis=(0, 1)))
        box = (slice(max(ys[0] - r, 0), ys[-1] + r + 1), slice(max(xs[0] - r, 0), xs[-1] + r + 1))
        p, y = pred[rows][:, box[0], box[1]], true[rows][:, box[0], box[1]]
        a, m = amodal[rows][:, box[0], box[1]], modal[rows][:, box[0], box[1]]
        hidden = hidden_region(a, m)
        x, z = _as_float(p), _as_float(y)
        sq = ((x - z) ** 2).mean(axis=-1)
        out["psnr"][rows] = psnr_from_mse(region_mean(sq, a))
        out["psnr_occ"][rows] = psnr_from_mse(region_mean(sq, hidden))
        out["mae_occ"][rows] = region_mean(np.abs(x - z).mean(axis=-1), hidden)
        smap = ssim_map(p, y)
        out["ssim"][rows] = region_mean(smap, a)
        out["ssim_occ"][rows] = region_mean(smap, hidden)
    if t > 1:
        out["temporal_occ"][1:] = temporal_pair_errors(pred, true, amodal, modal)
    return out
