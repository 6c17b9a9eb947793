"""The roles of Edit-GRPO as Ray services: rollout actors, one reward pool per reward model, data-parallel learners.

Implements `viva.grpo.executor.Executor`; Ray itself is reached only through `viva.cluster`. Failed rollout / reward
calls are retried on the restarted actor with the same request (same seeds) after it has pulled the current adapter;
the run stops with an error after ``cluster.max_consecutive_failures`` failures in a row.

With ``cluster.rollout_sequence_parallel = k`` each k consecutive rollout actors form one Ulysses process group and
act as one logical actor: every rank gets the same requests in the same order (same seed, same noise) and the same
adapters, and rank 0's groups are kept. A failed rank breaks its group's collectives, so that run stops instead of
recovering.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import List, Sequence

from viva.config import GRPOConfig
from viva.grpo.executor import SyncStats
from viva.learner.worker import LearnerWorker
from viva.records import GroupRequest, LearnerMetrics, RolloutGroup, ScoredGroup
from viva.rewards.base import RewardOutput
from viva.rewards.worker import RewardWorker
from viva.rollout.worker import RolloutWorker
from viva.training.atomic import atomic_dir


class RunFailed(RuntimeError):
    """Too many consecutive actor failures: the run stops rather than invent results."""


class RayExecutor:
    """Places the roles with `viva.cluster` and runs the driver's calls on them."""

    def __init__(self, cfg: GRPOConfig) -> None:
        from viva.cluster.local import LocalCluster

        c = cfg.cluster
        if (cfg.grpo.prompts_per_step % c.num_learner_workers) != 0:
            raise ValueError(f"grpo.prompts_per_step={cfg.grpo.prompts_per_step} must be divisible by "
                             f"cluster.num_learner_workers={c.num_learner_workers} (whole groups per rank)")
        self.cfg = cfg
        self.placement, self.learners, self.rollouts, self.rewards = None, None, None, []
        self.cluster = LocalCluster(c)
        self.cluster.__enter__()
        try:
            self._start_roles()
        except BaseException:
            self.shutdown()  # all or nothing: release the actors and placement groups started so far
            raise

    def _start_roles(self) -> None:
        """Reserve placement, start learners, rollout actors and reward pools, then push the first adapter."""
        from viva.cluster.actor_group import ActorGroup
        from viva.cluster.placement import RoleResources, plan_placement, roles_from_config

        cfg, c = self.cfg, self.cfg.cluster
        roles = roles_from_config(c)
        for spec in cfg.rewards:
            roles[f"reward:{spec.name}"] = RoleResources(spec.num_actors, spec.num_cpus, spec.num_gpus)
        self.placement = plan_placement(c, roles)

        def group(cls, role: str, n: int, args: tuple, runtime_env=None):
            r = roles[role]
            return ActorGroup(cls, n, role=role, init_args=args, num_cpus=r.num_cpus, num_gpus=r.num_gpus,
                              max_restarts=c.max_restarts, runtime_env=runtime_env or None,
                              placement=self.placement)

        self.learners = group(LearnerWorker, "learner", c.num_learner_workers, (cfg,))
        self.rollouts = group(RolloutWorker, "rollout", c.num_rollout_actors, (cfg,))
        for s in cfg.rewards:
            self.rewards.append(group(RewardWorker, f"reward:{s.name}", s.num_actors, (s, cfg.model.device),
                                      runtime_env=dict(s.runtime_env or {})))
        self._setup_learners()
        for g in [self.rollouts, *self.rewards]:
            g.wait_ready(timeout=c.call_timeout_s)
        self._setup_rollout_groups()
        self._busy = {"rollout": 0.0, "reward": 0.0, "learner": 0.0}
        self._failures = 0
        self._update_ref = None
        self._pending_acks: list = []
        self._update_bytes = 0
        self._acked_version = 0
        self.sync()

    def _setup_learners(self) -> None:
        c, lg = self.cfg.cluster, self.learners
        host, port = lg.get([lg.call(0, LearnerWorker.rendezvous_address)], timeout=c.call_timeout_s)[0]
        refs = [lg.call(r, LearnerWorker.setup, r, len(lg), host, port) for r in range(len(lg))]
        lg.get(refs, timeout=c.call_timeout_s)

    def _setup_rollout_groups(self) -> None:
        """Sequence parallel: each k consecutive rollout actors join one process group (rank 0 gives host / port)."""
        c, rg, k = self.cfg.cluster, self.rollouts, self.cfg.cluster.rollout_sequence_parallel
        if k == 1:
            return
        addresses = rg.get([rg.call(s, RolloutWorker.rendezvous_address) for s in range(0, len(rg), k)],
                           timeout=c.call_timeout_s)
        refs = [rg.call(s + r, RolloutWorker.setup_sequence_parallel, r, k, host, port)
                for s, (host, port) in zip(range(0, len(rg), k), addresses) for r in range(k)]
        rg.get(refs, timeout=c.call_timeout_s)

    # -- rollouts ---------------------------------------------------------------------------------------------------
    def _sample(self, actor: int, request: GroupRequest):
        """Send ``request`` to every rank of logical actor ``actor``'s sequence-parallel group; rank 0's ref."""
        k = self.cfg.cluster.rollout_sequence_parallel
        refs = [self.rollouts.call(actor + r, RolloutWorker.sample_group, request) for r in range(k)]
        return refs[0]  # the other ranks return the same group (Ray runs each actor's calls in submission order)

    def submit(self, requests: Sequence[GroupRequest]) -> list:
        """Round-robin the groups over the (logical) rollout actors; returns [(request, actor, ref)]."""
        k = self.cfg.cluster.rollout_sequence_parallel
        n = len(self.rollouts) // k
        return [(r, (i % n) * k, self._sample((i % n) * k, r)) for i, r in enumerate(requests)]

    def collect(self, handle: list) -> List[RolloutGroup]:
        """Results in request order; a failed group is regenerated (same seed) on the restarted actor."""
        self._check_acks()
        out = []
        for request, actor, ref in handle:
            while True:
                try:
                    group = self.rollouts.get([ref], timeout=self.cfg.cluster.call_timeout_s)[0]
                    self._failures = 0
                    break
                except Exception as e:  # noqa: BLE001 - classified just below
                    self._on_failure(self.rollouts, actor, e, f"group {request.group_index} of step {request.step}")
                    ref = self._sample(actor, request)
            self._busy["rollout"] += group.sample_seconds
            out.append(group)
        return out

    def _on_failure(self, actors, index: int, err: Exception, what: str) -> None:
        if not actors.is_actor_error(err):
            raise err
        if actors is self.rollouts and self.cfg.cluster.rollout_sequence_parallel > 1:
            raise RunFailed(f"rollout actor {index} failed on {what}; its sequence-parallel process group cannot be "
                            f"re-formed (cluster.rollout_sequence_parallel > 1 has no actor recovery)") from err
        self._failures += 1
        if self._failures >= self.cfg.cluster.max_consecutive_failures:
            raise RunFailed(f"{actors.role} actor {index} failed {self._failures} times in a row on {what}: "
                            f"{type(err).__name__}: {err}") from err
        actors.wait_ready(timeout=self.cfg.cluster.call_timeout_s, indices=[index])
        if actors is self.rollouts and self._update_ref is not None:
            # A restarted actor rebuilt the base model: pull the current adapter before regenerating.
            ack = actors.call(index, RolloutWorker.load_adapter, self._update_ref)
            actors.get([ack], timeout=self.cfg.cluster.sync_timeout_s)

    # -- rewards ----------------------------------------------------------------------------------------------------
    def score(self, groups: Sequence[RolloutGroup]) -> List[List[RewardOutput]]:
        """Every reward pool scores all groups in parallel (groups split over each pool's actors)."""
        t = time.perf_counter()
        calls = []
        for pool in self.rewards:
            n = len(pool)
            shards = [list(range(i, len(groups), n)) for i in range(n)]
            calls.append([(i, idx, pool.call(i, RewardWorker.score_groups, [groups[j] for j in idx])) for i, idx in
                          enumerate(shards) if idx])
        results = []
        for pool, pool_calls in zip(self.rewards, calls):
            outs: list = [None] * len(groups)
            for actor, idx, ref in pool_calls:
                while True:
                    try:
                        scored = pool.get([ref], timeout=self.cfg.cluster.call_timeout_s)[0]
                        self._failures = 0
                        break
                    except Exception as e:  # noqa: BLE001
                        self._on_failure(pool, actor, e, f"scoring {len(idx)} groups")
                        ref = pool.call(actor, RewardWorker.score_groups, [groups[j] for j in idx])
                for j, o in zip(idx, scored):
                    outs[j] = o
            results.append(outs)
        self._busy["reward"] += time.perf_counter() - t
        return results

    # -- learner ----------------------------------------------------------------------------------------------------
    def update(self, scored: Sequence[ScoredGroup], step: int) -> LearnerMetrics:
        """Each learner rank takes every W-th group; rank 0's metrics are returned."""
        t = time.perf_counter()
        w = len(self.learners)
        refs = [self.learners.call(r, LearnerWorker.update, list(scored[r::w]), step) for r in range(w)]
        metrics = self.learners.get(refs, timeout=self.cfg.cluster.call_timeout_s)
        self._busy["learner"] += time.perf_counter() - t
        return metrics[0]

    def sync(self) -> SyncStats:
        """Broadcast rank 0's adapter by reference (stored once); acks are verified before the next collect."""
        t = time.perf_counter()
        self._update_ref = self.learners.call(0, LearnerWorker.adapter_update)
        if not self._update_bytes:
            update = self.learners.get([self._update_ref], timeout=self.cfg.cluster.sync_timeout_s)[0]
            self._update_bytes = update.num_bytes
        self._pending_acks = self.rollouts.call_all(RolloutWorker.load_adapter, self._update_ref)
        if self.cfg.grpo.max_staleness == 0:
            self._check_acks()
        return SyncStats(self._acked_version, self._update_bytes, time.perf_counter() - t)

    def _check_acks(self) -> None:
        if not self._pending_acks:
            return
        # Acks queue behind in-flight rollouts on each actor, so allow for one rollout call.
        timeout = self.cfg.cluster.sync_timeout_s + self.cfg.cluster.call_timeout_s
        acks = []
        for i, ref in enumerate(self._pending_acks):
            try:
                acks.append(self.rollouts.get([ref], timeout=timeout)[0])
            except Exception as e:  # noqa: BLE001 - a dead actor pulls the adapter when it is recovered
                self._on_failure(self.rollouts, i, e, "weight sync")
                acks.append(None)
        versions = {a.checksum for a in acks if a is not None}
        if len(versions) > 1:
            raise RunFailed(f"rollout actors acknowledged different adapters: {sorted(versions)}")
        self._acked_version = max((a.policy_version for a in acks if a is not None), default=self._acked_version)
        self._pending_acks = []

    def learner_state(self) -> dict:
        """Rank 0's state (ranks are identical after every all-reduced step; FSDP: every rank joins the gather)."""
        lg, method = self.learners, LearnerWorker.state_dict
        refs = lg.call_all(method) if self.cfg.learner.fsdp else [lg.call(0, method)]
        return lg.get(refs, timeout=self.cfg.cluster.call_timeout_s)[0]

    def load_learner_state(self, state: dict) -> None:
        """Every rank loads the state, then the rollout actors get its adapter."""
        refs = self.learners.call_all(LearnerWorker.load_state_dict, state)
        self.learners.get(refs, timeout=self.cfg.cluster.call_timeout_s)
        self.sync()
        self._check_acks()

    def save_lora(self, out_dir: str) -> Path:
        """Fetch the diffusers-format LoRA files from rank 0 and write them here atomically."""
        ref = self.learners.call(0, LearnerWorker.lora_files)
        files = self.learners.get([ref], timeout=self.cfg.cluster.call_timeout_s)[0]
        out = Path(out_dir)
        with atomic_dir(out) as tmp:
            for name, data in files.items():
                (tmp / name).write_bytes(data)
        return out

    def busy_seconds(self) -> dict:
        """Seconds each role spent working (rollout: summed over actors)."""
        return dict(self._busy)

    def shutdown(self) -> None:
        """Kill the actors and stop the embedded cluster if viva started it (also after a failed start)."""
        for g in [self.rollouts, *self.rewards, self.learners]:
            try:
                if g is not None:
                    g.shutdown()
            except Exception:  # noqa: BLE001 - best effort at teardown
                pass
        if self.placement is not None:
            self.placement.remove()
        self.cluster.__exit__(None, None, None)
