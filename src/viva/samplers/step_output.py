"""The result of one stochastic sampler step and its Gaussian log-density (shared by Flow-SDE and CPS)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from viva.samplers.schedule import per_sample

LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


@dataclass(frozen=True)
class StepOutput:
    """One step x_sigma → x_sigma_next ~ N(mean, std²·I): the sample, its Gaussian and its log-density."""

    next_latents: Tensor  # [B, ...] in the latents' dtype
    mean: Tensor  # [B, ...] fp32
    std: Tensor  # [B] fp32; 0 marks a deterministic step
    log_prob: Tensor  # [B] fp32, averaged over non-batch dims; 0 where std == 0 (see `deterministic`)

    @property
    def deterministic(self) -> Tensor:
        """`[B]` bool: std == 0, so next_latents = mean; log_prob is 0 by convention and such steps are never trained."""
        return self.std == 0


def gaussian_log_prob(x: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """Log-density of x under N(mean, std²·I), averaged over non-batch dims, fp32 `[B]`; 0 where std == 0."""
    std_b = per_sample(std, mean)  # [B, 1, ...]
    # A safe std keeps NaN out of the gradient of the masked-out (deterministic) samples.
    safe = torch.where(std_b > 0, std_b, torch.ones_like(std_b))
    # x is a recorded sample, not a function of the weights: gradients flow through the mean only (as in Flow-GRPO).
    lp = -((x.detach().float() - mean) ** 2) / (2 * safe**2) - torch.log(safe) - LOG_SQRT_2PI  # [B, ...]
    lp = lp.mean(dim=tuple(range(1, lp.ndim)))  # [B]
    return torch.where(std > 0, lp, torch.zeros_like(lp))


def gaussian_step(
    mean: Tensor,
    std: Tensor,
    out_dtype: torch.dtype,
    *,
    noise: Optional[Tensor] = None,
    next_latents: Optional[Tensor] = None,
    generator: Optional[torch.Generator] = None,
) -> StepOutput:
    """Sample next_latents = mean + std·noise (or take the given ones) and score them under N(mean, std²·I)."""
    if noise is not None and next_latents is not None:
        raise ValueError("pass either noise (to sample) or next_latents (to score), not both")
    if next_latents is None:
        if noise is None:
            noise = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=torch.float32)
        if noise.shape != mean.shape:
            raise ValueError(f"noise shape {tuple(noise.shape)} != latents shape {tuple(mean.shape)}")
        # Cast before scoring so the recorded log_prob is exactly what step_log_prob recomputes from the stored latents.
        next_latents = (mean + per_sample(std, mean) * noise.float()).to(out_dtype)
    elif next_latents.shape != mean.shape:
        raise ValueError(f"next_latents shape {tuple(next_latents.shape)} != latents shape {tuple(mean.shape)}")
    return StepOutput(next_latents=next_latents, mean=mean, std=std, log_prob=gaussian_log_prob(next_latents, mean, std))
