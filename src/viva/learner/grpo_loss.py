"""Clipped GRPO policy objective + KL to the reference (VIVA eqs. 11–13; Flow-GRPO's per-step PPO ratio)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor


@dataclass(frozen=True)
class GRPOLossOutput:
    """The loss to backpropagate and its parts; metrics are detached 0-dim tensors (call .item() to log)."""

    loss: Tensor  # 0-dim, carries the gradient
    policy_loss: Tensor
    kl: Tensor  # mean KL (0 when no KL was given)
    clip_fraction: Tensor  # fraction of (sample, step) ratios outside [1 − clip_range, 1 + clip_range]
    ratio_mean: Tensor
    ratio_min: Tensor
    ratio_max: Tensor


def grpo_loss(
    log_prob: Tensor,
    old_log_prob: Tensor,
    advantages: Tensor,
    clip_range: float,
    kl: Optional[Tensor] = None,
    kl_coef: float = 0.0,
) -> GRPOLossOutput:
    """mean(max(−A·r, −A·clip(r, 1±ε))) + kl_coef·mean(kl), r = exp(log_prob − old_log_prob), over samples and steps."""
    if log_prob.shape != old_log_prob.shape or log_prob.ndim not in (1, 2):
        raise ValueError(f"grpo_loss: log_prob {tuple(log_prob.shape)} and old_log_prob {tuple(old_log_prob.shape)} "
                         f"must share a shape [B] or [B, T]")
    if advantages.shape != log_prob.shape[:1]:
        raise ValueError(f"grpo_loss: advantages must be [B={log_prob.shape[0]}], got {tuple(advantages.shape)}")
    if clip_range < 0:
        raise ValueError(f"grpo_loss: clip_range must be >= 0, got {clip_range}")
    adv = advantages.detach().float().reshape(-1, *([1] * (log_prob.ndim - 1)))  # [B] or [B, 1]
    # Gradients flow into log_prob only: old_log_prob and advantages are rollout-time constants.
    ratio = torch.exp(log_prob.float() - old_log_prob.detach().float())  # [B] or [B, T]
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_range, 1.0 + clip_range)
    policy_loss = torch.maximum(unclipped, clipped).mean()  # eq. 12, pessimistic bound
    kl_mean = torch.zeros((), device=log_prob.device)
    if kl is not None:
        if kl.shape != log_prob.shape:
            raise ValueError(f"grpo_loss: kl shape {tuple(kl.shape)} != log_prob shape {tuple(log_prob.shape)}")
        kl_mean = kl.float().mean()
    loss = policy_loss + kl_coef * kl_mean  # eq. 13
    r = ratio.detach()
    return GRPOLossOutput(
        loss=loss,
        policy_loss=policy_loss.detach(),
        kl=kl_mean.detach(),
        clip_fraction=((r - 1.0).abs() > clip_range).float().mean(),
        ratio_mean=r.mean(),
        ratio_min=r.min(),
        ratio_max=r.max(),
    )
