"""Pipelined (max_staleness k=1) vs synchronous (k=0) Edit-GRPO steps with simulated stage times.

Stages are sleep-based actors (rollout actors, one reward actor, one learner), so the numbers isolate the
scheduling scheme from compute. The scheme (the same one viva's driver uses):
  at iteration n, first make sure rollouts of steps <= n + k are submitted, then get rollout(n), score it,
  train on it, and queue ``set_weights`` on every rollout actor.
Ray runs an actor's calls in submission order, so a weight sync queued behind an in-flight rollout is applied
before the next rollout: with k=1 the rollout of step n+1 overlaps reward + training of step n and samples with
weights one version old; with k=0 nothing overlaps. The measured staleness is checked against k.
Balanced stages (rollout time = reward + learner time) give at most 2x.

Run: .venv/bin/python bench/bench_pipeline_sim.py [--rollout-s 0.4 --reward-s 0.2 --learner-s 0.2 --steps 16]
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

import numpy as np

from viva.cluster import ActorGroup, LocalCluster
from viva.config import ClusterConfig


@dataclass(frozen=True)
class SimGroup:
    """One simulated group: which step it belongs to and the policy_version it was sampled with."""

    step: int
    policy_version: int
    videos: np.ndarray  # [G, F, H, W, 3] uint8


class SimRolloutWorker:
    """Sleeps for a group's denoising time; samples with the last weights it was sent."""

    def __init__(self) -> None:
        self.policy_version = 0

    def set_weights(self, update: tuple[int, np.ndarray]) -> int:
        """Apply a (policy_version, LoRA stand-in) update."""
        self.policy_version = update[0]
        return self.policy_version

    def generate(self, step: int, seconds: float) -> SimGroup:
        """One group of simulated edits."""
        time.sleep(seconds)
        return SimGroup(step, self.policy_version, np.zeros((4, 8, 32, 32, 3), dtype=np.uint8))


class SimRewardWorker:
    """Sleeps for the scoring time of a batch of groups."""

    def score(self, groups: list[SimGroup], seconds: float) -> list[float]:
        """Fake rewards, one per group."""
        time.sleep(seconds)
        return [float(g.videos.mean()) for g in groups]


class SimLearner:
    """Sleeps for an update; returns the new (policy_version, LoRA stand-in)."""

    def __init__(self) -> None:
        self.policy_version = 0
        self.lora = np.zeros(256 * 1024, dtype=np.float32)  # 1 MB stand-in adapter

    def train(self, groups: list[SimGroup], rewards: list[float], seconds: float) -> tuple[int, np.ndarray]:
        """One update on the groups of one step."""
        time.sleep(seconds)
        self.policy_version += 1
        return self.policy_version, self.lora

    def reset(self) -> tuple[int, np.ndarray]:
        """Back to policy_version 0 (each measured run starts fresh)."""
        self.policy_version = 0
        return self.policy_version, self.lora


def run(groups: dict[str, ActorGroup], k: int, args: argparse.Namespace) -> tuple[float, int]:
    """(mean step time after the first step, max staleness seen) for max_staleness k."""
    rollout, reward, learner = groups["rollout"], groups["reward"], groups["learner"]
    per_group = args.rollout_s * len(rollout) / args.groups_per_step  # step's rollout time = rollout_s
    rollout.get(rollout.call_all("set_weights", learner.call(0, "reset")))
    submitted: dict[int, list] = {}
    staleness, version = 0, 0
    start = time.perf_counter()
    for n in range(args.steps):
        # 1. Sample: rollouts of steps <= n + k are in flight before this step trains (k=0: only step n).
        for s in range(n, min(n + k, args.steps - 1) + 1):
            if s not in submitted:
                submitted[s] = [rollout.call(j % len(rollout), "generate", s, per_group)
                                for j in range(args.groups_per_step)]
        batch = rollout.get(submitted.pop(n), timeout=600)
        staleness = max(staleness, max(version - g.policy_version for g in batch))
        # 2. Score, 3. update (the learner's version is `version` before this update).
        scores = reward.get(reward.call(0, "score", batch, args.reward_s), timeout=600)
        update = learner.call(0, "train", batch, scores, args.learner_s)
        version += 1
        # 4. Sync: queued behind any in-flight rollout, applied before the next one (the ref is passed as is).
        rollout.call_all("set_weights", update)
    rollout.get(rollout.call_all("set_weights", update))  # drain: the last update has reached every actor
    # Whole run / steps: includes k=1's pipeline fill (one extra rollout), amortised over the steps.
    return (time.perf_counter() - start) / args.steps, staleness


def main() -> None:
    """Place the simulated actors once, run k=0 and k=1 side by side."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rollout-s", type=float, default=0.4, help="rollout time of one step (all actors busy)")
    p.add_argument("--reward-s", type=float, default=0.2)
    p.add_argument("--learner-s", type=float, default=0.2)
    p.add_argument("--rollout-actors", type=int, default=2)
    p.add_argument("--groups-per-step", type=int, default=4)
    p.add_argument("--steps", type=int, default=16)
    args = p.parse_args()
    with LocalCluster(ClusterConfig(num_cpus=4, log_to_driver=False)):
        groups = {
            "rollout": ActorGroup(SimRolloutWorker, args.rollout_actors, role="rollout", num_cpus=0.25),
            "reward": ActorGroup(SimRewardWorker, 1, role="reward", num_cpus=0.25),
            "learner": ActorGroup(SimLearner, 1, role="learner", num_cpus=0.25),
        }
        for g in groups.values():
            g.wait_ready(120)
        run(groups, 0, argparse.Namespace(**{**vars(args), "steps": 2}))  # warm-up
        sync_s, sync_stale = run(groups, 0, args)
        pipe_s, pipe_stale = run(groups, 1, args)
        ideal_sync = args.rollout_s + args.reward_s + args.learner_s
        fill = args.rollout_s / args.steps  # k=1 runs one rollout ahead: paid once per run
        ideal_pipe = max(args.rollout_s, args.reward_s + args.learner_s) + fill
        print(f"stages: rollout {args.rollout_s}s ({args.rollout_actors} actors, {args.groups_per_step} groups), "
              f"reward {args.reward_s}s, learner {args.learner_s}s; {args.steps} steps")
        print(f"synchronous (k=0): {sync_s:.3f} s/step (ideal {ideal_sync:.2f}), max staleness {sync_stale}")
        print(f"pipelined   (k=1): {pipe_s:.3f} s/step (ideal {ideal_pipe:.2f}), max staleness {pipe_stale}")
        print(f"speed-up: {sync_s / pipe_s:.2f}x (ideal {ideal_sync / ideal_pipe:.2f}x)")
        if sync_stale != 0 or pipe_stale > 1:
            raise SystemExit(f"staleness bound violated: k=0 saw {sync_stale}, k=1 saw {pipe_stale}")


if __name__ == "__main__":
    main()
