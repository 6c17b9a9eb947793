"""Rollout worker: samples groups of edits with Flow-SDE or CPS and records their trajectories and log-probs.

A plain class; `viva.cluster.ActorGroup` places N of them as Ray actors (STYLE rule 1). With
``cluster.rollout_sequence_parallel = k`` each k consecutive actors call `setup_sequence_parallel` to form one process
group and split every sample's video tokens (Ulysses); the group is one logical actor: every rank samples the same
request and returns the same group.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Optional

import numpy as np
import torch

from viva.config import GRPOConfig
from viva.models.conditioning import prepare_condition
from viva.records import (AdapterAck, AdapterUpdate, GroupRequest, RolloutGroup, WeightSyncError,
                          verify_update)

log = logging.getLogger(__name__)


def sde_steps_for(cfg: GRPOConfig, generator: torch.Generator) -> list[bool]:
    """Which denoising steps are stochastic for one group (the SDE window; the rest are ODE steps)."""
    from viva.samplers import sde_window

    s = cfg.sampler
    if s.kind == "ode":
        raise ValueError("sampler.kind=ode records no log-probs: Edit-GRPO needs sde or cps")
    start = s.window_start
    if s.random_window and s.window_size > 0:
        # Drawn from the group's own generator so a regenerated group gets the same window.
        start = int(torch.randint(0, s.num_steps - s.window_size + 1, (1,), generator=generator))
    return list(sde_window(s.num_steps, s.window_size, start))


class RolloutWorker:
    """Holds the DiT + LoRA and the VLM instructor; `sample_group` is the one method the driver calls per prompt."""

    def __init__(self, cfg: GRPOConfig, actor_index: int = 0) -> None:
        from viva.models.presets import build_editor
        from viva.samplers import sigma_schedule

        if cfg.cluster.torch_threads:
            torch.set_num_threads(cfg.cluster.torch_threads)
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.actor_index = actor_index
        self.editor = build_editor(cfg.model, cfg.lora).eval()
        if cfg.model.backend != "eager":
            from viva.models.backends import apply_backend

            # In place: LoRA weights keep their names, so `load_adapter` still swaps values after compiling.
            apply_backend(self.editor.dit, cfg.model.backend, cfg.model.allow_backend_fallback)
        self.sigmas = sigma_schedule(cfg.sampler.num_steps, cfg.sampler.shift)  # [T+1]
        self.policy_version = 0
        self.checksum = ""
        self.backend_sync = None  # BackendSync of the last load_adapter (refit seconds for TensorRT)
        self.sp_rank, self.sp_handle = 0, None  # sequence parallel: rank in the group, hooks on the DiT
        self.sp_group: Optional[Any] = None

    def rendezvous_address(self) -> tuple[str, int]:
        """(host, port) for this actor's sequence-parallel process group (called on the group's rank 0)."""
        from viva.training.distributed import rendezvous_address

        return rendezvous_address(self.cfg.cluster.address)

    def setup_sequence_parallel(self, rank: int, world_size: int, host: str, port: int) -> int:
        """Join a ``world_size``-rank process group (gloo on CPU, NCCL on GPU) and split the DiT's video tokens
        over it; every rank must then be sent the same requests. Returns the rank."""
        import torch.distributed as dist

        from viva.models.sequence_parallel import enable_sequence_parallel

        backend = "nccl" if self.cfg.model.device.startswith("cuda") else "gloo"
        dist.init_process_group(backend, init_method=f"tcp://{host}:{port}", rank=rank, world_size=world_size)
        self.sp_rank, self.sp_group = rank, dist.group.WORLD
        self.sp_handle = enable_sequence_parallel(self.editor.dit, self.sp_group, "cluster.rollout_sequence_parallel")
        return rank

    def ping(self) -> int:
        """Liveness probe; returns the adapter version this actor samples with."""
        return self.policy_version

    def load_adapter(self, update: AdapterUpdate) -> AdapterAck:
        """Verify the checksum, load the LoRA tensors, let the forward backend follow them, acknowledge the version."""
        from viva.models.backends import after_weight_sync
        from viva.models.lora import load_lora_state_dict

        if update.policy_version < self.policy_version:
            raise WeightSyncError(f"rollout actor {self.actor_index}: adapter v{update.policy_version} is older "
                                  f"than the loaded v{self.policy_version}")
        load_lora_state_dict(self.editor.dit, verify_update(update))
        # TensorRT engines hold their own weight copy: refit them now (compile / eager: a check / nothing).
        self.backend_sync = after_weight_sync(self.editor.dit)
        log.info("rollout actor %d: adapter v%d loaded; backend %s: %s in %.3f s", self.actor_index,
                 update.policy_version, self.backend_sync.backend, self.backend_sync.action, self.backend_sync.seconds)
        self.policy_version, self.checksum = update.policy_version, update.checksum
        return AdapterAck(self.actor_index, self.policy_version, self.checksum)

    @torch.no_grad()
    def sample_group(self, request: GroupRequest) -> RolloutGroup:
        """Sample G edits of one prompt; the request's seed fixes the noise, the SDE window and every step's noise."""
        from viva.samplers import denoise

        start = time.perf_counter()
        s = self.cfg.sampler
        g = request.group_size
        generator = torch.Generator().manual_seed(request.seed)
        pc = prepare_condition(self.editor, request.prompt, g)
        kind, sde_steps = s.kind, sde_steps_for(self.cfg, generator)
        if request.evaluate:
            kind, sde_steps = "ode", [False] * s.num_steps
        noise = torch.randn(pc.source.shape, generator=generator)  # [G, C, F', h, w]

        def velocity_fn(latents: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return self.editor.guided_velocity(latents, pc.source, sigma, pc.cond, pc.null_cond, s.guidance_scale,
                                               reference=pc.reference)

        traj = denoise(velocity_fn, noise, self.sigmas, kind=kind, eta=s.eta, sde_steps=sde_steps,
                       generator=generator, record=not request.evaluate)
        videos = self.editor.decode_latents(traj.final)  # [G, F, H, W, 3] uint8
        return RolloutGroup(
            request=request,
            policy_version=self.policy_version,
            edited_videos=videos,
            latents=traj.latents.float().numpy() if not request.evaluate else np.zeros((g, 0), np.float32),
            log_probs=traj.log_probs.float().numpy(),  # [G, T]
            sigmas=traj.sigmas.float().numpy(),
            sde_steps=traj.sde_steps.numpy().astype(bool),  # [T] (std = 0 steps are ODE)
            sample_seconds=time.perf_counter() - start,
        )
