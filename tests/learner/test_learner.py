"""The Edit-GRPO learner: on-policy ratio exactly 1, only LoRA parameters move, every one of them does."""

import numpy as np
import pytest
import torch

from tests.rollout.grpo_fixtures import tiny_grpo_config
from viva.learner.learner import Learner
from viva.data.dataset import build_dataset
from viva.records import GroupRequest, ScoredGroup, WeightSyncError, make_update, verify_update
from viva.rollout.worker import RolloutWorker


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    cfg = tiny_grpo_config(tmp_path_factory.mktemp("learner"), "grpo.kl_coef=0.1")
    learner, worker = Learner(cfg), RolloutWorker(cfg)
    worker.load_adapter(learner.adapter_update())
    prompt = build_dataset(cfg.data, "train")[0]
    return cfg, learner, worker, prompt


def _scored(worker, prompt, seed):
    g = worker.sample_group(GroupRequest(step=0, group_index=0, prompt=prompt, group_size=3, seed=seed))
    return ScoredGroup(group=g, rewards=np.array([1.0, 0.0, -1.0]), sub_rewards={},
                       advantages=np.array([1.0, 0.0, -1.0], np.float32))


def test_update_is_on_policy_and_moves_only_lora(setup):
    cfg, learner, worker, prompt = setup
    named = dict(learner.editor.named_parameters())
    before = {k: p.detach().clone() for k, p in named.items()}
    lora = {k for k, p in named.items() if p.requires_grad}
    assert lora and all("lora_" in k for k in lora)
    m1 = learner.update([_scored(worker, prompt, seed=1)], step=0)
    assert m1.first_ratio_max_dev == 0.0  # recorded log-probs reproduced bit-exactly before the first step
    assert m1.kl == 0.0  # the adapter is a no-op at Gaussian init, so policy == reference
    worker.load_adapter(learner.adapter_update())
    m2 = learner.update([_scored(worker, prompt, seed=2)], step=1)
    assert m2.first_ratio_max_dev == 0.0 and m2.kl > 0.0 and learner.policy_version == 2
    for k, p in named.items():
        moved = not torch.equal(before[k], p.detach())
        # lora_B moves on step 1 (its gradient is A-driven); lora_A only once B != 0, i.e. on step 2.
        assert moved == (k in lora), f"{k}: moved={moved}"


def test_rollout_worker_loads_checksummed_adapter(setup):
    cfg, learner, worker, prompt = setup
    upd = learner.adapter_update()
    ack = worker.load_adapter(upd)
    assert ack.policy_version == learner.policy_version and ack.checksum == upd.checksum
    bad = make_update({k: torch.from_numpy(v) for k, v in upd.tensors.items()}, upd.policy_version)
    next(iter(bad.tensors.values()))[...] += 1.0  # corrupt after the checksum was computed
    with pytest.raises(WeightSyncError, match="checksum"):
        verify_update(bad)
    with pytest.raises(WeightSyncError, match="older"):
        worker.load_adapter(make_update({k: torch.from_numpy(v) for k, v in upd.tensors.items()}, 0))


def test_same_seed_same_group_and_window(tmp_path):
    cfg = tiny_grpo_config(tmp_path, "sampler.window_size=2", "sampler.random_window=true")
    worker = RolloutWorker(cfg)
    prompt = build_dataset(cfg.data, "train")[1]
    req = GroupRequest(step=0, group_index=0, prompt=prompt, group_size=2, seed=7)
    a, b = worker.sample_group(req), worker.sample_group(req)
    assert np.array_equal(a.latents, b.latents) and np.array_equal(a.log_probs, b.log_probs)
    assert a.sde_steps.sum() == 2 and np.all(a.log_probs[:, ~a.sde_steps] == 0)
    c = worker.sample_group(GroupRequest(step=0, group_index=0, prompt=prompt, group_size=2, seed=8))
    assert not np.array_equal(a.edited_videos, c.edited_videos) or not np.array_equal(a.latents, c.latents)


def test_unavailable_backend_is_a_clear_error(tmp_path):
    from viva.models.backends import BackendUnavailable

    cfg = tiny_grpo_config(tmp_path, "model.backend=tensorrt")
    with pytest.raises(BackendUnavailable, match="tensorrt"):
        RolloutWorker(cfg)


@pytest.mark.parametrize("kl_steps", ["window", "all"])
def test_kl_steps_all_anchors_the_deterministic_steps(tmp_path, kl_steps):
    """With zero advantages only the KL moves the adapter. kl_steps=all also scores the ODE step (the demo window
    leaves step 2 of 3 deterministic): its KL is logged and falls as the adapter is pulled back to the reference."""
    cfg = tiny_grpo_config(tmp_path, "grpo.kl_coef=1.0", f"grpo.kl_steps={kl_steps}", "grpo.lr=5e-3")
    learner, worker = Learner(cfg), RolloutWorker(cfg)
    with torch.no_grad():  # move the adapter off the reference (lora_B starts at 0: policy == reference)
        gen = torch.Generator().manual_seed(0)
        for name, p in learner.editor.named_parameters():
            if "lora_B" in name:
                p.copy_(0.05 * torch.randn(p.shape, generator=gen))
    learner._gather_lora()
    worker.load_adapter(learner.adapter_update())
    g = worker.sample_group(GroupRequest(step=0, group_index=0, prompt=build_dataset(cfg.data, "train")[0],
                                         group_size=3, seed=1))
    assert g.sde_steps.tolist() == [True, True, False]
    sg = ScoredGroup(group=g, rewards=np.zeros(3), sub_rewards={}, advantages=np.zeros(3, np.float32))
    kls = [learner.update([sg], step=i).kl_ode for i in range(8)]
    if kl_steps == "window":
        assert kls == [0.0] * 8
    else:
        assert kls[0] > 0 and kls[-1] < 0.5 * kls[0], kls
