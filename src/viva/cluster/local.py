"""The Ray cluster a run uses: an embedded one started in this process, or an existing one attached by address.

    with LocalCluster(cfg.cluster) as cluster:   # address=None: embedded, bound to this machine
        rollout = ActorGroup(RolloutWorker, n=4, role="rollout", num_gpus=1)

Only what this object started is stopped: an attached cluster keeps running (the driver just disconnects), and a
Ray already initialised in the process is reused and left alone. ``ray stop`` is never called.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import ray

import viva
from viva.config import ClusterConfig

# src/ of this checkout; embedded workers get it on PYTHONPATH so they import the same viva as the driver.
_SRC_DIR = str(Path(viva.__file__).resolve().parent.parent)


class LocalCluster:
    """Context manager owning the Ray connection of one run (embedded when ``cfg.address`` is None)."""

    def __init__(self, cfg: ClusterConfig) -> None:
        self.cfg = cfg
        self.started = False  # True only when this object called ray.init (and so must call ray.shutdown)

    def __enter__(self) -> "LocalCluster":
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown()

    @property
    def embedded(self) -> bool:
        """True when this object starts its own Ray (``cfg.address`` is None)."""
        return self.cfg.address is None

    def start(self) -> "LocalCluster":
        """Start the embedded cluster or attach to ``cfg.address``; reuse a Ray already initialised here."""
        if ray.is_initialized():
            return self
        common = dict(
            namespace="viva",
            logging_level=logging.WARNING,
            log_to_driver=self.cfg.log_to_driver,
            runtime_env=self.runtime_env(),
        )
        if self.embedded:
            ray.init(
                num_cpus=self.cfg.num_cpus or os.cpu_count(),
                num_gpus=self.cfg.num_gpus,
                object_store_memory=self.cfg.object_store_memory,
                include_dashboard=False,
                _node_ip_address="127.0.0.1",
                **common,
            )
        else:
            ray.init(address=self.cfg.address, **common)
        self.started = True
        return self

    def shutdown(self) -> None:
        """Disconnect (attached) or stop (embedded) — only if this object started Ray."""
        if self.started and ray.is_initialized():
            ray.shutdown()
        self.started = False

    def runtime_env(self) -> dict[str, Any]:
        """Job-level runtime_env: ``cfg.runtime_env``, plus src/ on the workers' PYTHONPATH when embedded."""
        env = dict(self.cfg.runtime_env or {})
        if not self.embedded:
            return env  # remote nodes install viva themselves (deploy/): a local path means nothing there
        env_vars = dict(env.get("env_vars") or {})
        paths = [_SRC_DIR, env_vars.get("PYTHONPATH", ""), os.environ.get("PYTHONPATH", "")]
        env_vars["PYTHONPATH"] = os.pathsep.join(p for p in paths if p)
        env["env_vars"] = env_vars
        return env

    def resources(self) -> dict[str, float]:
        """Total resources of the cluster (CPU, GPU, memory, custom)."""
        return {k: float(v) for k, v in ray.cluster_resources().items()}
