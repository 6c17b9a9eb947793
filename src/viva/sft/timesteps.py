"""Training noise levels for flow matching: uniform, logit-normal (SD3) or shifted (HunyuanVideo / SD3 shift).

All samplers return sigma in (0, 1] with sigma = 1 pure noise; timestep = sigma × 1000.
"""

from __future__ import annotations

from typing import Optional

import torch

TIMESTEP_SAMPLINGS = ("uniform", "logit_normal", "shifted")
SIGMA_MIN = 1e-3  # sigma = 0 makes the target v = noise − x0 unidentifiable from x0 alone; keep a floor


def shift_sigma(sigma: torch.Tensor, shift: float) -> torch.Tensor:
    """The timestep shift s·σ / (1 + (s − 1)·σ); s > 1 moves mass towards noise (SD3 eq. 23)."""
    return shift * sigma / (1.0 + (shift - 1.0) * sigma)


def sample_sigmas(
    batch_size: int,
    kind: str,
    shift: float = 1.0,
    generator: Optional[torch.Generator] = None,
) -> torch.Tensor:
    """Draw ``[batch_size]`` training sigmas with the named sampling; the result is fp32 on the CPU."""
    if kind == "uniform":
        u = torch.rand(batch_size, generator=generator)
    elif kind == "logit_normal":
        # SD3's logit-normal(0, 1): concentrates on mid-range sigmas where the velocity is hardest to predict.
        u = torch.sigmoid(torch.randn(batch_size, generator=generator))
    elif kind == "shifted":
        if shift <= 0:
            raise ValueError(f"timestep shift must be > 0, got {shift}")
        u = shift_sigma(torch.rand(batch_size, generator=generator), shift)
    else:
        raise ValueError(f"unknown timestep sampling {kind!r}; expected one of {TIMESTEP_SAMPLINGS}")
    return u.clamp(SIGMA_MIN, 1.0)  # [B]
