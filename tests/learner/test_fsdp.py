"""FSDP2 learner on 2 gloo ranks: one GRPO update gives the single-rank loss and LoRA gradients, the adapter sent to
the rollout actors is gathered once per update and matches the single-rank one; Ulysses sequence parallel inside
the FSDP learner does too; the checkpoint state round-trips through the shards."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.rollout.grpo_fixtures import tiny_grpo_config
from viva.config import ConfigError

GRAD_RTOL = 1e-5  # max |grad diff| / max |grad|, fp32
LOSS_RTOL = 1e-5
LORA_ATOL = 1e-6  # LoRA after one AdamW step (lr 1e-3: a first Adam step moves each entry by ~lr)

# Single rank: both groups in one minibatch; 2 ranks: one group each, gradients averaged; SP: both ranks pool both.
# One torch thread everywhere: CPU matmuls round differently with another thread count, and the first GRPO step's
# ratio must be exactly 1 on every rank for the losses to be comparable.
COMMON = ("grpo.minibatch_size=4", "grpo.kl_coef=0.1", "learner.param_dtype=float32", "cluster.torch_threads=1")
FSDP = ("cluster.num_learner_workers=2", "learner.fsdp=true", "learner.activation_checkpointing=true")
FSDP_SP = ("cluster.num_learner_workers=2", "learner.fsdp=true", "learner.sequence_parallel=2")


def _lora_grads(learner) -> dict:
    from viva.learner.fsdp import gather_full, lora_parameters

    return gather_full({k: p.grad for k, p in lora_parameters(learner.editor.dit).items()})


def _uneven_gather_is_exact() -> bool:
    """gather_full on torch.chunk-style uneven shards: 3 rows, 1 row (rank 1 empty), and a 0-dim tensor."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.tensor import Shard, distribute_tensor

    from viva.learner.fsdp import gather_full

    mesh = init_device_mesh("cpu", (2,))
    full = {"a": torch.arange(15.0).view(3, 5), "b": torch.arange(4.0).view(1, 4), "c": torch.tensor(7.0)}
    sharded = {k: distribute_tensor(v, mesh, [Shard(0)]) if v.ndim else v for k, v in full.items()}
    got = gather_full(sharded)
    return list(got) == list(full) and all(torch.equal(got[k], full[k]) for k in full)


def _run_rank(cfg, rank: int, port: int, inputs: dict) -> dict:
    """One LearnerWorker rank: load the shared start state, update on this rank's group, report."""
    import viva.learner.fsdp as fsdp
    from viva.learner.worker import LearnerWorker

    worker = LearnerWorker(cfg)
    worker.setup(rank, 2, "127.0.0.1", port)
    worker.load_state_dict(inputs["start"])
    loaded = worker.adapter_update() if rank == 0 else None
    processor = type(worker.learner.editor.dit.transformer.transformer_blocks[0].attn.processor).__name__
    gathers = []
    real = fsdp._gather_same_dtype
    fsdp._gather_same_dtype = lambda t: gathers.append(len(t)) or real(t)
    metrics = worker.update([inputs["groups"][rank]], step=0)
    n_gathers = len(gathers)
    sent = [worker.adapter_update() for _ in range(2)] if rank == 0 else []  # rank 0 alone: no collective
    fsdp._gather_same_dtype = real
    out = {"metrics": metrics, "grads": _lora_grads(worker.learner), "gathers": n_gathers, "loaded": loaded,
           "processor": processor, "sent": sent[0] if sent else None, "state": worker.state_dict()}
    worker.load_state_dict(inputs["after"])  # a full state with optimizer moments -> shards -> full again
    out["reloaded"] = worker.state_dict()
    out["uneven_gather_ok"] = _uneven_gather_is_exact()
    return out


def _rank_main(rank: int, ports: tuple, tmp: str) -> None:
    import torch.distributed as dist

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    inputs = torch.load(Path(tmp) / "inputs.pt", weights_only=False)
    results = {}
    for name, overrides, port in (("fsdp", FSDP, ports[0]), ("fsdp_sp", FSDP_SP, ports[1])):
        cfg = tiny_grpo_config(Path(tmp), *COMMON, *overrides)
        results[name] = _run_rank(cfg, rank, port, inputs)
        dist.destroy_process_group()
    torch.save(results, Path(tmp) / f"rank{rank}.pt")


def _single_rank_reference(tmp_path) -> dict:
    """On-policy groups from a rollout worker and one single-rank update on both (LoRA B randomised first)."""
    from viva.data.dataset import build_dataset
    from viva.learner.fsdp import lora_parameters
    from viva.learner.learner import Learner
    from viva.records import GroupRequest, ScoredGroup
    from viva.rollout.worker import RolloutWorker

    cfg = tiny_grpo_config(tmp_path, *COMMON)
    learner, worker = Learner(cfg), RolloutWorker(cfg)
    with torch.no_grad():  # a non-zero B, so lora_A has gradients too
        for k, p in lora_parameters(learner.editor.dit).items():
            if "lora_B" in k:
                p.normal_(0.0, 0.05, generator=torch.Generator().manual_seed(3))
    start, before = copy.deepcopy(learner.state_dict()), learner.adapter_update()  # state_dict holds live tensors
    worker.load_adapter(before)
    prompts = build_dataset(cfg.data, "train")
    groups = []
    for i in range(2):
        g = worker.sample_group(GroupRequest(step=0, group_index=i, prompt=prompts[i], group_size=2, seed=10 + i))
        groups.append(ScoredGroup(group=g, rewards=np.array([1.0, -1.0]), sub_rewards={},
                                  advantages=np.array([1.0, -1.0], np.float32)))
    metrics = learner.update(groups, step=0)
    return {"start": start, "groups": groups, "before": before, "metrics": metrics, "grads": _lora_grads(learner),
            "after": learner.state_dict(), "sent": learner.adapter_update()}


