"""FSDP2 layout of the Edit-GRPO learner's DiT, and the gathers that turn its shards back into full tensors.

``fully_shard`` goes on every dual- and single-stream block, on the token refiner, then on the EditDiT root (the
patch embed = eq. 2's projector, time/text embedders, output layer, pooled projection). Each rank keeps 1/N of
every weight (dim-0 shards); frozen base weights and the trainable LoRA share a block's all-gather, and only
tensors with gradients are reduce-scattered — averaged over the ranks, the same mean the data-parallel all-reduce
of `viva.learner.worker` takes, so the loss and its scaling are unchanged. Mixed precision (torch FSDP2
``MixedPrecisionPolicy``): weights gathered in ``learner.param_dtype``, gradients reduced in
``learner.reduce_dtype``, the root's output (the velocity) cast back to fp32 for the log-prob math.

The rollout actors need full tensors: `gather_full` rebuilds any set of dim-0-sharded DTensors with ONE all-gather,
so the learner gathers its LoRA once per update (and the optimizer state only for a checkpoint).
"""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Mapping

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.distributed.tensor import DTensor, Shard, distribute_tensor

from viva.config import LearnerConfig

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def fsdp_world() -> int:
    """Ranks FSDP would shard over: the default process group's size (1 without one)."""
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def apply_layout(dit: nn.Module, cfg: LearnerConfig, device: str) -> bool:
    """Activation checkpointing and, with ``cfg.fsdp`` on more than one rank, FSDP2; returns whether it sharded."""
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

    transformer = dit.transformer
    if cfg.activation_checkpointing:  # non-reentrant torch.utils.checkpoint around every block (diffusers)
        transformer.enable_gradient_checkpointing()
    if not cfg.fsdp or fsdp_world() == 1:
        return False
    mesh = init_device_mesh(torch.device(device).type, (fsdp_world(),))
    param, reduce = DTYPES[cfg.param_dtype], DTYPES[cfg.reduce_dtype]
    inner = MixedPrecisionPolicy(param_dtype=param, reduce_dtype=reduce)
    for block in [*transformer.transformer_blocks, *transformer.single_transformer_blocks,
                  transformer.context_embedder]:
        fully_shard(block, mesh=mesh, mp_policy=inner, reshard_after_forward=cfg.reshard_after_forward)
    # fp32 velocity out: the Gaussian log-prob of the SDE step is computed in fp32 (Flow-GRPO eq. 14).
    root = MixedPrecisionPolicy(param_dtype=param, reduce_dtype=reduce, output_dtype=torch.float32)
    fully_shard(dit, mesh=mesh, mp_policy=root, reshard_after_forward=False)  # the root is first in backward
    return True


def _is_dim0_shard(t: Tensor) -> bool:
    return isinstance(t, DTensor) and t.device_mesh.ndim == 1 and tuple(t.placements) == (Shard(0),)


def gather_full(tensors: Mapping[str, Tensor]) -> Dict[str, Tensor]:
    """Full copies of dim-0-sharded DTensors, on every rank, with one all-gather per dtype; others pass through.

    FSDP2 shards like ``torch.chunk``: rank r holds rows ``[r * c, min((r + 1) * c, n))`` with ``c = ceil(n / P)``,
    so each shard is zero-padded to ``c`` rows, all are flattened into one buffer, gathered, and cut back out.
    Must be called on every rank with the same keys.
    """
    out: Dict[str, Tensor] = {k: v.detach() for k, v in tensors.items() if not isinstance(v, DTensor)}
    for k, v in tensors.items():  # unusual layouts: one collective each (FSDP2 never makes them here)
        if isinstance(v, DTensor) and not _is_dim0_shard(v):
            out[k] = v.detach().full_tensor()
    sharded = sorted(k for k, v in tensors.items() if _is_dim0_shard(v))
    for dtype in sorted({tensors[k].dtype for k in sharded}, key=str):
        keys = [k for k in sharded if tensors[k].dtype == dtype]
        out.update(_gather_same_dtype({k: tensors[k] for k in keys}))
    return {k: out[k] for k in tensors}


