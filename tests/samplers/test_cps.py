"""CPS step: keeps the coefficients of x0 and noise, true Gaussian log-density, deterministic last step."""

import math

import pytest
import torch
from torch.distributions import Normal

from viva.samplers import cps_step, ode_step


def _perfect(shape=(4, 3, 2, 6, 6), sigma=0.7):
    x0, eps = torch.randn(shape), torch.randn(shape)
    return x0, eps, eps - x0, (1 - sigma) * x0 + sigma * eps  # velocity v = eps − x0, x_sigma


@pytest.mark.parametrize("eta", [0.3, 0.7, 1.0])
def test_coefficients_preserved_analytically(eta):
    s, sn = 0.7, 0.5
    x0, eps, v, x = _perfect(sigma=s)
    z = torch.randn_like(x)
    out = cps_step(v, x, s, sn, eta, noise=z)
    std = sn * math.sin(eta * math.pi / 2)
    keep = math.sqrt(sn**2 - std**2)
    # x_next = (1 − sn)·x0 + keep·eps + std·z, with keep² + std² = sn².
    assert torch.allclose(out.next_latents, (1 - sn) * x0 + keep * eps + std * z, atol=1e-5)
    assert math.isclose(keep**2 + out.std[0].item() ** 2, sn**2, rel_tol=1e-5)


def test_coefficients_preserved_monte_carlo():
    s, sn = 0.8, 0.55
    x0, eps, v, x = _perfect(shape=(64, 4096), sigma=s)
    out = cps_step(v, x, s, sn, eta=0.7, generator=torch.Generator().manual_seed(123))  # not the global seed 0
    xn, x0f = out.next_latents.flatten(), x0.flatten()
    coef = (xn * x0f).mean() / (x0f * x0f).mean()  # regression coefficient on x0 (x0 ⟂ noise)
    assert abs(coef.item() - (1 - sn)) < 0.01
    assert abs((xn - (1 - sn) * x0f).var().item() - sn**2) < 0.01


def test_log_prob_is_gaussian_density():
    x0, eps, v, x = _perfect()
    out = cps_step(v, x, 0.7, 0.5, eta=0.7)
    given = torch.randn_like(x)
    for o, target in [(out, out.next_latents), (cps_step(v, x, 0.7, 0.5, 0.7, next_latents=given), given)]:
        std = o.std.reshape(-1, 1, 1, 1, 1).expand_as(target)
        ref = Normal(o.mean, std).log_prob(target).flatten(1).mean(1)
        assert torch.allclose(o.log_prob, ref, atol=1e-5)


def test_eta_zero_and_last_step_are_deterministic():
    x0, eps, v, x = _perfect()
    out = cps_step(v, x, 0.7, 0.5, eta=0.0)
    assert torch.allclose(out.next_latents, ode_step(v, x, 0.7, 0.5), atol=1e-5)
    last = cps_step(v, x, 0.7, 0.0, eta=0.7)
    assert bool(last.deterministic.all()) and bool((last.log_prob == 0).all())
    assert torch.allclose(last.next_latents, x0, atol=1e-5)  # x0_hat with a perfect velocity


def test_eta_out_of_range():
    x0, eps, v, x = _perfect()
    with pytest.raises(ValueError, match="eta"):
        cps_step(v, x, 0.7, 0.5, eta=1.5)
