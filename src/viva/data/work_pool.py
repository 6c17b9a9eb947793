"""Run one method of a plain worker class over many items: in this process (``local``) or on N Ray actors placed
by ``viva.cluster.ActorGroup`` (fractional CPUs, optional GPUs and runtime_env). Results come back in submission
order as they finish, so a caller can persist each one before the next arrives; at most ``max_in_flight`` calls
wait on each actor, so a crash loses only those.

    with WorkPool(TripletWorker, PoolSpec(n=2, num_cpus=0.25), init_args=(cfg,)) as pool:
        for item, result in pool.map("run_batch", batches):
            ...
"""

from __future__ import annotations

import collections
import contextlib
from dataclasses import dataclass, field
from typing import Any, Deque, Dict, Iterable, Iterator, Sequence, Tuple

from viva.config import ClusterConfig


@contextlib.contextmanager
def ray_session(cfg: ClusterConfig, local: bool) -> Iterator[None]:
    """The run's Ray (``viva.cluster.LocalCluster``: embedded, attached, or one already up in this process, which is
    left running); nothing for a ``local`` run."""
    if local:
        yield
        return
    from viva.cluster.local import LocalCluster

    with LocalCluster(cfg):
        yield


@dataclass(frozen=True)
class PoolSpec:
    """How many workers and what each asks of Ray; ``local=True`` runs one worker in this process instead."""

    n: int = 1
    num_cpus: float = 0.25
    num_gpus: float = 0.0
    runtime_env: Dict[str, Any] = field(default_factory=dict)
    local: bool = False
    max_in_flight: int = 2  # calls queued per actor
    ready_timeout_s: float = 600.0  # constructors (model loading) must finish within this
    role: str = "worker"


class WorkPool:
    """N instances of ``cls`` (Ray actors, or one local instance); ``map`` streams ``(item, result)`` pairs."""

    def __init__(self, cls: type, spec: PoolSpec, init_args: Sequence[Any] = ()) -> None:
        self.spec = spec
        self.group = None
        self.local_worker = None
        if spec.local:
            self.local_worker = cls(*init_args)
            return
        from viva.cluster.actor_group import ActorGroup

        self.group = ActorGroup(cls, spec.n, role=spec.role, init_args=tuple(init_args), num_cpus=spec.num_cpus,
                                num_gpus=spec.num_gpus, runtime_env=spec.runtime_env or None, max_restarts=0)
        self.group.wait_ready(timeout=spec.ready_timeout_s)

    def __enter__(self) -> "WorkPool":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    def map(self, method: str, items: Iterable[Any]) -> Iterator[Tuple[Any, Any]]:
        """``(item, getattr(worker, method)(item))`` for every item, in submission order."""
        if self.local_worker is not None:
            for item in items:
                yield item, getattr(self.local_worker, method)(item)
            return
        assert self.group is not None
        pending: Deque[Tuple[Any, Any]] = collections.deque()
        budget = len(self.group) * self.spec.max_in_flight
        for i, item in enumerate(items):
            pending.append((item, self.group.call(i % len(self.group), method, item)))
            if len(pending) >= budget:
                done, ref = pending.popleft()
                yield done, self.group.get(ref)
        while pending:
            done, ref = pending.popleft()
            yield done, self.group.get(ref)

    def shutdown(self) -> None:
        """Stop the actors (a local worker is just dropped)."""
        if self.group is not None:
            self.group.shutdown()
            self.group = None
        self.local_worker = None
