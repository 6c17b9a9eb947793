"""peft LoRA on the EditDiT's attention projections (Edit-GRPO trains only the adapter, VIVA §3.3).

The reference policy of the KL term is the same model with adapters disabled (``reference_policy``). Adapters are
saved in diffusers' LoRA format (``pytorch_lora_weights.safetensors``, keys prefixed ``transformer.``) WITH the
peft config as metadata: without it diffusers reloads alpha as r and the outputs change.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Iterator

import torch
from peft import LoraConfig, get_peft_model_state_dict, set_peft_model_state_dict
from safetensors.torch import load_file, safe_open

from viva.config import LoRAConfig
from viva.models.dit import EditDiT
from viva.training.atomic import atomic_path

LORA_WEIGHTS_NAME = "pytorch_lora_weights.safetensors"
ADAPTER_NAME = "default"


def peft_config(cfg: LoRAConfig) -> LoraConfig:
    """The peft ``LoraConfig`` for a viva ``LoRAConfig`` (init: gaussian | true | false | other peft strings)."""
    init = {"true": True, "false": False}.get(str(cfg.init).lower(), cfg.init)
    return LoraConfig(
        r=cfg.rank,
        lora_alpha=cfg.alpha,
        lora_dropout=cfg.dropout,
        init_lora_weights=init,
        target_modules=cfg.target_modules,
    )


def add_lora(dit: EditDiT, cfg: LoRAConfig) -> EditDiT:
    """Freeze the DiT and add a trainable adapter on the modules matching ``cfg.target_modules``."""
    dit.requires_grad_(False)
    dit.transformer.add_adapter(peft_config(cfg), adapter_name=ADAPTER_NAME)
    hits = [n for n, _ in dit.transformer.named_modules() if n.endswith(".lora_A")]
    if not hits:
        raise ValueError(f"lora.target_modules matched no module: {cfg.target_modules!r}")
    for name, p in dit.transformer.named_parameters():
        p.requires_grad_("lora_" in name)
    return dit


def has_lora(dit: EditDiT) -> bool:
    """Whether an adapter is attached."""
    return bool(getattr(dit.transformer, "_hf_peft_config_loaded", False))


@contextlib.contextmanager
def adapters_disabled(dit: EditDiT) -> Iterator[EditDiT]:
    """Run the base model (adapters off), re-enabling them on exit — the KL reference policy (eq. 13)."""
    if not has_lora(dit):
        yield dit
        return
    dit.transformer.disable_adapters()
    try:
        yield dit
    finally:
        dit.transformer.enable_adapters()


reference_policy = adapters_disabled


def lora_state_dict(dit: EditDiT) -> dict[str, torch.Tensor]:
    """LoRA-only weights (peft names without the adapter name), in sorted key order, for weight sync."""
    sd = get_peft_model_state_dict(dit.transformer, adapter_name=ADAPTER_NAME)
    return {k: sd[k] for k in sorted(sd)}


def load_lora_state_dict(dit: EditDiT, sd: dict[str, torch.Tensor]) -> None:
    """Load weights from ``lora_state_dict``; every adapter key must be present (no silent partial load)."""
    expected = set(lora_state_dict(dit))
    if set(sd) != expected:
        missing, extra = sorted(expected - set(sd))[:3], sorted(set(sd) - expected)[:3]
        raise ValueError(f"LoRA state dict mismatch: missing {missing}, unexpected {extra}")
    result = set_peft_model_state_dict(dit.transformer, sd, adapter_name=ADAPTER_NAME)
    bad = [k for k in getattr(result, "unexpected_keys", []) if "lora_" in k]
    if bad:
        raise ValueError(f"LoRA state dict: unexpected keys {bad[:3]}")


def _adapter_config(dit: EditDiT) -> dict:
    cfg = dit.transformer.peft_config[ADAPTER_NAME].to_dict()
    return json.loads(json.dumps(cfg, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))


def save_lora(dit: EditDiT, out_dir: str | Path, lora_cfg: LoRAConfig | None = None,
              tensors: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``pytorch_lora_weights.safetensors`` in diffusers' format, with the adapter config as metadata.

    ``tensors`` replaces the DiT's own LoRA weights (an FSDP learner passes its gathered full copy)."""
    from diffusers.loaders import HunyuanVideoLoraLoaderMixin

    if not has_lora(dit):
        raise ValueError("save_lora: the DiT has no LoRA adapter (call add_lora first)")
    metadata = peft_config(lora_cfg).to_dict() if lora_cfg is not None else _adapter_config(dit)
    metadata = json.loads(json.dumps(metadata, default=lambda o: sorted(o) if isinstance(o, set) else str(o)))
    with atomic_path(Path(out_dir) / LORA_WEIGHTS_NAME) as tmp:
        HunyuanVideoLoraLoaderMixin.save_lora_weights(
            tmp.parent,
            transformer_lora_layers={k: v.detach().contiguous() for k, v in (tensors or lora_state_dict(dit)).items()},
            transformer_lora_adapter_metadata=metadata,
            safe_serialization=True,
            weight_name=tmp.name,
        )
    return Path(out_dir) / LORA_WEIGHTS_NAME


def read_lora(path: str | Path) -> tuple[dict[str, torch.Tensor], dict | None]:
    """Read a diffusers-format LoRA file (or its directory): peft-named weights and the adapter metadata."""
    path = Path(path)
    file = path / LORA_WEIGHTS_NAME if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"LoRA weights not found: {file}")
    with safe_open(str(file), framework="pt") as f:
        raw_meta = (f.metadata() or {}).get("lora_adapter_metadata")
    meta = json.loads(raw_meta) if raw_meta else None
    if meta is not None:  # diffusers prefixes the metadata keys with the component name too
        meta = {k.removeprefix("transformer."): v for k, v in meta.items()}
    sd = load_file(str(file))
    bad = [k for k in sd if not k.startswith("transformer.")]
    if bad:
        raise ValueError(f"{file}: keys without the 'transformer.' prefix, e.g. {bad[0]!r}")
    return {k[len("transformer."):]: v for k, v in sd.items()}, meta


def load_lora(dit: EditDiT, path: str | Path) -> EditDiT:
    """Load a diffusers-format LoRA into ``dit``; adds the adapter from the file's metadata if absent."""
    sd, meta = read_lora(path)
    if not has_lora(dit):
        if meta is None:
            raise ValueError(f"{path}: no lora_adapter_metadata; cannot rebuild the adapter config (alpha)")
        dit.requires_grad_(False)
        dit.transformer.add_adapter(LoraConfig(**_peft_kwargs(meta)), adapter_name=ADAPTER_NAME)
    load_lora_state_dict(dit, sd)
    return dit


def _peft_kwargs(meta: dict) -> dict:
    import inspect

    allowed = set(inspect.signature(LoraConfig).parameters)
    return {k: v for k, v in meta.items() if k in allowed}


def merge_lora(dit: EditDiT) -> EditDiT:
    """Fuse the adapter into the base weights and remove it (for export)."""
    if has_lora(dit):
        dit.transformer.fuse_lora(lora_scale=1.0)
        dit.transformer.unload_lora()
    return dit
