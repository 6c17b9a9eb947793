"""The demo's claim, measured: held-out weighted reward and toy oracle before vs after Edit-GRPO, over seeds.

Runs configs/grpo/toy.yaml once per seed (same everything else) and prints per-seed before/after and the mean ±
std of the change, side by side in one run.

Run: ``python bench/grpo_demo_seeds.py --seeds 0 1 2 [--local] [key=value ...]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from viva.config import load_config
from viva.grpo.driver import run


def _evals(run_dir: Path) -> list[dict]:
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("kind") == "eval"]


def main() -> None:
    """Print before/after per seed and the mean ± std of the change."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--local", action="store_true", help="single-process loop instead of the Ray cluster")
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    deltas_r, deltas_o = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            cfg = load_config("configs/grpo/toy.yaml", [f"seed={seed}", f"output_dir={tmp}/s{seed}",
                                                        "logging.wandb=false", "logging.progress=false",
                                                        "logging.sample_every=0", *args.overrides])
            ev = _evals(run(cfg, local=args.local, progress=False))
            a, b = ev[0], ev[-1]
            dr = b["eval/reward_mean"] - a["eval/reward_mean"]
            do = b["eval/oracle_mean"] - a["eval/oracle_mean"]
            deltas_r.append(dr)
            deltas_o.append(do)
            print(f"seed {seed}: held-out reward {a['eval/reward_mean']:+.4f} -> {b['eval/reward_mean']:+.4f} "
                  f"({dr:+.4f}); held-out oracle {a['eval/oracle_mean']:.4f} -> {b['eval/oracle_mean']:.4f} "
                  f"({do:+.4f})  [steps {a['step']} -> {b['step']}]", flush=True)
    sd = (lambda x: statistics.stdev(x) if len(x) > 1 else 0.0)  # noqa: E731
    print(f"reward change: {statistics.mean(deltas_r):+.4f} ± {sd(deltas_r):.4f} over {len(deltas_r)} seeds; "
          f"rose in {sum(d > 0 for d in deltas_r)}/{len(deltas_r)}")
    print(f"oracle change: {statistics.mean(deltas_o):+.4f} ± {sd(deltas_o):.4f} over {len(deltas_o)} seeds; "
          f"rose in {sum(d > 0 for d in deltas_o)}/{len(deltas_o)}")


if __name__ == "__main__":
    main()
