"""Ulysses sequence parallelism for the HunyuanVideo DiT: each rank of a process group holds 1/P of the video tokens.

DeepSpeed-Ulysses (Jacobs et al. 2023, "System Optimizations for Enabling Training of Extreme Long Sequence
Transformer Models") as xDiT's USP applies it to joint video-text attention. Outside attention every operation is
token-wise, so each rank runs the blocks on its contiguous slice of the video tokens. Inside each joint attention:

1. the video q/k/v ``[B, N/P, H, d]`` go through one all-to-all that scatters heads and gathers tokens,
   ``[B, N, H/P, d]``: every rank attends over ALL video tokens for H/P of the heads;
2. the text tokens are replicated (every rank holds the full text, as in xDiT's joint attention): each rank keeps
   its head slice of the text q/k/v, ``[B, L, H/P, d]``, so the text needs no communication on the way in;
3. attention over ``[video N ; text L]`` keys with the text padding mask; the video output goes back through the
   inverse all-to-all ``[B, N/P, H, d]``, the text output is all-gathered over heads ``[B, L, H, d]``.

The transformer forward itself is unchanged: hooks split the patch-embedded tokens and the RoPE table after
``x_embedder`` / ``rope`` and gather the tokens before ``norm_out``. The attention mask the transformer builds has
the local token count in front; only its last L (text) columns are read here.

Gradients: each collective's backward is its exact adjoint (all-to-all <-> inverse all-to-all, all-gather <->
reduce-scatter). When every rank of the group computes the same loss from the gathered output, the per-rank
parameter gradients AVERAGED over the group equal the single-process gradient — the average that DDP's all-reduce
and FSDP's reduce-scatter already take, so sequence-parallel ranks can sit inside the data-parallel group.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Tuple

import torch
import torch.distributed as dist
from torch import Tensor, nn


# ----------------------------------------------------------------------------------------------------------------
# Differentiable collectives
# ----------------------------------------------------------------------------------------------------------------


def _all_to_all(x: Tensor, group: Any, scatter_dim: int, gather_dim: int) -> Tensor:
    """Chunk ``x`` P ways on ``scatter_dim``, send chunk j to rank j, concatenate what arrives on ``gather_dim``."""
    p = dist.get_world_size(group)
    send = torch.stack(x.chunk(p, dim=scatter_dim)).contiguous()  # [P, ...chunk]
    recv = torch.empty_like(send)
    dist.all_to_all_single(recv, send, group=group)
    return torch.cat(recv.unbind(0), dim=gather_dim)


def _all_gather(x: Tensor, group: Any, dim: int) -> Tensor:
    """Concatenate every rank's ``x`` along ``dim`` in rank order."""
    p = dist.get_world_size(group)
    out = torch.empty(p * x.numel(), dtype=x.dtype, device=x.device)  # flat: gloo wants [P * numel]
    dist.all_gather_single(out, x.contiguous().reshape(-1), group=group)
    return torch.cat(out.view(p, *x.shape).unbind(0), dim=dim)


def _reduce_scatter(x: Tensor, group: Any, dim: int) -> Tensor:
    """Sum ``x`` over the ranks and keep this rank's chunk along ``dim`` (the adjoint of `_all_gather`)."""
    p = dist.get_world_size(group)
    send = torch.stack(x.chunk(p, dim=dim)).contiguous()  # [P, ...chunk]
    out = torch.empty(send[0].numel(), dtype=x.dtype, device=x.device)
    dist.reduce_scatter_single(out, send.reshape(-1), group=group)  # flat, as for `_all_gather`
    return out.view(send.shape[1:])


