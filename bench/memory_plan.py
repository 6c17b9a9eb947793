"""Per-GPU memory of the Edit-GRPO learner on the 13B HunyuanVideo DiT, computed from the config (not guessed).

Run: .venv/bin/python bench/memory_plan.py [--rank 64 --fsdp 1 8 --sp 1 2 4 8 --text-tokens 256 --budget-gib 72]

Parameters are counted by instantiating the modules on the ``meta`` device (no weights, no memory): the EditDiT of
``model.preset=hunyuan-13b`` (hunyuanvideo-community/HunyuanVideo: 20 dual + 40 single blocks, 24 heads x 128, patch
2x2, temporal 1, patch embed widened to 2 x 16 channels) with the LoRA of ``LoRAConfig`` (peft's own modules), the
HunyuanVideo VAE (diffusers' default config: 8x spatial, 4x temporal, 16 channels) and the LLaVA-Llama-3-8B VLM
(xtuner/llava-llama-3-8b-v1_1-transformers shapes: Llama-3-8B + CLIP ViT-L/14-336; the learner's editor holds it).

Per GPU, with F = FSDP degree and S = Ulysses sequence-parallel degree (inputs; see docs/scale.md):
  weights      frozen DiT, bf16: 2 B x P_dit / F, plus (F > 1) two unsharded blocks in flight (the one computing and
               the one prefetched): 2 x 2 B x P_largest_block
  LoRA         trainable, fp32: 4 B x P_lora / F for the weights, the same for the gradients, 8 B for AdamW (m, v)
  activations  bf16, per sample of T = video + text tokens, T / S tokens on each GPU (D hidden size, r LoRA rank):
                 saved, no checkpointing:  (T/S) x [n_dual (13 D + 4 r) + n_single (12 D + 3 r) + D] elements
                 saved, checkpointing:     (T/S) x (n_dual + n_single + 1) D   (each block keeps only its input)
                 + backward working set:   (T/S) x (13 D + 4 r) x (1, or 2 with checkpointing: the recomputed block)
               The saved-set coefficients come from ``torch.autograd.graph.saved_tensors_hooks`` on diffusers'
               blocks with the base frozen and LoRA on the attention projections: a dual block keeps ~13 D per token
               (its input for the LayerNorm, modulated norms, q/k/v, RMS-normed q/k, attention output and
               log-sum-exp, the GELU input/output of two MLPs...), a single block ~12 D, each LoRA'd projection r
               more; +D is the final norm / projection. `formula_check` re-measures a small model (printed below).
               The backward working set (activation gradients of one block) is an estimate, not a measurement.
               Ulysses keeps T/S tokens per GPU (all T tokens for H/S heads inside attention: the same count).
  frozen extras  VLM + VAE, bf16, replicated on every learner GPU (``--vlm sharded`` divides by F, ``none`` drops)
Not counted: the CUDA context, NCCL buffers and allocator fragmentation (hence a budget below 80 GiB), the transient
all-gather of sequence-parallel attention, attention kernels' workspace, and rollouts (no gradients: weights plus
one block's activations, far less than the learner).
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import torch

from viva.config import LoRAConfig
from viva.models.presets import dit_config

GIB = 2**30
LEARNER_COLUMNS = ("weights", "lora", "activations", "extras", "total")
LLAVA_LLAMA3_8B = dict(
    vision=dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                image_size=336, patch_size=14, projection_dim=768),
    text=dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
              num_key_value_heads=8, vocab_size=128320, tie_word_embeddings=False),
)


@dataclass(frozen=True)
class ModelCounts:
    """Parameter counts of an EditDiT + LoRA, from the real modules, and the shape numbers the formulas need."""

    dit: int  # every DiT parameter except the LoRA
    lora: int
    largest_block: int  # parameters of the biggest dual/single block (FSDP unshards one at a time)
    n_dual: int
    n_single: int
    hidden: int
    heads: int
    rank: int


@dataclass(frozen=True)
class VideoShape:
    """A video size; its DiT token count follows the VAE's compression and the patch size."""

    name: str
    height: int
    width: int
    frames: int

    def tokens(self, patch: int = 2, patch_t: int = 1, spatial: int = 8, temporal: int = 4) -> int:
        """Video tokens: causal VAE frames (F - 1) / 4 + 1, then (H / 8 / p) x (W / 8 / p) per latent frame / p_t."""
        latent_frames = (self.frames - 1) // temporal + 1
        return (latent_frames // patch_t) * (self.height // spatial // patch) * (self.width // spatial // patch)


@dataclass(frozen=True)
class Layout:
    """How one learner replica is laid out: FSDP degree, sequence-parallel degree, activation checkpointing."""

    fsdp: int
    sp: int
    checkpointing: bool
    micro_batch: int = 1


SHAPES = (VideoShape("480p", 480, 848, 33), VideoShape("480p", 480, 848, 61),
          VideoShape("720p", 720, 1280, 33), VideoShape("720p", 720, 1280, 61))


def count_model(config: dict, lora: LoRAConfig) -> ModelCounts:
    """Instantiate the EditDiT + LoRA on the meta device and count parameters by role."""
    from viva.models.dit import EditDiT
    from viva.models.lora import add_lora

    with torch.device("meta"):
        dit = EditDiT.from_config(config)
        add_lora(dit, lora)
    n_lora = sum(p.numel() for n, p in dit.named_parameters() if "lora_" in n)
    blocks = [*dit.transformer.transformer_blocks, *dit.transformer.single_transformer_blocks]
    largest = max(sum(p.numel() for n, p in b.named_parameters() if "lora_" not in n) for b in blocks)
    return ModelCounts(dit=sum(p.numel() for p in dit.parameters()) - n_lora, lora=n_lora, largest_block=largest,
                       n_dual=config["num_layers"], n_single=config["num_single_layers"],
                       hidden=config["num_attention_heads"] * config["attention_head_dim"],
                       heads=config["num_attention_heads"], rank=lora.rank)


def count_frozen_extras() -> dict[str, int]:
    """Parameters of the learner's frozen VLM (LLaVA-Llama-3-8B shapes) and VAE (HunyuanVideo), counted on meta."""
    from diffusers import AutoencoderKLHunyuanVideo
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    cfg = LlavaConfig(vision_config=CLIPVisionConfig(**LLAVA_LLAMA3_8B["vision"]),
                      text_config=LlamaConfig(**LLAVA_LLAMA3_8B["text"]), image_token_index=128257)
    with torch.device("meta"):
        vlm = LlavaForConditionalGeneration(cfg)
        vae = AutoencoderKLHunyuanVideo()
    return {"vlm": sum(p.numel() for p in vlm.parameters()), "vae": sum(p.numel() for p in vae.parameters())}


def _block_elements(m: ModelCounts) -> int:
    """Per-token elements one block saves for backward (the larger of a dual and a single block)."""
    d, r = m.hidden, m.rank
    return max(13 * d + 4 * r if m.n_dual else 0, 12 * d + 3 * r if m.n_single else 0)


def saved_elements(m: ModelCounts, tokens: int, checkpointing: bool) -> int:
    """Elements the forward keeps for backward, one sample of ``tokens`` tokens (formula in the module docstring)."""
    d, r = m.hidden, m.rank
    if checkpointing:
        return tokens * (m.n_dual + m.n_single + 1) * d  # every block's input + the final layer's
    return tokens * (m.n_dual * (13 * d + 4 * r) + m.n_single * (12 * d + 3 * r) + d)


def backward_working_elements(m: ModelCounts, tokens: int, checkpointing: bool) -> int:
    """Transient elements in backward: one block's activation gradients (+ its recomputed activations with
    checkpointing); an estimate of the same size as one block's saved set, not a measurement."""
    return tokens * _block_elements(m) * (2 if checkpointing else 1)


def plan(m: ModelCounts, tokens: int, layout: Layout, extras: float) -> dict[str, float]:
    """Per-GPU bytes of one learner GPU by component (``extras``: frozen VLM + VAE bytes placed on this GPU)."""
    if m.heads % layout.sp:
        raise ValueError(f"sequence parallel degree {layout.sp} must divide the {m.heads} attention heads (Ulysses)")
    f = layout.fsdp
    weights = 2 * m.dit / f + (2 * 2 * m.largest_block if f > 1 else 0)
    lora = (4 + 4 + 8) * m.lora / f  # fp32 weights + gradients + AdamW m, v
    local = math.ceil(tokens / layout.sp)
    acts = 2 * layout.micro_batch * (saved_elements(m, local, layout.checkpointing)
                                     + backward_working_elements(m, local, layout.checkpointing))
    return {"weights": weights, "lora": lora, "activations": acts, "extras": extras,
            "total": weights + lora + acts + extras}


def rollout_plan(m: ModelCounts, tokens: int, batch: int, extras: float, tensorrt: bool) -> dict[str, float]:
    """Per-GPU bytes of one rollout actor (no gradients): bf16 DiT + LoRA, a TensorRT engine's own weight copy,
    and the live intermediates of one block for ``batch`` sequences (bounded by the block's saved set)."""
    weights = 2 * (m.dit + m.lora) * (2 if tensorrt else 1)
    acts = 2 * batch * tokens * _block_elements(m)
    return {"weights": weights, "activations": acts, "extras": extras, "total": weights + acts + extras}


def measure_saved_elements(config: dict, rank: int, frames: int, checkpointing: bool) -> tuple[int, int]:
    """(elements saved for backward, tokens) of one real forward of a small EditDiT + LoRA on CPU (fp32)."""
    from viva.models.dit import EditDiT
    from viva.models.lora import add_lora

    torch.manual_seed(0)
    dit = EditDiT.from_config(config)
    add_lora(dit, LoRAConfig(rank=rank, alpha=float(rank)))
    if checkpointing:
        dit.transformer.enable_gradient_checkpointing()
    c, p = config["out_channels"], config["patch_size"]
    x = torch.randn(1, c, frames, 16, 16)  # [B, C, F, h, w]
    inputs = (x, torch.randn_like(x), torch.tensor([0.5]), torch.randn(1, 32, config["text_embed_dim"]),
              torch.ones(1, 32, dtype=torch.long))
    skip = {t.untyped_storage().data_ptr() for t in (*dit.parameters(), *inputs)}
    saved: dict[int, int] = {}

    def pack(t: torch.Tensor) -> torch.Tensor:
        ptr = t.untyped_storage().data_ptr()
        if ptr not in skip:
            saved[ptr] = t.untyped_storage().nbytes() // t.element_size()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        dit(*inputs)
    return sum(saved.values()), frames * (16 // p) ** 2 + 32


def small_config(heads: int = 2, dual: int = 2, single: int = 2) -> dict:
    """A HunyuanVideo-shaped config small enough for CPU: head dim 128 like the real model."""
    return dict(dit_config("tiny"), num_attention_heads=heads, attention_head_dim=128, num_layers=dual,
                num_single_layers=single, num_refiner_layers=2, patch_size=2, rope_axes_dim=(16, 56, 56),
                in_channels=8, out_channels=4, pooled_projection_dim=64)


def formula_check(rank: int = 8) -> list[tuple[bool, int, int]]:
    """(checkpointing, measured, `saved_elements`) for one forward of a small model on CPU."""
    cfg = small_config()
    m = count_model(cfg, LoRAConfig(rank=rank, alpha=float(rank)))
    rows = []
    for ckpt in (False, True):
        measured, tokens = measure_saved_elements(cfg, rank, frames=4, checkpointing=ckpt)
        rows.append((ckpt, measured, saved_elements(m, tokens, ckpt)))
    return rows


def _learner_table(m: ModelCounts, extras: int, args: argparse.Namespace) -> list[str]:
    lines = ["| video | tokens | FSDP | SP | ckpt | weights | LoRA+grad+AdamW | activations | VLM+VAE | total | fits |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for shape in SHAPES:
        tokens = shape.tokens() + args.text_tokens
        for f in args.fsdp:
            place = extras / f if args.vlm == "sharded" else (0 if args.vlm == "none" else extras)
            for sp in args.sp:
                for ckpt in (False, True):
                    p = plan(m, tokens, Layout(f, sp, ckpt, args.micro_batch), place)
                    cells = " | ".join(f"{p[k] / GIB:.1f}" for k in LEARNER_COLUMNS)
                    fits = "yes" if p["total"] <= args.budget_gib * GIB else "no"
                    lines.append(f"| {shape.name} {shape.frames}f | {tokens} | {f} | {sp} | "
                                 f"{'on' if ckpt else 'off'} | {cells} | {fits} |")
    return lines


def _rollout_table(m: ModelCounts, extras: int, args: argparse.Namespace) -> list[str]:
    lines = ["| video | tokens | batch | backend | DiT weights | activations | VLM+VAE | total | fits |",
             "|---|---|---|---|---|---|---|---|---|"]
    for shape in SHAPES:
        tokens = shape.tokens() + args.text_tokens
        for trt in (False, True):
            p = rollout_plan(m, tokens, args.rollout_batch, extras, trt)
            cells = " | ".join(f"{p[k] / GIB:.1f}" for k in ("weights", "activations", "extras", "total"))
            lines.append(f"| {shape.name} {shape.frames}f | {tokens} | {args.rollout_batch} | "
                         f"{'tensorrt' if trt else 'eager/compile'} | {cells} | "
                         f"{'yes' if p['total'] <= args.budget_gib * GIB else 'no'} |")
    return lines


def main(argv: list[str] | None = None) -> None:
    """Print the parameter counts, the formula check and the per-GPU memory table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rank", type=int, default=64)
    ap.add_argument("--fsdp", type=int, nargs="+", default=[1, 8])
    ap.add_argument("--sp", type=int, nargs="+", default=[1, 2, 4, 8])
    ap.add_argument("--text-tokens", type=int, default=256, help="VLM tokens per sample (HunyuanVideo's default 256)")
    ap.add_argument("--micro-batch", type=int, default=1, help="samples per learner forward (CFG in the loss: x2)")
    ap.add_argument("--vlm", choices=["replicated", "sharded", "none"], default="replicated")
    ap.add_argument("--rollout-batch", type=int, default=2, help="sequences per rollout DiT call (x2 with CFG)")
    ap.add_argument("--budget-gib", type=float, default=72.0,
                    help="usable memory of an 80 GB card after CUDA context, NCCL buffers and fragmentation")
    ap.add_argument("--no-check", action="store_true", help="skip re-measuring the activation formula on CPU")
    args = ap.parse_args(argv)
    m = count_model(dit_config("hunyuan-13b"), LoRAConfig(rank=args.rank, alpha=2.0 * args.rank))
    extras = count_frozen_extras()
    frozen = 2 * (extras["vlm"] + extras["vae"])
    print(f"EditDiT 13B: {m.dit / 1e9:.3f} B frozen parameters, LoRA r={m.rank}: {m.lora / 1e6:.1f} M, "
          f"largest block {m.largest_block / 1e6:.0f} M; VLM {extras['vlm'] / 1e9:.3f} B, "
          f"VAE {extras['vae'] / 1e9:.3f} B")
    if not args.no_check:
        for ckpt, measured, formula in formula_check():
            print(f"saved-activation formula vs saved_tensors_hooks (small model, ckpt {'on' if ckpt else 'off'}): "
                  f"measured {measured} elements, formula {formula} ({100 * (formula - measured) / measured:+.1f} %)")
    print(f"\nLearner, per GPU, GiB; fits = total <= {args.budget_gib:g} GiB; micro-batch {args.micro_batch}, "
          f"{args.text_tokens} text tokens, VLM {args.vlm}")
    print("\n".join(_learner_table(m, frozen, args)))
    print(f"\nRollout actor, per GPU, GiB (no gradients; TensorRT engines hold a second copy of the weights)")
    print("\n".join(_rollout_table(m, frozen, args)))


if __name__ == "__main__":
    main()
