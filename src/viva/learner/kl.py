"""KL between the policy's and the reference's Gaussian for one stochastic step (VIVA eq. 13; Flow-GRPO).

Both Gaussians share the step's std (it depends on sigma and eta only), so KL = ||mean − ref_mean||² / (2·std²).
We AVERAGE over the non-batch dims instead of summing, the same reduction as the step log-probs (StepOutput.log_prob),
so kl_coef weighs the two terms of the loss on one scale whatever the latent size (Flow-GRPO does the same).
"""

from __future__ import annotations

from typing import Union

import torch
from torch import Tensor


def gaussian_kl(mean: Tensor, ref_mean: Tensor, std: Union[Tensor, float]) -> Tensor:
    """KL(N(mean, std²) || N(ref_mean, std²)) per sample, averaged over non-batch dims: fp32 `[B]`."""
    if mean.shape != ref_mean.shape:
        raise ValueError(f"gaussian_kl: mean shape {tuple(mean.shape)} != ref_mean shape {tuple(ref_mean.shape)}")
    std = torch.as_tensor(std, dtype=torch.float32, device=mean.device)
    if std.ndim == 1 and mean.ndim > 1:
        std = std.reshape(std.shape[0], *([1] * (mean.ndim - 1)))  # [B] -> [B, 1, ...]
    if not bool((std > 0).all()):
        raise ValueError("gaussian_kl: std must be > 0 (deterministic steps have no KL and are never trained)")
    # The reference mean comes from the adapter-disabled model: no gradient flows into it.
    kl = (mean.float() - ref_mean.detach().float()) ** 2 / (2 * std**2)  # [B, ...]
    return kl.mean(dim=tuple(range(1, kl.ndim))) if kl.ndim > 1 else kl
