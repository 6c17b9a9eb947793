"""Data-parallel gradient averaging shared by the SFT trainer and the Edit-GRPO learner ranks."""

from __future__ import annotations

from typing import List

import torch
import torch.distributed as dist


def allreduce_mean_(grads: List[torch.Tensor], world_size: int) -> None:
    """Average ``grads`` over the ranks in place with one flat all-reduce (one collective per step, not one per
    tensor; gloo on CPU, NCCL on GPU)."""
    flat = torch.cat([g.reshape(-1) for g in grads])  # [sum of numel]
    dist.all_reduce(flat)
    flat /= world_size
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def average_gradients(params: List[torch.nn.Parameter], world_size: int) -> None:
    """Average the ``.grad`` of ``params`` over the ranks; a parameter unused on a rank (grad None) counts as 0."""
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    allreduce_mean_(grads, world_size)
    for p, g in zip(params, grads):
        p.grad = g
