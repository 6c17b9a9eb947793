"""Flow-SDE step (Flow-GRPO, Liu et al. 2025, arXiv 2505.05470, eq. 14): the reverse SDE with the ODE's marginals.

dx = [v + sigma_t²/(2t)·(x + (1−t)·v)] dt + sigma_t dw with sigma_t = eta·sqrt(t / (1−t)), discretised by
Euler–Maruyama exactly as Flow-GRPO's `sde_step_with_logprob`.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from viva.samplers.schedule import Sigma, per_sample, step_sigmas
from viva.samplers.step_output import StepOutput, gaussian_step


def sde_gaussian(velocity: Tensor, latents: Tensor, sigma: Sigma, sigma_next: Sigma, eta: float) -> tuple[Tensor, Tensor]:
    """The Gaussian N(mean [B, ...], std² [B]) of one Flow-SDE step, both fp32."""
    if eta < 0:
        raise ValueError(f"sde_step: eta must be >= 0, got {eta}")
    s, sn = step_sigmas(velocity, latents, sigma, sigma_next)  # [B], [B]
    # fp32: bf16 overflows in the SDE mean (std_dev_t² / sigma grows as sigma -> 1).
    x, v = latents.float(), velocity.float()  # [B, ...]
    # Guard sigma = 1 (1/(1-sigma) is infinite): put sigma_next in the denominator, as Flow-GRPO puts sigmas[1]
    # (the next-largest sigma, i.e. sigma_next of the first step) there.
    denom = 1 - torch.where(s >= 1, sn, s)  # [B]
    if not bool((denom > 0).all()):
        raise ValueError(f"sde_step: sigma and sigma_next are both 1, the SDE noise is undefined (sigma={s.tolist()})")
    std_dev_t = eta * torch.sqrt(s / denom)  # [B], sigma_t of eq. 14
    dt = sn - s  # [B], < 0
    a = 1 + std_dev_t**2 / (2 * s) * dt  # coefficient of x
    b = (1 + std_dev_t**2 * (1 - s) / (2 * s)) * dt  # coefficient of v
    mean = x * per_sample(a, x) + v * per_sample(b, x)  # [B, ...]
    std = std_dev_t * torch.sqrt(-dt)  # [B]; at the last step (sigma_next = 0) still > 0 since dt < 0
    return mean, std


def sde_step(
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
    """One Flow-SDE step (Flow-GRPO eq. 14): sample (or score the given) next latents; eta = 0 is the Euler ODE step."""
    mean, std = sde_gaussian(velocity, latents, sigma, sigma_next, eta)
    return gaussian_step(mean, std, latents.dtype, noise=noise, next_latents=next_latents, generator=generator)
