"""viva.cluster — the Ray placement layer: embedded/attached cluster, actor groups, placement groups.

The only package (with the drivers) that imports Ray; algorithm classes stay plain Python.
"""

from viva.cluster.actor_group import ActorGroup, is_actor_error
from viva.cluster.errors import ActorFailed, CallTimeout, ClusterError, ResourceShortfall
from viva.cluster.local import LocalCluster
from viva.cluster.placement import Placement, RoleResources, plan_placement, roles_from_config

__all__ = [
    "ActorFailed",
    "ActorGroup",
    "CallTimeout",
    "ClusterError",
    "LocalCluster",
    "Placement",
    "ResourceShortfall",
    "RoleResources",
    "is_actor_error",
    "plan_placement",
    "roles_from_config",
]
