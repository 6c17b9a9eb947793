"""Do the toy rewards agree with the truth? Spearman rank correlation of each reward term and of the weighted
reward (weights of the GRPO config) with the toy-world oracle, over rollouts of the base editor on held-out prompts.

Rollouts are sampled exactly as Edit-GRPO samples them (``RolloutWorker.sample_group``: the config's sampler, SDE
window, CFG) for held-out hybrid prompts (the GRPO eval prompts, ``eval_data``) and held-out single-edit prompts
(split ``heldout`` of the same world); each reward is the registry's reward scoring ``group_batch(group)``, so the
numbers are those GRPO trains on. Two correlations: **across** all samples, and **within** groups (the mean over
groups of the per-group correlation; groups where the reward or the oracle is constant are skipped and counted) —
the latter is what group-relative advantages (eq. 11) use.

Run: ``viva rewards eval-toy [--checkpoint DIR] [--prompts 8] [--group-size 4]``
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

GRPO_TOY_CONFIG = "configs/grpo/toy.yaml"


@dataclass(frozen=True)
class AgreementConfig:
    """What to sample and score; ``checkpoint`` None keeps the GRPO config's ``model.base_checkpoint``."""

    grpo_config: str = GRPO_TOY_CONFIG
    checkpoint: Optional[str] = None
    weights_dir: Optional[str] = None  # toy reward weights (None: the shipped ones)
    num_hybrid: int = 8  # held-out hybrid prompts (eval_data of the GRPO config)
    num_single: int = 8  # held-out single-edit prompts (split heldout)
    group_size: int = 4
    seed: int = 0
    threads: int = 1
    overrides: Tuple[str, ...] = ()  # key=value overrides of the GRPO config, e.g. sampler.window_size=4


