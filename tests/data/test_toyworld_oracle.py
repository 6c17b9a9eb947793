"""Oracle ordering: ground truth ~1 > unedited source > random noise ~0."""

from __future__ import annotations

import numpy as np
import pytest

from viva.data.sample import EDIT_TYPES
from viva.data.toyworld import ToyWorld, oracle_score, oracle_scores


@pytest.mark.parametrize("edit_type", EDIT_TYPES)
def test_oracle_ranks_target_source_noise(edit_type: str) -> None:
    world = ToyWorld(seed=0).split("hybrid" if edit_type == "hybrid" else "train")
    rng = np.random.default_rng(0)
    for i in range(6):
        s = world.sample(i, edit_type)
        tgt = oracle_score(s.target_video, s)
        src = oracle_score(s.source_video, s)
        noise = oracle_score(rng.integers(0, 256, s.target_video.shape, dtype=np.uint8), s)
        assert tgt.total > 0.99 and tgt.edit_accuracy == 1.0 and tgt.object_accuracy == 1.0
        assert src.total < 0.4 and src.edit_accuracy < 1.0
        assert noise.total < 0.1
        assert tgt.total > src.total > noise.total or (edit_type == "style" and src.total >= noise.total)


def test_oracle_partial_edit_is_between() -> None:
    s = ToyWorld(seed=0).split("hybrid").sample(1)
    half = s.source_video.copy()
    half[:, :, : s.source_video.shape[2] // 2] = s.target_video[:, :, : s.source_video.shape[2] // 2]
    a, b, c = (oracle_score(v, s).total for v in (s.target_video, half, s.source_video))
    assert a >= b >= c


def test_oracle_batched_and_errors() -> None:
    w = ToyWorld(seed=0)
    samples = [w.sample(i, "add") for i in range(3)]
    edited = np.stack([s.target_video for s in samples])  # [B, F, H, W, 3]
    scores = oracle_scores(edited, samples)
    assert [round(x.total, 6) for x in scores] == [1.0] * 3
    with pytest.raises(ValueError, match=samples[0].sample_id):
        oracle_score(samples[0].target_video[:2], samples[0])
    with pytest.raises(ValueError, match="3 samples"):
        oracle_scores(edited[:2], samples)


def test_soft_oracle_has_no_flat_region_and_bounds_the_hard_one() -> None:
    """soft=True: same formula, no floor. Source→target blends inside the hard oracle's dead zone (masked PSNR
    < 12 dB, no element correct) score the same hard total but a rising soft total; soft >= hard; target = 1."""
    s = ToyWorld(seed=0).split("hybrid").sample(0)
    src, tgt = s.source_video.astype(np.float32), s.target_video.astype(np.float32)
    blends = [np.round(src + a * (tgt - src)).astype(np.uint8) for a in (0.0, 0.1, 0.2)]
    hard = [oracle_score(v, s) for v in blends]
    soft = [oracle_score(v, s, soft=True) for v in blends]
    assert all(h.masked_psnr < 12 for h in hard), [h.masked_psnr for h in hard]
    assert hard[0].total == hard[1].total == hard[2].total
    assert soft[0].total < soft[1].total < soft[2].total
    assert all(sf.total >= h.total for sf, h in zip(soft, hard))
    assert oracle_score(s.target_video, s, soft=True).total > 0.99


def test_dense_oracle_credits_a_closer_colour_and_bounds_the_soft_one() -> None:
    """dense=True: an added object painted ever closer to its colour, but never within the 40-unit tolerance, earns
    no element credit from the soft oracle and rising credit from the dense one; dense >= soft; target = 1."""
    s = ToyWorld(seed=0).split("train").sample(0, "add")
    region = (s.target_video != s.source_video).any(-1)  # [F, H, W] the added object's pixels
    colour = s.target_video[region].astype(np.float32).mean(0)
    towards = np.where(colour > 127, -1.0, 1.0)  # a direction that stays inside [0, 255]
    edits = []
    for d in (150.0, 100.0, 60.0):  # RGB distance of the painted colour from the object's, all > 40
        v = s.source_video.copy()
        v[region] = np.clip(s.target_video[region] + towards * d / np.sqrt(3), 0, 255).astype(np.uint8)
        edits.append(v)
    soft = [oracle_score(v, s, soft=True) for v in edits]
    dense = [oracle_score(v, s, soft=True, dense=True) for v in edits]
    assert soft[0].edit_accuracy == soft[1].edit_accuracy == soft[2].edit_accuracy
    assert dense[0].edit_accuracy < dense[1].edit_accuracy < dense[2].edit_accuracy
    assert all(dn.total >= sf.total for dn, sf in zip(dense, soft))
    assert oracle_score(s.target_video, s, soft=True, dense=True).total > 0.99
    with pytest.raises(ValueError, match="dense=True is a form of the soft oracle"):
        oracle_score(s.target_video, s, dense=True)


def test_gated_oracle_does_not_pay_for_colour_sprayed_outside_the_edit() -> None:
    """A replace edit whose new colour is also sprayed over the background (the rung-a hack, docs/grpo.md) beats the
    unedited source under the plain oracle; gated=True takes the edit credit back; the target still scores 1."""
    s = ToyWorld(seed=0).split("train").sample(0, "replace")
    region = (s.target_video != s.source_video).any(-1)  # [F, H, W]
    colour = s.target_video[region & ~(s.source_video == s.target_video).all(-1)][0]
    spray = s.source_video.copy()
    spray[:, ::2] = colour  # every other row of the frame painted the new colour ...
    spray[region] = colour  # ... and the whole edit region
    for soft in (False, True):
        plain, gated = oracle_score(spray, s, soft=soft), oracle_score(spray, s, soft=soft, gated=True)
        source = oracle_score(s.source_video, s, soft=soft, gated=True)
        assert plain.edit_accuracy > 0 and plain.total > oracle_score(s.source_video, s, soft=soft).total
        assert gated.total < source.total  # gated: the spray loses to doing nothing
        assert oracle_score(s.target_video, s, soft=soft, gated=True).total > 0.99
