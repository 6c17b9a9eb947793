"""Reward math on hand-made embeddings (eqs. 4, 5, 7), frame sampling, and bad-input errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from viva.rewards.base import BatchTexts, RewardBatch, RewardError, RewardOutput, check_scores, validate_batch
from viva.rewards.clip_backend import frame_indices
from viva.rewards.clip_rewards import clip_if_from_embeddings, clip_sp_from_embeddings
from viva.rewards.weighted import WeightedReward, weighted_sum


def _unit(*v):
    t = torch.tensor(v, dtype=torch.float32)
    return t / t.norm()


def test_clip_if_is_edit_minus_source_alignment():
    # two frames: cos to t_edit = 0.6, 0.8; cos to t_src = 0.8, 0.6 -> C_edit = C_src = 0.7 -> 0
    t_edit, t_src = _unit(1, 0), _unit(0, 1)
    frames = torch.stack([_unit(0.6, 0.8), _unit(0.8, 0.6)])[None]  # [1, 2, 2]
    assert clip_if_from_embeddings(frames, t_edit[None], t_src[None]).item() == pytest.approx(0.0, abs=1e-6)
    frames = torch.stack([_unit(1, 0), _unit(0.8, 0.6)])[None]  # C_edit = 0.9, C_src = 0.3
    assert clip_if_from_embeddings(frames, t_edit[None], t_src[None]).item() == pytest.approx(0.6, abs=1e-6)


def test_clip_sp_is_frame_aligned_mean_cosine():
    src = torch.stack([_unit(1, 0), _unit(0, 1)])[None]  # [1, 2, 2]
    edit = torch.stack([_unit(1, 0), _unit(1, 0)])[None]  # frame 0 same, frame 1 orthogonal
    assert clip_sp_from_embeddings(src, edit).item() == pytest.approx(0.5)
    # frame alignment matters: swapping the edit's frames changes the score. Aligned: cos 1 and 0.8 -> 0.9;
    # swapped: cos 0.6 and 0 -> 0.3. A mean over all frame pairs would give 0.7 for both.
    edit = torch.stack([_unit(1, 0), _unit(0.6, 0.8)])[None]
    assert clip_sp_from_embeddings(src, edit).item() == pytest.approx(0.9)
    assert clip_sp_from_embeddings(src, edit.flip(1)).item() == pytest.approx(0.3)
    assert clip_sp_from_embeddings(src, src.flip(1)).item() == pytest.approx(0.0)


def test_weighted_sum_eq7_and_sub_scores():
    outs = {"clip_if": RewardOutput(np.array([0.1, -0.2]), {"clip_t_edit": np.array([0.3, 0.2])}),
            "clip_sp": RewardOutput(np.array([0.9, 0.5])), "pickscore": RewardOutput(np.array([20.0, 21.0]))}
    out = weighted_sum(outs, {"clip_if": 2.0, "clip_sp": 1.0, "pickscore": 0.05})
    np.testing.assert_allclose(out.scores, [2 * 0.1 + 0.9 + 1.0, 2 * -0.2 + 0.5 + 1.05])
    assert set(out.sub_scores) == {"clip_if", "clip_sp", "pickscore", "clip_if/clip_t_edit"}
    with pytest.raises(RewardError, match="do not match"):
        weighted_sum(outs, {"clip_if": 1.0})


def test_frame_indices_uniform():
    assert frame_indices(8, 0).tolist() == list(range(8))
    assert frame_indices(8, 4).tolist() == [0, 2, 5, 7]
    assert frame_indices(3, 8).tolist() == [0, 1, 2]


def _batch(**kw):
    v = np.zeros((2, 4, 8, 8, 3), dtype=np.uint8)
    base = dict(sample_ids=["s0", "s1"], edited_videos=v, source_videos=v, instructions=["a", "b"],
                source_captions=["x", "y"], edit_captions=["p", "q"])
    base.update(kw)
    return RewardBatch(**base)


def test_bad_inputs_name_the_sample():
    with pytest.raises(RewardError, match="sample s1: empty edit caption"):
        validate_batch(_batch(edit_captions=["p", "  "]))
    nan = np.zeros((2, 4, 8, 8, 3), dtype=np.float32)
    nan[1, 2, 3, 3, 0] = np.nan
    with pytest.raises(RewardError, match=r"\['s1'\].*non-finite"):
        validate_batch(_batch(edited_videos=nan, source_videos=nan))
    with pytest.raises(RewardError, match="differ in frame count"):
        validate_batch(_batch(source_videos=np.zeros((2, 3, 8, 8, 3), np.uint8)))
    v4, v3 = np.zeros((4, 8, 8, 3), np.uint8), np.zeros((3, 8, 8, 3), np.uint8)
    with pytest.raises(RewardError, match="sample b: edited video shape"):
        RewardBatch.from_videos(["a", "b"], [v4, v3], [v4, v4], BatchTexts(["i"] * 2, ["s"] * 2, ["e"] * 2))
    with pytest.raises(RewardError, match="sample a: edited video is empty"):
        RewardBatch.from_videos(["a"], [v4[:0]], [v4[:0]], BatchTexts(["i"], ["s"], ["e"]))


def test_non_finite_score_is_an_error_not_zero():
    with pytest.raises(RewardError, match=r"non-finite score for samples \['s1'\]"):
        check_scores("r", _batch(), np.array([0.5, np.inf]))


class _Const:
    def __init__(self, name, values):
        self.name, self.values = name, np.asarray(values, dtype=np.float64)

    def setup(self, device):
        pass

    def score(self, batch):
        return RewardOutput(self.values)


def test_weighted_reward_rejects_nan_part():
    good = WeightedReward(parts=[(_Const("a", [1.0, 2.0]), 0.5), (_Const("b", [1.0, 1.0]), 1.0)])
    np.testing.assert_allclose(good.score(_batch()).scores, [1.5, 2.0])
    bad = WeightedReward(parts=[(_Const("a", [1.0, np.nan]), 1.0)])
    with pytest.raises(RewardError, match=r"\['s1'\]"):
        bad.score(_batch())
