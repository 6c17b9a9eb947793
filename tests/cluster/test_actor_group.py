"""ActorGroup + LocalCluster on one embedded Ray: calls, timeouts, restarts, restart budget, resource checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import ray

from viva.cluster import (
    ActorFailed,
    ActorGroup,
    CallTimeout,
    LocalCluster,
    ResourceShortfall,
    RoleResources,
    is_actor_error,
    plan_placement,
)
from viva.config import ClusterConfig

from _cluster_workers import Counter

pytestmark = pytest.mark.integration

HERE = str(Path(__file__).resolve().parent)  # workers import _cluster_workers from here


def _cfg(**kwargs) -> ClusterConfig:
    return ClusterConfig(num_cpus=2, runtime_env={"env_vars": {"PYTHONPATH": HERE}}, log_to_driver=False, **kwargs)


@pytest.fixture(scope="module")
def cluster():
    with LocalCluster(_cfg()) as c:
        assert c.started and ray.is_initialized()
        yield c
    assert not ray.is_initialized()


def test_local_cluster_reuses_running_ray(cluster):
    inner = LocalCluster(_cfg()).start()
    assert not inner.started  # Ray was already up: not ours to stop
    inner.shutdown()
    assert ray.is_initialized()
    assert cluster.resources()["CPU"] == 2.0
    assert cluster.runtime_env()["env_vars"]["PYTHONPATH"].split(":")[0].endswith("src")


def test_call_and_call_all_keep_per_actor_state(cluster):
    with ActorGroup(Counter, 2, role="counter", init_kwargs={"start": 10}) as group:
        group.wait_ready(30)
        assert len(group) == 2
        assert group.get(group.call(0, "incr")) == 11
        assert group.get(group.call_all(Counter.incr, 5)) == [16, 15]  # a method reference works like its name
        with pytest.raises(TypeError, match="is not a method of Counter"):
            group.call(0, ActorGroup.shutdown)
        payload = np.arange(200_000, dtype=np.float32)  # 800 kB: broadcast through one ray.put
        echoed = group.get(group.call_all("echo", payload), timeout=30)
        assert all(np.array_equal(e, payload) for e in echoed)
        me = ray.get_runtime_context().get_node_id()
        assert group.node_ids() == [me, me]


def test_get_timeout_names_role_and_method(cluster):
    with ActorGroup(Counter, 1, role="slowpoke") as group:
        ref = group.call(0, "sleep", 3.0)
        with pytest.raises(CallTimeout) as info:
            group.get([ref], timeout=0.3)
        assert info.value.role == "slowpoke" and info.value.method == "sleep" and info.value.pending == (0,)
        assert "slowpoke.sleep" in str(info.value)


def test_kill_restarts_actor_with_fresh_state(cluster):
    with ActorGroup(Counter, 1, role="rollout", max_restarts=2) as group:
        assert group.get(group.call(0, "incr")) == 1
        assert group.get(group.call(0, "incr")) == 2
        pid = group.get(group.call(0, "getpid"))
        group.kill(0)
        seen = None
        for _ in range(200):  # ray.kill is asynchronous: calls may still land before the process dies
            try:
                group.get(group.call(0, "incr"), timeout=30)
            except Exception as exc:  # noqa: BLE001 - the test inspects what the caller sees
                seen = exc
                break
        assert seen is not None and is_actor_error(seen) and group.is_actor_error(seen)
        assert not isinstance(seen, ActorFailed)  # budget left: a restartable death, not a permanent failure
        group.wait_ready(60)
        assert group.get(group.call(0, "incr")) == 1  # constructor re-ran: state reset
        assert group.get(group.call(0, "getpid")) != pid
        assert group.num_restarts(0) == 1


def test_restart_budget_exhausted_raises_actor_failed(cluster):
    with ActorGroup(Counter, 2, role="reward", max_restarts=1) as group:
        group.wait_ready(30)
        with pytest.raises(ray.exceptions.RayActorError):  # first crash: restartable, Ray's own error
            group.get(group.call(1, "crash"), timeout=30)
        group.wait_ready(60)
        with pytest.raises(ActorFailed) as info:
            group.get(group.call(1, "crash"), timeout=30)
        assert info.value.role == "reward" and info.value.index == 1
        assert not is_actor_error(info.value)  # nothing to redo the work on: the run must stop
        assert "reward actor 1 failed permanently" in str(info.value)
        with pytest.raises(ActorFailed):
            group.get(group.call(1, "incr"), timeout=30)
        assert group.get(group.call(0, "incr")) == 1  # the other actor is unaffected


def test_impossible_requests_raise_instead_of_hanging(cluster):
    with pytest.raises(ResourceShortfall, match=r"role 'rollout'.*short by \{CPU: 1\}"):
        ActorGroup(Counter, 3, role="rollout", num_cpus=1)
    with pytest.raises(ResourceShortfall, match=r"role 'learner'.*GPU"):
        ActorGroup(Counter, 1, role="learner", num_gpus=1)
    with pytest.raises(ResourceShortfall, match=r"role 'rollout'"):
        plan_placement(_cfg(), {"rollout": RoleResources(3, num_cpus=1.0)})


def test_placement_times_out_when_resources_are_held(cluster):
    with ActorGroup(Counter, 1, role="hog", num_cpus=1.5) as hog:
        hog.wait_ready(30)
        with pytest.raises(ResourceShortfall, match=r"role 'learner'.*not placed within 1 s"):
            plan_placement(_cfg(colocate=False), {"learner": RoleResources(1, num_cpus=1.0)}, timeout_s=1.0)


def test_colocated_placement_on_fractional_cpus(cluster):
    roles = {"rollout": RoleResources(2, num_cpus=0.25), "learner": RoleResources(1, num_cpus=0.5)}
    placement = plan_placement(_cfg(colocate=True), roles)
    try:
        assert placement.groups["rollout"].id == placement.groups["learner"].id
        assert placement.groups["rollout"].bundle_specs == [{"CPU": 0.75}, {"CPU": 0.25}]
        rollout = ActorGroup(Counter, 2, role="rollout", num_cpus=0.25, placement=placement)
        learner = ActorGroup(Counter, 1, role="learner", num_cpus=0.5, placement=placement)
        assert rollout.get(rollout.call_all("incr")) == [1, 1]
        assert learner.get(learner.call(0, "incr")) == 1
        with pytest.raises(ResourceShortfall, match="reserved share"):
            ActorGroup(Counter, 1, role="learner", num_cpus=1.0, placement=placement)
        with pytest.raises(ResourceShortfall, match="reserved 1"):
            ActorGroup(Counter, 2, role="learner", num_cpus=0.5, placement=placement)
    finally:
        placement.remove()
