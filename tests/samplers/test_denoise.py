"""denoise: recorded shapes, zero log-probs on ODE steps, SDE window, seeds, exact log-prob recomputation."""

import pytest
import torch

from viva.samplers import (
    Trajectory,
    denoise,
    sde_window,
    sigma_schedule,
    step_is_stochastic,
    step_log_prob,
    trained_step_indices,
)

B, SHAPE, T = 3, (4, 2, 4, 4), 6


def _velocity_fn():
    w = torch.randn(4, 4) * 0.3

    def fn(x, sigma):  # a deterministic, latents- and sigma-dependent toy velocity
        assert sigma.shape == (x.shape[0],)
        return torch.einsum("ij,bj...->bi...", w.to(x.dtype), x) * (1 + sigma.reshape(-1, 1, 1, 1, 1))

    return fn


@pytest.mark.parametrize("kind", ["sde", "cps"])
def test_records_shapes_and_window(kind):
    window = sde_window(T, 2, 3)
    assert window == [False, False, False, True, True, False]
    traj = denoise(_velocity_fn(), torch.randn(B, *SHAPE), sigma_schedule(T, 3.0), kind=kind, eta=0.7,
                   sde_steps=window, generator=torch.Generator().manual_seed(1))
    assert isinstance(traj, Trajectory)
    assert traj.latents.shape == (B, T + 1, *SHAPE) and traj.sigmas.shape == (T + 1,)
    assert traj.log_probs.shape == (B, T) and traj.sde_steps.tolist() == window
    assert bool((traj.log_probs[:, ~traj.sde_steps] == 0).all())
    assert bool((traj.log_probs[:, traj.sde_steps] != 0).all())
    assert trained_step_indices(traj) == [3, 4]
    assert torch.equal(traj.final, traj.latents[:, -1])


def test_cps_last_step_is_not_stochastic():
    traj = denoise(_velocity_fn(), torch.randn(B, *SHAPE), sigma_schedule(T, 3.0), kind="cps", eta=0.7)
    assert traj.sde_steps.tolist() == [True] * (T - 1) + [False]
    assert trained_step_indices(traj) == list(range(T - 1))
    sde = denoise(_velocity_fn(), torch.randn(B, *SHAPE), sigma_schedule(T, 3.0), kind="sde", eta=0.7)
    assert sde.sde_steps.tolist() == [True] * T  # the SDE's last step keeps std > 0 (dt < 0)
    assert not step_is_stochastic("sde", 0.0, 0.5) and not step_is_stochastic("ode", 0.7, 0.5)


def test_same_seed_same_trajectory_different_seed_differs():
    fn, x = _velocity_fn(), torch.randn(B, *SHAPE)
    run = lambda seed: denoise(fn, x, sigma_schedule(T, 3.0), kind="sde", eta=0.7,  # noqa: E731
                               generator=torch.Generator().manual_seed(seed))
    a, b, c = run(5), run(5), run(6)
    assert torch.equal(a.latents, b.latents) and torch.equal(a.log_probs, b.log_probs)
    assert not torch.equal(a.final, c.final)


@pytest.mark.parametrize("kind,dtype", [("sde", torch.float32), ("cps", torch.float32), ("sde", torch.bfloat16)])
def test_step_log_prob_recomputes_recorded_log_prob_exactly(kind, dtype):
    fn = _velocity_fn()
    traj = denoise(fn, torch.randn(B, *SHAPE, dtype=dtype), sigma_schedule(T, 3.0), kind=kind, eta=0.7,
                   generator=torch.Generator().manual_seed(2))
    assert trained_step_indices(traj)
    for t in trained_step_indices(traj):
        x = traj.latents[:, t]
        out = step_log_prob(traj.kind, fn(x, traj.sigmas[t].expand(B)), x, traj.latents[:, t + 1],
                            traj.sigmas[t], traj.sigmas[t + 1], traj.eta)
        assert torch.equal(out.log_prob, traj.log_probs[:, t])  # ratio = 1 before the first update
        # Float sigmas (e.g. read back from a config or a record) give the same result.
        again = step_log_prob(traj.kind, fn(x, traj.sigmas[t].expand(B)), x, traj.latents[:, t + 1],
                              traj.sigmas[t].item(), traj.sigmas[t + 1].item(), traj.eta)
        assert torch.equal(again.log_prob, traj.log_probs[:, t])


def test_record_false_keeps_only_final_and_progress_is_called():
    calls = []
    traj = denoise(_velocity_fn(), torch.randn(B, *SHAPE), sigma_schedule(T, 3.0), kind="ode", eta=0.0,
                   record=False, progress=lambda i, n: calls.append((i, n)))
    assert traj.latents.shape == (B, 1, *SHAPE) and not traj.recorded
    assert calls == [(i, T) for i in range(1, T + 1)]
    assert bool((traj.log_probs == 0).all()) and not traj.sde_steps.any()
    with pytest.raises(ValueError, match="record=False"):
        trained_step_indices(traj)


def test_bad_inputs():
    fn, x = _velocity_fn(), torch.randn(B, *SHAPE)
    with pytest.raises(ValueError, match="sde_steps"):
        denoise(fn, x, sigma_schedule(T, 3.0), kind="sde", eta=0.7, sde_steps=[True] * (T - 1))
    with pytest.raises(ValueError, match="decrease"):
        denoise(fn, x, torch.tensor([1.0, 0.5, 0.7, 0.0]), kind="sde", eta=0.7)
    with pytest.raises(ValueError, match="kind"):
        denoise(fn, x, sigma_schedule(T, 3.0), kind="ddim", eta=0.7)
    with pytest.raises(ValueError, match="does not fit"):
        sde_window(T, 4, 3)
    with pytest.raises(ValueError, match="ode"):
        step_log_prob("ode", x, x, x, 0.5, 0.4, 0.7)
    assert sde_window(T, 0, 0) == [True] * T


@pytest.mark.parametrize("kind", ["sde", "cps"])
def test_window_before_the_end_leaves_the_final_steps_deterministic(kind):
    """Noise only in an early window (Flow-GRPO-Fast / MixGRPO): every later step is the plain ODE step, so the
    final latents carry no injected noise of their own."""
    from viva.samplers.ode import ode_step

    fn, x, sigmas = _velocity_fn(), torch.randn(B, *SHAPE), sigma_schedule(T, 3.0)
    window = sde_window(T, 2, 0)
    a, b = (denoise(fn, x, sigmas, kind=kind, eta=0.7, sde_steps=window, generator=torch.Generator().manual_seed(s))
            for s in (1, 2))
    assert not torch.equal(a.latents[:, 1], b.latents[:, 1])  # the window's noise differs between the seeds
    for traj in (a, b):
        assert bool((traj.log_probs[:, 2:] == 0).all()) and traj.sde_steps.tolist() == window
        for i in range(2, T):
            x_i = traj.latents[:, i]
            assert torch.equal(traj.latents[:, i + 1], ode_step(fn(x_i, sigmas[i].expand(B)), x_i, sigmas[i],
                                                                 sigmas[i + 1]))


@pytest.mark.parametrize("kind", ["sde", "cps"])
def test_noise_zero_reproduces_the_ode_sampler(kind):
    fn, x, sigmas = _velocity_fn(), torch.randn(B, *SHAPE), sigma_schedule(T, 3.0)
    ode = denoise(fn, x, sigmas, kind="ode")
    quiet = denoise(fn, x, sigmas, kind=kind, eta=0.0, generator=torch.Generator().manual_seed(3))
    assert torch.equal(ode.latents, quiet.latents) and not bool(quiet.sde_steps.any())
