"""The one denoising loop, shared by rollouts (SDE / CPS steps with log-probs) and inference (ODE)."""

from __future__ import annotations

from typing import Callable, Optional, Sequence

import torch
from torch import Tensor

from viva.samplers.cps import cps_step
from viva.samplers.flow_sde import sde_step
from viva.samplers.ode import ode_step
from viva.samplers.schedule import Sigma, batch_sigma
from viva.samplers.step_output import StepOutput
from viva.samplers.trajectory import Trajectory

VelocityFn = Callable[[Tensor, Tensor], Tensor]  # (latents [B, ...], sigma [B]) -> velocity [B, ...], CFG applied
STOCHASTIC_STEPS = {"sde": sde_step, "cps": cps_step}


def step_is_stochastic(kind: str, eta: float, sigma_next: float) -> bool:
    """Whether a step of this kind has std > 0: not for ode, eta = 0, or CPS's last step (sigma_next = 0)."""
    if kind not in ("sde", "cps", "ode"):
        raise ValueError(f"sampler kind must be sde | cps | ode, got {kind!r}")
    return kind != "ode" and eta > 0 and not (kind == "cps" and sigma_next == 0)


def step_log_prob(
    kind: str, velocity: Tensor, latents: Tensor, next_latents: Tensor, sigma: Sigma, sigma_next: Sigma, eta: float
) -> StepOutput:
    """Score a recorded transition under a (new) velocity: `.log_prob` [B] for the ratio, `.mean` for the KL."""
    if kind not in STOCHASTIC_STEPS:
        raise ValueError(f"step_log_prob: kind must be sde | cps (ode steps have no density), got {kind!r}")
    return STOCHASTIC_STEPS[kind](velocity, latents, sigma, sigma_next, eta, next_latents=next_latents)


def _check_sigmas(sigmas: Tensor) -> None:
    if sigmas.ndim != 1 or sigmas.shape[0] < 2:
        raise ValueError(f"denoise: sigmas must be a 1-D tensor [T+1] with T >= 1, got shape {tuple(sigmas.shape)}")
    if not bool(((sigmas[1:] < sigmas[:-1]).all() & (sigmas[0] <= 1) & (sigmas[-1] >= 0)).item()):
        raise ValueError(f"denoise: sigmas must decrease strictly inside [0, 1], got {sigmas.tolist()}")


def _stochastic_mask(kind: str, eta: float, sigmas: Tensor, sde_steps: Optional[Sequence[bool]]) -> list[bool]:
    num_steps = sigmas.shape[0] - 1
    wanted = [True] * num_steps if sde_steps is None else [bool(m) for m in sde_steps]
    if len(wanted) != num_steps:
        raise ValueError(f"denoise: sde_steps has {len(wanted)} entries for {num_steps} steps")
    nexts = sigmas[1:].tolist()
    return [w and step_is_stochastic(kind, eta, sn) for w, sn in zip(wanted, nexts)]


def denoise(
    velocity_fn: VelocityFn,
    latents: Tensor,
    sigmas: Tensor,
    *,
    kind: str = "sde",
    eta: float = 0.7,
    sde_steps: Optional[Sequence[bool]] = None,
    generator: Optional[torch.Generator] = None,
    record: bool = True,
    progress: Optional[Callable[[int, int], None]] = None,
) -> Trajectory:
    """Denoise `latents` [B, ...] along `sigmas` [T+1]: `kind` steps where `sde_steps` is True, ODE steps elsewhere."""
    # 1. Check inputs; a requested step with std = 0 (eta = 0, CPS's last step) is run and recorded as an ODE step.
    _check_sigmas(sigmas)
    sigmas = sigmas.to(device=latents.device, dtype=torch.float32)  # [T+1]
    mask = _stochastic_mask(kind, eta, sigmas, sde_steps)
    batch, num_steps = latents.shape[0], sigmas.shape[0] - 1
    zero = torch.zeros(batch, dtype=torch.float32, device=latents.device)  # [B]
    # 2. Denoising loop
    x, states, log_probs = latents, [latents] if record else [], []
    for i in range(num_steps):
        velocity = velocity_fn(x, batch_sigma(sigmas[i], batch, latents.device))  # [B, ...]
        if mask[i]:
            out = STOCHASTIC_STEPS[kind](velocity, x, sigmas[i], sigmas[i + 1], eta, generator=generator)
            x, log_prob = out.next_latents, out.log_prob  # [B, ...], [B]
        else:
            x, log_prob = ode_step(velocity, x, sigmas[i], sigmas[i + 1]), zero
        log_probs.append(log_prob)
        if record:
            states.append(x)
        if progress is not None:
            progress(i + 1, num_steps)
    # 3. Pack the trajectory
    return Trajectory(
        latents=torch.stack(states, dim=1) if record else x.unsqueeze(1),  # [B, T+1 | 1, ...]
        sigmas=sigmas,
        log_probs=torch.stack(log_probs, dim=1),  # [B, T]
        sde_steps=torch.tensor(mask, dtype=torch.bool),
        kind=kind,
        eta=float(eta),
    )
