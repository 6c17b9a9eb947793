"""GRPO checkpoints: atomic write, `latest` pointer, exact round trip (weights_only loading)."""

import random

import numpy as np
import pytest
import torch

from viva.grpo.run_state import RunState, latest_checkpoint, load_checkpoint, save_checkpoint


def _learner_state():
    p = torch.nn.Parameter(torch.randn(3, 2))
    opt = torch.optim.AdamW([p], lr=0.1)
    p.grad = torch.ones_like(p)
    opt.step()
    return {"lora": {"a.lora_A.weight": p.detach().clone()}, "optimizer": opt.state_dict(), "policy_version": 4}


def test_round_trip_and_rng_restore(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    st = _learner_state()
    path = save_checkpoint(tmp_path, RunState(step=4, policy_version=4, cursor=17, rejects=1), st)
    expect = (torch.rand(1), np.random.rand(), random.random())
    torch.manual_seed(99), np.random.seed(99), random.seed(99)
    assert latest_checkpoint(tmp_path) == path
    state, got = load_checkpoint(path)
    assert state == RunState(step=4, policy_version=4, cursor=17, rejects=1)
    assert torch.equal(got["lora"]["a.lora_A.weight"], st["lora"]["a.lora_A.weight"])
    assert torch.equal(got["optimizer"]["state"][0]["exp_avg"], st["optimizer"]["state"][0]["exp_avg"])
    assert (torch.rand(1), np.random.rand(), random.random()) == expect


def test_failed_write_leaves_previous_checkpoint(tmp_path):
    save_checkpoint(tmp_path, RunState(1, 1, 2, 0), _learner_state())
    bad = _learner_state()
    bad["lora"] = {"x": "not a tensor"}
    with pytest.raises(Exception):
        save_checkpoint(tmp_path, RunState(2, 2, 4, 0), bad)
    assert latest_checkpoint(tmp_path).name == "step_000001"
    assert not [p for p in (tmp_path / "checkpoints").iterdir() if p.name.startswith(".")]  # no temp dir left
