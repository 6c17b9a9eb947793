"""Base checkpoints: a directory with ``dit.safetensors`` (EditDiT state incl. projector, refiner, pooled_proj)
and ``config.json`` (preset, transformer config, VLM id, codec, viva version). Written atomically."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

import viva
from viva.config import ModelConfig
from viva.models.dit import EditDiT
from viva.training.atomic import atomic_dir

DIT_FILE = "dit.safetensors"
CONFIG_FILE = "config.json"
FORMAT = "viva-base-checkpoint/1"


def _jsonable(obj):
    if isinstance(obj, (list, tuple)):
        return [_jsonable(o) for o in obj]
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    return obj


def save_base_checkpoint(editor, out_dir: str | Path, model_cfg: ModelConfig, sampler=None) -> Path:
    """Write the DiT (without LoRA; merge it first) + config.json into ``out_dir`` atomically; ``sampler`` (a
    SamplerConfig) is recorded as the checkpoint's inference default (`viva edit` uses it)."""
    from viva.models.lora import has_lora

    dit: EditDiT = editor.dit
    if has_lora(dit):
        raise ValueError("save_base_checkpoint: the DiT carries a LoRA adapter; merge_lora(dit) first")
    out = Path(out_dir)
    out.parent.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": FORMAT,
        "viva_version": viva.__version__,
        "preset": model_cfg.preset,
        "dit_config": _jsonable({k: v for k, v in dict(dit.transformer.config).items() if not k.startswith("_")}),
        "guidance": dit.guidance,
        "prediction": dit.prediction,
        "vlm_crop_system": bool(model_cfg.vlm_crop_system),
        "vlm": model_cfg.vlm,
        "codec": model_cfg.codec,
        "codec_pretrained": model_cfg.codec_pretrained,
        "text_pooling": dit.text_pooling,
        "pixel_head": dit.pixel_head_features,
        "sampler": None if sampler is None else {"num_steps": sampler.num_steps, "shift": sampler.shift,
                                                 "guidance_scale": sampler.guidance_scale},
        "dtype": str(next(dit.parameters()).dtype).removeprefix("torch."),
    }
    with atomic_dir(out) as tmp:
        state = {k: v.detach().contiguous().cpu() for k, v in dit.state_dict().items()}
        save_file(state, str(tmp / DIT_FILE), metadata={"format": FORMAT})
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=2))
    return out


def read_checkpoint_config(path: str | Path) -> dict:
    """The checkpoint's config.json (clear error naming the missing / bad file)."""
    cfg_file = Path(path) / CONFIG_FILE
    if not cfg_file.is_file():
        raise FileNotFoundError(f"base checkpoint: {cfg_file} not found")
    try:
        meta = json.loads(cfg_file.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"base checkpoint: {cfg_file} is not valid JSON: {e}") from e
    if meta.get("format") != FORMAT:
        raise ValueError(f"base checkpoint: {cfg_file} has format {meta.get('format')!r}, expected {FORMAT!r}")
    return meta


def load_base_checkpoint(path: str | Path, device: str = "cpu", dtype: torch.dtype = torch.float32) -> EditDiT:
    """Rebuild the EditDiT from config.json and load ``dit.safetensors`` strictly."""
    meta = read_checkpoint_config(path)
    weights = Path(path) / DIT_FILE
    if not weights.is_file():
        raise FileNotFoundError(f"base checkpoint: {weights} not found")
    dit = EditDiT.from_config(meta["dit_config"], meta.get("guidance", 6.0), meta.get("prediction", "velocity"),
                              meta.get("text_pooling", "mean"), int(meta.get("pixel_head", 0)))
    state = load_file(str(weights), device="cpu")
    try:
        dit.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ValueError(f"base checkpoint: {weights} does not match {Path(path) / CONFIG_FILE}: {e}") from e
    return dit.to(device, dtype)
