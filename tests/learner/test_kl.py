"""gaussian_kl: zero for identical means, equals torch.distributions' KL (averaged over non-batch dims)."""

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from viva.learner import gaussian_kl


def test_zero_for_identical_means():
    m = torch.randn(3, 4, 2, 5, 5)
    assert torch.equal(gaussian_kl(m, m.clone(), torch.tensor([0.1, 0.2, 0.3])), torch.zeros(3))


@pytest.mark.parametrize("std", [0.3, "per_sample"])
def test_matches_normal_kl(std):
    m, ref = torch.randn(3, 4, 2, 5, 5), torch.randn(3, 4, 2, 5, 5)
    std_t = torch.tensor([0.1, 0.5, 2.0]) if std == "per_sample" else torch.full((3,), std)
    s = std_t.reshape(-1, 1, 1, 1, 1).expand_as(m)
    expected = kl_divergence(Normal(m, s), Normal(ref, s)).flatten(1).mean(1)
    got = gaussian_kl(m, ref, std_t if std == "per_sample" else std)
    assert got.shape == (3,) and torch.allclose(got, expected, rtol=1e-5)


def test_gradient_reaches_mean_not_reference():
    m, ref = torch.randn(2, 3, requires_grad=True), torch.randn(2, 3, requires_grad=True)
    gaussian_kl(m, ref, 0.5).sum().backward()
    assert m.grad is not None and bool((m.grad != 0).any()) and ref.grad is None


def test_errors():
    m = torch.randn(2, 3)
    with pytest.raises(ValueError, match="shape"):
        gaussian_kl(m, torch.randn(2, 4), 1.0)
    with pytest.raises(ValueError, match="std must be > 0"):
        gaussian_kl(m, m, torch.tensor([1.0, 0.0]))
