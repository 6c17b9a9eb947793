"""Ground-truth ladder rewards: toy_oracle and edit_brightness score against the prompt, and refuse without one."""

import numpy as np
import pytest

from viva.data.toyworld import ToyWorld
from viva.rewards.base import RewardBatch, RewardError
from viva.rewards.registry import get_reward


def _batch(sample, edits, prompts=True):
    n = len(edits)
    return RewardBatch([f"s{i}" for i in range(n)], np.stack(edits), np.stack([sample.source_video] * n),
                       [sample.instruction] * n, [sample.source_caption] * n, [sample.edit_caption] * n,
                       prompts=[sample] * n if prompts else None)


def test_toy_oracle_ranks_target_over_source_over_noise():
    s = ToyWorld(seed=5).sample(2, "recolor")
    noise = np.random.default_rng(0).integers(0, 256, s.source_video.shape, dtype=np.uint8)
    r = get_reward("toy_oracle")
    r.setup("cpu")
    out = r.score(_batch(s, [s.target_video, s.source_video, noise]))
    assert out.scores[0] == pytest.approx(1.0) and out.scores[1] < 0.4 and out.scores[2] < out.scores[1]
    assert out.sub_scores["edit_accuracy"].tolist() == [1.0, 0.0, 0.0]


def test_toy_oracle_soft_option():
    s = ToyWorld(seed=5).split("hybrid").sample(0)
    near = np.round(s.source_video + 0.2 * (s.target_video.astype(np.float32) - s.source_video)).astype(np.uint8)
    hard, soft = get_reward("toy_oracle"), get_reward("toy_oracle", soft=True)
    batch = _batch(s, [s.source_video, near, s.target_video])
    h, sf = hard.score(batch).scores, soft.score(batch).scores
    assert h[0] == pytest.approx(h[1]) and sf[1] > sf[0]  # the hard oracle is flat there, the soft one is not
    assert (sf >= h - 1e-12).all() and sf[2] == pytest.approx(1.0)
    with pytest.raises(TypeError, match="options.soft"):
        get_reward("toy_oracle", soft="yes")
    dense = get_reward("toy_oracle", soft=True, dense=True).score(batch).scores
    assert (dense >= sf - 1e-12).all() and dense[2] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="options.dense needs options.soft"):
        get_reward("toy_oracle", dense=True)
    with pytest.raises(TypeError, match="options.dense"):
        get_reward("toy_oracle", soft=True, dense=1)
    gated = get_reward("toy_oracle", soft=True, gated=True).score(batch).scores  # nothing sprayed: the gate is 1
    assert gated == pytest.approx(sf)
    with pytest.raises(TypeError, match="options.gated"):
        get_reward("toy_oracle", gated="on")


def test_edit_brightness_reads_only_the_mask():
    s = ToyWorld(seed=5).sample(3, "remove")
    bright_inside = s.source_video.copy()
    bright_inside[s.mask > 0.5] = 255
    bright_outside = s.source_video.copy()
    bright_outside[s.mask <= 0.5] = 255
    r = get_reward("edit_brightness")
    out = r.score(_batch(s, [bright_inside, bright_outside, s.source_video]))
    assert out.scores[0] == pytest.approx(1.0)
    assert out.scores[1] == pytest.approx(out.scores[2])  # outside the mask does not count


@pytest.mark.parametrize("name", ["toy_oracle", "edit_brightness"])
def test_ground_truth_rewards_need_prompts(name):
    s = ToyWorld(seed=5).sample(0, "add")
    with pytest.raises(RewardError, match="no prompts"):
        get_reward(name).score(_batch(s, [s.target_video], prompts=False))
