"""The roles of Edit-GRPO in this process, no Ray: the plain loop the distributed run must reproduce (k = 0)."""

from __future__ import annotations

import time
from pathlib import Path
from dataclasses import dataclass
from typing import List, Protocol, Sequence

from viva.config import GRPOConfig
from viva.learner.learner import Learner
from viva.rewards.base import RewardOutput
from viva.records import GroupRequest, LearnerMetrics, RolloutGroup, ScoredGroup


@dataclass(frozen=True)
class SyncStats:
    """One weight sync: version delivered, bytes, seconds (until every rollout actor acknowledged)."""

    policy_version: int
    num_bytes: int
    seconds: float


class Executor(Protocol):
    """Where the roles run. `LocalExecutor` (this file) and `RayExecutor` (ray_executor.py) implement it."""

    def submit(self, requests: Sequence[GroupRequest]) -> object:
        """Start sampling groups; return a handle for `collect`."""
        ...

    def collect(self, handle: object) -> List[RolloutGroup]:
        """The sampled groups, in request order (failed groups regenerated with the same seeds)."""
        ...

    def score(self, groups: Sequence[RolloutGroup]) -> List[List[RewardOutput]]:
        """Per reward model (config order), one output per group."""
        ...

    def update(self, scored: Sequence[ScoredGroup], step: int) -> LearnerMetrics:
        """One learner update on the step's scored groups."""
        ...

    def sync(self) -> SyncStats:
        """Push the learner's adapter to every rollout actor."""
        ...

    def learner_state(self) -> dict:
        """Checkpointable learner state."""
        ...

    def load_learner_state(self, state: dict) -> None:
        """Restore the learner and re-sync the rollout actors."""
        ...

    def busy_seconds(self) -> dict:
        """Seconds each role spent working so far."""
        ...

    def save_lora(self, out_dir: str) -> Path:
        """Write the learner's LoRA in diffusers format (with adapter metadata)."""
        ...

    def shutdown(self) -> None:
        """Release the roles."""
        ...


class LocalExecutor:
    """One rollout worker, one reward worker per model and one learner, called directly."""

    def __init__(self, cfg: GRPOConfig) -> None:
        from viva.rewards.worker import RewardWorker
        from viva.rollout.worker import RolloutWorker

        self.learner = Learner(cfg)
        self.rollout = RolloutWorker(cfg)
        self.rewards = [RewardWorker(spec, cfg.model.device) for spec in cfg.rewards]
        self._busy = {"rollout": 0.0, "reward": 0.0, "learner": 0.0}
        self.sync()

    def _timed(self, role: str, fn, *args):
        t = time.perf_counter()
        out = fn(*args)
        self._busy[role] += time.perf_counter() - t
        return out

    def submit(self, requests: Sequence[GroupRequest]) -> List[RolloutGroup]:
        return [self._timed("rollout", self.rollout.sample_group, r) for r in requests]

    def collect(self, handle: List[RolloutGroup]) -> List[RolloutGroup]:
        return handle

    def score(self, groups: Sequence[RolloutGroup]) -> List[List[RewardOutput]]:
        return [self._timed("reward", w.score_groups, list(groups)) for w in self.rewards]

    def update(self, scored: Sequence[ScoredGroup], step: int) -> LearnerMetrics:
        return self._timed("learner", self.learner.update, scored, step)

    def sync(self) -> SyncStats:
        t = time.perf_counter()
        update = self.learner.adapter_update()
        self.rollout.load_adapter(update)
        return SyncStats(update.policy_version, update.num_bytes, time.perf_counter() - t)

    def learner_state(self) -> dict:
        return self.learner.state_dict()

    def load_learner_state(self, state: dict) -> None:
        self.learner.load_state_dict(state)
        self.sync()

    def busy_seconds(self) -> dict:
        return dict(self._busy)

    def save_lora(self, out_dir: str) -> Path:
        return self.learner.save_lora(out_dir)

    def shutdown(self) -> None:
        pass
