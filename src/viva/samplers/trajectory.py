"""A sampled denoising trajectory and which of its steps are stochastic (and so trained)."""

from __future__ import annotations

from dataclasses import dataclass

from torch import Tensor


@dataclass(frozen=True)
class Trajectory:
    """Latents at every step, the sigmas, the per-step log-probs and the stochastic-step mask of one denoise call."""

    latents: Tensor  # [B, T+1, ...] when recorded, else [B, 1, ...] (the final latents only)
    sigmas: Tensor  # [T+1] fp32, from 1 (noise) to 0 (data)
    log_probs: Tensor  # [B, T] fp32; 0 on ODE (deterministic) steps
    sde_steps: Tensor  # [T] bool; True where the step was stochastic (std > 0), i.e. trainable
    kind: str = "sde"  # sde | cps | ode: the step that step_log_prob must use to recompute log_probs
    eta: float = 0.0

    def __post_init__(self) -> None:
        num_steps = self.sigmas.shape[0] - 1
        if self.log_probs.shape != (self.latents.shape[0], num_steps) or self.sde_steps.shape != (num_steps,):
            raise ValueError(f"Trajectory: log_probs {tuple(self.log_probs.shape)} / sde_steps "
                             f"{tuple(self.sde_steps.shape)} do not match {num_steps} steps and batch "
                             f"{self.latents.shape[0]}")
        if self.latents.shape[1] not in (1, num_steps + 1):
            raise ValueError(f"Trajectory: latents dim 1 must be 1 or T+1={num_steps + 1}, got {self.latents.shape[1]}")

    @property
    def num_steps(self) -> int:
        """T, the number of denoising steps."""
        return self.sigmas.shape[0] - 1

    @property
    def recorded(self) -> bool:
        """Whether the latents of every step were kept (needed to train on the trajectory)."""
        return self.latents.shape[1] == self.num_steps + 1

    @property
    def final(self) -> Tensor:
        """The denoised latents at sigma = 0, `[B, ...]`."""
        return self.latents[:, -1]


def sde_window(num_steps: int, window_size: int, window_start: int = 0) -> list[bool]:
    """Stochastic-step mask: steps [window_start, window_start + window_size) (MixGRPO / Flow-GRPO-Fast); 0 = all."""
    if num_steps <= 0 or window_size < 0 or window_start < 0:
        raise ValueError(f"sde_window: bad arguments num_steps={num_steps}, window_size={window_size}, "
                         f"window_start={window_start}")
    if window_size == 0:
        return [True] * num_steps
    if window_start + window_size > num_steps:
        raise ValueError(f"sde_window: window [{window_start}, {window_start + window_size}) does not fit in "
                         f"{num_steps} steps")
    return [window_start <= i < window_start + window_size for i in range(num_steps)]


def trained_step_indices(traj: Trajectory) -> list[int]:
    """Indices of the trajectory's stochastic steps, the ones the learner trains; needs a recorded trajectory."""
    if not traj.recorded:
        raise ValueError("trained_step_indices: the trajectory was sampled with record=False; no latents to train on")
    return [i for i, stochastic in enumerate(traj.sde_steps.tolist()) if stochastic]
