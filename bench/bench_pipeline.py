"""Pipelined (max_staleness=1) vs synchronous (max_staleness=0) Edit-GRPO step time with the real tiny models on
the embedded Ray cluster, side by side in one run (same config, same seed; only k differs).

On 2 CPU cores the roles compete for the same cores, so overlap helps less than on GPU nodes where rollout and
learner own separate devices; bench/bench_pipeline_sim.py measures the balanced-stage case with simulated stages.

Run: ``python bench/bench_pipeline.py [--steps 4]``
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from viva.config import load_config
from viva.grpo.driver import run


def _time(k: int, steps: int, out: Path, extra: list[str]) -> tuple[float, list[float]]:
    cfg = load_config("configs/grpo/toy.yaml", [
        f"output_dir={out}/k{k}", f"grpo.max_staleness={k}", f"grpo.steps={steps}", "grpo.eval_every=0",
        "grpo.checkpoint_every=0", "logging.wandb=false", "logging.sample_every=0", "logging.progress=false",
        *extra])
    t = time.perf_counter()
    run(cfg, local=False, progress=False)
    wall = time.perf_counter() - t
    rows = [json.loads(x) for x in (out / f"k{k}" / "metrics.jsonl").read_text().splitlines()]
    return wall, [r["staleness/mean"] for r in rows if r.get("kind") == "train"]


def main() -> None:
    """Print wall time per step for k=0 and k=1 and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("overrides", nargs="*", help="extra key=value overrides for configs/grpo/toy.yaml")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sync_wall, s0 = _time(0, args.steps, Path(tmp), args.overrides)
        pipe_wall, s1 = _time(1, args.steps, Path(tmp), args.overrides)
    print(f"steps: {args.steps} (wall time includes Ray start-up and model builds for both runs)")
    print(f"synchronous k=0: {sync_wall:7.1f} s  staleness {s0}")
    print(f"pipelined   k=1: {pipe_wall:7.1f} s  staleness {s1}")
    print(f"speed-up k=1 / k=0: {sync_wall / pipe_wall:.2f}x")


if __name__ == "__main__":
    main()
