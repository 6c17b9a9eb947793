"""The records that cross process boundaries in Edit-GRPO: what to sample, what was sampled, how it scored, what
the learner reports, and the adapter the learner broadcasts (with its checksum).

A leaf: it imports nothing from the packages that exchange these records (rollout, learner, rewards, grpo), so any
of them can depend on it without a cycle. Arrays are numpy so Ray moves them without pickling tensors.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Dict, Mapping, Optional

import numpy as np
import torch

from viva.data.sample import EditSample


def group_seed(seed: int, step: int, group_index: int) -> int:
    """Seed of one group: fixed by (run seed, step, group), so a regenerated or resumed group is identical."""
    return (seed * 1_000_003 + step * 10_007 + group_index) % (2**62)


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
    """G sampled edits of one prompt with their trajectories."""

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


@dataclass(frozen=True)
class LearnerMetrics:
    """Averages over one learner update (all inner epochs and minibatches)."""

    policy_version: int
    loss: float
    policy_loss: float
    kl: float
    clip_fraction: float
    ratio_mean: float
    ratio_min: float
    ratio_max: float
    first_ratio_max_dev: float  # max |ratio - 1| on the first inner step: exactly 0 when rollouts are on-policy
    grad_norm: float
    num_terms: int  # (sample-group, timestep) loss terms
    kl_ode: float = 0.0  # mean KL on the deterministic steps (grpo.kl_steps = all); 0 otherwise


class WeightSyncError(RuntimeError):
    """An adapter failed its checksum or arrived out of order."""


@dataclass(frozen=True)
class AdapterUpdate:
    """LoRA tensors (numpy, fp32, stable key order) stamped with the policy_version and a SHA-256 over all bytes."""

    policy_version: int
    tensors: Dict[str, np.ndarray]
    checksum: str

    @property
    def num_bytes(self) -> int:
        """Payload size."""
        return int(sum(a.nbytes for a in self.tensors.values()))


@dataclass(frozen=True)
class AdapterAck:
    """A rollout actor's receipt: which version it now samples with and the checksum it verified."""

    actor_index: int
    policy_version: int
    checksum: str


def _digest(tensors: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def make_update(state_dict: Mapping[str, torch.Tensor], policy_version: int) -> AdapterUpdate:
    """Pack a LoRA state dict for broadcast (``ray.put`` it once and pass the ref)."""
    tensors = {k: state_dict[k].detach().to("cpu", torch.float32).contiguous().numpy().copy()
               for k in sorted(state_dict)}
    return AdapterUpdate(policy_version=policy_version, tensors=tensors, checksum=_digest(tensors))


def verify_update(update: AdapterUpdate) -> Dict[str, torch.Tensor]:
    """Check the checksum and return torch tensors; raise `WeightSyncError` on mismatch."""
    got = _digest(update.tensors)
    if got != update.checksum:
        raise WeightSyncError(
            f"adapter v{update.policy_version}: checksum mismatch (expected {update.checksum[:12]}, got {got[:12]})"
        )
    return {k: torch.from_numpy(np.array(v)) for k, v in update.tensors.items()}
