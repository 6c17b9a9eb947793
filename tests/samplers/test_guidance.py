"""cfg_combine: uncond + scale·(cond − uncond)."""

import pytest
import torch

from viva.samplers import cfg_combine


def test_cfg_combine_values():
    c, u = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    assert torch.allclose(cfg_combine(c, u, 2.0), 2 * c - u)
    assert torch.allclose(cfg_combine(c, u, 1.0), c, atol=1e-6)
    assert torch.equal(cfg_combine(c, u, 0.0), u)


def test_cfg_shape_mismatch():
    with pytest.raises(ValueError, match="shape"):
        cfg_combine(torch.zeros(2, 3), torch.zeros(3, 3), 2.0)
