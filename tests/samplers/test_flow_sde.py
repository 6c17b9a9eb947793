"""Flow-SDE step: true Gaussian log-density, eta = 0 is the ODE step, sigma = 1 guard, fp32, marginals."""

import math

import pytest
import torch
from torch.distributions import Normal

from viva.samplers import ode_step, sde_step


def _inputs(b=3, shape=(4, 2, 5, 5)):
    return torch.randn(b, *shape), torch.randn(b, *shape)  # velocity, latents


def _normal_log_prob(x, out):
    std = out.std.reshape(-1, *([1] * (x.ndim - 1))).expand_as(x)
    return Normal(out.mean, std).log_prob(x.float()).flatten(1).mean(1)


@pytest.mark.parametrize("sigma,sigma_next", [(0.8, 0.6), (1.0, 0.9), (0.05, 0.0)])
def test_log_prob_is_gaussian_density_sampled_and_given(sigma, sigma_next):
    v, x = _inputs()
    out = sde_step(v, x, sigma, sigma_next, eta=0.7)
    assert out.log_prob.shape == (3,) and out.std.shape == (3,) and bool((out.std > 0).all())
    assert torch.allclose(out.log_prob, _normal_log_prob(out.next_latents, out), atol=1e-5)
    given = torch.randn_like(x)
    scored = sde_step(v, x, sigma, sigma_next, eta=0.7, next_latents=given)
    assert torch.equal(scored.next_latents, given)
    assert torch.allclose(scored.log_prob, _normal_log_prob(given, scored), atol=1e-5)
    # A far-away latent is much less likely than a sample from the step.
    assert bool((scored.log_prob < out.log_prob).all())


def test_mean_and_std_follow_flow_grpo_formula():
    v, x = _inputs()
    s, sn, eta = 0.6, 0.45, 0.9
    std_dev_t = eta * math.sqrt(s / (1 - s))
    dt = sn - s
    mean = x * (1 + std_dev_t**2 / (2 * s) * dt) + v * (1 + std_dev_t**2 * (1 - s) / (2 * s)) * dt
    noise = torch.randn_like(x)
    out = sde_step(v, x, s, sn, eta, noise=noise)
    assert torch.allclose(out.mean, mean, atol=1e-6)
    assert torch.allclose(out.std, torch.full((3,), std_dev_t * math.sqrt(-dt)), atol=1e-7)
    assert torch.allclose(out.next_latents, mean + std_dev_t * math.sqrt(-dt) * noise, atol=1e-6)


def test_sigma_one_guard_uses_sigma_next():
    v, x = _inputs()
    out = sde_step(v, x, 1.0, 0.9, eta=0.5)
    assert torch.allclose(out.std, torch.full((3,), 0.5 * math.sqrt(1 / (1 - 0.9)) * math.sqrt(0.1)), atol=1e-6)
    assert bool(torch.isfinite(out.mean).all())


def test_eta_zero_is_the_ode_step_and_deterministic():
    v, x = _inputs()
    out = sde_step(v, x, 0.7, 0.5, eta=0.0)
    assert torch.allclose(out.next_latents, ode_step(v, x, 0.7, 0.5), atol=1e-6)
    assert bool(out.deterministic.all()) and bool((out.log_prob == 0).all())


def test_per_sample_sigmas_broadcast():
    v, x = _inputs()
    sig, nxt = torch.tensor([0.9, 0.5, 0.2]), torch.tensor([0.8, 0.3, 0.0])
    noise = torch.randn_like(x)
    out = sde_step(v, x, sig, nxt, eta=0.7, noise=noise)
    for i in range(3):
        one = sde_step(v[i:i + 1], x[i:i + 1], sig[i].item(), nxt[i].item(), eta=0.7, noise=noise[i:i + 1])
        assert torch.allclose(out.next_latents[i], one.next_latents[0], atol=1e-6)
        assert torch.allclose(out.log_prob[i], one.log_prob[0], atol=1e-6)


def test_bf16_inputs_compute_in_fp32():
    v, x = _inputs()
    out = sde_step(v.bfloat16(), x.bfloat16(), 1.0, 0.99, eta=1.0)
    assert out.next_latents.dtype == torch.bfloat16
    assert out.mean.dtype == torch.float32 and out.log_prob.dtype == torch.float32
    assert bool(torch.isfinite(out.log_prob).all())


def test_generator_reproducible():
    v, x = _inputs()
    a = sde_step(v, x, 0.5, 0.4, 0.7, generator=torch.Generator().manual_seed(3))
    b = sde_step(v, x, 0.5, 0.4, 0.7, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a.next_latents, b.next_latents)


def test_bad_inputs():
    v, x = _inputs()
    with pytest.raises(ValueError, match="sigma_next < sigma"):
        sde_step(v, x, 0.5, 0.6, 0.7)
    with pytest.raises(ValueError, match="velocity shape"):
        sde_step(v[:, :1], x, 0.5, 0.4, 0.7)
    with pytest.raises(ValueError, match="not both"):
        sde_step(v, x, 0.5, 0.4, 0.7, noise=x, next_latents=x)
    with pytest.raises(ValueError, match="eta"):
        sde_step(v, x, 0.5, 0.4, -0.1)


def test_sde_keeps_the_ode_marginals_monte_carlo():
    """x0 ~ N(0, a²) with its exact velocity E[eps − x0 | x]: SDE sampling from noise ends with variance ≈ a²."""
    from viva.samplers import denoise, sigma_schedule

    a2 = 0.25

    def velocity(x, s):  # linear posterior mean for Gaussian data: v = (s − (1−s)a²) / ((1−s)²a² + s²) · x
        s = s.reshape(-1, 1)
        return (s - (1 - s) * a2) / ((1 - s) ** 2 * a2 + s**2) * x

    gen = torch.Generator().manual_seed(0)
    x1 = torch.randn(20000, 1, generator=gen)
    traj = denoise(velocity, x1, sigma_schedule(100, 1.0), kind="sde", eta=0.7, generator=gen, record=False)
    assert abs(traj.final.var().item() - a2) < 0.03
