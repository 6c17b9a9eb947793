"""Masked flow-matching loss (eq. 3), mask resizing to the latent grid, noising, timestep sampling."""

import pytest
import torch

from viva.sft.loss import (add_noise, flow_matching_target, masked_flow_matching_loss,
                           masked_flow_matching_loss_per_sample, resize_mask_to_latent)
from viva.sft.timesteps import SIGMA_MIN, sample_sigmas, shift_sigma


def test_unmasked_loss_is_plain_mse():
    pred, target = torch.randn(2, 4, 3, 5, 5), torch.randn(2, 4, 3, 5, 5)
    want = ((pred - target) ** 2).mean()
    assert torch.allclose(masked_flow_matching_loss(pred, target, None, 1.0), want)
    mask = torch.ones(2, 1, 3, 5, 5)
    assert torch.allclose(masked_flow_matching_loss(pred, target, mask, 0.0), want)


def test_mask_weights_only_the_edited_region():
    pred = torch.zeros(1, 2, 1, 2, 2)
    target = torch.ones(1, 2, 1, 2, 2)  # unit error everywhere
    mask = torch.tensor([[[[[1.0, 0.0], [0.0, 0.0]]]]])  # [1, 1, 1, 2, 2]: one of four cells edited
    # (1 + w·M): the edited cell counts 1 + 3 = 4, the others 1 -> mean (4 + 1 + 1 + 1) / 4
    assert masked_flow_matching_loss(pred, target, mask, 3.0).item() == pytest.approx(7 / 4)


def test_area_normalization_weighs_a_small_edit_like_a_large_one():
    pred, target = torch.zeros(2, 2, 1, 4, 4), torch.ones(2, 2, 1, 4, 4)  # unit error everywhere
    mask = torch.zeros(2, 1, 1, 4, 4)
    mask[0, ..., 0, 0] = 1.0  # sample 0: one of 16 cells edited
    mask[1] = 1.0  # sample 1: every cell edited
    plain = masked_flow_matching_loss_per_sample(pred, target, mask, 3.0)
    area = masked_flow_matching_loss_per_sample(pred, target, mask, 3.0, "area")
    assert plain.tolist() == pytest.approx([1 + 3 / 16, 4.0])  # the small edit's term is diluted 16x
    assert area.tolist() == pytest.approx([4.0, 4.0])  # mean(L_FM) + w * (mean over the edit region)
    empty = masked_flow_matching_loss_per_sample(pred, target, torch.zeros(2, 1, 1, 4, 4), 3.0, "area")
    assert empty.tolist() == pytest.approx([1.0, 1.0])  # no edit region: plain L_FM, no division by zero
    with pytest.raises(ValueError, match="normalization"):
        masked_flow_matching_loss(pred, target, mask, 1.0, "pixels")


def test_masked_loss_gradient_is_larger_inside_the_mask():
    pred = torch.zeros(1, 1, 1, 1, 2, requires_grad=True)
    target = torch.ones(1, 1, 1, 1, 2)
    mask = torch.tensor([1.0, 0.0]).view(1, 1, 1, 1, 2)
    masked_flow_matching_loss(pred, target, mask, 2.0).backward()
    g = pred.grad.flatten()
    assert g[0].item() == pytest.approx(3 * g[1].item())


def test_per_sample_loss_and_shape_errors():
    pred, target = torch.zeros(3, 2, 1, 2, 2), torch.ones(3, 2, 1, 2, 2)
    target[1] *= 2
    per = masked_flow_matching_loss_per_sample(pred, target, None, 1.0)
    assert per.tolist() == pytest.approx([1.0, 4.0, 1.0])
    with pytest.raises(ValueError, match="velocity_pred"):
        masked_flow_matching_loss(pred, target[:, :1], None, 1.0)
    with pytest.raises(ValueError, match="resize_mask_to_latent"):
        masked_flow_matching_loss(pred, target, torch.ones(3, 1, 1, 4, 4), 1.0)


def test_resize_mask_max_pools_to_the_latent_grid():
    mask = torch.zeros(1, 4, 8, 8)
    mask[0, 1, 0, 0] = 1.0  # one pixel on frame 1
    small = resize_mask_to_latent(mask, (4, 4, 4))
    assert small.shape == (1, 1, 4, 4, 4)
    assert small[0, 0, 1, 0, 0] == 1.0 and small.sum() == 1.0  # kept, not diluted to 1/4
    temporal = resize_mask_to_latent(mask, (1, 2, 2))  # e.g. a causal VAE folding frames
    assert temporal[0, 0, 0, 0, 0] == 1.0 and temporal.sum() == 1.0
    same = resize_mask_to_latent(mask, (4, 8, 8))
    assert torch.equal(same[:, 0], mask)
    with pytest.raises(ValueError, match="mask"):
        resize_mask_to_latent(torch.zeros(4, 8, 8), (4, 4, 4))


def test_noising_and_target_follow_the_sigma_convention():
    x0, noise = torch.randn(2, 3, 1, 2, 2), torch.randn(2, 3, 1, 2, 2)
    sigma = torch.tensor([0.0, 1.0])
    x = add_noise(x0, noise, sigma)
    assert torch.allclose(x[0], x0[0]) and torch.allclose(x[1], noise[1])  # sigma = 1 is pure noise
    v = flow_matching_target(x0, noise)
    s = torch.tensor([0.3, 0.7])
    # An exact velocity integrates x_sigma back to x0: x0 = x_sigma - sigma * v
    xs = add_noise(x0, noise, s)
    assert torch.allclose(xs - s.view(-1, 1, 1, 1, 1) * v, x0, atol=1e-6)


@pytest.mark.parametrize("kind", ["uniform", "logit_normal", "shifted"])
def test_sigma_sampling_range_and_determinism(kind):
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    a, b = sample_sigmas(4096, kind, 3.0, g1), sample_sigmas(4096, kind, 3.0, g2)
    assert torch.equal(a, b) and a.shape == (4096,)
    assert a.min() >= SIGMA_MIN and a.max() <= 1.0


def test_sigma_sampling_distributions_differ_as_designed():
    g = torch.Generator().manual_seed(0)
    uni = sample_sigmas(20000, "uniform", generator=g)
    logit = sample_sigmas(20000, "logit_normal", generator=g)
    shifted = sample_sigmas(20000, "shifted", 3.0, g)
    assert abs(uni.mean().item() - 0.5) < 0.02
    # logit-normal concentrates in the middle: fewer samples in the tails than uniform
    assert ((logit < 0.1) | (logit > 0.9)).float().mean() < 0.5 * ((uni < 0.1) | (uni > 0.9)).float().mean()
    assert shifted.mean().item() > 0.65  # shift 3 pushes mass towards noise
    assert shift_sigma(torch.tensor(0.5), 3.0).item() == pytest.approx(0.75)
    with pytest.raises(ValueError, match="unknown timestep"):
        sample_sigmas(2, "cosine")
