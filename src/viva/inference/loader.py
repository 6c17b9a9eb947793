"""Load the final model for inference: a viva base checkpoint (+ LoRAs merged in) on a forward backend.

    editor = load_editor(EditorSpec(base="runs/sft/base", loras=("runs/grpo/lora",), backend="compile"))
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from viva.config import ModelConfig
from viva.models.backends import apply_backend


@dataclass(frozen=True)
class EditorSpec:
    """What to load: the base checkpoint, LoRAs fused into it (in order), device/dtype and forward backend."""

    base: str
    loras: tuple[str, ...] = ()
    device: str = "cpu"
    dtype: str = "float32"
    backend: str = "eager"  # eager | compile | tensorrt
    allow_backend_fallback: bool = False
    vlm: str | None = None  # override the VLM recorded in the checkpoint (e.g. a local copy of the hub model)


def model_config_for(spec: EditorSpec) -> ModelConfig:
    """The ModelConfig that rebuilds a base checkpoint (its preset, VLM and codec come from its config.json)."""
    from viva.models.checkpoint import read_checkpoint_config

    if not Path(spec.base).is_dir():
        raise FileNotFoundError(f"base checkpoint directory not found: {spec.base}")
    meta = read_checkpoint_config(spec.base)
    return ModelConfig(
        preset=meta.get("preset", "tiny"),
        base_checkpoint=str(spec.base),
        vlm=spec.vlm or meta.get("vlm", "tiny"),
        codec=meta.get("codec", "pixel"),
        codec_pretrained=meta.get("codec_pretrained"),
        device=spec.device,
        dtype=spec.dtype,
        backend=spec.backend,
        allow_backend_fallback=spec.allow_backend_fallback,
    )


def load_editor(spec: EditorSpec):
    """Build the VideoEditor of ``spec``: each LoRA loaded then fused (their deltas add up), backend applied."""
    from viva.models.lora import load_lora, merge_lora
    from viva.models.presets import build_editor

    editor = build_editor(model_config_for(spec)).eval()
    for path in spec.loras:
        if not Path(path).exists():
            raise FileNotFoundError(f"LoRA not found: {path}")
        merge_lora(load_lora(editor.dit, path))
    apply_backend(editor.dit, spec.backend, spec.allow_backend_fallback)
    return editor
