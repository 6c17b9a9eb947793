"""sigma_schedule: endpoints, monotonicity, the SD3 / HunyuanVideo shift."""

import pytest
import torch

from viva.samplers import sigma_schedule


@pytest.mark.parametrize("shift", [1.0, 3.0, 7.0])
def test_endpoints_and_monotone(shift):
    s = sigma_schedule(20, shift)
    assert s.shape == (21,) and s.dtype == torch.float32
    assert s[0].item() == 1.0 and s[-1].item() == 0.0
    assert bool((s[1:] < s[:-1]).all())


def test_shift_formula_and_identity():
    base = torch.linspace(1, 0, 11, dtype=torch.float64)
    assert torch.allclose(sigma_schedule(10, 1.0).double(), base, atol=1e-7)
    expected = 7 * base / (1 + 6 * base)
    assert torch.allclose(sigma_schedule(10, 7.0).double(), expected, atol=1e-7)
    # A shift > 1 spends more steps at high noise: every interior sigma is larger.
    assert bool((sigma_schedule(10, 7.0)[1:-1] > sigma_schedule(10, 1.0)[1:-1]).all())


def test_matches_diffusers_hunyuan_video_pipeline_sigmas():
    """HunyuanVideoPipeline passes linspace(1, 0, N+1)[:-1] to FlowMatchEulerDiscreteScheduler(shift=7)."""
    import numpy as np
    from diffusers import FlowMatchEulerDiscreteScheduler

    sched = FlowMatchEulerDiscreteScheduler(shift=7.0)
    sched.set_timesteps(sigmas=np.linspace(1.0, 0.0, 11)[:-1])
    assert torch.allclose(sched.sigmas.float(), sigma_schedule(10, 7.0), atol=1e-6)


@pytest.mark.parametrize("args", [(0, 1.0), (10, 0.0), (10, -2.0)])
def test_bad_arguments(args):
    with pytest.raises(ValueError):
        sigma_schedule(*args)
