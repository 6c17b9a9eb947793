"""N Ray actors of one plain Python class, addressed by index: ``ActorGroup(RolloutWorker, n=4, role="rollout")``,
then ``group.call(0, RolloutWorker.sample_group, request)`` (a method of the class, or its name).

The class is never decorated; ``ray.remote`` is applied here. Actors restart up to ``max_restarts`` times
(constructor re-run, state reset); calls are never retried by Ray (``max_task_retries=0``): the driver decides
what to redo. A call to an actor whose restart budget is spent raises ``ActorFailed``.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any, Callable, Generic, Iterable, Mapping, Sequence, TypeVar

import ray
from ray.exceptions import ActorDiedError, ActorUnavailableError, GetTimeoutError, RayActorError

from viva.cluster import resources as res
from viva.cluster.errors import ActorFailed, CallTimeout, ResourceShortfall
from viva.cluster.placement import Placement

T = TypeVar("T")
_MAX_TRACKED_CALLS = 4096  # ref -> (actor, method) names kept for error messages; oldest dropped beyond this


def is_actor_error(exc: BaseException) -> bool:
    """True when the actor process died or is restarting (redo the work); False for user errors and ActorFailed."""
    # ActorFailed (restart budget spent) is deliberately excluded: nothing is left to redo the work on.
    return isinstance(exc, (RayActorError, ActorDiedError, ActorUnavailableError))


def _node_id(_instance: Any) -> str:
    # Runs inside the actor through the builtin __ray_call__, so worker classes need no extra method.
    return ray.get_runtime_context().get_node_id()


class ActorGroup(Generic[T]):
    """N Ray actors of a plain class ``cls`` for one role; calls return ObjectRefs, ``get`` resolves them."""

    def __init__(
        self,
        cls: type[T],
        n: int,
        *,
        role: str,
        init_args: Sequence[Any] = (),
        init_kwargs: Mapping[str, Any] | None = None,
        num_cpus: float = 0.25,
        num_gpus: float = 0.0,
        resources: Mapping[str, float] | None = None,
        max_restarts: int = 3,
        runtime_env: Mapping[str, Any] | None = None,
        placement: Placement | None = None,
    ) -> None:
        if n < 1:
            raise ValueError(f"ActorGroup '{role}' needs n >= 1, got {n}")
        self.role, self.cls, self.cls_name = role, cls, cls.__name__
        demand = res.actor_demand(num_cpus, num_gpus, resources)
        # 1. Fail fast on requests that would otherwise stay pending forever.
        if placement is None:
            res.check_capacity(role, demand, n)
        else:
            _check_fits_placement(role, demand, n, placement)
        # 2. Create the actors (Ray schedules them asynchronously; wait_ready() waits for the constructors).
        options: dict[str, Any] = dict(
            num_cpus=num_cpus,
            num_gpus=num_gpus,
            max_restarts=max_restarts,
            max_task_retries=0,
        )
        if resources:
            options["resources"] = dict(resources)
        if runtime_env:
            options["runtime_env"] = dict(runtime_env)
        remote_cls = ray.remote(cls)
        self._actors = []
        for i in range(n):
            per_actor = dict(options)
            if placement is not None:
                per_actor["scheduling_strategy"] = placement.scheduling_strategy(role, i)
            handle = remote_cls.options(**per_actor).remote(*init_args, **dict(init_kwargs or {}))
            self._actors.append(handle)
        self._index_of = {h._actor_id.hex(): i for i, h in enumerate(self._actors)}
        self._calls: OrderedDict[str, tuple[int, str]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._actors)

    def __enter__(self) -> "ActorGroup[T]":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    @property
    def handles(self) -> list[Any]:
        """The Ray actor handles (for code that needs Ray directly, e.g. ray.wait over several groups)."""
        return list(self._actors)

    def call(self, i: int, method: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> ray.ObjectRef:
        """Submit ``method(*args, **kwargs)`` to actor ``i``; returns its ObjectRef at once. ``method`` is a method
        of the class (``RolloutWorker.sample_group``: checked here, found by an IDE) or its name."""
        name = self._method_name(method)
        ref = getattr(self._actor(i), name).remote(*args, **kwargs)
        self._track(ref, i, name)
        return ref

    def call_all(self, method: Callable[..., Any] | str, *args: Any, **kwargs: Any) -> list[ray.ObjectRef]:
        """Submit the same call to every actor; each argument is put in the object store once (broadcast)."""
        if len(self._actors) > 1:
            # Ray would otherwise serialise a large argument once per actor; a top-level ref arrives as its value.
            args = tuple(a if isinstance(a, ray.ObjectRef) else ray.put(a) for a in args)
            kwargs = {k: v if isinstance(v, ray.ObjectRef) else ray.put(v) for k, v in kwargs.items()}
        return [self.call(i, method, *args, **kwargs) for i in range(len(self._actors))]

    def get(self, refs: ray.ObjectRef | Sequence[ray.ObjectRef], timeout: float | None = None) -> Any:
        """``ray.get`` with errors that name the role: CallTimeout, ActorFailed; a restartable death re-raises."""
        single = isinstance(refs, ray.ObjectRef)
        ref_list = [refs] if single else list(refs)
        try:
            values = ray.get(ref_list, timeout=timeout)
        except GetTimeoutError:
            raise self._timeout_error(ref_list, timeout) from None
        except RayActorError as exc:
            self._raise_if_dead(exc)
            raise
        for ref in ref_list:
            self._calls.pop(ref.hex(), None)
        return values[0] if single else values

    def wait_ready(self, timeout: float, indices: Iterable[int] | None = None) -> None:
        """Block until the actors' constructors have run (also after restarts); CallTimeout after ``timeout``."""
        pending = set(range(len(self._actors)) if indices is None else indices)
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise CallTimeout(self.role, "__init__", timeout, sorted(pending))
            probes = {self._actors[i].__ray_call__.remote(_node_id): i for i in pending}
            ready, _ = ray.wait(list(probes), num_returns=len(probes), timeout=left)
            for ref in ready:
                try:
                    ray.get(ref)
                    pending.discard(probes[ref])
                except RayActorError as exc:  # restarting: probe again after a short pause
                    self._raise_if_dead(exc)
            if pending and len(ready) == len(probes):
                time.sleep(min(0.2, max(0.0, deadline - time.monotonic())))

    def node_ids(self, timeout: float = 60.0) -> list[str]:
        """Ray node id of the node each actor runs on (index order)."""
        refs = [h.__ray_call__.remote(_node_id) for h in self._actors]
        for i, ref in enumerate(refs):
            self._track(ref, i, "node_ids")
        return self.get(refs, timeout=timeout)

    def num_restarts(self, i: int) -> int:
        """How many times actor ``i`` has been restarted (from the GCS actor table; -1 if unknown)."""
        info = _actor_info(self._actor(i)._actor_id.hex())
        return int(info.get("NumRestarts", -1)) if info else -1

    def kill(self, i: int) -> None:
        """Kill actor ``i`` the way a crash would: Ray restarts it if its budget allows (for tests)."""
        ray.kill(self._actor(i), no_restart=False)

    def shutdown(self) -> None:
        """Kill every actor of the group for good."""
        for handle in self._actors:
            try:
                ray.kill(handle, no_restart=True)
            except Exception:  # already dead / Ray shut down: nothing left to stop
                pass
        self._actors = []

    def is_actor_error(self, exc: BaseException) -> bool:
        """See the module-level ``is_actor_error``."""
        return is_actor_error(exc)

    def _method_name(self, method: Callable[..., Any] | str) -> str:
        """The name Ray calls: ``method`` itself, or the name of a method reference of this group's class."""
        if isinstance(method, str):
            return method
        name = getattr(method, "__name__", "")
        if getattr(self.cls, name, None) is not method:
            raise TypeError(f"ActorGroup '{self.role}': {getattr(method, '__qualname__', method)!r} is not a method "
                            f"of {self.cls_name}")
        return name

    def _actor(self, i: int) -> Any:
        if not 0 <= i < len(self._actors):
            raise IndexError(f"{self.role} has {len(self._actors)} actors, asked for actor {i}")
        return self._actors[i]

    def _track(self, ref: ray.ObjectRef, i: int, method: str) -> None:
        self._calls[ref.hex()] = (i, method)  # hex, not the ref: holding refs would pin results in the store
        while len(self._calls) > _MAX_TRACKED_CALLS:
            self._calls.popitem(last=False)

    def _timeout_error(self, refs: list[ray.ObjectRef], timeout: float | None) -> CallTimeout:
        _, not_ready = ray.wait(refs, num_returns=len(refs), timeout=0)
        calls = [self._calls.get(ref.hex(), (-1, "?")) for ref in not_ready]
        methods = sorted({m for _, m in calls}) or ["?"]
        return CallTimeout(self.role, "/".join(methods), timeout or 0.0, sorted({i for i, _ in calls if i >= 0}))

    def _raise_if_dead(self, exc: RayActorError) -> None:
        """Raise ActorFailed when the actor behind ``exc`` will not restart."""
        actor_id = getattr(exc, "actor_id", None)
        index = self._index_of.get(actor_id, -1) if actor_id else -1
        info = _actor_info(actor_id) if actor_id else None
        dead = info.get("State") == "DEAD" if info else type(exc) is ActorDiedError
        if dead:
            raise ActorFailed(self.role, index, exc) from exc


def _actor_info(actor_id: str) -> dict[str, Any] | None:
    """The GCS actor-table row (State, NumRestarts); None where unavailable (Ray client mode)."""
    try:
        from ray._private import state  # no public API gives the restart state without the dashboard

        return state.actors(actor_id) or None
    except Exception:
        return None


def _check_fits_placement(role: str, demand: dict[str, float], n: int, placement: Placement) -> None:
    """An actor asking for more than its reserved bundle share would pend forever inside the group."""
    spec = placement.roles.get(role)
    if spec is None:
        raise ResourceShortfall(role, f"the placement has no role '{role}' (it has {sorted(placement.roles)})")
    if n > spec.num_actors:
        raise ResourceShortfall(role, f"{n} actors asked, the placement reserved {spec.num_actors}")
    missing = res.shortfall(demand, spec.demand())
    if missing:
        raise ResourceShortfall(
            role, f"each actor asks {res.fmt(demand)} but its reserved share is {res.fmt(spec.demand())}"
        )
