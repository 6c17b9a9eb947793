"""The roles of Edit-GRPO in this process, no Ray: the plain loop the distributed run must reproduce (k = 0).

Implements `viva.grpo.executor.Executor`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Sequence

from viva.config import GRPOConfig
from viva.grpo.executor import SyncStats
from viva.learner.learner import Learner
from viva.records import GroupRequest, LearnerMetrics, RolloutGroup, ScoredGroup
from viva.rewards.base import RewardOutput


class LocalExecutor:
    """One rollout worker, one reward worker per model and one learner, called directly.

    Sequence parallel (learner.sequence_parallel, cluster.rollout_sequence_parallel) needs several processes and is
    the Ray executor's; it changes no result, so here the one unsplit worker stands in for a group of ranks."""

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
