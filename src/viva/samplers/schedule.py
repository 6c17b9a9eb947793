"""Sigma schedules and per-step sigma handling (sigma = 1 is pure noise, sigma = 0 is data)."""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor

Sigma = Union[float, Tensor]  # a float, a 0-dim tensor or a [B] tensor


def sigma_schedule(num_steps: int, shift: float = 1.0) -> Tensor:
    """Sigmas from 1 to 0 (`[num_steps + 1]`, fp32) with the SD3 / HunyuanVideo shift s' = shift·s / (1 + (shift−1)·s)."""
    if num_steps <= 0:
        raise ValueError(f"sigma_schedule: num_steps must be > 0, got {num_steps}")
    if not shift > 0:
        raise ValueError(f"sigma_schedule: shift must be > 0, got {shift}")
    # Same grid as diffusers' HunyuanVideoPipeline: linspace(1, 0, N+1)[:-1] shifted by FlowMatchEulerDiscreteScheduler,
    # then a final 0.
    s = torch.linspace(1.0, 0.0, num_steps + 1, dtype=torch.float64)  # [T+1]
    shifted = shift * s / (1.0 + (shift - 1.0) * s)
    shifted[0], shifted[-1] = 1.0, 0.0  # exact endpoints whatever the rounding
    return shifted.to(torch.float32)


def batch_sigma(sigma: Sigma, batch_size: int, device: torch.device) -> Tensor:
    """A float / 0-dim / [B] sigma as an fp32 `[B]` tensor on `device` (one conversion path, so recomputation is exact)."""
    if isinstance(sigma, Tensor):
        if sigma.ndim == 0:
            return sigma.to(device=device, dtype=torch.float32).expand(batch_size)
        if sigma.shape != (batch_size,):
            raise ValueError(f"sigma must be a float, 0-dim or [B={batch_size}] tensor, got shape {tuple(sigma.shape)}")
        return sigma.to(device=device, dtype=torch.float32)
    return torch.full((batch_size,), float(sigma), dtype=torch.float32, device=device)


def step_sigmas(velocity: Tensor, latents: Tensor, sigma: Sigma, sigma_next: Sigma) -> tuple[Tensor, Tensor]:
    """Check one step's inputs; return (sigma, sigma_next) as fp32 `[B]` with 0 < sigma <= 1, 0 <= sigma_next < sigma."""
    if velocity.shape != latents.shape:
        raise ValueError(f"velocity shape {tuple(velocity.shape)} != latents shape {tuple(latents.shape)}")
    if latents.ndim < 2:
        raise ValueError(f"latents must be [B, ...] with at least 2 dims, got shape {tuple(latents.shape)}")
    s = batch_sigma(sigma, latents.shape[0], latents.device)  # [B]
    sn = batch_sigma(sigma_next, latents.shape[0], latents.device)  # [B]
    if not bool(((s > 0) & (s <= 1) & (sn >= 0) & (sn < s)).all()):
        raise ValueError(f"need 0 < sigma <= 1 and 0 <= sigma_next < sigma, got sigma={s.tolist()}, "
                         f"sigma_next={sn.tolist()}")
    return s, sn


def per_sample(t: Tensor, like: Tensor) -> Tensor:
    """Reshape a `[B]` tensor to `[B, 1, ..., 1]` so it broadcasts over `like`'s non-batch dims."""
    return t.reshape(t.shape[0], *([1] * (like.ndim - 1)))
