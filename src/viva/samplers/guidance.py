"""Classifier-free guidance on the instruction only (the source video conditions both branches)."""

from __future__ import annotations

from torch import Tensor


def cfg_combine(v_cond: Tensor, v_uncond: Tensor, scale: float) -> Tensor:
    """v_uncond + scale·(v_cond − v_uncond); scale 1 is the conditional velocity (default 2.0 in SamplerConfig)."""
    if v_cond.shape != v_uncond.shape:
        raise ValueError(f"cfg_combine: v_cond shape {tuple(v_cond.shape)} != v_uncond shape {tuple(v_uncond.shape)}")
    return v_uncond + scale * (v_cond - v_uncond)
