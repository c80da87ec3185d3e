"""Analytic checks of the diffusion core: for Gaussian and binary data the ideal denoiser is known.

For x0 ~ N(0, s^2 I), x = x0 + sigma n: D*(x; sigma) = x * s^2 / (s^2 + sigma^2).
Integrating the probability-flow ODE with D* from N(0, s^2 + sigma_max^2) must
give samples of std s; the EDM-weighted loss of D* with sigma_data = s is 1.
"""

import math

import pytest
import torch

from amodal.diffusion import (
    SAMPLERS,
    BinaryDenoiser,
    CFGDenoiser,
    Denoiser,
    append_dims,
    binary_scalings,
    edm_loss,
    karras_sigmas,
    SelfConditioning,
    sample_training_sigmas,
    vpred_scalings,
)


def ideal_denoiser(s):
    def denoise(x, sigma, **_):
        sigma = append_dims(torch.as_tensor(sigma, dtype=x.dtype), x.ndim)
        return x * s**2 / (s**2 + sigma**2)

    return denoise


class IdealBackbone(torch.nn.Module):
    """The network output F that makes the v-prediction Denoiser equal D*."""

    def __init__(self, s):
        super().__init__()
        self.s = s

    def forward(self, x_in, c_noise):
        sigma = (4 * c_noise).exp()
        c_skip, c_out, c_in, _ = vpred_scalings(sigma)
        x = x_in / append_dims(c_in, x_in.ndim)
        target = ideal_denoiser(self.s)(x, sigma)
        return (target - append_dims(c_skip, x.ndim) * x) / append_dims(c_out, x.ndim)


def test_append_dims_broadcasts_any_rank():
    sigma = torch.tensor([1.0, 2.0])
    assert append_dims(sigma, 5).shape == (2, 1, 1, 1, 1)
    assert append_dims(sigma, 1).shape == (2,)
    with pytest.raises(ValueError):
        append_dims(torch.zeros(2, 3), 1)


def test_vpred_scalings_match_svd_formulas():
    sigma = torch.tensor([0.002, 1.0, 700.0], dtype=torch.float64)
    c_skip, c_out, c_in, c_noise = vpred_scalings(sigma)
    torch.testing.assert_close(c_skip, 1 / (sigma**2 + 1))
    torch.testing.assert_close(c_out, -sigma / (sigma**2 + 1).sqrt())
    torch.testing.assert_close(c_in, 1 / (sigma**2 + 1).sqrt())
    torch.testing.assert_close(c_noise, 0.25 * sigma.log())


def test_precond_wrapper_reproduces_ideal_denoiser_on_5d_video():
    s = 0.7
    x = torch.randn(2, 3, 4, 5, 6, generator=torch.Generator().manual_seed(0))
    sigma = torch.tensor([0.3, 5.0])
    got = Denoiser(IdealBackbone(s))(x, sigma)
    torch.testing.assert_close(got, ideal_denoiser(s)(x, sigma), rtol=1e-4, atol=1e-5)


def test_karras_schedule_endpoints_and_order():
    sigmas = karras_sigmas(25, 0.002, 700.0)
    assert sigmas.shape == (26,)
    assert sigmas[0].item() == pytest.approx(700.0, rel=1e-5)
    assert sigmas[-2].item() == pytest.approx(0.002, rel=1e-4)
    assert sigmas[-1].item() == 0
    assert bool((sigmas[:-1] > sigmas[1:]).all())
    with pytest.raises(ValueError):
        karras_sigmas(0, 0.002, 700.0)


def _gaussian_sample_std(name, steps, s=0.5, sigma_max=80.0):
    # Every sampler is linear in x for a linear denoiser, so one unit-std input
    # sample carries the std of the output distribution exactly (no sampling noise).
    x = torch.full((1, 1), math.sqrt(s**2 + sigma_max**2), dtype=torch.float64)
    sigmas = karras_sigmas(steps, 0.002, sigma_max).double()
    return SAMPLERS[name](ideal_denoiser(s), x, sigmas).item()


@pytest.mark.parametrize("name", sorted(SAMPLERS))
def test_samplers_converge_to_gaussian_data_std(name):
    errors = [abs(_gaussian_sample_std(name, n) - 0.5) for n in (25, 100, 400)]
    assert errors[2] < 0.005  # converges to the exact answer
    assert errors[2] < errors[0]


def test_second_order_samplers_beat_euler_at_25_steps():
    err = {name: abs(_gaussian_sample_std(name, 25) - 0.5) for name in SAMPLERS}
    assert err["euler"] > 0.02  # first order: visibly off at 25 steps
    assert err["heun"] < err["euler"] / 2
    assert err["dpmpp_2m"] < err["euler"] / 2


def test_ideal_denoiser_has_unit_weighted_loss_at_every_sigma():
    # With sigma_data = s = 1, E[lambda(sigma) (D* - x0)^2] = 1 for every sigma.
    g = torch.Generator().manual_seed(3)
    x0 = torch.randn(200000, generator=g)
    for sigma_value in (0.05, 1.0, 20.0):
        sigma = torch.full((x0.shape[0],), sigma_value)
        loss = edm_loss(ideal_denoiser(1.0), x0, sigma, torch.randn(x0.shape, generator=g))
        assert loss.shape == x0.shape
        assert loss.mean().item() == pytest.approx(1.0, rel=0.02)


