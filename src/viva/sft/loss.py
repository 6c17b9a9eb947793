"""Masked rectified-flow matching loss of VIVA eq. 3: L = (1 + w_m · M) · L_FM.

``normalization="area"`` averages the masked term over the mask region of each sample instead of over the whole
latent: ``L = mean(L_FM) + w_m · sum(M · L_FM) / sum(M)``. With the plain mean a small object edit (a few latent
cells) carries ~1/30 of the weight of a background change in the same batch; with ``area`` every sample's edit
region weighs the same, whatever its size.

The edit mask M lives in pixel space ``[B, F, H, W]``; it is resized to the latent grid ``[F', h, w]`` by max-pooling
so a latent cell counts as edited when any pixel it covers is edited (a small object keeps its weight after
downsampling, which an area average would dilute).
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F


MASK_NORMALIZATIONS = ("none", "area")


def resize_mask_to_latent(mask: torch.Tensor, latent_grid: Sequence[int]) -> torch.Tensor:
    """Max-pool a pixel mask ``[B, F, H, W]`` onto the latent grid ``(F', h, w)``; returns ``[B, 1, F', h, w]``."""
    if mask.ndim != 4:
        raise ValueError(f"mask must be [B, F, H, W], got shape {tuple(mask.shape)}")
    grid = tuple(int(n) for n in latent_grid)
    if len(grid) != 3:
        raise ValueError(f"latent_grid must be (F', h, w), got {grid}")
    mask5 = mask.float().unsqueeze(1)  # [B, 1, F, H, W]
    if tuple(mask5.shape[2:]) == grid:
        return mask5.clamp(0.0, 1.0)
    return F.adaptive_max_pool3d(mask5, grid).clamp(0.0, 1.0)  # [B, 1, F', h, w]


def flow_matching_target(x0: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
    """The rectified-flow velocity target v = noise − x0 (sigma = 1 is pure noise)."""
    return noise - x0


def add_noise(x0: torch.Tensor, noise: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """x_sigma = (1 − sigma)·x0 + sigma·noise, with ``sigma`` ``[B]`` broadcast over the latent dims."""
    s = sigma.to(x0.dtype).view(-1, *([1] * (x0.ndim - 1)))  # [B, 1, 1, 1, 1]
    return (1.0 - s) * x0 + s * noise


def masked_flow_matching_loss(
    velocity_pred: torch.Tensor,
    velocity_target: torch.Tensor,
    mask_latent: Optional[torch.Tensor],
    mask_weight: float,
    normalization: str = "none",
) -> torch.Tensor:
    """Scalar (1 + w_m·M)·‖v_pred − v_target‖² averaged over every element (eq. 3); M=None or w_m=0 gives L_FM.
    ``normalization="area"``: the masked term is averaged over each sample's mask region (module docstring)."""
    per_sample = masked_flow_matching_loss_per_sample(velocity_pred, velocity_target, mask_latent, mask_weight,
                                                      normalization)
    return per_sample.mean()


def masked_flow_matching_loss_per_sample(
    velocity_pred: torch.Tensor,
    velocity_target: torch.Tensor,
    mask_latent: Optional[torch.Tensor],
    mask_weight: float,
    normalization: str = "none",
) -> torch.Tensor:
    """Per-sample ``[B]`` version of :func:`masked_flow_matching_loss` (fp32)."""
    if normalization not in MASK_NORMALIZATIONS:
        raise ValueError(f"mask normalization must be one of {MASK_NORMALIZATIONS}, got {normalization!r}")
    if velocity_pred.shape != velocity_target.shape:
        raise ValueError(f"velocity_pred {tuple(velocity_pred.shape)} != velocity_target "
                         f"{tuple(velocity_target.shape)}")
    # fp32: the loss is a mean of many small squares; bf16 loses the low bits that carry the gradient signal.
    sq = (velocity_pred.float() - velocity_target.float()).pow(2)  # [B, C, F', h, w]
    if mask_latent is not None and mask_weight != 0.0:
        if mask_latent.ndim != sq.ndim or mask_latent.shape[0] != sq.shape[0] or mask_latent.shape[2:] != sq.shape[2:]:
            raise ValueError(f"mask_latent {tuple(mask_latent.shape)} does not broadcast to the latent "
                             f"{tuple(sq.shape)}; resize it with resize_mask_to_latent first")
        m = mask_latent.float().expand_as(sq)  # [B, C, F', h, w]
        if normalization == "area":  # mean(L_FM) + w_m * (mean of L_FM over the edit region); 0 for an empty mask
            region = (sq * m).flatten(1).sum(1) / m.flatten(1).sum(1).clamp_min(1.0)  # [B]
            return sq.flatten(1).mean(dim=1) + mask_weight * region
        sq = sq * (1.0 + mask_weight * m)  # eq. 3
    return sq.flatten(1).mean(dim=1)  # [B]