def _gather_same_dtype(tensors: Mapping[str, DTensor]) -> Dict[str, Tensor]:
    first = next(iter(tensors.values()))
    group, world = first.device_mesh.get_group(), first.device_mesh.size()
    pieces, layout = [], []
    for k, v in tensors.items():
        n, rest = v.shape[0], tuple(v.shape[1:])
        rows = math.ceil(n / world)
        local = v.detach().to_local()  # [rows or fewer, *rest]
        pad = local.new_zeros((rows - local.shape[0], *rest))
        pieces.append(torch.cat([local, pad]).reshape(-1))
        layout.append((k, n, rows, rest))
    flat = torch.cat(pieces)  # [sum of padded numels]
    gathered = torch.empty(world * flat.numel(), dtype=flat.dtype, device=flat.device)
    dist.all_gather_single(gathered, flat, group=group)
    gathered = gathered.view(world, -1)  # [P, sum of padded numels]
    out, offset = {}, 0
    for k, n, rows, rest in layout:
        size = rows * math.prod(rest)
        chunks = [gathered[r, offset:offset + size].view(rows, *rest)[:max(0, min(rows, n - r * rows))]
                  for r in range(world)]
        out[k] = torch.cat(chunks).clone()  # [n, *rest]
        offset += size
    return out


def shard_like(full: Tensor, like: DTensor) -> DTensor:
    """``full`` as a DTensor laid out like ``like``; every rank holds ``full``, so there is no communication."""
    return distribute_tensor(full.to(like.device, like.dtype), like.device_mesh, like.placements,
                             src_data_rank=None)


def lora_parameters(dit: nn.Module) -> Dict[str, nn.Parameter]:
    """The LoRA parameters keyed by their `viva.models.lora.lora_state_dict` names (peft names, no adapter name)."""
    from viva.models.lora import ADAPTER_NAME, lora_state_dict

    names = set(lora_state_dict(dit))
    params = {n.replace(f".{ADAPTER_NAME}.", "."): p for n, p in dit.transformer.named_parameters()}
    missing = sorted(names - set(params))
    if missing:
        raise RuntimeError(f"fsdp: LoRA state-dict keys without a parameter, e.g. {missing[:3]}")
    return {k: params[k] for k in sorted(names)}


def full_lora(dit: nn.Module) -> Dict[str, Tensor]:
    """The full LoRA tensors (collective: every rank calls it)."""
    return gather_full(lora_parameters(dit))


def load_full_lora(dit: nn.Module, sd: Mapping[str, Tensor]) -> None:
    """Copy full LoRA tensors (every key present) into the sharded parameters; no communication."""
    params = lora_parameters(dit)
    if set(sd) != set(params):
        missing, extra = sorted(set(params) - set(sd))[:3], sorted(set(sd) - set(params))[:3]
        raise ValueError(f"LoRA state dict mismatch: missing {missing}, unexpected {extra}")
    with torch.no_grad():
        for k, p in params.items():
            p.to_local().copy_(shard_like(sd[k], p).to_local())


def full_optimizer_state(optimizer: torch.optim.Optimizer) -> dict:
    """``optimizer.state_dict()`` with every DTensor state gathered to a full tensor (collective)."""
    sd = optimizer.state_dict()
    flat = {f"{i}/{name}": v for i, st in sd["state"].items() for name, v in st.items() if isinstance(v, DTensor)}
    full = gather_full(flat)
    state = {i: {name: full.get(f"{i}/{name}", v) for name, v in st.items()} for i, st in sd["state"].items()}
    return {"state": state, "param_groups": sd["param_groups"]}


def load_full_optimizer_state(optimizer: torch.optim.Optimizer, params: List[nn.Parameter], sd: dict) -> None:
    """Load a `full_optimizer_state` (or unsharded) state dict: full state tensors are cut to this rank's shards."""
    state = {}
    for i, st in sd["state"].items():
        p = params[int(i)]
        state[i] = {name: shard_like(v, p) if _is_dim0_shard(p) and torch.is_tensor(v) and v.ndim and
                    tuple(v.shape) == tuple(p.shape) else v for name, v in st.items()}
    optimizer.load_state_dict({"state": state, "param_groups": sd["param_groups"]})


def clip_grad_norm(params: Iterable[nn.Parameter], max_norm: float) -> float:
    """``clip_grad_norm_`` for DTensor gradients: the norm over all shards (one all-reduce), then the clip."""
    params = list(params)
    grads = [p.grad for p in params if p.grad is not None]
    total = torch.nn.utils.get_total_norm(grads, norm_type=2.0)
    if isinstance(total, DTensor):  # a partial norm per rank: reduce it to the global one
        total = total.full_tensor()
    torch.nn.utils.clip_grads_with_norm_(params, max_norm, total)
    return float(total)
