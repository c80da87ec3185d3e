"""Geometric prior channels: what they compute, how they enter the condition, and widening a model to take them."""

import dataclasses

import numpy as np
import pytest
import torch

from amodal.errors import InputError
from amodal.segmentation.priors import PRIORS, convex_prior, prior_masks, temporal_prior
from amodal.checkpoints.surgery import widen_condition
from amodal.segmentation.model import SegmenterConfig, build_condition, build_segmenter

from tiny import TINY_BACKBONE as BACKBONE

pytestmark = pytest.mark.usefixtures("one_thread")


def sliding_square(frames=8, hidden=(3, 4)):
    """``(T, 16, 32) bool`` modal masks of a 6x6 square moving 2 px right per frame; its right half is cut in ``hidden`` frames."""
    amodal = np.zeros((frames, 16, 32), dtype=bool)
    for t in range(frames):
        amodal[t, 5:11, 2 + 2 * t : 8 + 2 * t] = True
    modal = amodal.copy()
    for t in hidden:
        modal[t, :, 5 + 2 * t :] = False
    return modal, amodal


def test_temporal_prior_restores_a_part_seen_in_other_frames():
    modal, amodal = sliding_square()
    prior = temporal_prior(modal)
    assert bool((prior >= modal).all())
    for t in (3, 4):
        assert prior[t].sum() > modal[t].sum()
        np.testing.assert_array_equal(prior[t], amodal[t])  # pure translation: the union is exact


def test_convex_prior_fills_a_dent_and_keeps_the_mask():
    mask = np.zeros((1, 16, 32), dtype=bool)
    mask[0, 2:12, 4:8] = True  # an L: vertical bar...
    mask[0, 9:12, 4:20] = True  # ...and foot
    hull = convex_prior(mask)
    assert bool((hull >= mask).all())
    assert hull[0, 8, 9] and not mask[0, 8, 9]  # inside the triangle between the bar and the foot
    assert not hull[0, 2, 19]  # outside the hull


def test_prior_masks_layout_and_values():
    modal, _ = sliding_square()
    batch = torch.from_numpy(np.stack([modal, np.zeros_like(modal)])).float()
    out = prior_masks(batch, ("temporal", "convex"))
    assert out.shape == (2, 8, 2, 16, 32) and out.dtype == torch.float32
    np.testing.assert_array_equal(out[0, :, 0].numpy() > 0.5, temporal_prior(modal))
    np.testing.assert_array_equal(out[0, :, 1].numpy() > 0.5, convex_prior(modal))
    assert out[1].sum() == 0  # an absent object has empty priors
    assert set(PRIORS) == {"temporal", "convex"}


def test_condition_appends_priors_in_plus_minus_one():
    modal, _ = sliding_square()
    m = torch.from_numpy(modal[None]).float()
    cond = build_condition(m, None, ("convex",))
    assert cond.shape == (1, 8, 4, 16, 32)
    torch.testing.assert_close(cond[:, :, :3], build_condition(m, None))
    assert set(cond[:, :, 3].unique().tolist()) == {-1.0, 1.0}


def config(priors=()):
    backbone = dataclasses.replace(BACKBONE, cond_channels=3 + len(priors))
    return SegmenterConfig(backbone=backbone, num_frames=4, height=16, width=32, priors=tuple(priors))


def test_config_checks_priors_against_the_channels():
    with pytest.raises(InputError, match="priors must be distinct keys"):
        config(("temporal", "optical-flow"))
    with pytest.raises(InputError, match="must be 1/5/1"):
        SegmenterConfig(backbone=BACKBONE, num_frames=4, height=16, width=32, priors=("temporal", "convex"))
    assert config(("temporal", "convex")).backbone.cond_channels == 5


@pytest.mark.parametrize("objective", ["diffusion", "regression"])
def test_widened_model_computes_what_the_old_one_did(objective):
    torch.manual_seed(0)
    old_cfg = dataclasses.replace(config(), objective=objective)
    new_cfg = dataclasses.replace(config(("temporal", "convex")), objective=objective)
    old = build_segmenter(old_cfg).eval()
    with torch.no_grad():  # random weights everywhere, zero-initialised layers included
        for p in old.parameters():
            p.normal_(0, 0.2)
    new = build_segmenter(new_cfg).eval()
    new.backbone.load_state_dict(widen_condition(old.backbone.state_dict(), old_cfg.backbone, new_cfg.backbone))
    modal = torch.from_numpy(sliding_square(4, hidden=(1, 2))[0][None]).float()
    a = old.sample(modal, None, steps=2, generator=torch.Generator().manual_seed(1))
    b = new.sample(modal, None, steps=2, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    with torch.no_grad():  # once the new columns move, the priors change the output
        new.backbone.stem.weight[:, -4:] += 0.5
    c = new.sample(modal, None, steps=2, generator=torch.Generator().manual_seed(1))
    assert not torch.allclose(a, c)


def test_widen_refuses_other_differences():
    state = build_segmenter(config()).backbone.state_dict()
    with pytest.raises(InputError, match="may differ only"):
        widen_condition(state, BACKBONE, dataclasses.replace(BACKBONE, cond_channels=5, emb_dim=32))
    with pytest.raises(InputError, match="may differ only"):
        widen_condition(state, dataclasses.replace(BACKBONE, cond_channels=5), BACKBONE)
