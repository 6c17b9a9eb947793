"""Data-parallel gradient averaging and the process-group rendezvous shared by the SFT trainer, the Edit-GRPO
learner ranks and the sequence-parallel rollout actors."""

from __future__ import annotations

import socket
from typing import List, Optional

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


def free_port() -> int:
    """A TCP port free on this node right now (for the process-group rendezvous)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rendezvous_address(cluster_address: Optional[str]) -> tuple[str, int]:
    """(host, port) for a rank 0's process group: loopback when the Ray cluster is embedded (address None)."""
    host = "127.0.0.1" if cluster_address is None else socket.gethostbyname(socket.gethostname())
    return host, free_port()
