"""`viva rewards`: list the reward models, train or evaluate the toy ones.

Run: ``viva rewards list`` | ``viva rewards train-toy --out src/viva/assets/rewards --seed 0 --rollout-prompts 240`` |
``viva rewards eval-toy [--weights DIR] [--checkpoint DIR] [--prompts 6] [--group-size 4]``
(rank agreement with the oracle on base rollouts; ~1-2 min on 2 CPU cores at the defaults)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import List, Optional


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="viva rewards", description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="known rewards with where each comes from")
    t = sub.add_parser("train-toy", help="train the toy CLIP and PickScore from a seed")
    t.add_argument("--out", required=True, help="folder for toy_clip.safetensors and toy_pickscore.safetensors")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--clip-steps", type=int, default=None)
    t.add_argument("--pickscore-steps", type=int, default=None)
    t.add_argument("--num-pairs", type=int, default=None)
    t.add_argument("--threads", type=int, default=None)
    t.add_argument("--rollout-prompts", type=int, default=None,
                   help="train-split prompts whose base-editor rollouts (oracle-ranked) join the candidates")
    t.add_argument("--min-gap", type=float, default=None,
                   help="pairs whose oracle scores differ by less are not ranked (default 0.01)")
    t.add_argument("--labels", choices=("soft", "hard"), default=None,
                   help="rank candidates by the soft oracle (default; no flat regions) or the hard one")
    e = sub.add_parser("eval-toy", help="held-out metrics of the toy reward models")
    e.add_argument("--weights", default=None, help="folder with the two safetensors (default: shipped ones)")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--num", type=int, default=400, help="held-out edits of the static metrics")
    e.add_argument("--config", default="configs/grpo/toy.yaml", help="GRPO config: sampler, reward weights, eval data")
    e.add_argument("--checkpoint", default=None, help="base editor checkpoint (default: the config's)")
    e.add_argument("--prompts", type=int, default=6, help="held-out hybrid prompts, and as many single-edit ones")
    e.add_argument("--group-size", type=int, default=4, help="rollouts per prompt (GRPO's G)")
    e.add_argument("--threads", type=int, default=1)
    e.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override the GRPO config for the rollouts, e.g. --set sampler.window_size=4 (repeatable)")
    e.add_argument("--no-rollouts", action="store_true", help="static metrics only (no base rollouts)")
    return p


def _list() -> int:
    from viva.rewards.registry import list_rewards

    entries = list_rewards()
    w_name = max(len(e.name) for e in entries)
    w_target = max(len(e.target) for e in entries)
    print(f"{'name'.ljust(w_name)}  {'target'.ljust(w_target)}  source")
    for e in entries:
        print(f"{e.name.ljust(w_name)}  {e.target.ljust(w_target)}  {e.source}")
    return 0


def _train(args: argparse.Namespace) -> int:
    import dataclasses

    from viva.rewards.toy_eval import evaluate_toy_models
    from viva.rewards.train_toy import ToyTrainConfig, run

    overrides = {k: getattr(args, k) for k in ("clip_steps", "pickscore_steps", "num_pairs", "threads",
                                                  "rollout_prompts", "min_gap", "labels")
                 if getattr(args, k) is not None}
    try:
        cfg = dataclasses.replace(ToyTrainConfig(seed=args.seed), **overrides)
    except ValueError as e:
        print(f"viva rewards train-toy: {e}", file=sys.stderr)
        return 2
    sample = None
    if cfg.rollout_prompts > 0:  # on-policy candidates: sampled as Edit-GRPO samples (the recipe, wired here)
        from viva.grpo.reward_agreement import rollout_sampler

        sample = rollout_sampler(cfg.rollout_config, cfg.threads, print)
    timing = run(Path(args.out), cfg, sample=sample)
    print(json.dumps({**evaluate_toy_models(Path(args.out), seed=cfg.seed), **timing}, indent=2))
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `viva rewards`."""
    args = _parser().parse_args(argv)
    if args.cmd == "list":
        return _list()
    if args.cmd == "train-toy":
        return _train(args)
    return _eval(args)


def _eval(args: argparse.Namespace) -> int:
    import torch

    from viva.grpo.reward_agreement import AgreementConfig, evaluate_agreement, format_table
    from viva.rewards.toy_eval import evaluate_toy_models

    torch.set_num_threads(args.threads)
    report = evaluate_toy_models(args.weights, seed=args.seed, num=args.num)
    if not args.no_rollouts:
        cfg = AgreementConfig(grpo_config=args.config, checkpoint=args.checkpoint, weights_dir=args.weights,
                              num_hybrid=args.prompts, num_single=args.prompts, group_size=args.group_size,
                              seed=args.seed, threads=args.threads, overrides=tuple(args.set))
        report["rollout_agreement"] = evaluate_agreement(cfg)
    print(json.dumps(report, indent=2))
    if not args.no_rollouts:
        print(format_table(report["rollout_agreement"]))
    return 0
