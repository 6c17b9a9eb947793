"""Records that cross process boundaries in Edit-GRPO: what to sample, and what was sampled."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

from viva.data.sample import EditSample


@dataclass(frozen=True)
class GroupRequest:
    """Sample a group of ``group_size`` edits of one prompt with a fixed seed (the same seed regenerates it)."""

    step: int  # the training step these rollouts are for
    group_index: int  # position of the group within the step
    prompt: EditSample
    group_size: int
    seed: int
    evaluate: bool = False  # deterministic ODE sampling for held-out evaluation (no log-probs recorded)


@dataclass(frozen=True)
class RolloutGroup:
    """G sampled edits of one prompt with their trajectories (numpy, so Ray moves them without pickling tensors)."""

    request: GroupRequest
    policy_version: int  # adapter version the rollout actor used
    edited_videos: np.ndarray  # [G, F, H, W, 3] uint8
    latents: np.ndarray  # [G, T+1, C, F', h, w] float32 (all steps; the learner reads the trained ones)
    log_probs: np.ndarray  # [G, T] float32, 0 on ODE steps
    sigmas: np.ndarray  # [T+1] float32, 1 -> 0
    sde_steps: np.ndarray  # [T] bool, which steps were stochastic (and can be trained)
    sample_seconds: float = 0.0

    @property
    def group_size(self) -> int:
        """G."""
        return int(self.edited_videos.shape[0])

    @property
    def trained_steps(self) -> np.ndarray:
        """Indices of the stochastic steps."""
        return np.flatnonzero(self.sde_steps)


@dataclass(frozen=True)
class ScoredGroup:
    """A rollout group with its per-sample rewards (weighted sum, eq. 7) and group-relative advantages (eq. 11)."""

    group: RolloutGroup
    rewards: np.ndarray  # [G] float64, weighted sum
    sub_rewards: dict  # reward name -> [G] float64 (for logging)
    advantages: np.ndarray  # [G] float32
    oracle: Optional[np.ndarray] = None  # [G] toy-world oracle score, for logging only (never trained on)
