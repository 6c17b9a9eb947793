"""Model presets (tiny | hunyuan-13b) and ``build_editor``: ModelConfig -> a ready ``VideoEditor``.

``tiny`` runs on a laptop CPU: 2 dual-stream blocks, 1 single-stream block, 1 refiner layer, 2 heads x 32, over
the toy world's PixelCodec latents (8 frames x 32x32 RGB -> [12, 8, 16, 16]); patch 4 x 4 x 1 -> 128 video
tokens per sample (patch 2 gives 512 tokens and a ~1 s CPU forward+backward at batch 8; patch_size_t stays 1 so
1-frame images and the +1 reference frame work).
``hunyuan-13b`` is the configuration of ``hunyuanvideo-community/HunyuanVideo``'s transformer with the patch embed
widened to 2 x 16 input channels (noisy ⊕ source, VIVA eq. 2).
"""

from __future__ import annotations

from typing import Any

import torch

from viva.config import LoRAConfig, ModelConfig
from viva.models.codec import HunyuanVAECodec, LatentCodec, PixelCodec
from viva.models.dit import EditDiT
from viva.models.editor import VideoEditor
from viva.models.vlm_instructor import VLMInstructor

HUNYUAN_VIDEO_ID = "hunyuanvideo-community/HunyuanVideo"
PRESETS = ("tiny", "hunyuan-13b")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}

_TINY = dict(
    num_attention_heads=2, attention_head_dim=32, num_layers=2, num_single_layers=1, num_refiner_layers=1,
    mlp_ratio=4.0, patch_size=4, patch_size_t=1, qk_norm="rms_norm", guidance_embeds=True,
    pooled_projection_dim=32, rope_theta=256.0, rope_axes_dim=(8, 12, 12),
)
# transformer/config.json of hunyuanvideo-community/HunyuanVideo (diffusers defaults), 16-channel VAE latents.
_HUNYUAN_13B = dict(
    num_attention_heads=24, attention_head_dim=128, num_layers=20, num_single_layers=40, num_refiner_layers=2,
    mlp_ratio=4.0, patch_size=2, patch_size_t=1, qk_norm="rms_norm", guidance_embeds=True,
    pooled_projection_dim=768, rope_theta=256.0, rope_axes_dim=(16, 56, 56),
)


def dit_config(preset: str, latent_channels: int | None = None, text_embed_dim: int | None = None) -> dict[str, Any]:
    """Transformer config of a preset; ``in_channels`` = 2 x latent channels (noisy ⊕ source)."""
    if preset == "tiny":
        base, c, d = _TINY, latent_channels or 12, text_embed_dim or 64
    elif preset == "hunyuan-13b":
        base, c, d = _HUNYUAN_13B, latent_channels or 16, text_embed_dim or 4096
    else:
        raise ValueError(f"model.preset must be one of {PRESETS}, got {preset!r}")
    return dict(base, in_channels=2 * c, out_channels=c, text_embed_dim=d)


def torch_dtype(name: str) -> torch.dtype:
    """ModelConfig.dtype string -> torch dtype."""
    if name not in DTYPES:
        raise ValueError(f"model.dtype must be one of {sorted(DTYPES)}, got {name!r}")
    return DTYPES[name]


def build_codec(cfg: ModelConfig) -> LatentCodec:
    """``pixel`` -> PixelCodec(2); ``hunyuan-vae`` -> the HunyuanVideo VAE (hub id / local path)."""
    if cfg.codec == "pixel":
        return PixelCodec(2)
    if cfg.codec == "hunyuan-vae":
        return HunyuanVAECodec.from_pretrained(cfg.codec_pretrained or HUNYUAN_VIDEO_ID, torch_dtype(cfg.dtype))
    raise ValueError(f"model.codec must be pixel | hunyuan-vae, got {cfg.codec!r}")


def build_dit(cfg: ModelConfig, latent_channels: int, text_embed_dim: int) -> EditDiT:
    """The preset's EditDiT: from ``dit_pretrained`` (zero-init source half) or random."""
    if cfg.dit_pretrained:
        dit = EditDiT.from_pretrained_t2v(cfg.dit_pretrained, torch_dtype(cfg.dtype), cfg.embedded_guidance)
        have = (dit.latent_channels, dit.transformer.config.text_embed_dim)
        if have != (latent_channels, text_embed_dim):
            raise ValueError(
                f"{cfg.dit_pretrained}: DiT (latent channels, text dim) = {have}, but the codec / VLM give "
                f"{(latent_channels, text_embed_dim)}"
            )
        return dit
    return EditDiT.from_config(dit_config(cfg.preset, latent_channels, text_embed_dim), cfg.embedded_guidance,
                               cfg.prediction, cfg.text_pooling, cfg.pixel_head)


def build_editor(model_cfg: ModelConfig, lora_cfg: LoRAConfig | None = None) -> VideoEditor:
    """ModelConfig -> VideoEditor (base checkpoint if set, else the preset), optionally with a LoRA adapter."""
    from viva.models.checkpoint import load_base_checkpoint, read_checkpoint_config
    from viva.models.lora import add_lora

    dtype = torch_dtype(model_cfg.dtype)
    codec = build_codec(model_cfg)
    crop = model_cfg.vlm_crop_system
    if model_cfg.base_checkpoint:  # the checkpoint was trained on one token layout: use it
        crop = bool(read_checkpoint_config(model_cfg.base_checkpoint).get("vlm_crop_system", False))
    vlm = VLMInstructor.from_pretrained(model_cfg.vlm, dtype, model_cfg.device, model_cfg.vlm_cache_size, crop)
    if model_cfg.base_checkpoint:
        dit = load_base_checkpoint(model_cfg.base_checkpoint, model_cfg.device, dtype)
        if dit.latent_channels != codec.latent_channels:
            raise ValueError(
                f"{model_cfg.base_checkpoint}: DiT has {dit.latent_channels} latent channels, codec "
                f"{model_cfg.codec!r} has {codec.latent_channels}"
            )
    else:
        dit = build_dit(model_cfg, codec.latent_channels, vlm.hidden_size)
    dit = dit.to(model_cfg.device, dtype)
    if lora_cfg is not None:
        add_lora(dit, lora_cfg)
    editor = VideoEditor(dit, vlm, codec)
    return editor.to(model_cfg.device)
