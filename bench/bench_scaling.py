"""Rollout throughput vs number of rollout actors on a simulated 4-node cluster (logical GPUs, sleep-as-GPU-time).

Each "group" stands in for one prompt's G denoised edits: the actor sleeps ``--group-time`` seconds (the GPU's
denoising time; a sleep uses no CPU, so 16 actors run on 2 cores) and returns a small uint8 video payload.
The driver dispatches ``--groups-per-step`` groups per step round-robin over n actors and waits for all of them.
Efficiency = throughput(n) / (n x throughput(1)); the target is >= 90 % at 16 actors.

Run: .venv/bin/python bench/bench_scaling.py [--group-time 0.2 --groups-per-step 32 --steps 2]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import ray
from ray.cluster_utils import Cluster

from viva.cluster import ActorGroup, LocalCluster
from viva.config import ClusterConfig


class SimRolloutWorker:
    """Stand-in rollout actor: sleeps for the GPU time of one group, returns G tiny videos (no torch import)."""

    def __init__(self, group_size: int) -> None:
        self.group_size = group_size

    def generate(self, group_id: int, seconds: float) -> np.ndarray:
        """Simulated group: [G, F, H, W, 3] uint8."""
        time.sleep(seconds)
        return np.full((self.group_size, 8, 32, 32, 3), group_id % 256, dtype=np.uint8)  # [G, F, H, W, 3]


def measure(group: ActorGroup, n: int, args: argparse.Namespace) -> float:
    """Samples per second with the first n actors of ``group``."""
    samples = 0
    start = time.perf_counter()
    for _ in range(args.steps):
        refs = [group.call(j % n, "generate", j, args.group_time) for j in range(args.groups_per_step)]
        videos = group.get(refs, timeout=600)
        samples += sum(v.shape[0] for v in videos)
    return samples / (time.perf_counter() - start)


def main() -> None:
    """Start the simulated cluster, place 16 actors, measure 1..16."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--group-time", type=float, default=0.2)
    p.add_argument("--groups-per-step", type=int, default=32)
    p.add_argument("--group-size", type=int, default=4)
    p.add_argument("--steps", type=int, default=2)
    p.add_argument("--nodes", type=int, default=4)
    p.add_argument("--gpus-per-node", type=int, default=4)
    args = p.parse_args()
    counts = [1, 2, 4, 8, 16]
    # 1. A simulated cluster: a CPU head + `nodes` nodes with logical GPUs.
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1, "num_gpus": 0, "include_dashboard": False})
    for _ in range(args.nodes):
        cluster.add_node(num_cpus=args.gpus_per_node, num_gpus=args.gpus_per_node)
    cluster.wait_for_nodes()
    with LocalCluster(ClusterConfig(address=cluster.address, log_to_driver=False)):
        # 2. One rollout actor per logical GPU, placed once; each measurement uses the first n.
        group = ActorGroup(SimRolloutWorker, max(counts), role="rollout", init_args=(args.group_size,), num_gpus=1)
        group.wait_ready(300)
        nodes = len(set(group.node_ids()))
        measure(group, max(counts), args)  # warm-up: first calls pay for worker start-up
        # 3. Throughput per actor count, measured side by side in this one run.
        print(f"{max(counts)} actors on {nodes} simulated nodes; group time {args.group_time}s, "
              f"{args.groups_per_step} groups/step x {args.group_size} samples, {args.steps} steps")
        base = None
        print(f"{'actors':>6} {'samples/s':>10} {'speedup':>8} {'efficiency':>10}")
        for n in counts:
            rate = measure(group, n, args)
            base = base or rate
            print(f"{n:>6} {rate:>10.1f} {rate / base:>8.2f} {rate / (n * base):>9.1%}")
        ideal = args.group_size / args.group_time
        print(f"(ideal per actor: {ideal:.1f} samples/s; efficiency is relative to the measured 1-actor rate)")
        group.shutdown()
    cluster.shutdown()


if __name__ == "__main__":
    main()
