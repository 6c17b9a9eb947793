"""Rollout sequence parallel: two RolloutWorkers in one gloo group sample a GroupRequest exactly as one unsplit
worker does (same edited videos, latents and log-probs), after the same adapter was synced to both ranks."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed

from tests.rollout.grpo_fixtures import tiny_grpo_config
from viva.config import ConfigError

SP = ("cluster.num_rollout_actors=2", "cluster.rollout_sequence_parallel=2")
ATOL = 1e-5  # fp32 latents and log-probs; edited videos (uint8) must be equal


def _adapter():
    """A LoRA update whose B matrices are non-zero, so the adapter changes the sampled edits."""
    from viva.models.lora import lora_state_dict
    from viva.records import make_update

    def load(worker) -> None:
        g = torch.Generator().manual_seed(3)
        sd = {k: (torch.randn(v.shape, generator=g) * 0.05 if "lora_B" in k else v)
              for k, v in sorted(lora_state_dict(worker.editor.dit).items())}
        worker.load_adapter(make_update(sd, policy_version=1))

    return load


def _sample(worker):
    from viva.data.dataset import build_dataset
    from viva.records import GroupRequest

    prompt = build_dataset(worker.cfg.data, "train")[0]
    return worker.sample_group(GroupRequest(step=0, group_index=0, prompt=prompt, group_size=2, seed=7))


def _save(path: Path, worker) -> None:
    """Sample the group and save it with the number of video tokens this rank's blocks saw (hooked after SP's)."""
    tokens = []
    hook = worker.editor.dit.transformer.x_embedder.register_forward_hook(lambda m, a, out: tokens.append(out.shape[1]))
    group = _sample(worker)
    hook.remove()
    np.savez(path, videos=group.edited_videos, latents=group.latents, log_probs=group.log_probs,
             version=group.policy_version, tokens=max(tokens))


def _rank_main(rank: int, world: int, port: int, out_dir: str) -> None:
    from viva.rollout.worker import RolloutWorker

    torch.set_num_threads(1)
    cfg = tiny_grpo_config(Path(out_dir), *SP)
    worker = RolloutWorker(cfg, actor_index=rank)
    if rank == 0:  # the unsplit reference, in the same process (same threads) before the group forms
        _adapter()(worker)
        _save(Path(out_dir, "unsplit.npz"), worker)
        worker = RolloutWorker(cfg, actor_index=rank)
    worker.setup_sequence_parallel(rank, world, "127.0.0.1", port)
    _adapter()(worker)  # weight sync reaches every rank of the group
    _save(Path(out_dir, f"sp{rank}.npz"), worker)
    torch.distributed.destroy_process_group()


@pytest.mark.integration
def test_two_rollout_ranks_match_one_unsplit_worker(tmp_path):
    import torch.multiprocessing as mp

    from viva.training.distributed import free_port

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_rank_main, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    ref = np.load(tmp_path / "unsplit.npz")
    for rank in range(2):
        got = np.load(tmp_path / f"sp{rank}.npz")
        diff = {k: float(np.abs(got[k] - ref[k]).max()) for k in ("latents", "log_probs")}
        print(f"rank {rank}: max |sp - unsplit| = {diff}")
        assert got["latents"].shape == ref["latents"].shape and got["log_probs"].shape == ref["log_probs"].shape
        assert ref["log_probs"].size and diff["latents"] <= ATOL and diff["log_probs"] <= ATOL, (rank, diff)
        assert np.array_equal(got["videos"], ref["videos"]), rank
        assert int(got["version"]) == 1
        assert 2 * int(got["tokens"]) == int(ref["tokens"]), "each rank must hold half of the video tokens"


@pytest.mark.parametrize("overrides, message", [
    (("cluster.num_rollout_actors=3", "cluster.rollout_sequence_parallel=2"),
     "cluster.rollout_sequence_parallel must be a divisor of cluster.num_rollout_actors=3"),
    (("cluster.rollout_sequence_parallel=0",), "cluster.rollout_sequence_parallel must be >= 1, got 0"),
    ((*SP, "model.backend=compile"), "model.backend must be eager when cluster.rollout_sequence_parallel > 1"),
])
def test_rollout_sequence_parallel_config_is_validated(tmp_path, overrides, message):
    with pytest.raises(ConfigError, match="cluster.rollout_sequence_parallel") as err:
        tiny_grpo_config(tmp_path, *overrides)
    assert message in str(err.value)
    assert tiny_grpo_config(tmp_path, *SP).cluster.rollout_sequence_parallel == 2
