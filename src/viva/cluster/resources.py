"""What the Ray cluster has versus what a role asks for: fail fast instead of pending forever.

Ray leaves an actor (or placement group) that asks for more than the cluster has in PENDING with no error, so
every request is checked here first, against the cluster's totals and against its largest node.
"""

from __future__ import annotations

from typing import Mapping

import ray

from viva.cluster.errors import ResourceShortfall

_EPS = 1e-6  # fractional resources (0.25 CPU) are summed in floating point


def actor_demand(num_cpus: float, num_gpus: float, resources: Mapping[str, float] | None = None) -> dict[str, float]:
    """Ray resource dict of one actor: {"CPU": c, "GPU": g, **custom}, zero entries dropped."""
    demand = {"CPU": float(num_cpus), "GPU": float(num_gpus), **{k: float(v) for k, v in (resources or {}).items()}}
    return {k: v for k, v in demand.items() if v > 0}


def scale(demand: Mapping[str, float], n: int) -> dict[str, float]:
    """n copies of one demand."""
    return {k: v * n for k, v in demand.items()}


def add(a: Mapping[str, float], b: Mapping[str, float]) -> dict[str, float]:
    """Sum of two resource dicts."""
    return {k: a.get(k, 0.0) + b.get(k, 0.0) for k in {*a, *b}}


def alive_nodes() -> list[dict[str, float]]:
    """Total resources of every alive node."""
    return [dict(node["Resources"]) for node in ray.nodes() if node.get("Alive", False)]


def shortfall(demand: Mapping[str, float], have: Mapping[str, float]) -> dict[str, float]:
    """The part of ``demand`` that ``have`` cannot cover (empty dict: it fits)."""
    return {k: v - have.get(k, 0.0) for k, v in demand.items() if v > have.get(k, 0.0) + _EPS}


def fmt(resources: Mapping[str, float]) -> str:
    """Compact '{CPU: 0.25, GPU: 1}' text for error messages."""
    return "{" + ", ".join(f"{k}: {v:g}" for k, v in sorted(resources.items())) + "}"


def check_capacity(role: str, per_actor: Mapping[str, float], n: int, hint: str = "") -> None:
    """Raise ResourceShortfall when n actors of ``per_actor`` cannot fit the cluster (in total or on one node)."""
    nodes = alive_nodes()
    if not any(not shortfall(per_actor, node) for node in nodes):
        largest = {k: max((node.get(k, 0.0) for node in nodes), default=0.0) for k in per_actor}
        raise ResourceShortfall(
            role, f"one actor needs {fmt(per_actor)} on one node, but no node has that (largest: {fmt(largest)}){hint}"
        )
    total_demand = scale(per_actor, n)
    totals = {k: float(v) for k, v in ray.cluster_resources().items()}
    missing = shortfall(total_demand, totals)
    if missing:
        raise ResourceShortfall(
            role,
            f"{n} actors x {fmt(per_actor)} = {fmt(total_demand)}, the cluster has "
            f"{fmt({k: totals.get(k, 0.0) for k in total_demand})}: short by {fmt(missing)}{hint}",
        )
