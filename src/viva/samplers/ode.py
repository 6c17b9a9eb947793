"""Euler step of the probability-flow ODE of rectified flow: x_next = x + (sigma_next − sigma)·v."""

from __future__ import annotations

from torch import Tensor

from viva.samplers.schedule import Sigma, per_sample, step_sigmas


def ode_step(velocity: Tensor, latents: Tensor, sigma: Sigma, sigma_next: Sigma) -> Tensor:
    """One Euler step x + (sigma_next − sigma)·v (v = noise − x0), computed in fp32, returned in the latents' dtype."""
    s, sn = step_sigmas(velocity, latents, sigma, sigma_next)  # [B], [B]
    x = latents.float() + per_sample(sn - s, latents) * velocity.float()  # [B, ...]
    return x.to(latents.dtype)
