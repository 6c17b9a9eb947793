"""Edit-GRPO learner: updates the LoRA with the clipped GRPO objective + KL to the adapter-disabled reference.

A plain class; data-parallel copies sum their gradients through ``grad_reducer`` (torch.distributed all-reduce in
the Ray learner workers), or, with ``learner.fsdp``, FSDP2 shards the DiT and reduce-scatters them
(`viva.learner.fsdp`). To change the objective, override nothing: replace `group_loss`'s call to `grpo_loss`.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch

from viva.config import GRPOConfig
from viva.models.conditioning import prepare_condition
from viva.records import AdapterUpdate, LearnerMetrics, ScoredGroup, make_update
from viva.training.atomic import atomic_dir


class Learner:
    """Owns the trainable LoRA and its AdamW state; `update` takes one step's scored groups."""

    def __init__(self, cfg: GRPOConfig, grad_reducer: Optional[Callable[[List[torch.Tensor]], None]] = None,
                 sp_group: Any = None) -> None:
        from viva.learner.fsdp import apply_layout
        from viva.models.presets import build_editor
        from viva.models.sequence_parallel import enable_sequence_parallel
        from viva.samplers import sigma_schedule

        if cfg.cluster.torch_threads:
            torch.set_num_threads(cfg.cluster.torch_threads)
        torch.manual_seed(cfg.seed)
        self.cfg = cfg
        self.editor = build_editor(cfg.model, cfg.lora)
        if sp_group is not None:  # this rank holds 1/degree of every sample's video tokens
            enable_sequence_parallel(self.editor.dit, sp_group)
        self.sharded = apply_layout(self.editor.dit, cfg.learner, cfg.model.device)  # FSDP2 / recompute
        self.params = [p for p in self.editor.parameters() if p.requires_grad]
        if not self.params:
            raise RuntimeError("learner: the model has no trainable (LoRA) parameters")
        g = cfg.grpo
        self.optimizer = torch.optim.AdamW(self.params, lr=g.lr, betas=tuple(g.betas), weight_decay=g.weight_decay)
        self.sigmas = sigma_schedule(cfg.sampler.num_steps, cfg.sampler.shift)  # [T+1]
        self.grad_reducer = None if self.sharded else grad_reducer  # FSDP reduce-scatters the gradients itself
        self.policy_version = 0
        self._ode_kls: list[float] = []  # this update's KL on the ODE steps (grpo.kl_steps = all)
        self._gathered_lora: Optional[Dict[str, torch.Tensor]] = None
        self._gather_lora()

    # -- weights ------------------------------------------------------------------------------------------------
    def _gather_lora(self) -> None:
        """Sharded: gather the full LoRA once per change of the weights (collective: every rank is here)."""
        if self.sharded:
            from viva.learner.fsdp import full_lora

            self._gathered_lora = full_lora(self.editor.dit)

    def lora_tensors(self) -> Dict[str, torch.Tensor]:
        """The full LoRA tensors (the copy gathered after the last change when sharded); no communication."""
        from viva.models.lora import lora_state_dict

        return dict(self._gathered_lora) if self.sharded else lora_state_dict(self.editor.dit)

    def adapter_update(self) -> AdapterUpdate:
        """The current LoRA, packed for broadcast."""
        return make_update(self.lora_tensors(), self.policy_version)

    def state_dict(self) -> dict:
        """Checkpointable state: LoRA, optimizer, policy_version (full tensors; sharded: a collective)."""
        from viva.learner.fsdp import full_optimizer_state

        optimizer = full_optimizer_state(self.optimizer) if self.sharded else self.optimizer.state_dict()
        return {"lora": self.lora_tensors(), "optimizer": optimizer, "policy_version": self.policy_version}

    def load_state_dict(self, state: dict) -> None:
        """Restore `state_dict` output (every rank loads the same full state)."""
        from viva.learner.fsdp import load_full_lora, load_full_optimizer_state
        from viva.models.lora import load_lora_state_dict

        if self.sharded:
            load_full_lora(self.editor.dit, state["lora"])
            load_full_optimizer_state(self.optimizer, self.params, state["optimizer"])
        else:
            load_lora_state_dict(self.editor.dit, state["lora"])
            self.optimizer.load_state_dict(state["optimizer"])
        self.policy_version = int(state["policy_version"])
        self._gather_lora()

    def save_lora(self, out_dir: str) -> Path:
        """Write the LoRA in diffusers' format with its adapter metadata, atomically (temp dir + rename)."""
        from viva.models.lora import save_lora

        out = Path(out_dir)
        with atomic_dir(out) as tmp:
            save_lora(self.editor.dit, tmp, self.cfg.lora, tensors=self.lora_tensors())
        return out

    # -- the update ---------------------------------------------------------------------------------------------
    def update(self, groups: Sequence[ScoredGroup], step: int) -> LearnerMetrics:
        """Inner epochs x minibatches of whole groups; one optimizer step per minibatch; policy_version += 1."""
        g = self.cfg.grpo
        per_mb = max(1, g.minibatch_size // max(1, groups[0].group.group_size))  # groups per minibatch
        gen = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + step)
        stats: list[dict] = []
        first_dev, grad_norms = None, []
        self._ode_kls = []
        for epoch in range(g.inner_epochs):
            # Keep rollout order on the first epoch so its first minibatch is evaluated exactly as sampled.
            order = list(range(len(groups))) if epoch == 0 else torch.randperm(len(groups), generator=gen).tolist()
            for i in range(0, len(order), per_mb):
                mb = [groups[j] for j in order[i:i + per_mb]]
                self.optimizer.zero_grad(set_to_none=True)
                mb_stats = self._accumulate(mb, gen)
                if first_dev is None:
                    first_dev = max(s["ratio_dev"] for s in mb_stats)
                grad_norms.append(self._step())
                stats.extend(mb_stats)
        self.policy_version += 1
        self._gather_lora()
        return self._summarise(stats, first_dev or 0.0, grad_norms)

    def _accumulate(self, mb: Sequence[ScoredGroup], gen: torch.Generator) -> list[dict]:
        terms = [(sg, t) for sg in mb for t in self._trained_steps(sg, gen)]
        out = []
        ode_kl = self.cfg.grpo.kl_steps == "all" and self.cfg.grpo.kl_coef > 0 and bool(terms)
        for sg in mb:
            steps = [t for s, t in terms if s is sg]
            if not steps and not ode_kl:
                continue
            # one condition (VLM, codec) per group, shared by its trained steps and its ODE-step KL
            pc = prepare_condition(self.editor, sg.group.request.prompt, sg.group.group_size)
            if steps:
                out.extend(self.group_loss(sg, steps, scale=1.0 / len(terms), pc=pc))
            if ode_kl:
                self._ode_kls.append(self.ode_kl_loss(sg, scale=1.0 / len(terms), pc=pc))
        return out

    def _trained_steps(self, sg: ScoredGroup, gen: torch.Generator) -> list[int]:
        steps = sg.group.trained_steps.tolist()
        k = max(1, int(math.ceil(self.cfg.grpo.timestep_fraction * len(steps))))
        if k < len(steps):
            pick = torch.randperm(len(steps), generator=gen)[:k].sort().values.tolist()
            steps = [steps[i] for i in pick]
        return steps

    def group_loss(self, sg: ScoredGroup, steps: Sequence[int], scale: float, pc: Any = None) -> list[dict]:
        """Backpropagate the GRPO loss of one group over its trained timesteps (eqs. 11–13); return per-term stats.
        ``pc``: the group's ``prepare_condition`` output, if the caller already has it."""
        from viva.learner.grpo_loss import grpo_loss
        from viva.learner.kl import gaussian_kl

        cfg, grp = self.cfg, sg.group
        pc = pc if pc is not None else prepare_condition(self.editor, grp.request.prompt, grp.group_size)
        latents = torch.from_numpy(grp.latents)  # [G, T+1, C, F', h, w]
        old_lp = torch.from_numpy(grp.log_probs)  # [G, T]
        adv = torch.from_numpy(sg.advantages).float()  # [G]
        stats = []
        for t in steps:
            step, ref = self._scored_step(pc, latents, t, cfg.sampler.kind, reference=cfg.grpo.kl_coef > 0)
            kl = None
            if ref is not None:
                kl = gaussian_kl(step.mean, ref.mean, step.std)
            out = grpo_loss(step.log_prob, old_lp[:, t], adv, cfg.grpo.clip_range, kl=kl, kl_coef=cfg.grpo.kl_coef)
            (out.loss * scale).backward()
            ratio = torch.exp(step.log_prob.detach() - old_lp[:, t])
            stats.append({"loss": float(out.loss.detach()), "policy_loss": float(out.policy_loss),
                          "kl": float(kl.detach().mean()) if kl is not None else 0.0,
                          "clip_fraction": float(out.clip_fraction), "ratio_min": float(ratio.min()),
                          "ratio_max": float(ratio.max()), "ratio_mean": float(ratio.mean()),
                          "ratio_dev": float((ratio - 1).abs().max())})
        return stats

    def _scored_step(self, pc: Any, latents: torch.Tensor, t: int, kind: str, reference: bool) -> tuple:
        """Step ``t`` of a recorded group scored under the current LoRA (with grad) and, if ``reference``, under the
        reference (adapters disabled, no grad): (StepOutput, StepOutput or None)."""
        from viva.models.lora import adapters_disabled
        from viva.samplers import step_log_prob

        cfg = self.cfg
        x, x_next = latents[:, t], latents[:, t + 1]
        sigma = self.sigmas[t].expand(x.shape[0])
        sigma_next = self.sigmas[t + 1].expand(x.shape[0])

        def velocity() -> torch.Tensor:
            return self.editor.guided_velocity(x, pc.source, sigma, pc.cond, pc.null_cond,
                                               cfg.sampler.guidance_scale, reference=pc.reference)

        step = step_log_prob(kind, velocity(), x, x_next, sigma, sigma_next, cfg.sampler.eta)
        if not reference:
            return step, None
        with torch.no_grad(), adapters_disabled(self.editor.dit):
            ref = step_log_prob(kind, velocity(), x, x_next, sigma, sigma_next, cfg.sampler.eta)
        return step, ref

    def ode_kl_loss(self, sg: ScoredGroup, scale: float, pc: Any = None) -> float:
        """``grpo.kl_steps = all``: backpropagate kl_coef x the KL to the reference on the group's deterministic (ODE)
        steps, each scored as a Flow-SDE step at ``sampler.eta`` (the mean a stochastic step would have had), weighted
        like one trained step. The adapter acts on every step; without this only the window's steps are anchored.
        Returns the mean KL. ``pc`` as in ``group_loss``."""
        from viva.learner.kl import gaussian_kl

        cfg, grp = self.cfg, sg.group
        ode = [t for t in range(len(grp.sde_steps)) if not bool(grp.sde_steps[t])]
        if not ode:
            return 0.0
        pc = pc if pc is not None else prepare_condition(self.editor, grp.request.prompt, grp.group_size)
        latents = torch.from_numpy(grp.latents)  # [G, T+1, C, F', h, w]
        kls = []
        for t in ode:
            step, ref = self._scored_step(pc, latents, t, "sde", reference=True)
            kl = gaussian_kl(step.mean, ref.mean, step.std).mean()
            (cfg.grpo.kl_coef * kl * scale).backward()
            kls.append(float(kl.detach()))
        return float(np.mean(kls))

    def _step(self) -> float:
        if self.sharded:
            from viva.learner.fsdp import clip_grad_norm

            norm = clip_grad_norm(self.params, self.cfg.grpo.max_grad_norm)
            self.optimizer.step()
            return norm
        grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in self.params]
        if self.grad_reducer is not None:
            self.grad_reducer(grads)
            for p, gr in zip(self.params, grads):
                p.grad = gr
        norm = torch.nn.utils.clip_grad_norm_(self.params, self.cfg.grpo.max_grad_norm)
        self.optimizer.step()
        return float(norm)

    def _summarise(self, stats: list[dict], first_dev: float, grad_norms: list[float]) -> LearnerMetrics:
        def avg(key: str) -> float:
            return float(np.mean([s[key] for s in stats])) if stats else 0.0

        return LearnerMetrics(
            policy_version=self.policy_version, loss=avg("loss"), policy_loss=avg("policy_loss"), kl=avg("kl"),
            clip_fraction=avg("clip_fraction"), ratio_mean=avg("ratio_mean"),
            ratio_min=min((s["ratio_min"] for s in stats), default=1.0),
            ratio_max=max((s["ratio_max"] for s in stats), default=1.0),
            first_ratio_max_dev=first_dev, grad_norm=float(np.mean(grad_norms)) if grad_norms else 0.0,
            num_terms=len(stats), kl_ode=float(np.mean(self._ode_kls)) if self._ode_kls else 0.0,
        )