class _AllToAll(torch.autograd.Function):
    """All-to-all whose backward is the inverse all-to-all."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: Any, scatter_dim: int, gather_dim: int) -> Tensor:
        ctx.group, ctx.dims = group, (scatter_dim, gather_dim)
        return _all_to_all(x, group, scatter_dim, gather_dim)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Optional[Tensor], ...]:
        scatter_dim, gather_dim = ctx.dims
        return _all_to_all(grad, ctx.group, gather_dim, scatter_dim), None, None, None


class _AllGather(torch.autograd.Function):
    """All-gather along a dim whose backward is the reduce-scatter (sum) along it."""

    @staticmethod
    def forward(ctx: Any, x: Tensor, group: Any, dim: int) -> Tensor:
        ctx.group, ctx.dim = group, dim
        return _all_gather(x, group, dim)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> Tuple[Optional[Tensor], ...]:
        return _reduce_scatter(grad, ctx.group, ctx.dim), None, None


def all_to_all(x: Tensor, group: Any, scatter_dim: int, gather_dim: int) -> Tensor:
    """Differentiable all-to-all: ``[.., S/P on gather_dim, .., H on scatter_dim]`` -> ``[.., S, .., H/P]``."""
    return _AllToAll.apply(x, group, scatter_dim, gather_dim)


def all_gather(x: Tensor, group: Any, dim: int) -> Tensor:
    """Differentiable all-gather along ``dim`` (backward: reduce-scatter)."""
    return _AllGather.apply(x, group, dim)


# ----------------------------------------------------------------------------------------------------------------
# Checks with errors that name the field
# ----------------------------------------------------------------------------------------------------------------


def check_heads(num_heads: int, degree: int, key: str = "learner.sequence_parallel") -> None:
    """Ulysses scatters whole heads: ``num_attention_heads`` must be a multiple of the degree."""
    if degree < 1 or num_heads % degree:
        raise ValueError(
            f"sequence parallel: the DiT's num_attention_heads={num_heads} is not divisible by the sequence-parallel "
            f"degree {degree} ({key}); Ulysses gives each rank num_attention_heads / degree heads"
        )


def check_tokens(grid: Tuple[int, int, int], degree: int, key: str = "learner.sequence_parallel") -> None:
    """The video token count (frames x height x width after patchify) must be a multiple of the degree."""
    n = grid[0] * grid[1] * grid[2]
    if n % degree:
        raise ValueError(
            f"sequence parallel: {n} video tokens (latent frames {grid[0]} x h/patch {grid[1]} x w/patch "
            f"{grid[2]}) are not divisible by the sequence-parallel degree {degree} ({key}); "
            f"choose data.num_frames / height / width (or the reference frame) so that they are"
        )


# ----------------------------------------------------------------------------------------------------------------
# The attention processor
# ----------------------------------------------------------------------------------------------------------------


def _qkv(attn: nn.Module, video: Tensor, text: Tensor, rotary: Any) -> Tuple[Tensor, ...]:
    """Video and text q, k, v ``[B, S, H, d]`` exactly as diffusers' HunyuanVideoAttnProcessor2_0 computes them."""
    from diffusers.models.embeddings import apply_rotary_emb

    single = attn.add_q_proj is None  # single-stream block: one projection over [video ; text]
    x = torch.cat([video, text], dim=1) if single else video
    q, k, v = (proj(x).unflatten(2, (attn.heads, -1)) for proj in (attn.to_q, attn.to_k, attn.to_v))  # [B, S, H, d]
    if attn.norm_q is not None:
        q = attn.norm_q(q)
    if attn.norm_k is not None:
        k = attn.norm_k(k)
    if single:
        n = video.shape[1]
        (q, tq), (k, tk), (v, tv) = (t.split([n, t.shape[1] - n], dim=1) for t in (q, k, v))
    else:
        tq, tk, tv = (proj(text).unflatten(2, (attn.heads, -1)) for proj in
                      (attn.add_q_proj, attn.add_k_proj, attn.add_v_proj))  # [B, L, H, d]
        if attn.norm_added_q is not None:
            tq = attn.norm_added_q(tq)
        if attn.norm_added_k is not None:
            tk = attn.norm_added_k(tk)
    if rotary is not None:  # RoPE on the video tokens only; ``rotary`` is this rank's slice of the table
        q = apply_rotary_emb(q, rotary, sequence_dim=1)
        k = apply_rotary_emb(k, rotary, sequence_dim=1)
    return q, k, v, tq, tk, tv


def _joint_mask(mask: Optional[Tensor], n_video: int, n_text: int) -> Optional[Tensor]:
    """Key mask ``[B, 1, 1, N + L]`` over all video tokens + the text tokens the transformer marked valid."""
    if mask is None:
        return None
    text = mask[..., -n_text:]  # [B, 1, 1, L]: the transformer's mask ends with the text columns
    video = torch.ones((*text.shape[:-1], n_video), dtype=text.dtype, device=text.device)  # [B, 1, 1, N]
    return torch.cat([video, text], dim=-1)


class UlyssesAttnProcessor:
    """HunyuanVideo joint attention with the video tokens split over ``group`` (all-to-all over heads)."""

    def __init__(self, group: Any) -> None:
        self.group = group
        self.degree = dist.get_world_size(group)
        self.rank = dist.get_rank(group)

    def __call__(self, attn: nn.Module, hidden_states: Tensor, encoder_hidden_states: Optional[Tensor] = None,
                 attention_mask: Optional[Tensor] = None, image_rotary_emb: Any = None) -> Tuple[Tensor, Tensor]:
        """Same contract as diffusers' HunyuanVideoAttnProcessor2_0; ``hidden_states`` are this rank's video tokens."""
        from diffusers.models.attention_dispatch import dispatch_attention_fn

        if encoder_hidden_states is None:
            raise ValueError("UlyssesAttnProcessor: HunyuanVideo joint attention needs the text tokens")
        n_text = encoder_hidden_states.shape[1]
        q, k, v, tq, tk, tv = _qkv(attn, hidden_states, encoder_hidden_states, image_rotary_emb)
        video = [all_to_all(t, self.group, scatter_dim=2, gather_dim=1) for t in (q, k, v)]  # [B, N, H/P, d]
        text = [t.chunk(self.degree, dim=2)[self.rank] for t in (tq, tk, tv)]  # [B, L, H/P, d], replicated text
        query, key, value = (torch.cat([a, b], dim=1) for a, b in zip(video, text))  # [B, N + L, H/P, d]
        n_video = video[0].shape[1]
        out = dispatch_attention_fn(query, key, value, attn_mask=_joint_mask(attention_mask, n_video, n_text),
                                    dropout_p=0.0, is_causal=False)  # [B, N + L, H/P, d]
        out = out.to(query.dtype)
        video_out = all_to_all(out[:, :n_video], self.group, scatter_dim=1, gather_dim=2).flatten(2, 3)  # [B, N/P, D]
        text_out = all_gather(out[:, n_video:], self.group, dim=2).flatten(2, 3)  # [B, L, D]
        if getattr(attn, "to_out", None) is not None:
            video_out = attn.to_out[1](attn.to_out[0](video_out))
        if getattr(attn, "to_add_out", None) is not None:
            text_out = attn.to_add_out(text_out)
        return video_out, text_out


