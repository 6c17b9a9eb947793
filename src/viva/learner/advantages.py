"""Group-normalised advantages (VIVA eq. 11; GRPO): each sample's reward against its own prompt's group."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor


def group_advantages(
    rewards: Union[Tensor, Sequence[float]], group_size: int, eps: float = 1e-4, clip: Optional[float] = None
) -> Tensor:
    """(r − group mean) / (group std + eps) over G consecutive samples, fp32 `[N]`; a zero-std group gets exactly 0."""
    r = torch.as_tensor(rewards, dtype=torch.float32)  # [N]
    if r.ndim != 1:
        raise ValueError(f"group_advantages: rewards must be 1-D [N], got shape {tuple(r.shape)}")
    if group_size <= 0 or r.shape[0] % group_size != 0:
        raise ValueError(f"group_advantages: {r.shape[0]} rewards do not split into groups of {group_size}")
    bad = (~torch.isfinite(r)).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"group_advantages: non-finite rewards at samples {bad}: {r[bad].tolist()}")
    if clip is not None and not clip > 0:
        raise ValueError(f"group_advantages: clip must be > 0 or None, got {clip}")
    groups = r.reshape(-1, group_size)  # [N/G, G]
    mean = groups.mean(dim=1, keepdim=True)  # [N/G, 1]
    std = groups.std(dim=1, keepdim=True, unbiased=False)  # population std, as Flow-GRPO's per-prompt tracker (np.std)
    adv = (groups - mean) / (std + eps)  # [N/G, G]
    # Identical rewards carry no signal: force exact zeros (the float mean can differ from them by rounding).
    constant = (groups.max(dim=1, keepdim=True).values == groups.min(dim=1, keepdim=True).values)  # [N/G, 1]
    adv = torch.where(constant, torch.zeros_like(adv), adv)
    if clip is not None:
        adv = adv.clamp(-clip, clip)
    return adv.reshape(-1)  # [N]
