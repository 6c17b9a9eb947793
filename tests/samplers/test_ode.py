"""ODE step and loop: a perfect velocity carries pure noise exactly onto x0."""

import torch

from viva.samplers import denoise, ode_step, sigma_schedule


def test_ode_step_formula_and_dtype():
    v, x = torch.randn(2, 4, 3), torch.randn(2, 4, 3)
    assert torch.allclose(ode_step(v, x, 0.6, 0.4), x - 0.2 * v, atol=1e-6)
    assert ode_step(v.bfloat16(), x.bfloat16(), 0.6, 0.4).dtype == torch.bfloat16


def test_perfect_velocity_lands_on_x0():
    x0, eps = torch.randn(2, 4, 3, 8, 8), torch.randn(2, 4, 3, 8, 8)
    traj = denoise(lambda x, s: eps - x0, eps, sigma_schedule(12, 7.0), kind="ode", eta=0.0)
    assert torch.allclose(traj.final, x0, atol=1e-5)
    # Every intermediate latent lies on the straight path x_sigma = (1 − sigma)·x0 + sigma·eps.
    for i, s in enumerate(traj.sigmas.tolist()):
        assert torch.allclose(traj.latents[:, i], (1 - s) * x0 + s * eps, atol=1e-5)
