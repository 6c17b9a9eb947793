"""Degradations that make the rejected side of the toy PickScore's preference pairs: blur, noise, blocking and
colour banding, applied to whole batches of uint8 frames at once."""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

KINDS = ("blur", "noise", "block", "banding")


def _blur(x: torch.Tensor) -> torch.Tensor:
    k = torch.tensor([1.0, 4.0, 6.0, 4.0, 1.0]) / 16.0
    kernel = (k[:, None] * k[None, :]).expand(3, 1, 5, 5)
    return F.conv2d(F.pad(x, (2, 2, 2, 2), mode="replicate"), kernel, groups=3)


def _block(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(F.avg_pool2d(x, 4), scale_factor=4, mode="nearest")


def degrade(frames: torch.Tensor, rng: np.random.Generator, kind: Optional[int] = None) -> torch.Tensor:
    """uint8 ``[N, H, W, 3]`` -> a degraded copy: each frame gets one kind of :data:`KINDS`, drawn by ``rng``
    unless ``kind`` (an index into :data:`KINDS`) is given."""
    x = frames.permute(0, 3, 1, 2).float()  # [N, 3, H, W]
    noise = torch.from_numpy(rng.normal(0.0, 40.0, size=tuple(x.shape)).astype(np.float32))
    options = torch.stack([_blur(_blur(x)), x + noise, _block(x), torch.floor(x / 96.0) * 96.0 + 32.0])  # [4, N, ...]
    kinds = rng.integers(len(KINDS), size=len(x)) if kind is None else np.full(len(x), kind)
    out = options[torch.from_numpy(kinds), torch.arange(len(x))]  # [N, 3, H, W]
    return out.clamp(0, 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous()
