"""Small GRPO configs and a deterministic test reward shared by the rollout / learner / driver tests."""

from __future__ import annotations

import numpy as np

from viva.config import load_config
from viva.rewards.base import RewardBatch, RewardOutput


def tiny_grpo_config(tmp_path, *overrides: str):
    """A few-step toy GRPO config writing under tmp_path (no wandb, no progress bar)."""
    base = [f"output_dir={tmp_path}/run", "model.base_checkpoint=null", "sampler.num_steps=3", "sampler.shift=3.0", "lora.rank=4",
            "lora.alpha=8", "grpo.steps=2", "grpo.prompts_per_step=2", "grpo.group_size=2", "grpo.minibatch_size=2",
            "grpo.max_staleness=0", "grpo.eval_every=0", "grpo.checkpoint_every=0", "grpo.timestep_fraction=1.0",
            "grpo.clip_range=1e-4", "grpo.lr=1e-3", "logging.sample_every=0", "eval_data=null", "data.split=train",
            "logging.wandb=false", "logging.progress=false",
            "rewards=[{name: 'tests.rollout.grpo_fixtures:RedReward', weight: 1.0}]"]
    return load_config("configs/grpo/toy.yaml", base + list(overrides))


class RedReward:
    """Mean red-minus-green of the edited video: a cheap reward the policy can move (tests only)."""

    name = "red"

    def setup(self, device: str) -> None:
        """Nothing to load."""

    def score(self, batch: RewardBatch) -> RewardOutput:
        """[B] scores in roughly [-1, 1]."""
        v = batch.edited_videos.astype(np.float64) / 255.0  # [B, F, H, W, 3]
        red = v[..., 0].mean(axis=(1, 2, 3)) - v[..., 1].mean(axis=(1, 2, 3))
        return RewardOutput(scores=red, sub_scores={"red": red})
