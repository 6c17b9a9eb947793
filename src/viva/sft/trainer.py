"""SFT of the editing model (VIVA §3.2): masked rectified-flow matching (eq. 3) on paired video / image edits.

Reads ``setup → train → cleanup``. The VLM instructor is frozen (its hidden states are cached by the editor); the
projector, token refiner and DiT train (``sft.trainable``). Data parallelism is plain ``torch.distributed``: the
caller (``viva.sft.ray_trainer`` under Ray Train, or a test) initialises the process group; gradients are averaged
with one flat all-reduce. Every batch, noise draw and sigma is a pure function of ``(seed, rank, step)``.

Run: ``viva sft --config configs/sft/toy.yaml``
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import json
import logging
import math
import types
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Optional

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from viva.config import SFTConfig, SFTSection, to_yaml
from viva.sft.data import MixedPairSampler, PairBatch
from viva.sft.ema import EMA
from viva.sft.loss import add_noise, flow_matching_target, masked_flow_matching_loss, resize_mask_to_latent
from viva.sft.metrics import MetricsLogger
from viva.sft.model import build_sft_editor, select_trainable
from viva.sft.pair_sources import build_curriculum_source, build_pair_sources
from viva.sft.timesteps import sample_sigmas
from viva.sft.train_state import TrainStateMeta, latest_checkpoint, load_train_state, save_train_state
from viva.training.atomic import atomic_write_text
from viva.training.distributed import average_gradients

if TYPE_CHECKING:
    from viva.models.vlm_instructor import TextCondition

log = logging.getLogger(__name__)

RESULT_FILE = "result.json"


@dataclass(frozen=True)
class SFTResult:
    """What an SFT run produced."""

    output_dir: str
    base_checkpoint: Optional[str]  # directory written by save_base_checkpoint (rank 0 only)
    steps: int
    final_loss: float  # mean loss over the last logging interval
    skipped_samples: int
    samples_per_s: float  # this rank's training throughput, first step excluded


def write_result(result: SFTResult, path: Path) -> None:
    """Write the run's :class:`SFTResult` as JSON atomically (the Ray driver reads rank 0's from here)."""
    atomic_write_text(path, json.dumps(dataclasses.asdict(result)))


def read_result(path: Path) -> SFTResult:
    """Read a result written by :func:`write_result`."""
    return SFTResult(**json.loads(Path(path).read_text()))


def in_refine_phase(s: SFTSection, step: int) -> bool:
    """Whether ``step`` (0-based) is in the refinement phase (``step >= sft.refine_from_step``)."""
    return s.refine_from_step is not None and step >= s.refine_from_step


def timestep_shift_at(s: SFTSection, step: int) -> float:
    """The training timestep shift of ``step``: ``refine_timestep_shift`` in the refinement phase if set."""
    if in_refine_phase(s, step) and s.refine_timestep_shift is not None:
        return s.refine_timestep_shift
    return s.timestep_shift


def lr_multiplier(s: SFTSection) -> Callable[[int], float]:
    """Linear warmup over ``warmup_steps``, then constant / cosine / linear decay to 0 at ``steps``; times
    ``refine_lr / lr`` in the refinement phase."""

    def schedule(step: int) -> float:
        if s.warmup_steps > 0 and step < s.warmup_steps:
            return (step + 1) / s.warmup_steps
        if s.schedule == "constant":
            return 1.0
        progress = min(1.0, (step - s.warmup_steps) / max(1, s.steps - s.warmup_steps))
        if s.schedule == "cosine":
            return 0.5 * (1.0 + math.cos(math.pi * progress))
        return 1.0 - progress  # linear

    def f(step: int) -> float:
        scale = s.refine_lr / s.lr if s.refine_lr is not None and in_refine_phase(s, step) else 1.0
        return schedule(step) * scale

    return f


def step_generator(seed: int, rank: int, step: int) -> torch.Generator:
    """A CPU generator for one step's noise, sigmas and instruction dropout: resumable without RNG state."""
    g = torch.Generator()
    g.manual_seed(int(np.random.SeedSequence([seed, rank, step, 7]).generate_state(1, np.uint64)[0] >> 1))
    return g