def test_training_sigmas_are_lognormal():
    sig = sample_training_sigmas(100000, 0.7, 1.6, torch.Generator().manual_seed(4))
    assert sig.log().mean().item() == pytest.approx(0.7, abs=0.02)
    assert sig.log().std().item() == pytest.approx(1.6, abs=0.02)


def _affine_denoiser(x, sigma, shift):
    return x * 0 + append_dims(shift, x.ndim)


def test_cfg_scalar_and_per_frame_scales():
    x = torch.zeros(1, 3, 2)
    sigma = torch.ones(1)
    cond, uncond = {"shift": torch.tensor([2.0])}, {"shift": torch.tensor([1.0])}
    for scale, expected in ((0.0, 1.0), (1.0, 2.0), (1.5, 2.5)):
        out = CFGDenoiser(_affine_denoiser, cond, uncond, scale)(x, sigma)
        assert torch.allclose(out, torch.full_like(x, expected))
    out = CFGDenoiser(_affine_denoiser, cond, uncond, torch.tensor([1.0, 2.0, 3.0]))(x, sigma)
    assert torch.allclose(out[0, :, 0], torch.tensor([2.0, 3.0, 4.0]))
    with pytest.raises(ValueError):
        CFGDenoiser(_affine_denoiser, cond, uncond, torch.tensor([1.0, 2.0]))(x, sigma)


class IdealBinaryBackbone(torch.nn.Module):
    """The logit of P(x0 = 1 | x) for independent elements with P(x0 = 1) = p, from the scaled input.

    For x0 in {-1, 1} and x = x0 + sigma n, the posterior logit is logit(p) + 2 x / sigma^2.
    """

    def __init__(self, p):
        super().__init__()
        self.prior_logit = math.log(p / (1 - p))

    def forward(self, x_in, c_noise):
        sigma = append_dims(torch.expm1(4 * c_noise).rsqrt(), x_in.ndim)  # c_noise = ln(1 + 1 / sigma^2) / 4
        x = x_in * (sigma**2 + 1)  # undo c_in
        return self.prior_logit + 2 * x / sigma**2


def test_binary_denoiser_is_the_posterior_mean_and_samples_the_prior():
    """With the ideal logits, D is E[x0 | x] in closed form and the ODE lands on {-1, 1} with the right share."""
    p = 0.3
    denoiser = BinaryDenoiser(IdealBinaryBackbone(p))
    x = torch.linspace(-3, 3, 7)[None]
    sigma = torch.tensor([0.7])
    like = lambda mean: torch.exp(-((x - mean) ** 2) / (2 * sigma**2))  # noqa: E731
    expected = (p * like(1) - (1 - p) * like(-1)) / (p * like(1) + (1 - p) * like(-1))
    torch.testing.assert_close(denoiser(x, sigma), expected, rtol=1e-5, atol=1e-6)
    c_in, c_noise = binary_scalings(sigma)
    torch.testing.assert_close(c_in * x, x / (1 + sigma**2))  # the Wiener estimate of x0
    torch.testing.assert_close(denoiser.logits(x, sigma), IdealBinaryBackbone(p)(x * c_in, c_noise))
    assert float(binary_scalings(torch.tensor(1e6))[1]) < 1e-12  # infinite noise: the regression's c_noise = 0

    sigmas = karras_sigmas(25, 0.02, 80.0)
    noise = torch.randn(4, 10_000, generator=torch.Generator().manual_seed(0))
    out = SAMPLERS["euler"](denoiser, noise * sigmas[0], sigmas)
    assert float((out.abs() - 1).abs().max()) < 0.05  # every element ends on -1 or 1
    assert abs(float((out > 0).float().mean()) - p) < 0.01  # in the prior's proportion


def test_self_conditioning_feeds_the_previous_estimate():
    seen = []

    def denoiser(x, sigma, self_cond):
        seen.append(self_cond.clone())
        return x * 0.5 + 1.0

    wrapped = SelfConditioning(denoiser)
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(0))
    first = wrapped(x, torch.ones(2))
    second = wrapped(x * 2, torch.ones(2))
    assert torch.equal(seen[0], torch.zeros_like(x))  # nothing to refine at the first call
    assert torch.equal(seen[1], first)
    assert torch.equal(wrapped.previous, second)


def test_cfg_passes_shared_keywords_to_both_branches():
    seen = {}

    def denoiser(x, sigma, c, extra):
        seen["batch"] = (x.shape[0], extra.shape[0])
        return x * c + extra

    x, sigma = torch.ones(2, 3), torch.ones(2)
    cond, uncond, extra = {"c": torch.full((2, 3), 2.0)}, {"c": torch.zeros(2, 3)}, torch.full((2, 3), 5.0)
    out = CFGDenoiser(denoiser, cond, uncond, 1.5)(x, sigma, extra=extra)
    assert seen["batch"] == (4, 4)
    torch.testing.assert_close(out, 5.0 + 1.5 * 2.0 * x)  # the shared term is in both branches, so guidance keeps it once
    torch.testing.assert_close(CFGDenoiser(denoiser, cond, uncond, 1.0)(x, sigma, extra=extra), 5.0 + 2.0 * x)
