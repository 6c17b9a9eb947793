"""Learner worker: one data-parallel rank of the Edit-GRPO learner (gloo on CPU, NCCL on GPU).

A plain class; the Ray driver places ``cluster.num_learner_workers`` of them and calls `setup` on each. With
``learner.fsdp`` the ranks shard the DiT (FSDP2) instead of all-reducing gradients; with
``learner.sequence_parallel = k`` each k consecutive ranks pool their groups and split every sample's video tokens.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any, List, Optional, Sequence

import torch

from viva.config import GRPOConfig
from viva.learner.learner import Learner
from viva.records import AdapterUpdate, LearnerMetrics, ScoredGroup
from viva.training.distributed import allreduce_mean_, rendezvous_address
from viva.training.distributed import free_port  # noqa: F401 - moved there; re-exported for the multi-rank tests


class LearnerWorker:
    """Wraps `Learner`; gradients are averaged across ranks with an all-reduce after each minibatch."""

    def __init__(self, cfg: GRPOConfig) -> None:
        self.cfg = cfg
        self.learner: Learner | None = None
        self.rank, self.world_size = 0, 1
        self.sp_group: Optional[Any] = None

    def rendezvous_address(self) -> tuple[str, int]:
        """(host, port) for rank 0's process group; loopback when the cluster is embedded."""
        return rendezvous_address(self.cfg.cluster.address)

    def setup(self, rank: int, world_size: int, host: str, port: int) -> int:
        """Join the process group (if world_size > 1) and build the learner; returns the rank."""
        self.rank, self.world_size = rank, world_size
        reducer = None
        if world_size > 1:
            import torch.distributed as dist

            from viva.models.sequence_parallel import new_sequence_parallel_group

            backend = "nccl" if self.cfg.model.device.startswith("cuda") else "gloo"
            dist.init_process_group(backend, init_method=f"tcp://{host}:{port}", rank=rank, world_size=world_size)
            self.sp_group = new_sequence_parallel_group(self.cfg.learner.sequence_parallel)

            def reducer(grads: List[torch.Tensor]) -> None:
                allreduce_mean_(grads, world_size)  # one collective per minibatch

        self.learner = Learner(self.cfg, grad_reducer=reducer, sp_group=self.sp_group)
        return rank

    def update(self, groups: Sequence[ScoredGroup], step: int) -> LearnerMetrics:
        """This rank's share of one update (sequence parallel: the share of its whole group of ranks)."""
        if self.sp_group is not None:
            from viva.models.sequence_parallel import gather_objects

            groups = gather_objects(list(groups), self.sp_group)
        return self.learner.update(groups, step)

    def adapter_update(self) -> AdapterUpdate:
        """The current LoRA for broadcast (returned into the object store once)."""
        return self.learner.adapter_update()

    def state_dict(self) -> dict:
        """Checkpointable learner state (FSDP: a collective, so every rank is called; rank 0 returns it)."""
        state = self.learner.state_dict()
        return state if self.rank == 0 or not self.learner.sharded else {}

    def load_state_dict(self, state: dict) -> None:
        """Restore learner state (every rank loads the same)."""
        self.learner.load_state_dict(state)

    def lora_files(self) -> dict:
        """The diffusers-format LoRA as {file name: bytes}, so the driver can write it on its own node."""
        with tempfile.TemporaryDirectory() as tmp:
            out = self.learner.save_lora(os.path.join(tmp, "lora"))
            return {p.name: p.read_bytes() for p in Path(out).iterdir() if p.is_file()}