# ----------------------------------------------------------------------------------------------------------------
# Switching a DiT to sequence parallel
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class SequenceParallelHandle:
    """What `enable_sequence_parallel` changed; ``remove()`` restores the single-process model."""

    transformer: nn.Module
    processors: dict
    hooks: List[Any] = field(default_factory=list)

    def remove(self) -> None:
        """Remove the hooks and put back the original attention processors."""
        for h in self.hooks:
            h.remove()
        self.hooks.clear()
        for name, module in self.transformer.named_modules():
            if name in self.processors:
                module.set_processor(self.processors[name])


def _joint_attentions(transformer: nn.Module) -> dict:
    """The joint-attention modules of the dual- and single-stream blocks (not the text-only token refiner)."""
    return {f"{prefix}.{i}.attn": block.attn for prefix in ("transformer_blocks", "single_transformer_blocks")
            for i, block in enumerate(getattr(transformer, prefix))}


def enable_sequence_parallel(dit: nn.Module, group: Any,
                             key: str = "learner.sequence_parallel") -> SequenceParallelHandle:
    """Run ``dit`` (an EditDiT or its HunyuanVideo transformer) sequence-parallel over ``group``; every rank gets
    the full output. All ranks of ``group`` must call the forward with the same inputs; ``key`` is the config key
    that set the degree, named in the errors."""
    transformer = getattr(dit, "transformer", dit)
    cfg = transformer.config
    degree, rank = dist.get_world_size(group), dist.get_rank(group)
    check_heads(int(cfg.num_attention_heads), degree, key)
    if cfg.get("image_condition_type") == "token_replace":
        raise ValueError("sequence parallel: image_condition_type='token_replace' treats the first frame's tokens "
                         "apart and is not supported")
    attns = _joint_attentions(transformer)
    handle = SequenceParallelHandle(transformer, {name: a.processor for name, a in attns.items()})
    for a in attns.values():
        a.set_processor(UlyssesAttnProcessor(group))
    p, pt = int(cfg.patch_size), int(cfg.patch_size_t)

    def split_tokens(module: nn.Module, args: tuple, out: Tensor) -> Tensor:
        f, h, w = args[0].shape[2:]  # the latent [B, C, F, H, W] entering the patch embed
        check_tokens((f // pt, h // p, w // p), degree, key)
        return out.chunk(degree, dim=1)[rank]  # [B, N/P, D]: contiguous token slice, in rank order

    def split_rope(module: nn.Module, args: tuple, out: Tuple[Tensor, Tensor]) -> Tuple[Tensor, ...]:
        return tuple(t.chunk(degree, dim=0)[rank] for t in out)  # (cos, sin) [N/P, d]

    def gather_tokens(module: nn.Module, args: tuple) -> tuple:
        return (all_gather(args[0], group, dim=1), *args[1:])  # [B, N, D] before norm_out / proj_out / unpatchify

    handle.hooks += [transformer.x_embedder.register_forward_hook(split_tokens),
                     transformer.rope.register_forward_hook(split_rope),
                     transformer.norm_out.register_forward_pre_hook(gather_tokens)]
    return handle


def new_sequence_parallel_group(degree: int) -> Optional[Any]:
    """This rank's group of ``degree`` consecutive ranks of the default group (None for degree 1).

    Every rank creates every group, as ``torch.distributed.new_group`` requires."""
    if degree <= 1:
        return None
    world, rank = dist.get_world_size(), dist.get_rank()
    if world % degree:
        raise ValueError(f"sequence parallel: degree {degree} (learner.sequence_parallel) does not divide the "
                         f"{world} ranks (cluster.num_learner_workers)")
    groups = [dist.new_group(list(range(start, start + degree))) for start in range(0, world, degree)]
    return groups[rank // degree]


def gather_objects(items: List[Any], group: Any) -> List[Any]:
    """Every rank's ``items`` concatenated in rank order (pickled; the ranks of one sequence-parallel group must
    all process the same samples)."""
    parts: List[Any] = [None] * dist.get_world_size(group)
    dist.all_gather_object(parts, items, group=group)
    return [x for part in parts for x in part]
