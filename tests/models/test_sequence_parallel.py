"""Ulysses sequence parallel: 2 gloo ranks reproduce the unsplit EditDiT forward (text padding, reference frame)
and, averaged over the ranks, its LoRA + projector gradients (with and without activation checkpointing)."""

from __future__ import annotations

import json
import os
from datetime import timedelta
from pathlib import Path

import pytest
import torch

from viva.models.sequence_parallel import check_heads, check_tokens

FWD_ATOL = 1e-5  # fp32 forward, velocity entries are O(1)
GRAD_ATOL = 1e-5  # fp32 gradients, relative to max |grad| (see _grad_diff)


def _inputs(frames: int, with_reference: bool, size: int = 16) -> dict:
    """Two samples; sample 0's text has 3 padding tokens (mask 0), sample 1's none."""
    g = torch.Generator().manual_seed(1)
    shape = (2, 12, frames, size, size)  # [B, C, F', h, w]
    mask = torch.ones(2, 8, dtype=torch.long)  # [B, L]
    mask[0, 5:] = 0
    return dict(noisy=torch.randn(shape, generator=g), source=torch.randn(shape, generator=g),
                sigma=torch.tensor([0.7, 0.3]), text_states=torch.randn(2, 8, 64, generator=g), text_mask=mask,
                reference=torch.randn(2, 12, 1, size, size, generator=g) if with_reference else None)


def _tiny_dit(heads: int = 2):
    """The tiny preset's EditDiT with a LoRA whose B is non-zero and a trainable projector (x_embedder)."""
    from viva.config import LoRAConfig
    from viva.models.dit import EditDiT
    from viva.models.lora import add_lora
    from viva.models.presets import dit_config

    torch.manual_seed(0)
    dit = EditDiT.from_config(dict(dit_config("tiny"), num_attention_heads=heads))
    add_lora(dit, LoRAConfig(rank=4, alpha=8.0))
    with torch.no_grad():
        for name, p in dit.named_parameters():
            if "lora_B" in name:
                p.normal_(0.0, 0.05)
    dit.transformer.x_embedder.requires_grad_(True)
    return dit


def _loss_and_grads(dit, x: dict) -> tuple[torch.Tensor, dict]:
    """Output and gradients of a fixed random projection of it (the same loss on every rank)."""
    dit.zero_grad(set_to_none=True)
    out = dit(**x)  # [B, C, F', h, w]
    w = torch.randn(out.shape, generator=torch.Generator().manual_seed(2))
    (out * w).sum().backward()
    return out.detach(), {n: p.grad.clone() for n, p in dit.named_parameters() if p.grad is not None}


def _grad_diff(ref: dict, got: dict) -> float:
    """max |mean-over-ranks grad - single-process grad| / max |single-process grad|, over all trainable tensors."""
    import torch.distributed as dist

    worst = 0.0
    for name, g in got.items():
        dist.all_reduce(g)
        g /= dist.get_world_size()
        worst = max(worst, float((g - ref[name]).abs().max() / ref[name].abs().max().clamp_min(1e-12)))
    return worst


def _case(dit, group, frames: int, reference: bool, checkpointing: bool) -> dict:
    from viva.models.sequence_parallel import enable_sequence_parallel

    x = _inputs(frames, reference)
    ref, ref_grads = _loss_and_grads(dit, x)
    if checkpointing:
        dit.transformer.enable_gradient_checkpointing()
    handle = enable_sequence_parallel(dit, group)
    out, grads = _loss_and_grads(dit, x)
    handle.remove()
    dit.transformer.disable_gradient_checkpointing()
    assert set(grads) == set(ref_grads) and any("lora_A" in n for n in grads) and any("x_embedder" in n for n in grads)
    return {"fwd": float((out - ref).abs().max()), "grad": _grad_diff(ref_grads, grads)}


def _errors(group) -> dict:
    from viva.models.sequence_parallel import enable_sequence_parallel

    msgs = {}
    try:
        enable_sequence_parallel(_tiny_dit(heads=3), group)
    except ValueError as e:
        msgs["heads"] = str(e)
    dit = _tiny_dit()
    handle = enable_sequence_parallel(dit, group)
    try:
        dit(**_inputs(frames=1, with_reference=False, size=12))  # 1 x 3 x 3 = 9 tokens
    except ValueError as e:
        msgs["tokens"] = str(e)
    handle.remove()
    return msgs


def _rank_main(rank: int, world: int, port: int, out_dir: str) -> None:
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=timedelta(seconds=60))
    group = dist.group.WORLD
    dit = _tiny_dit()
    result = {"plain": _case(dit, group, frames=8, reference=False, checkpointing=False),
              "reference_ckpt": _case(dit, group, frames=8, reference=True, checkpointing=True),
              "errors": _errors(group)}
    Path(out_dir, f"rank{rank}.json").write_text(json.dumps(result))
    dist.destroy_process_group()


@pytest.mark.integration
def test_two_ranks_match_the_unsplit_dit(tmp_path):
    import torch.multiprocessing as mp

    from viva.learner.worker import free_port

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    mp.spawn(_rank_main, args=(2, free_port(), str(tmp_path)), nprocs=2, join=True)
    for rank in range(2):
        r = json.loads((tmp_path / f"rank{rank}.json").read_text())
        for case in ("plain", "reference_ckpt"):
            print(f"rank {rank} {case}: max|out - ref| = {r[case]['fwd']:.2e}, grad rel diff {r[case]['grad']:.2e}")
            assert r[case]["fwd"] <= FWD_ATOL, (rank, case, r[case])
            assert r[case]["grad"] <= GRAD_ATOL, (rank, case, r[case])
        assert "num_attention_heads=3" in r["errors"]["heads"] and "learner.sequence_parallel" in r["errors"]["heads"]
        assert "9 video tokens" in r["errors"]["tokens"], r["errors"]


def test_checks_name_the_field():
    check_heads(4, 2)
    check_tokens((9, 4, 4), 2)
    with pytest.raises(ValueError, match=r"num_attention_heads=3 .*degree 2"):
        check_heads(3, 2)
    with pytest.raises(ValueError, match=r"9 video tokens \(latent frames 1 x h/patch 3 x w/patch 3\)"):
        check_tokens((1, 3, 3), 2)
