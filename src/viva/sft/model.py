"""The editor an SFT run trains — ``build_editor`` (+ LoRA), or a from-scratch DiT patched by ``sft.dit_overrides`` —
and which of its parameters train (``select_trainable``, by ``sft.trainable``).

Its own module so the trainer and the evaluation (which rebuilds the same architecture for a train-state
checkpoint) both import it without importing each other.
"""

from __future__ import annotations

from typing import Dict

from torch import nn

from viva.config import SFTConfig

# Parameter-name prefixes (inside EditDiT) trained by sft.trainable=projector_refiner: the eq. 2 projector
# (x_embedder over noisy ⊕ source), the token refiner (context_embedder), the pooled-text projection and the
# timestep/text embedding that feeds every block's modulation.
PROJECTOR_REFINER = ("transformer.x_embedder.", "transformer.context_embedder.", "pooled_proj.", "text_pool.",
                     "transformer.time_text_embed.")


def build_sft_editor(cfg: SFTConfig) -> nn.Module:
    """The editor SFT starts from: ``build_editor`` (+ LoRA), or a from-scratch DiT patched by ``sft.dit_overrides``."""
    from viva.models.dit import EditDiT
    from viva.models.lora import add_lora
    from viva.models.presets import build_editor, dit_config, torch_dtype

    m, s = cfg.model, cfg.sft
    lora = cfg.lora if s.trainable == "lora" else None
    if not s.dit_overrides:
        return build_editor(m, lora)
    if m.base_checkpoint or m.dit_pretrained:
        raise ValueError("sft.dit_overrides applies to a DiT trained from scratch; unset model.base_checkpoint "
                         "and model.dit_pretrained, or drop the overrides")
    editor = build_editor(m)
    base = dit_config(m.preset, editor.codec.latent_channels, editor.vlm.hidden_size)
    unknown = sorted(set(s.dit_overrides) - set(base))
    if unknown:
        raise ValueError(f"sft.dit_overrides: unknown transformer config keys {unknown}; known: {sorted(base)}")
    dit = EditDiT.from_config({**base, **s.dit_overrides}, m.embedded_guidance, m.prediction, m.text_pooling,
                             m.pixel_head)
    editor.dit = dit.to(m.device, torch_dtype(m.dtype))
    if lora is not None:
        add_lora(editor.dit, lora)
    return editor


def select_trainable(dit: nn.Module, mode: str) -> Dict[str, nn.Parameter]:
    """Set requires_grad on the DiT by ``sft.trainable`` and return the trainable parameters by name."""
    if mode not in ("full", "projector_refiner", "lora"):
        raise ValueError(f"sft.trainable must be full | projector_refiner | lora, got {mode!r}")
    chosen: Dict[str, nn.Parameter] = {}
    for name, p in dit.named_parameters():
        if mode == "full":
            keep = True
        elif mode == "projector_refiner":
            keep = name.startswith(PROJECTOR_REFINER)
        else:  # LoRA factors plus the projector / refiner, which a LoRA cannot express
            keep = "lora_" in name or name.startswith(PROJECTOR_REFINER)
        p.requires_grad_(keep)
        if keep:
            chosen[name] = p
    if not chosen:
        raise ValueError(f"sft.trainable={mode!r} selects no parameters of the DiT")
    return chosen