def _max_rel(a: dict, b: dict) -> float:
    assert set(a) == set(b)
    return max(float((a[k] - b[k]).abs().max() / b[k].abs().max().clamp_min(1e-12)) for k in a)


def _max_abs_state(a: dict, b: dict) -> float:
    """Largest |difference| over the LoRA and the optimizer moments of two `Learner.state_dict`s."""
    diffs = [float((a["lora"][k] - b["lora"][k]).abs().max()) for k in b["lora"]]
    for i, st in b["optimizer"]["state"].items():
        diffs += [float((a["optimizer"]["state"][i][n] - v).abs().max()) for n, v in st.items()]
    return max(diffs)


@pytest.mark.integration
def test_fsdp_and_sequence_parallel_match_single_rank(tmp_path):
    import torch.multiprocessing as mp

    from viva.learner.worker import free_port

    threads = torch.get_num_threads()
    try:
        ref = _single_rank_reference(tmp_path)
    finally:
        torch.set_num_threads(threads)
    torch.save({k: ref[k] for k in ("start", "groups", "after")}, tmp_path / "inputs.pt")
    mp.spawn(_rank_main, args=((free_port(), free_port()), str(tmp_path)), nprocs=2, join=True)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=False) for r in range(2)]
    sent_ref = ref["sent"].tensors
    for name in ("fsdp", "fsdp_sp"):
        res = [r[name] for r in ranks]
        # FSDP: rank r trained on group r, so the single-rank loss is the mean; SP: each rank saw both groups.
        loss = float(np.mean([r["metrics"].loss for r in res]))
        assert abs(loss - ref["metrics"].loss) <= LOSS_RTOL * abs(ref["metrics"].loss), (name, loss)
        assert abs(res[0]["metrics"].grad_norm - ref["metrics"].grad_norm) <= 1e-5 * ref["metrics"].grad_norm
        grad_diff = _max_rel(res[0]["grads"], ref["grads"])
        assert grad_diff <= GRAD_RTOL, (name, grad_diff)
        # The LoRA is gathered once per update; adapter_update itself communicates nothing.
        assert all(r["gathers"] == 1 and r["uneven_gather_ok"] for r in res)
        assert res[0]["loaded"].checksum == ref["before"].checksum  # bit-identical before the update
        expected = "UlyssesAttnProcessor" if name == "fsdp_sp" else "HunyuanVideoAttnProcessor2_0"
        assert res[0]["processor"] == expected
        sent = res[0]["sent"]
        assert sorted(sent.tensors) == sorted(sent_ref) and sent.policy_version == ref["sent"].policy_version == 1
        lora_diff = max(float(np.abs(sent.tensors[k] - sent_ref[k]).max()) for k in sent_ref)
        assert lora_diff <= LORA_ATOL, (name, lora_diff)
        assert _max_abs_state(res[0]["state"], ref["after"]) <= LORA_ATOL and res[1]["state"] == {}
        assert _max_abs_state(res[0]["reloaded"], ref["after"]) == 0.0  # full -> shards -> full is exact
        print(f"{name}: loss {loss:.6e} vs {ref['metrics'].loss:.6e}, grad rel diff {grad_diff:.1e}, "
              f"sent LoRA max abs diff {lora_diff:.1e}, first-step ratio dev {res[0]['metrics'].first_ratio_max_dev}")


def test_learner_switches_are_validated(tmp_path):
    with pytest.raises(ConfigError, match="learner.sequence_parallel"):
        tiny_grpo_config(tmp_path, "cluster.num_learner_workers=2", "learner.sequence_parallel=3")
    with pytest.raises(ConfigError, match="learner.param_dtype"):
        tiny_grpo_config(tmp_path, "learner.param_dtype=fp8")
    cfg = tiny_grpo_config(tmp_path, "learner.fsdp=true", "learner.activation_checkpointing=true")
    assert cfg.learner.fsdp and cfg.learner.reduce_dtype == "float32"


def test_one_rank_fsdp_is_plain_training(tmp_path):
    """Without a process group FSDP is off (nothing to shard over); activation checkpointing still applies."""
    from viva.learner.learner import Learner

    learner = Learner(tiny_grpo_config(tmp_path, "learner.fsdp=true", "learner.activation_checkpointing=true"))
    assert not learner.sharded and learner.editor.dit.transformer.gradient_checkpointing
    assert learner.adapter_update().policy_version == 0
