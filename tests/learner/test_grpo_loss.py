"""grpo_loss: ratio = 1 gives −mean(adv) (+ KL), clip fraction, clipping, gradients flow to log_prob only."""

import math

import pytest
import torch

from viva.learner import GRPOLossOutput, grpo_loss


@pytest.mark.parametrize("shape", [(6,), (6, 4)])
def test_ratio_one_gives_minus_mean_advantage_plus_kl(shape):
    lp = torch.randn(shape)
    adv = torch.randn(6)
    out = grpo_loss(lp, lp.clone(), adv, clip_range=1e-4)
    assert isinstance(out, GRPOLossOutput)
    assert torch.allclose(out.loss, -adv.mean(), atol=1e-6)
    assert out.clip_fraction.item() == 0.0 and out.ratio_mean.item() == pytest.approx(1.0)
    kl = torch.rand(shape)
    with_kl = grpo_loss(lp, lp.clone(), adv, clip_range=1e-4, kl=kl, kl_coef=0.5)
    assert torch.allclose(with_kl.loss, -adv.mean() + 0.5 * kl.mean(), atol=1e-6)
    assert torch.allclose(with_kl.kl, kl.mean())


def test_clip_fraction_and_clipping_on_constructed_ratios():
    ratios = torch.tensor([[1.0, 1.05, 0.9, 1.3], [0.5, 1.0, 1.19, 2.0]])  # [B=2, T=4]
    old = torch.zeros(2, 4)
    lp = torch.log(ratios)
    adv = torch.tensor([1.0, -2.0])
    out = grpo_loss(lp, old, adv, clip_range=0.2)
    # |r − 1| > 0.2: 1.3, 0.5, 2.0 -> 3 of 8
    assert out.clip_fraction.item() == pytest.approx(3 / 8)
    assert out.ratio_min.item() == pytest.approx(0.5) and out.ratio_max.item() == pytest.approx(2.0)
    a = adv.reshape(2, 1)
    expected = torch.maximum(-a * ratios, -a * ratios.clamp(0.8, 1.2)).mean()
    assert torch.allclose(out.policy_loss, expected, atol=1e-6)
    # Hand check of two entries: A = 1, r = 1.3 -> max(−1.3, −1.2) = −1.2; A = −2, r = 2.0 -> max(4, 2.4) = 4.
    terms = torch.maximum(-a * ratios, -a * ratios.clamp(0.8, 1.2))
    assert terms[0, 3].item() == pytest.approx(-1.2) and terms[1, 3].item() == pytest.approx(4.0)


def test_gradients_flow_to_log_prob_only():
    lp = torch.tensor([0.1, -0.05, 0.0], requires_grad=True)
    old = torch.zeros(3, requires_grad=True)
    adv = torch.tensor([1.0, -1.0, 0.5], requires_grad=True)
    grpo_loss(lp, old, adv, clip_range=0.2).loss.backward()
    assert old.grad is None and adv.grad is None
    # Inside the clip range d/dlp mean(−A·exp(lp)) = −A·r / 3.
    assert torch.allclose(lp.grad, -adv.detach() * torch.exp(lp.detach()) / 3, atol=1e-6)


def test_clipped_ratio_has_no_gradient():
    lp = torch.tensor([math.log(1.5)], requires_grad=True)  # positive advantage, ratio above 1 + eps
    grpo_loss(lp, torch.zeros(1), torch.ones(1), clip_range=0.2).loss.backward()
    assert lp.grad.item() == 0.0


def test_shape_errors():
    with pytest.raises(ValueError, match="share a shape"):
        grpo_loss(torch.zeros(3, 2), torch.zeros(3), torch.zeros(3), 0.2)
    with pytest.raises(ValueError, match="advantages"):
        grpo_loss(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3, 2), 0.2)
    with pytest.raises(ValueError, match="kl shape"):
        grpo_loss(torch.zeros(3, 2), torch.zeros(3, 2), torch.zeros(3), 0.2, kl=torch.zeros(3))


def test_end_to_end_with_sampler_ratio_one_then_update_moves_toward_positive_advantage():
    """denoise → step_log_prob (ratio exactly 1) → grpo_loss + KL → one SGD step favours the positive advantage."""
    from viva.learner import gaussian_kl
    from viva.samplers import denoise, sigma_schedule, step_log_prob, trained_step_indices

    weight = torch.nn.Parameter(torch.tensor(0.5))  # a one-parameter policy v = w·x; the reference keeps w = 0.5
    with torch.no_grad():
        traj = denoise(lambda x, s: weight * x, torch.randn(2, 3, 4), sigma_schedule(4, 3.0), kind="sde", eta=0.7,
                       generator=torch.Generator().manual_seed(0))
    adv, steps = torch.tensor([1.0, -1.0]), trained_step_indices(traj)

    def score(w, t):
        x = traj.latents[:, t]
        return step_log_prob(traj.kind, w * x, x, traj.latents[:, t + 1], traj.sigmas[t], traj.sigmas[t + 1], traj.eta)

    def loss():
        outs, refs = [score(weight, t) for t in steps], [score(torch.tensor(0.5), t) for t in steps]
        lp = torch.stack([o.log_prob for o in outs], 1)  # [B, T]
        kl = torch.stack([gaussian_kl(o.mean, r.mean, o.std) for o, r in zip(outs, refs)], 1)  # [B, T]
        return grpo_loss(lp, traj.log_probs[:, steps], adv, clip_range=10.0, kl=kl, kl_coef=0.1), lp.detach()

    out, lp0 = loss()
    assert out.ratio_min.item() == 1.0 and out.ratio_max.item() == 1.0 and out.kl.item() == 0.0
    out.loss.backward()
    with torch.no_grad():
        weight -= 0.05 * weight.grad
    out1, lp1 = loss()
    gain = (lp1 - lp0).sum(1)  # [B]
    assert gain[0] > gain[1]  # the positive-advantage sample gained log-prob relative to the negative one
    assert out1.kl.item() > 0 and out1.loss.item() < out.loss.item()
