"""How well does each weighting of the toy reward terms agree with the oracle inside a group (what GRPO follows)?

Samples G rollouts of the base for held-out hybrid + single-edit prompts exactly as Edit-GRPO does
(``viva.grpo.reward_agreement``), scores each term once, then prints the across-sample and within-group Spearman
of ``w_if * CLIP-IF + w_sp * CLIP-SP + w_ps * PickScore`` for several weightings (docs/rewards.md).

Run: ``python bench/reward_weights.py [--weights DIR] [--seed 1] [--prompts 16] [--group-size 6]``
"""

from __future__ import annotations

import argparse

WEIGHTINGS = [(1, .5, .5), (.5, 1, 1), (.25, 1, 1), (0, 1, 1), (0, .5, 1), (0, 0, 1), (0, 1, 0), (1, 0, 0)]


def main() -> None:
    """Sample once, print one row per weighting."""
    import torch

    from viva.grpo.reward_agreement import (AgreementConfig, agreement, build_rewards, load_grpo_config,
                                               sample_rollouts, score_rollouts)

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", default=None, help="toy reward weights folder (default: the shipped ones)")
    ap.add_argument("--seed", type=int, default=1, help="rollout sampling seed")
    ap.add_argument("--prompts", type=int, default=16, help="held-out hybrid prompts, and as many single-edit ones")
    ap.add_argument("--group-size", type=int, default=6)
    args = ap.parse_args()
    torch.set_num_threads(2)
    cfg = AgreementConfig(weights_dir=args.weights, num_hybrid=args.prompts, num_single=args.prompts,
                          group_size=args.group_size, seed=args.seed, threads=2)
    grpo = load_grpo_config(cfg)
    rollouts = sample_rollouts(grpo, cfg)
    sc = score_rollouts(grpo, build_rewards(grpo, cfg.weights_dir), rollouts.groups)
    hyb = slice(0, args.prompts)
    print(f"{rollouts.oracle.size} rollouts; mean within-group std: " + ", ".join(
        f"{k} {float(sc[k].std(1).mean()):.4f}" for k in ("clip_if", "clip_sp", "pickscore")))
    print("| weights (CLIP-IF, CLIP-SP, PickScore) | across | within group | hybrid across | hybrid within |")
    print("|---|---:|---:|---:|---:|")
    for w in WEIGHTINGS:
        total = w[0] * sc["clip_if"] + w[1] * sc["clip_sp"] + w[2] * sc["pickscore"]
        a, h = agreement(total, rollouts.oracle), agreement(total[hyb], rollouts.oracle[hyb])
        print(f"| {w} | {a['across']:.3f} | {a['within']:.3f} | {h['across']:.3f} | {h['within']:.3f} |")


if __name__ == "__main__":
    main()