@dataclass(frozen=True)
class Rollouts:
    """``groups`` sampled edits with the oracle score of each: ``oracle [P, G]``."""

    groups: List[Any]  # RolloutGroup
    oracle: np.ndarray  # [P, G]
    seconds: float


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rho (average ranks for ties); nan when either side is constant.

    >>> spearman([1, 2, 3, 4], [10, 20, 40, 30])
    0.8
    """
    ra, rb = _ranks(np.asarray(a, dtype=np.float64)), _ranks(np.asarray(b, dtype=np.float64))
    if ra.std() == 0 or rb.std() == 0:
        return float("nan")
    return float(np.corrcoef(ra, rb)[0, 1])


def _ranks(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(len(x), dtype=np.float64)
    for v in np.unique(x):  # ties share their average rank
        tied = x == v
        ranks[tied] = ranks[tied].mean()
    return ranks


def agreement(scores: np.ndarray, oracle: np.ndarray) -> Dict[str, float]:
    """Across-sample and mean within-group Spearman of ``scores [P, G]`` with ``oracle [P, G]``."""
    within = [spearman(s, o) for s, o in zip(scores, oracle)]
    finite = [w for w in within if np.isfinite(w)]
    return {"across": round(spearman(scores.ravel(), oracle.ravel()), 4),
            "within": round(float(np.mean(finite)), 4) if finite else float("nan"),
            "groups_skipped": len(within) - len(finite)}


def load_grpo_config(cfg: AgreementConfig) -> Any:
    """The GRPO config with the checkpoint override and one torch thread per process."""
    from viva.config import load_config

    overrides = [f"cluster.torch_threads={cfg.threads}", *cfg.overrides]
    if cfg.checkpoint is not None:
        overrides.append(f"model.base_checkpoint={cfg.checkpoint}")
    return load_config(cfg.grpo_config, overrides)


def heldout_prompts(grpo: Any, cfg: AgreementConfig) -> List[Any]:
    """The GRPO eval prompts (held-out hybrid) then held-out single edits of the same world."""
    from viva.data.toyworld import ToyWorld

    seed = grpo.eval_data.seed if grpo.eval_data is not None else 1000
    world = ToyWorld(seed=seed)
    return ([world.split("hybrid").sample(i) for i in range(cfg.num_hybrid)]
            + [world.split("heldout").sample(i) for i in range(cfg.num_single)])


def sample_groups(grpo: Any, prompts: Sequence[Any], group_size: int, seed: int,
                  log: Optional[Callable[[str], None]] = None) -> List[Any]:
    """One group of ``group_size`` rollouts per prompt, sampled as Edit-GRPO samples them
    (``RolloutWorker.sample_group`` with the config's sampler; group i seeded by ``group_seed(seed, 0, i)``)."""
    from viva.records import GroupRequest, group_seed
    from viva.rollout.worker import RolloutWorker

    worker = RolloutWorker(grpo)
    groups, t0 = [], time.perf_counter()
    for i, p in enumerate(prompts):
        groups.append(worker.sample_group(GroupRequest(step=0, group_index=i, prompt=p, group_size=group_size,
                                                       seed=group_seed(seed, 0, i))))
        if log is not None and (i + 1) % 50 == 0:
            log(f"rollouts: {i + 1}/{len(prompts)} prompts in {time.perf_counter() - t0:.0f} s")
    return groups


def rollout_sampler(grpo_config: str, threads: int, log: Optional[Callable[[str], None]] = None
                    ) -> Callable[[Sequence[Any], int, int], List[np.ndarray]]:
    """``sample(prompts, group_size, seed) -> [G edited videos per prompt]`` with the GRPO config's rollout sampler:
    what ``viva.rewards.train_toy`` takes for its on-policy candidates."""
    from viva.config import load_config

    grpo = load_config(grpo_config, [f"cluster.torch_threads={threads}"])

    def sample(prompts: Sequence[Any], group_size: int, seed: int) -> List[np.ndarray]:
        return [g.edited_videos for g in sample_groups(grpo, prompts, group_size, seed, log)]

    return sample


def sample_rollouts(grpo: Any, cfg: AgreementConfig) -> Rollouts:
    """G stochastic rollouts per held-out prompt with the GRPO rollout sampler, and their oracle scores."""
    from viva.data.toyworld import oracle_score

    t0 = time.perf_counter()
    groups = sample_groups(grpo, heldout_prompts(grpo, cfg), cfg.group_size, cfg.seed + 7)
    oracle = np.array([[oracle_score(v, g.request.prompt).total for v in g.edited_videos] for g in groups])
    return Rollouts(groups, oracle, time.perf_counter() - t0)


def build_rewards(grpo: Any, weights_dir: Optional[str]) -> List[Any]:
    """The config's reward models, with their toy weights taken from ``weights_dir`` when given."""
    from viva.rewards.clip_backend import OpenClipEncoder
    from viva.rewards.registry import get_reward
    from viva.rewards.toy_models import WEIGHT_FILES, load_toy_clip

    rewards = []
    for spec in grpo.rewards:
        reward = get_reward(spec.name, **dict(spec.options or {}))
        scorer = getattr(reward, "scorer", None)
        if weights_dir is not None and scorer is not None and str(scorer.cfg.model).startswith("toy"):
            kind = "pickscore" if scorer.cfg.model == "toy-pickscore" else "clip"
            model, tok = load_toy_clip(kind, Path(weights_dir) / WEIGHT_FILES[kind])
            scorer.encoder = OpenClipEncoder(model, tok, scorer.cfg)
        else:
            reward.setup("cpu")
        rewards.append(reward)
    return rewards


def score_rollouts(grpo: Any, rewards: Sequence[Any], groups: Sequence[Any]) -> Dict[str, np.ndarray]:
    """Each term and the weighted sum (eq. 7, the config's weights) per sample: name -> ``[P, G]``."""
    from viva.rewards.worker import check_output, combine, group_batch

    per_term: Dict[str, List[np.ndarray]] = {spec.name: [] for spec in grpo.rewards}
    weighted = []
    for group in groups:
        batch = group_batch(group)
        outs = [check_output(spec.name, batch, r.score(batch)) for spec, r in zip(grpo.rewards, rewards)]
        total, parts = combine(grpo.rewards, outs)
        weighted.append(total)
        for name in per_term:
            per_term[name].append(parts[name])
    return {"weighted": np.stack(weighted), **{k: np.stack(v) for k, v in per_term.items()}}


def evaluate_agreement(cfg: AgreementConfig) -> Dict[str, Any]:
    """Sample, score, correlate; returns a JSON-ready report (also split into hybrid / single prompts)."""
    import torch

    torch.set_num_threads(cfg.threads)
    grpo = load_grpo_config(cfg)
    rollouts = sample_rollouts(grpo, cfg)
    scores = score_rollouts(grpo, build_rewards(grpo, cfg.weights_dir), rollouts.groups)
    hyb = slice(0, cfg.num_hybrid)
    single = slice(cfg.num_hybrid, cfg.num_hybrid + cfg.num_single)
    report: Dict[str, Any] = {
        "base_checkpoint": grpo.model.base_checkpoint, "overrides": list(cfg.overrides),
        "prompts": {"hybrid": cfg.num_hybrid, "single": cfg.num_single}, "group_size": cfg.group_size,
        "samples": int(rollouts.oracle.size), "oracle_mean": round(float(rollouts.oracle.mean()), 4),
        "oracle_within_group_std": round(float(rollouts.oracle.std(1).mean()), 4),
        "weights": {spec.name: spec.weight for spec in grpo.rewards},
        "spearman": {k: agreement(v, rollouts.oracle) for k, v in scores.items()},
        "spearman_hybrid": {k: agreement(v[hyb], rollouts.oracle[hyb]) for k, v in scores.items()},
        "spearman_single": {k: agreement(v[single], rollouts.oracle[single]) for k, v in scores.items()},
        "by_edit_type": by_edit_type([g.request.prompt.edit_type for g in rollouts.groups], scores, rollouts.oracle),
        "sample_seconds": round(rollouts.seconds, 1),
    }
    return report


def by_edit_type(edit_types: Sequence[str], scores: Dict[str, np.ndarray], oracle: np.ndarray) -> Dict[str, Any]:
    """Per edit type: prompts, mean oracle, within-group oracle std and each score's agreement — which edits a
    reward can teach (GRPO learns from the within-group ranking of the prompts it trains on)."""
    out: Dict[str, Any] = {}
    for t in sorted(set(edit_types)):
        rows = np.array([e == t for e in edit_types])
        out[t] = {"prompts": int(rows.sum()), "oracle_mean": round(float(oracle[rows].mean()), 4),
                  "oracle_within_group_std": round(float(oracle[rows].std(1).mean()), 4),
                  "spearman": {k: agreement(v[rows], oracle[rows]) for k, v in scores.items()}}
    return out


def format_table(report: Dict[str, Any]) -> str:
    """Markdown table of the Spearman correlations (all prompts, hybrid only, single only)."""
    lines = [f"Spearman with the oracle: {report['samples']} rollouts of {report['base_checkpoint']} "
             f"({report['prompts']['hybrid']} hybrid + {report['prompts']['single']} single-edit held-out prompts "
             f"x G={report['group_size']}; oracle mean {report['oracle_mean']:.3f}, "
             f"within-group std {report['oracle_within_group_std']:.3f})", "",
             "| reward | across | within group | hybrid across | hybrid within | single across | single within |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for name, r in report["spearman"].items():
        h, s = report["spearman_hybrid"][name], report["spearman_single"][name]
        lines.append(f"| {name} | {r['across']:.3f} | {r['within']:.3f} | {h['across']:.3f} | {h['within']:.3f} | "
                     f"{s['across']:.3f} | {s['within']:.3f} |")
    per_type = report.get("by_edit_type")
    if per_type:
        names = list(report["spearman"])
        lines += ["", "Per edit type (within-group Spearman; few prompts per type: read as a hint)", "",
                  "| edit type | prompts | oracle mean | within-group std | " + " | ".join(names) + " |",
                  "|---|---:|---:|---:|" + "---:|" * len(names)]
        for t, r in per_type.items():
            lines.append(f"| {t} | {r['prompts']} | {r['oracle_mean']:.3f} | {r['oracle_within_group_std']:.3f} | "
                         + " | ".join(f"{r['spearman'][n]['within']:.3f}" for n in names) + " |")
    return "\n".join(lines)
