"""Placement groups per role: colocated (one PACK group, rollout + learner share GPUs) or disaggregated (SPREAD).

Colocated (``cluster.colocate=True``): bundle i holds actor i of every role, e.g. rollout 0.5 GPU + learner
0.5 GPU → bundles of {GPU: 1}, so rollout actor i and learner actor i share one GPU (verl's shared resource pool).
Disaggregated (``colocate=False``): one placement group per role, one bundle per actor, strategy SPREAD.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

import ray
from ray.util.placement_group import PlacementGroup, placement_group, remove_placement_group
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from viva.cluster import resources as res
from viva.cluster.errors import ResourceShortfall
from viva.config import ClusterConfig


@dataclass(frozen=True)
class RoleResources:
    """How many actors one role has and what each one needs."""

    num_actors: int
    num_cpus: float = 0.25
    num_gpus: float = 0.0
    resources: Mapping[str, float] = field(default_factory=dict)  # custom Ray resources per actor

    def __post_init__(self) -> None:
        if self.num_actors < 1:
            raise ValueError(f"RoleResources.num_actors must be >= 1, got {self.num_actors}")
        if self.num_cpus < 0 or self.num_gpus < 0:
            raise ValueError(f"RoleResources needs num_cpus, num_gpus >= 0, got {self.num_cpus}, {self.num_gpus}")
        # Ray's rule: fractional GPUs only below 1 (0.5 shares a GPU; 1.5 is not a device set).
        if self.num_gpus > 1 and not float(self.num_gpus).is_integer():
            raise ValueError(f"RoleResources.num_gpus above 1 must be whole, got {self.num_gpus}")
        if not self.demand():
            raise ValueError("RoleResources needs num_cpus, num_gpus or a custom resource > 0 to be placed")

    def demand(self) -> dict[str, float]:
        """Ray resource dict of one actor of this role."""
        return res.actor_demand(self.num_cpus, self.num_gpus, self.resources)


def roles_from_config(cfg: ClusterConfig) -> dict[str, RoleResources]:
    """The rollout and learner roles as ``ClusterConfig`` declares them (reward pools come from RewardSpec)."""
    return {
        "rollout": RoleResources(cfg.num_rollout_actors, cfg.rollout_num_cpus, cfg.rollout_num_gpus),
        "learner": RoleResources(cfg.num_learner_workers, cfg.learner_num_cpus, cfg.learner_num_gpus),
    }


@dataclass
class Placement:
    """Reserved placement groups; ``scheduling_strategy(role, i)`` pins actor i of a role to its bundle."""

    colocate: bool
    roles: dict[str, RoleResources]
    groups: dict[str, PlacementGroup]  # role -> its placement group (the same one for every role when colocated)
    bundle_of: dict[str, tuple[int, ...]]  # role -> bundle index of each actor

    def scheduling_strategy(self, role: str, index: int) -> PlacementGroupSchedulingStrategy:
        """Ray scheduling strategy that puts actor ``index`` of ``role`` in its reserved bundle."""
        return PlacementGroupSchedulingStrategy(
            placement_group=self.groups[self._role(role)],
            placement_group_bundle_index=self.bundle_index(role, index),
            placement_group_capture_child_tasks=False,
        )

    def bundle_index(self, role: str, index: int) -> int:
        """Bundle index of actor ``index`` of ``role``."""
        bundles = self.bundle_of[self._role(role)]
        if not 0 <= index < len(bundles):
            raise IndexError(f"role '{role}' has {len(bundles)} reserved actors, asked for actor {index}")
        return bundles[index]

    def remove(self) -> None:
        """Release every placement group (actors inside them are killed by Ray)."""
        for pg in {pg.id: pg for pg in self.groups.values()}.values():
            remove_placement_group(pg)
        self.groups.clear()

    def _role(self, role: str) -> str:
        if role not in self.groups:
            raise KeyError(f"no placement reserved for role '{role}'; reserved roles: {sorted(self.groups)}")
        return role


def plan_placement(
    cfg: ClusterConfig, roles: Mapping[str, RoleResources], timeout_s: float | None = None
) -> Placement:
    """Reserve placement groups for ``roles`` (colocated PACK or per-role SPREAD); raise ResourceShortfall if not."""
    if not roles:
        raise ValueError("plan_placement needs at least one role")
    timeout = cfg.placement_timeout_s if timeout_s is None else timeout_s
    # 1. Fail fast on requests the cluster can never satisfy (Ray would leave them pending forever).
    for role, spec in roles.items():
        res.check_capacity(role, spec.demand(), spec.num_actors)
    # 2. Reserve, 3. wait until every bundle is placed.
    plan = _colocated(roles) if cfg.colocate else _disaggregated(roles)
    for name, (pg, bundles) in plan.items():
        if not pg.wait(timeout_seconds=timeout):
            for other, _ in plan.values():
                remove_placement_group(other)
            raise ResourceShortfall(
                name,
                f"placement group {[res.fmt(b) for b in bundles]} not placed within {timeout:g} s "
                f"(available now: {res.fmt(_available_compute())}; other actors may hold the rest)",
            )
    groups = {role: plan[_owner(role, cfg.colocate, roles)][0] for role in roles}
    # Colocated: actor i of every role shares bundle i; disaggregated: actor i owns bundle i of its role's group.
    bundle_of = {role: tuple(range(spec.num_actors)) for role, spec in roles.items()}
    return Placement(cfg.colocate, dict(roles), groups, bundle_of)


def _colocated(roles: Mapping[str, RoleResources]) -> dict[str, tuple[PlacementGroup, list[dict[str, float]]]]:
    """One PACK placement group; bundle i = the sum of actor i's demand over every role that has an actor i."""
    n_bundles = max(spec.num_actors for spec in roles.values())
    bundles = []
    for i in range(n_bundles):
        bundle: dict[str, float] = {}
        for spec in roles.values():
            if i < spec.num_actors:
                bundle = res.add(bundle, spec.demand())
        bundles.append({k: v for k, v in bundle.items() if v > 0})
    name = "+".join(roles)
    for i, bundle in enumerate(bundles):
        # A shared bundle must fit one node: e.g. 1 GPU rollout + 1 GPU learner needs 2-GPU nodes.
        res.check_capacity(name, bundle, 1, hint=f" (colocated bundle {i}; use fractional GPUs or colocate=false)")
    res.check_capacity(name, _sum(bundles), 1, hint=" (colocated total)")
    return {name: (placement_group(bundles, strategy="PACK", name=f"viva-{name}"), bundles)}


def _disaggregated(roles: Mapping[str, RoleResources]) -> dict[str, tuple[PlacementGroup, list[dict[str, float]]]]:
    """One SPREAD placement group per role, one bundle per actor."""
    plan = {}
    for role, spec in roles.items():
        bundles = [spec.demand() for _ in range(spec.num_actors)]
        plan[role] = (placement_group(bundles, strategy="SPREAD", name=f"viva-{role}"), bundles)
    return plan


def _owner(role: str, colocate: bool, roles: Mapping[str, RoleResources]) -> str:
    return "+".join(roles) if colocate else role


def _sum(bundles: list[dict[str, float]]) -> dict[str, float]:
    total: dict[str, float] = {}
    for bundle in bundles:
        total = res.add(total, bundle)
    return total


def _available_compute() -> dict[str, float]:
    return {k: v for k, v in ray.available_resources().items() if k in ("CPU", "GPU")}
