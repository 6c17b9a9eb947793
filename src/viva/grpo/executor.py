"""Where the roles of Edit-GRPO run: the `Executor` protocol the driver calls, and the weight-sync receipt it returns.

`LocalExecutor` (local_executor.py: every role in this process) and `RayExecutor` (ray_executor.py: Ray actors and
placement groups) implement it; `EditGRPO` (driver.py) is the same code over both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Protocol, Sequence

from viva.records import GroupRequest, LearnerMetrics, RolloutGroup, ScoredGroup
from viva.rewards.base import RewardOutput


@dataclass(frozen=True)
class SyncStats:
    """One weight sync: version delivered, bytes, seconds (until every rollout actor acknowledged)."""

    policy_version: int
    num_bytes: int
    seconds: float


class Executor(Protocol):
    """The roles' processes: rollout actors, one reward pool per reward model, the learner ranks."""

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
