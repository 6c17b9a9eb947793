"""group_advantages: per-group normalisation, zero-std groups, clip, errors."""

import pytest
import torch

from viva.learner import group_advantages


def test_values_per_group():
    r = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0, 0.0, 10.0, 0.0])
    adv = group_advantages(r, group_size=4, eps=0.0)
    for i, g in enumerate(r.reshape(2, 4)):
        expected = (g - g.mean()) / g.std(unbiased=False)
        assert torch.allclose(adv[4 * i:4 * i + 4], expected, atol=1e-6)
    assert torch.allclose(adv.reshape(2, 4).mean(1), torch.zeros(2), atol=1e-6)
    # Only the group matters: shifting one group's rewards leaves every advantage unchanged.
    r2 = r.clone()
    r2[:4] += 100
    assert torch.allclose(group_advantages(r2, 4, eps=0.0), adv, atol=1e-5)


def test_eps_and_list_input():
    adv = group_advantages([0.0, 1.0], group_size=2, eps=1.0)
    assert torch.allclose(adv, torch.tensor([-1 / 3, 1 / 3]))  # population std 0.5, (±0.5) / 1.5


def test_zero_std_group_is_exactly_zero():
    adv = group_advantages(torch.tensor([0.1, 0.1, 0.1, 0.3, 0.7, 0.2]), group_size=3)
    assert torch.equal(adv[:3], torch.zeros(3))
    assert bool((adv[3:] != 0).all())


def test_clip():
    r = torch.tensor([0.0] * 9 + [1.0])  # the outlier's advantage is 3
    assert group_advantages(r, 10, eps=0.0)[-1].item() == pytest.approx(3.0, abs=1e-5)
    clipped = group_advantages(r, 10, eps=0.0, clip=2.0)
    assert clipped[-1].item() == 2.0 and clipped.abs().max().item() <= 2.0


def test_pooled_std_scales_groups_by_one_std_of_the_step():
    # group 1 spreads 100x more than group 0: per-group std makes both unit-size, the pooled std keeps the ratio
    r = torch.tensor([0.50, 0.51, 0.49, 0.50, 0.0, 1.0, -1.0, 0.0])
    per_group = group_advantages(r, 4, eps=0.0)
    pooled = group_advantages(r, 4, eps=0.0, std="pooled")
    centred = r.reshape(2, 4) - r.reshape(2, 4).mean(1, keepdim=True)
    scale = centred.pow(2).mean().sqrt()  # sqrt of the mean within-group variance
    assert torch.allclose(pooled, (centred / scale).reshape(-1), atol=1e-6)
    assert pooled.pow(2).mean().item() == pytest.approx(1.0, abs=1e-5)  # unit std over the step
    assert per_group[:4].abs().max().item() == pytest.approx(per_group[4:].abs().max().item(), rel=1e-5)
    assert pooled[:4].abs().max() < 0.02 * pooled[4:].abs().max()
    assert torch.equal(group_advantages(torch.tensor([0.2, 0.2, 0.0, 1.0]), 2, std="pooled")[:2], torch.zeros(2))
    with pytest.raises(ValueError, match="std must be one of"):
        group_advantages(r, 4, std="batch")


@pytest.mark.parametrize(
    "rewards,group_size,match",
    [
        ([1.0, 2.0, 3.0], 2, "groups of 2"),
        ([1.0, float("nan"), 3.0, 4.0], 2, r"samples \[1\]"),
        ([1.0, 2.0, float("inf"), 4.0], 2, r"samples \[2\]"),
        ([1.0, 2.0], 0, "groups of 0"),
    ],
)
def test_errors(rewards, group_size, match):
    with pytest.raises(ValueError, match=match):
        group_advantages(rewards, group_size)