@dataclass(frozen=True)
class PreparedBatch:
    """One step's training inputs (no gradient): what :meth:`SFTTrainer.prepare` makes from a :class:`PairBatch`."""

    batch: PairBatch
    x0: torch.Tensor  # target latents [B, C, F', h, w]
    source: torch.Tensor  # source latents [B, C, F', h, w]
    reference: Optional[torch.Tensor]  # reference latents [B, C, 1, h, w] | None
    sigma: torch.Tensor  # [B]
    noise: torch.Tensor  # [B, C, F', h, w]
    cond: "TextCondition"  # VLM states of the (dropout-applied) instructions
    mask: torch.Tensor  # edit mask on the latent grid [B, 1, F', h, w]


class SFTTrainer:
    """One data-parallel rank of the SFT recipe: ``setup()``, ``train()``, ``cleanup()``."""

    def __init__(self, cfg: SFTConfig, rank: int = 0, world_size: int = 1) -> None:
        self.cfg, self.rank, self.world_size = cfg, rank, world_size
        self.device = torch.device(cfg.model.device)
        self.out = Path(cfg.output_dir)
        self.start_step = 0

    # 1. Setup ------------------------------------------------------------------------------------------------
    def setup(self, editor: Optional[nn.Module] = None) -> None:
        """Build the editor (or take a prebuilt one), trainable weights, optimizer, schedule, EMA, data; resume."""
        cfg, s = self.cfg, self.cfg.sft
        torch.manual_seed(cfg.seed)  # same initial weights on every rank (then broadcast to be sure)
        self.editor = (editor if editor is not None else build_sft_editor(cfg)).to(self.device)
        self.editor.vlm.requires_grad_(False)
        self.params = select_trainable(self.editor.dit, s.trainable)
        if s.gradient_checkpointing:
            self.editor.dit.transformer.enable_gradient_checkpointing()
        self.optimizer = torch.optim.AdamW(self.params.values(), lr=s.lr, weight_decay=s.weight_decay)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, lr_multiplier(s))
        self.ema = EMA(self.params, s.ema_decay) if s.ema_decay > 0 else None
        video, image = build_pair_sources(cfg)
        self.sampler = MixedPairSampler(video, image, s.image_prob, s.batch_size, cfg.seed, self.rank,
                                        build_curriculum_source(cfg), s.curriculum_steps)
        self.metrics = MetricsLogger(cfg, enabled=self.rank == 0)
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(self.out / "config.yaml", to_yaml(cfg))
        if cfg.resume:
            self._resume()
        self._broadcast_weights()

    def _resume(self) -> None:
        ckpt = latest_checkpoint(self.out / "checkpoints")
        if ckpt is None:
            log.info("resume requested but no checkpoint under %s; starting at step 0", self.out / "checkpoints")
            return
        state = load_train_state(ckpt)
        self.editor.dit.load_state_dict(state.model, strict=True)
        self.optimizer.load_state_dict(state.optimizer["optimizer"])
        self.scheduler.load_state_dict(state.optimizer["scheduler"])
        if self.ema is not None and state.ema is not None:
            self.ema.load_state_dict(state.ema)
        self.start_step = state.meta.step
        self.sampler.skipped.count = state.meta.skipped_samples
        log.info("resumed from %s at step %d", ckpt, self.start_step)

    def _broadcast_weights(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            for p in self.params.values():
                dist.broadcast(p.data, src=0)

    # 2. Train ------------------------------------------------------------------------------------------------
    def prepare(self, batch: PairBatch, step: int) -> "PreparedBatch":
        """Everything of one step that needs no gradient: latents, sigmas, noise, instruction dropout, the frozen
        VLM's condition and the latent-grid mask — all from the step seed, so ``prepare`` may run ahead of the
        training step in another thread (``sft.prefetch``) and give exactly the same inputs."""
        s, ed, dev = self.cfg.sft, self.editor, self.device
        g = step_generator(self.cfg.seed, self.rank, step)
        with torch.no_grad():
            x0 = ed.encode_videos(batch.target).to(dev)  # [B, C, F', h, w]
            source = ed.encode_videos(batch.source).to(dev)  # [B, C, F', h, w]
            reference = ed.encode_reference(list(batch.references))  # [B, C, 1, h, w] | None
            b = x0.shape[0]
            sigma = sample_sigmas(b, s.timestep_sampling, timestep_shift_at(s, step), g).to(dev)  # [B]
            noise = torch.randn(x0.shape, generator=g).to(dev)  # [B, C, F', h, w]
            drop = (torch.rand(b, generator=g) < s.cond_dropout).tolist()
            # CFG's unconditional branch: the instruction is dropped, the source frame and reference stay.
            instructions = ["" if d else ins for d, ins in zip(drop, batch.instructions)]
            cond = ed.encode_condition(instructions, batch.source[:, 0], list(batch.references))
            mask = resize_mask_to_latent(torch.from_numpy(batch.mask).to(dev), x0.shape[2:])  # [B, 1, F', h, w]
        return PreparedBatch(batch, x0, source, reference, sigma, noise, cond, mask)

    def compute_loss(self, batch: PairBatch | "PreparedBatch", step: int) -> torch.Tensor:
        """Masked flow-matching loss (eq. 3) of one batch at one step (noise/sigma/dropout from the step seed)."""
        p = batch if isinstance(batch, PreparedBatch) else self.prepare(batch, step)
        s, ed = self.cfg.sft, self.editor
        noisy = add_noise(p.x0, p.noise, p.sigma)  # [B, C, F', h, w]
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self._autocast()):
            v_pred = ed.velocity(noisy, p.source, p.sigma, p.cond, p.reference)  # [B, C, F', h, w]
        if s.loss_space == "x0":  # sigma^2-weighted velocity loss: the x0 error (finite as sigma -> 0)
            return masked_flow_matching_loss(noisy - p.sigma.view(-1, 1, 1, 1, 1) * v_pred, p.x0, p.mask,
                                             s.mask_weight, s.mask_normalization)
        return masked_flow_matching_loss(v_pred, flow_matching_target(p.x0, p.noise), p.mask, s.mask_weight,
                                         s.mask_normalization)

    def _autocast(self) -> bool:
        return self.device.type == "cuda" and self.cfg.sft.mixed_precision == "bf16"

    def _prepared(self, step: int) -> "PreparedBatch":
        return self.prepare(self.sampler.batch(step), step)

    def train_step(self, step: int, prepared: Optional["PreparedBatch"] = None) -> Dict[str, float]:
        """One optimizer step: batch → loss → backward → all-reduce → clip → AdamW → EMA (``prepared``: the step's
        inputs made ahead by :meth:`prepare`, else made here)."""
        p = prepared if prepared is not None else self._prepared(step)
        batch = p.batch
        self.editor.dit.train()
        loss = self.compute_loss(p, step)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self._allreduce_grads()
        grad_norm = torch.nn.utils.clip_grad_norm_(list(self.params.values()), self.cfg.sft.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        if self.ema is not None:
            self.ema.update()
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm),
                "image_batch": float(batch.modality == "image"), "batch_size": float(batch.batch_size)}

    def _allreduce_grads(self) -> None:
        if self.world_size > 1 and dist.is_initialized():
            average_gradients(list(self.params.values()), self.world_size)

    def train(self) -> SFTResult:
        """Run from ``start_step`` to ``sft.steps``; checkpoint, log, sample; write the base checkpoint."""
        s, lc = self.cfg.sft, self.cfg.logging
        if lc.progress:
            self.metrics.start_progress(s.steps, self.start_step)
        window: list = []
        seen, t_first, final_loss = 0, None, float("nan")
        # sft.prefetch: a worker thread prepares step n+1 (toy-world rendering, codec, frozen VLM) while step n
        # trains; a step's inputs are a pure function of the step, so the run is the same with or without it.
        pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sft-prefetch") if s.prefetch else None
        ahead = pool.submit(self._prepared, self.start_step) if pool is not None and self.start_step < s.steps else None
        try:
            for step in range(self.start_step, s.steps):
                prepared = ahead.result() if ahead is not None else None
                ahead = pool.submit(self._prepared, step + 1) if pool is not None and step + 1 < s.steps else None
                row = self.train_step(step, prepared)
                window.append(row)
                if t_first is None:
                    t_first = time.perf_counter()  # the first step pays one-off costs (allocations, caches)
                else:
                    seen += int(row["batch_size"])
                done = step + 1
                if done % s.log_every == 0 or done == s.steps:
                    final_loss = self._log(done, window, seen, t_first)
                    window = []
                else:
                    self.metrics.advance(done)
                if s.checkpoint_every and done % s.checkpoint_every == 0 and done < s.steps:
                    self.save_checkpoint(done, final_loss)
                if s.sample_every and done % s.sample_every == 0:
                    self.write_samples(done)
        finally:
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)
        elapsed = time.perf_counter() - t_first if t_first else 0.0
        base = self.save_checkpoint(s.steps, final_loss, final=True) if self.start_step < s.steps else None
        result = SFTResult(str(self.out), base, s.steps, final_loss, self.sampler.skipped.count,
                           seen / elapsed if elapsed > 0 else float("nan"))
        if self.rank == 0:
            write_result(result, self.out / RESULT_FILE)
        return result

    def _log(self, done: int, window: list, seen: int, t_first: Optional[float]) -> float:
        loss = float(np.mean([r["loss"] for r in window]))
        elapsed = time.perf_counter() - t_first if t_first else 0.0
        self.metrics.log(done, {
            "loss": loss,
            "grad_norm": float(np.mean([r["grad_norm"] for r in window])),
            "lr": self.scheduler.get_last_lr()[0],
            "image_fraction": float(np.mean([r["image_batch"] for r in window])),
            "samples_per_s": seen * self.world_size / elapsed if elapsed > 0 else 0.0,
            "skipped_samples": float(self.sampler.skipped.count),
        })
        if self.sampler.skipped.count:
            log.info("step %d: %d bad samples skipped so far", done, self.sampler.skipped.count)
        return loss

    # 3. Checkpoints and samples ------------------------------------------------------------------------------
    def save_checkpoint(self, step: int, loss: float, final: bool = False) -> Optional[str]:
        """Rank 0 writes the resumable state; at the end also the base checkpoint (EMA weights if enabled)."""
        if self.rank != 0:
            return None
        meta = TrainStateMeta(step=step, seed=self.cfg.seed, skipped_samples=self.sampler.skipped.count, loss=loss)
        opt = {"optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict()}
        save_train_state(self.out / "checkpoints", meta, self.editor.dit.state_dict(), opt,
                         self.ema.state_dict() if self.ema else None, keep=self.cfg.sft.keep_checkpoints)
        if not final:
            return None
        return str(self.export_base(self.out / "base"))

    def export_base(self, out_dir: Path) -> Path:
        """Write the base checkpoint that `viva grpo` / `viva edit` load (EMA weights swapped in if enabled)."""
        from viva.models.checkpoint import save_base_checkpoint

        with self.ema.swapped_in() if self.ema is not None else contextlib.nullcontext():
            save_base_checkpoint(_merged_view(self.editor), out_dir, self.cfg.model, self.cfg.sampler)
        return out_dir

    def write_samples(self, step: int) -> None:
        """Rank 0: an mp4 of source | edit | target rows for a few fixed held-out prompts."""
        if self.rank != 0:
            return
        from viva.sft.evaluate import write_sample_grid

        path = write_sample_grid(self.editor, self.cfg, self.out / "samples" / f"step_{step:08d}.mp4")
        self.metrics.log_video("samples", path, step)

    # 4. Cleanup ----------------------------------------------------------------------------------------------
    def cleanup(self) -> None:
        """Close metric sinks."""
        self.metrics.close()


def _merged_view(editor):
    """The editor itself, or (LoRA training) a stand-in whose ``dit`` is a merged copy: a base checkpoint has no
    adapter, and the live DiT keeps its adapter for further steps."""
    from viva.models.lora import has_lora, merge_lora

    if not has_lora(editor.dit):
        return editor
    return types.SimpleNamespace(dit=merge_lora(copy.deepcopy(editor.dit)))


def run_sft(cfg: SFTConfig, rank: int = 0, world_size: int = 1) -> SFTResult:
    """setup → train → cleanup for one rank (the whole run when ``world_size`` is 1)."""
    trainer = SFTTrainer(cfg, rank, world_size)
    trainer.setup()
    try:
        return trainer.train()
    finally:
        trainer.cleanup()
