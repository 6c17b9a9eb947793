"""The shared part of every CLIP-based reward: options -> :class:`ClipModelConfig`, a per-process encoder cache
(CLIP-IF and CLIP-SP on one device share one ViT-H), and video/text embedding with the batch checks."""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, Mapping, Optional, Tuple

import torch

from viva.rewards.base import RewardError
from viva.rewards.clip_backend import ClipEncoder, ClipModelConfig, load_encoder

_ENCODERS: Dict[Tuple, ClipEncoder] = {}


def make_config(reward: str, defaults: Mapping[str, Any], options: Mapping[str, Any]) -> ClipModelConfig:
    """``defaults`` overridden by ``options``; an unknown option is an error naming the reward and the key."""
    known = {f.name for f in dataclasses.fields(ClipModelConfig)}
    unknown = sorted(set(options) - known)
    if unknown:
        raise ValueError(f"reward {reward}: unknown option(s) {unknown}; known: {sorted(known)}")
    merged = {**defaults, **options}
    if str(merged.get("model")).startswith("toy"):  # toy models are open_clip models, whatever the real default
        merged["backend"] = "open_clip"
        merged["processor"] = None
        merged["pretrained"] = options.get("pretrained")  # retrained toy weights; never the real model's tag
    return ClipModelConfig(**merged)


def get_encoder(cfg: ClipModelConfig) -> ClipEncoder:
    """Load once per (model, weights, device, dtype) in this process."""
    key = (cfg.model, cfg.backend, cfg.pretrained, cfg.processor, cfg.device, cfg.dtype, cfg.resize_backend)
    if key not in _ENCODERS:
        _ENCODERS[key] = load_encoder(cfg)
    return _ENCODERS[key]


class ClipScorer:
    """Holds a reward's config and (after :meth:`setup`) its encoder."""

    def __init__(self, reward: str, cfg: ClipModelConfig) -> None:
        self.reward = reward
        self.cfg = cfg
        self.encoder: Optional[ClipEncoder] = None

    def setup(self, device: Optional[str]) -> None:
        """Load (or reuse) the encoder on ``device`` (None: the configured device)."""
        if device is not None and device != self.cfg.device:
            self.cfg = dataclasses.replace(self.cfg, device=device)
        self.encoder = get_encoder(self.cfg)

    def ready(self) -> ClipEncoder:
        """The encoder; loads it on the configured device if ``setup`` was not called."""
        if self.encoder is None:
            self.setup(None)
        assert self.encoder is not None
        return self.encoder

    def logit_scale(self) -> float:
        """exp(logit_scale) of the loaded model."""
        return float(self.ready().logit_scale)


def video_text_similarity(frames: torch.Tensor, texts: torch.Tensor) -> torch.Tensor:
    """C(V, t): mean over frames of cos(e_frame, e_text); ``[B, n, D]`` x ``[B, D]`` -> ``[B]``."""
    return torch.einsum("bnd,bd->bn", frames, texts).mean(1)


def video_video_similarity(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """C(V_a, V_b): mean over frame index f of cos(e_a[f], e_b[f]); ``[B, n, D]`` x2 -> ``[B]``."""
    if a.shape != b.shape:
        raise RewardError(f"frame embeddings differ in shape: {tuple(a.shape)} vs {tuple(b.shape)}")
    return (a * b).sum(-1).mean(1)
