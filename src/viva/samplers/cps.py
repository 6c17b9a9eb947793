"""Coefficients-Preserving Sampling step (CPS; Wang & Yu 2025, "Coefficients-Preserving Sampling for Reinforcement
Learning with Flow Matching", arXiv 2509.05952; Flow-GRPO's `sde_type="cps"`).

The next latent keeps the marginal's coefficients exactly: x_next = (1 − sigma_next)·x0_hat + sigma_next·(unit noise),
split into a deterministic part along eps_hat and fresh noise of std sigma_next·sin(eta·pi/2).
"""

from __future__ import annotations

import math
from typing import Optional

import torch
from torch import Tensor

from viva.samplers.schedule import Sigma, per_sample, step_sigmas
from viva.samplers.step_output import StepOutput, gaussian_step


def cps_gaussian(velocity: Tensor, latents: Tensor, sigma: Sigma, sigma_next: Sigma, eta: float) -> tuple[Tensor, Tensor]:
    """The Gaussian N(mean [B, ...], std² [B]) of one CPS step, both fp32."""
    if not 0 <= eta <= 1:
        raise ValueError(f"cps_step: eta must be in [0, 1] (std = sigma_next·sin(eta·pi/2)), got {eta}")
    s, sn = step_sigmas(velocity, latents, sigma, sigma_next)  # [B], [B]
    x, v = latents.float(), velocity.float()  # [B, ...] fp32, as in the SDE step
    x0_hat = x - per_sample(s, x) * v  # [B, ...] predicted data
    eps_hat = x + per_sample(1 - s, x) * v  # [B, ...] predicted noise
    std = sn * math.sin(eta * math.pi / 2)  # [B]; 0 at the last step (sigma_next = 0) and for eta = 0
    # sqrt(sigma_next² − std²) = sigma_next·cos(eta·pi/2); the clamp keeps eta = 1 rounding from giving NaN.
    keep = torch.sqrt((sn**2 - std**2).clamp_min(0))  # [B]
    mean = per_sample(1 - sn, x) * x0_hat + per_sample(keep, x) * eps_hat  # [B, ...]
    return mean, std


def cps_step(
    velocity: Tensor,
    latents: Tensor,
    sigma: Sigma,
    sigma_next: Sigma,
    eta: float,
    noise: Optional[Tensor] = None,
    next_latents: Optional[Tensor] = None,
    *,
    generator: Optional[torch.Generator] = None,
) -> StepOutput:
    """One CPS step: x_next ~ N((1−σ')·x0_hat + sqrt(σ'² − std²)·eps_hat, std²) with std = σ'·sin(eta·pi/2)."""
    mean, std = cps_gaussian(velocity, latents, sigma, sigma_next, eta)
    return gaussian_step(mean, std, latents.dtype, noise=noise, next_latents=next_latents, generator=generator)
