"""Placement on a simulated 4-node cluster (ray.cluster_utils.Cluster, logical GPUs): colocated vs disaggregated,
and an actor surviving the loss of its node. Separate module: a Cluster and a plain ray.init cannot share a process.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
import ray
from ray.cluster_utils import Cluster

from viva.cluster import ActorGroup, LocalCluster, ResourceShortfall, RoleResources, is_actor_error, plan_placement
from viva.config import ClusterConfig

from _cluster_workers import Counter

pytestmark = pytest.mark.integration

HERE = str(Path(__file__).resolve().parent)
# Fast node-death detection (defaults: 3 s x 5 misses) so the node-loss test stays short.
FAST_HEALTH = {"health_check_period_ms": 500, "health_check_failure_threshold": 3, "health_check_timeout_ms": 500}


def _cfg(cluster: Cluster, colocate: bool) -> ClusterConfig:
    return ClusterConfig(
        address=cluster.address,
        colocate=colocate,
        runtime_env={"env_vars": {"PYTHONPATH": HERE}},
        log_to_driver=False,
        placement_timeout_s=30.0,
    )


def _wait_all_gpus_free(total: float = 6.0, timeout: float = 30.0) -> None:
    # A removed placement group frees its resources asynchronously; SPREAD would avoid a node still "busy".
    deadline = time.monotonic() + timeout
    while ray.available_resources().get("GPU", 0.0) < total and time.monotonic() < deadline:
        time.sleep(0.1)


def _gpu_ids(_instance: object) -> list:
    return [str(g) for g in ray.get_gpu_ids()]


@pytest.fixture(scope="module")
def sim_cluster():
    # Head without GPUs (it cannot be removed), three "GPU nodes" with 2 logical GPUs each.
    cluster = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "num_gpus": 0, "include_dashboard": False, "_system_config": FAST_HEALTH},
    )
    nodes = [cluster.add_node(num_cpus=2, num_gpus=2) for _ in range(3)]
    cluster.wait_for_nodes()
    with LocalCluster(_cfg(cluster, colocate=True)) as attached:
        assert attached.started and not attached.embedded
        yield cluster, nodes
    cluster.shutdown()


def test_colocated_roles_share_node_and_gpu(sim_cluster):
    cluster, _ = sim_cluster
    roles = {"rollout": RoleResources(2, 0.25, 0.5), "learner": RoleResources(2, 0.25, 0.5)}
    placement = plan_placement(_cfg(cluster, colocate=True), roles)
    try:
        assert placement.groups["rollout"].bundle_specs == [{"CPU": 0.5, "GPU": 1.0}] * 2
        rollout = ActorGroup(Counter, 2, role="rollout", num_gpus=0.5, placement=placement)
        learner = ActorGroup(Counter, 2, role="learner", num_gpus=0.5, placement=placement)
        r_nodes, l_nodes = rollout.node_ids(), learner.node_ids()
        assert len(set(r_nodes + l_nodes)) == 1  # PACK: 2 GPUs' worth on one 2-GPU node
        for i in range(2):  # rollout actor i and learner actor i see the same (logical) GPU
            r_gpu = ray.get(rollout.handles[i].__ray_call__.remote(_gpu_ids))
            l_gpu = ray.get(learner.handles[i].__ray_call__.remote(_gpu_ids))
            assert r_gpu == l_gpu and len(r_gpu) == 1
    finally:
        placement.remove()


def test_disaggregated_spreads_and_survives_node_loss(sim_cluster):
    cluster, nodes = sim_cluster
    roles = {"rollout": RoleResources(3, 0.25, 1.0), "learner": RoleResources(1, 0.25, 1.0)}
    _wait_all_gpus_free()
    placement = plan_placement(_cfg(cluster, colocate=False), roles)
    try:
        rollout = ActorGroup(Counter, 3, role="rollout", num_gpus=1, placement=placement, max_restarts=2)
        before = rollout.node_ids()
        assert len(set(before)) == 3  # SPREAD: one rollout actor per GPU node
        assert rollout.get(rollout.call_all("incr", 5)) == [5, 5, 5]
        victim = next(n for n in nodes if n.node_id == before[0])
        in_flight = rollout.call(0, "sleep", 30.0)
        cluster.remove_node(victim, allow_graceful=False)  # like a machine going away mid-call
        with pytest.raises(Exception) as info:
            rollout.get(in_flight, timeout=60)
        assert is_actor_error(info.value)  # the driver learns the work is lost and can redo it
        rollout.wait_ready(60)  # its bundle is re-placed on a surviving node and the actor restarts there
        after = rollout.node_ids()
        assert after[0] != victim.node_id and victim.node_id not in after
        assert rollout.get(rollout.call(0, "incr")) == 1  # fresh state after the restart
        assert rollout.get(rollout.call(1, "incr")) == 6  # actors on other nodes kept theirs
    finally:
        placement.remove()


def test_impossible_placements_raise_naming_the_role(sim_cluster):
    cluster, _ = sim_cluster
    with pytest.raises(ResourceShortfall, match=r"role 'rollout\+learner'.*colocated bundle 0"):
        # 1 + 2 GPUs in one shared bundle: no node has 3 GPUs.
        plan_placement(
            _cfg(cluster, colocate=True), {"rollout": RoleResources(1, 0.25, 1.0), "learner": RoleResources(1, 0.25, 2.0)}
        )
    with pytest.raises(ResourceShortfall, match=r"role 'rollout'.*short by \{GPU: \d"):
        plan_placement(_cfg(cluster, colocate=False), {"rollout": RoleResources(16, 0.25, 1.0)})
