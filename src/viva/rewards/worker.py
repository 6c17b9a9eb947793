"""Reward worker: one reward model scoring rollout groups; the driver combines pools with weights (eq. 7).

A plain class; `viva.cluster.ActorGroup` places a pool of them per configured reward model.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from viva.config import RewardSpec
from viva.rewards.base import RewardBatch, RewardOutput
from viva.records import RolloutGroup


class RewardScoreError(ValueError):
    """A reward model returned a non-finite or missing score; the message names the sample."""


def group_batch(group: RolloutGroup) -> RewardBatch:
    """The reward batch of one group: G edits of the same prompt (source and captions repeated)."""
    p, g = group.request.prompt, group.group_size
    ids = [f"{p.sample_id}/step{group.request.step}/g{i}" for i in range(g)]
    return RewardBatch(
        sample_ids=ids,
        edited_videos=group.edited_videos,  # [G, F, H, W, 3] uint8
        source_videos=np.broadcast_to(p.source_video, group.edited_videos.shape),
        instructions=[p.instruction] * g,
        source_captions=[p.source_caption] * g,
        edit_captions=[p.edit_caption] * g,
        reference_images=[p.reference_image] * g,
        prompts=[p] * g,
    )


def check_output(name: str, batch: RewardBatch, out: RewardOutput) -> RewardOutput:
    """Reject missing or non-finite scores, naming the sample; a failed sample is never scored 0."""
    scores = np.asarray(out.scores, dtype=np.float64)
    if scores.shape != (len(batch),):
        raise RewardScoreError(f"reward {name!r}: {scores.shape} scores for {len(batch)} samples")
    bad = np.flatnonzero(~np.isfinite(scores))
    if bad.size:
        raise RewardScoreError(f"reward {name!r}: non-finite score {scores[bad[0]]} for sample "
                               f"{batch.sample_ids[bad[0]]}")
    return RewardOutput(scores=scores, sub_scores=dict(out.sub_scores))


class RewardWorker:
    """Holds one reward model; `score_groups` scores any number of groups in one call."""

    def __init__(self, spec: RewardSpec, device: str = "cpu") -> None:
        from viva.rewards.registry import get_reward

        options = dict(spec.options or {})
        self.name = spec.name
        self.model = get_reward(spec.name, **options)
        self.model.setup(device)

    def ping(self) -> str:
        """Liveness probe."""
        return self.name

    def score_groups(self, groups: Sequence[RolloutGroup]) -> list[RewardOutput]:
        """One `RewardOutput` per group ([G] scores each)."""
        outs = []
        for group in groups:
            batch = group_batch(group)
            outs.append(check_output(self.name, batch, self.model.score(batch)))
        return outs


def combine(specs: Sequence[RewardSpec], outputs: Sequence[RewardOutput]) -> tuple[np.ndarray, dict]:
    """Weighted sum over reward models (VIVA eq. 7); returns ([G] total, {name: [G] score, name/sub: ...})."""
    total = np.zeros_like(np.asarray(outputs[0].scores, dtype=np.float64))
    parts: dict = {}
    for spec, out in zip(specs, outputs):
        total = total + spec.weight * out.scores
        parts[spec.name] = out.scores
        for sub, vals in out.sub_scores.items():
            parts[f"{spec.name}/{sub}"] = np.asarray(vals, dtype=np.float64)
    return total, parts
