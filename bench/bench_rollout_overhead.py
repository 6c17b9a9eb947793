"""Rollout overhead: DiT forwards/s inside `RolloutWorker.sample_group` vs bare DiT forwards of the same batch.

Both are measured side by side in one run, alternating, so machine noise hits both. The gap is the cost of
sampling (SDE steps, log-probs), conditioning (VLM, cached after the first call), decoding and recording.

Run: ``python bench/bench_rollout_overhead.py [--repeats 3] [--steps 8] [--group 4]``
"""

from __future__ import annotations

import argparse
import time

import torch

from viva.config import load_config
from viva.data.dataset import build_dataset
from viva.models.conditioning import prepare_condition
from viva.records import GroupRequest
from viva.rollout.worker import RolloutWorker


def main() -> None:
    """Print forwards/s for both paths and their ratio."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--group", type=int, default=4)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config("configs/grpo/toy.yaml", [f"sampler.num_steps={args.steps}", "model.base_checkpoint=null"])
    worker = RolloutWorker(cfg)
    prompt = build_dataset(cfg.data, "train")[0]
    req = GroupRequest(step=0, group_index=0, prompt=prompt, group_size=args.group, seed=0)
    pc = prepare_condition(worker.editor, prompt, args.group)
    x = torch.randn(pc.source.shape)
    sigma = torch.full((args.group,), 0.5)
    worker.sample_group(req)  # warm-up (and fills the VLM cache, as within a group)
    rollout_t, bare_t = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        worker.sample_group(req)
        rollout_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        with torch.no_grad():
            for _ in range(args.steps):
                worker.editor.guided_velocity(x, pc.source, sigma, pc.cond, pc.null_cond,
                                              cfg.sampler.guidance_scale, reference=pc.reference)
        bare_t.append(time.perf_counter() - t)
    r, b = min(rollout_t), min(bare_t)
    print(f"batch: {args.group} samples x CFG 2 = {2 * args.group} per DiT forward, {args.steps} steps, "
          f"{torch.get_num_threads()} threads")
    print(f"rollout (sample_group): {args.steps / r:8.2f} forwards/s  ({r * 1e3:.1f} ms per group)")
    print(f"bare DiT forwards     : {args.steps / b:8.2f} forwards/s  ({b * 1e3:.1f} ms)")
    print(f"rollout / bare throughput ratio: {b / r:.3f}  (overhead {100 * (r - b) / r:.1f} % of rollout time)")


if __name__ == "__main__":
    main()
