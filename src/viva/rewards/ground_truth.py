"""Ground-truth rewards for the GRPO sanity ladder (docs/grpo.md): they read the prompt's exact target, so they
exist only for worlds with ground truth (the toy world). A learned reward must never be tuned against these.

- ``toy_oracle``: the toy world's oracle total (docs/toyworld.md) of each edit, in [0, 1]; ``options: {soft: true}``
  scores the same terms without the oracle's flat regions (PSNR below 12 dB, element accuracy below 50% matching),
  so an edit that is wrong still gets a gradient toward the target; ``{soft: true, dense: true}`` also drops the
  per-pixel colour threshold (a pixel at RGB distance d > 40 counts (40 / d)^2), so an object drawn in a closer
  but still wrong colour earns element credit; ``gated: true`` multiplies the edit terms by the preservation
  quality q(unmasked PSNR), so colour sprayed outside the edit region does not pay (docs/grpo.md).
- ``edit_brightness``: mean brightness in [0, 1] of the edited video inside the prompt's edit mask, a simple
  reward any working RL loop must be able to raise.
"""

from __future__ import annotations

import numpy as np

from viva.rewards.base import RewardBatch, RewardError, RewardOutput, check_scores, frames_as_uint8


def _prompts(name: str, batch: RewardBatch) -> list:
    if batch.prompts is None or len(batch.prompts) != len(batch):
        raise RewardError(f"reward {name}: the batch carries no prompts (ground truth); ids {batch.sample_ids}")
    return list(batch.prompts)


class ToyOracle:
    """The toy world's oracle as a reward (the ladder's rungs a and c): ``oracle_score(edit, prompt, soft).total``."""

    name = "toy_oracle"

    def __init__(self, soft: bool = False, dense: bool = False, gated: bool = False) -> None:
        for key, value in (("soft", soft), ("dense", dense), ("gated", gated)):
            if not isinstance(value, bool):
                raise TypeError(f"reward toy_oracle: options.{key} must be true or false, got {value!r}")
        if dense and not soft:
            raise ValueError("reward toy_oracle: options.dense needs options.soft: true (a form of the soft oracle)")
        self.soft, self.dense, self.gated = soft, dense, gated

    def setup(self, device: str) -> None:
        """Nothing to load."""

    def score(self, batch: RewardBatch) -> RewardOutput:
        """Oracle total of every edit against its prompt's exact target."""
        from viva.data.toyworld import oracle_score

        prompts = _prompts(self.name, batch)
        videos = frames_as_uint8(batch.edited_videos)  # [B, F, H, W, 3]
        scores, edit_acc = [], []
        for sid, video, prompt in zip(batch.sample_ids, videos, prompts):
            if getattr(prompt, "target_video", None) is None:
                raise RewardError(f"sample {sid}: reward {self.name} needs a prompt with a target video")
            o = oracle_score(video, prompt, soft=self.soft, dense=self.dense, gated=self.gated)
            scores.append(o.total)
            edit_acc.append(o.edit_accuracy)
        return RewardOutput(check_scores(self.name, batch, np.array(scores)),
                            {"edit_accuracy": np.nan_to_num(np.array(edit_acc, dtype=np.float64))})


class EditBrightness:
    """Mean brightness of the edit region (prompt mask > 0.5) in [0, 1]: the ladder's simple learnable reward."""

    name = "edit_brightness"

    def setup(self, device: str) -> None:
        """Nothing to load."""

    def score(self, batch: RewardBatch) -> RewardOutput:
        """Mean over the masked pixels of the edited video's RGB mean, / 255."""
        prompts = _prompts(self.name, batch)
        videos = frames_as_uint8(batch.edited_videos).astype(np.float64) / 255.0  # [B, F, H, W, 3]
        scores = []
        for sid, video, prompt in zip(batch.sample_ids, videos, prompts):
            mask = getattr(prompt, "mask", None)
            if mask is None or mask.shape != video.shape[:3] or not (mask > 0.5).any():
                raise RewardError(f"sample {sid}: reward {self.name} needs a non-empty mask [F, H, W] matching "
                                  f"the video {video.shape[:3]}")
            scores.append(video.mean(-1)[mask > 0.5].mean())
        return RewardOutput(check_scores(self.name, batch, np.array(scores)))
