"""How much a group's rollouts differ, per SDE window and eta: the exploration GRPO has to learn from.

For each (window_start+window_size, eta) setting, samples a group of G rollouts of P train prompts with the base of
--config (configs/grpo/toy.yaml) and prints the mean within-group std of the hard oracle, of the soft oracle
(docs/toyworld.md) and of the pixels (0-255), beside the mean oracle. A group whose rewards do not differ gives
GRPO nothing to rank: if every setting leaves the oracle's std near 0, the reward (or the base) is the problem, not
the sampler.

Run: ``python bench/rollout_spread.py [--prompts 6] [--group-size 8] [--eta 1.0 0.3] [--windows 0+2 6+2 0+8]
[-- key=value ...]``
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
import torch


def main() -> None:
    """Print one line per (window, eta)."""
    from viva.config import load_config
    from viva.data.dataset import build_dataset
    from viva.data.toyworld import oracle_score
    from viva.records import GroupRequest
    from viva.rollout.worker import RolloutWorker

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/grpo/toy.yaml")
    ap.add_argument("--prompts", type=int, default=6, help="train prompts of the config's data split")
    ap.add_argument("--group-size", type=int, default=8)
    ap.add_argument("--eta", type=float, nargs="+", default=[1.0])
    ap.add_argument("--windows", nargs="+", default=["0+2", "2+2", "4+2", "5+1", "6+1", "7+1"],
                    help="START+SIZE of the SDE window, e.g. 0+2 (the demo's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("overrides", nargs="*", help="key=value overrides of --config, e.g. model.base_checkpoint=DIR")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config, ["logging.wandb=false", *args.overrides])
    data = build_dataset(cfg.data, split=cfg.data.split or "train")
    prompts = [data[i] for i in range(args.prompts)]
    for eta in args.eta:
        for window in args.windows:
            start, size = (int(x) for x in window.split("+"))
            sampler = dataclasses.replace(cfg.sampler, window_start=start, window_size=size, eta=eta)
            worker = RolloutWorker(dataclasses.replace(cfg, sampler=sampler))
            mean, hard, soft, pix = [], [], [], []
            for i, p in enumerate(prompts):
                g = worker.sample_group(GroupRequest(step=0, group_index=i, prompt=p, group_size=args.group_size,
                                                     seed=100 + i))
                o = np.array([oracle_score(v, p).total for v in g.edited_videos])
                mean.append(o.mean())
                hard.append(o.std())
                soft.append(np.std([oracle_score(v, p, soft=True).total for v in g.edited_videos]))
                pix.append(g.edited_videos.astype(np.float32).std(0).mean())
            print(f"eta {eta} window {start}+{size}: oracle {np.mean(mean):.3f}; within-group std: hard oracle "
                  f"{np.mean(hard):.4f}, soft oracle {np.mean(soft):.4f}, pixels {np.mean(pix):.2f}", flush=True)


if __name__ == "__main__":
    main()
