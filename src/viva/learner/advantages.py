"""Group-normalised advantages (VIVA eq. 11; GRPO): each sample's reward against its own prompt's group."""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch
from torch import Tensor

from viva.config import ADV_STD


def group_advantages(
    rewards: Union[Tensor, Sequence[float]], group_size: int, eps: float = 1e-4, clip: Optional[float] = None,
    std: str = "group",
) -> Tensor:
    """(r − group mean) / (s + eps) over G consecutive samples, fp32 `[N]`; a zero-std group gets exactly 0.

    ``std="group"``: s is each group's own std (GRPO, VIVA eq. 11). ``std="pooled"``: one s for all the groups
    given, sqrt of their mean within-group variance, so a group whose rewards barely differ gets small advantages
    instead of its noise scaled up to unit size, and the advantages still have unit std over the step (as
    Flow-GRPO's ``global_std``, but on group-centred rewards, so the spread between prompts does not shrink them).
    """
    if std not in ADV_STD:
        raise ValueError(f"group_advantages: std must be one of {ADV_STD}, got {std!r}")
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
    spread = groups.std(dim=1, keepdim=True, unbiased=False)  # population std, as Flow-GRPO's tracker (np.std)
    if std == "pooled":
        spread = spread.pow(2).mean().sqrt().expand_as(spread)  # [N/G, 1]: one scale for the whole step
    adv = (groups - mean) / (spread + eps)  # [N/G, G]
    # Identical rewards carry no signal: force exact zeros (the float mean can differ from them by rounding).
    constant = (groups.max(dim=1, keepdim=True).values == groups.min(dim=1, keepdim=True).values)  # [N/G, 1]
    adv = torch.where(constant, torch.zeros_like(adv), adv)
    if clip is not None:
        adv = adv.clamp(-clip, clip)
    return adv.reshape(-1)  # [N]
