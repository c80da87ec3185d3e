"""The ``lite`` spatio-temporal U-Net: shapes, conditioning paths, space-time mixing, determinism."""

import pytest
import torch

from amodal.backbones.lite import LiteConfig, LiteUNet, sinusoidal_embedding

from tiny import TINY_BACKBONE, randomize

pytestmark = pytest.mark.usefixtures("one_thread")


def inputs(b=2, t=4, h=16, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, t, 1, h, w, generator=g)
    cond = torch.randn(b, t, 3, h, w, generator=g)
    c_noise = torch.randn(b, generator=g)
    return x, c_noise, cond


def test_output_shape_and_zero_initial_output():
    model = LiteUNet(TINY_BACKBONE)
    x, c_noise, cond = inputs()
    out = model(x, c_noise, cond)
    assert out.shape == (2, 4, 1, 16, 32)
    # The last convolution starts at zero, so a fresh denoiser starts as D = c_skip * x.
    assert torch.count_nonzero(out) == 0


def test_deterministic_given_seed():
    torch.manual_seed(3)
    a = LiteUNet(TINY_BACKBONE)
    torch.manual_seed(3)
    b = LiteUNet(TINY_BACKBONE)
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    randomize(a), randomize(b)
    x, c_noise, cond = inputs()
    torch.testing.assert_close(a(x, c_noise, cond), b(x, c_noise, cond), rtol=0, atol=0)


def test_noise_level_and_condition_change_the_output():
    model = randomize(LiteUNet(TINY_BACKBONE)).eval()
    x, c_noise, cond = inputs()
    base = model(x, c_noise, cond)
    assert not torch.allclose(base, model(x, c_noise + 1.0, cond), atol=1e-4)
    cond2 = cond.clone()
    cond2[:, :, 2] = 0  # depth-present flag off
    assert not torch.allclose(base, model(x, c_noise, cond2), atol=1e-4)


def test_frames_exchange_information():
    """Temporal convolutions and attention let one frame's input change another frame's output."""
    model = randomize(LiteUNet(TINY_BACKBONE)).eval()
    x, c_noise, cond = inputs()
    base = model(x, c_noise, cond)
    cond2 = cond.clone()
    cond2[:, 0] += 1.0  # change frame 0 only
    moved = model(x, c_noise, cond2)
    assert not torch.allclose(base[:, 3], moved[:, 3], atol=1e-5)
    # Batch elements stay independent.
    cond3 = cond.clone()
    cond3[0] += 1.0
    torch.testing.assert_close(model(x, c_noise, cond3)[1], base[1])


def test_any_window_length_up_to_max_frames():
    model = randomize(LiteUNet(TINY_BACKBONE)).eval()
    for t in (1, 3, 8):
        x, c_noise, cond = inputs(b=1, t=t)
        assert model(x, c_noise, cond).shape == (1, t, 1, 16, 32)
    x, c_noise, cond = inputs(b=1, t=TINY_BACKBONE.max_frames + 1)
    with pytest.raises(ValueError, match="at most"):
        model(x, c_noise, cond)


def test_bad_sizes_raise():
    model = LiteUNet(TINY_BACKBONE)
    x, c_noise, cond = inputs(h=18, w=32)
    with pytest.raises(ValueError, match="multiples of 4"):
        model(x, c_noise, cond)
    x, c_noise, cond = inputs()
    with pytest.raises(ValueError, match="cond must have shape"):
        model(x, c_noise, cond[:, :, :2])


def test_config_validation():
    with pytest.raises(ValueError, match="groups"):
        LiteConfig(channels=(10, 16), groups=4)
    with pytest.raises(ValueError, match="heads"):
        LiteConfig(channels=(8, 12), groups=4, heads=8)
    assert LiteConfig(channels=(32, 64, 128), patch=4).spatial_factor == 16
    assert LiteConfig(channels=[8, 16]).channels == (8, 16)  # lists from JSON become tuples


def test_sinusoidal_embedding():
    emb = sinusoidal_embedding(torch.tensor([-2.0, 0.0, 2.0]), 16)
    assert emb.shape == (3, 16)
    assert emb.abs().max() <= 1.0
    # Distinct noise levels get distinct embeddings.
    assert (emb[0] - emb[2]).abs().max() > 0.1


def test_backward_reaches_every_parameter():
    model = randomize(LiteUNet(TINY_BACKBONE))
    x, c_noise, cond = inputs()
    model(x, c_noise, cond).square().mean().backward()
    dead = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert dead == []


def test_full_resolution_head_sees_single_pixels():
    """One pixel of the noisy sample changes the output at that pixel: detail bypasses the coarse levels."""
    model = randomize(LiteUNet(TINY_BACKBONE)).eval()
    x, c_noise, cond = inputs(b=1)
    base = model(x, c_noise, cond)
    x2 = x.clone()
    x2[0, 1, 0, 5, 7] += 1.0
    delta = (model(x2, c_noise, cond) - base).abs()[0, 1, 0]
    assert delta[5, 7] > 10 * delta[9:, :].max()  # far pixels barely move (only via the coarse path)
