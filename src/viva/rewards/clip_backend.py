"""CLIP encoders behind one small interface: open_clip models (real or the shipped toy ones) and transformers
``CLIPModel`` (PickScore). Both embed batches of uint8 frames and lists of texts into L2-normalised vectors.

Definition of C on videos (used by every CLIP-based reward, docs/rewards.md):
- frames: ``num_frames`` frames sampled uniformly, ``round(linspace(0, F - 1, n))`` (all frames if 0 or >= F);
- each frame is preprocessed exactly as the model's own library does and embedded on its own;
- C(V, t) = mean over sampled frames of cos(e_frame, e_text);
- C(V_a, V_b) = mean over sampled frame indices f of cos(e_a[f], e_b[f]) (frame-aligned).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Protocol, Sequence

import numpy as np
import torch

from viva.rewards.image_preprocess import PreprocessSpec, preprocess, spec_from_hf, spec_from_open_clip

# Real defaults (VIVA uses CLIP ViT-H-14 and PickScore); nothing is downloaded unless these are asked for.
OPEN_CLIP_DEFAULT = ("ViT-H-14", "laion2b_s32b_b79k")
PICKSCORE_DEFAULT = ("yuvalkirstain/PickScore_v1", "laion/CLIP-ViT-H-14-laion2B-s32B-b79K")
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True)
class ClipModelConfig:
    """Which CLIP to load and how to batch it. ``model: toy`` / ``toy-pickscore`` are the shipped toy models."""

    model: str = "toy"  # toy | toy-pickscore | an open_clip name (ViT-H-14) | local-dir:/x | a transformers id/path
    backend: str = "open_clip"  # open_clip | transformers
    # open_clip tag or local checkpoint file (None + real model = random weights); for a toy model, a safetensors
    # file written by `viva rewards train-toy` (None = the shipped weights)
    pretrained: Optional[str] = None
    processor: Optional[str] = None  # transformers: processor id/path (PickScore uses the ViT-H-14 one)
    device: str = "cpu"
    dtype: str = "float32"
    micro_batch_size: int = 16  # samples per forward; all their sampled frames go through together
    num_frames: int = 8  # frames sampled per video (0 = all)
    resize_backend: str = "matmul"  # open_clip: matmul (batched exact Pillow kernel) | pil (per-frame Pillow)

    def __post_init__(self) -> None:
        if self.backend not in ("open_clip", "transformers"):
            raise ValueError(f"CLIP backend must be open_clip | transformers, got {self.backend!r}")
        if self.micro_batch_size < 1 or self.num_frames < 0:
            raise ValueError(f"micro_batch_size must be >= 1 and num_frames >= 0, got {self.micro_batch_size}, "
                             f"{self.num_frames}")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")


class ClipEncoder(Protocol):
    """Embeds preprocessed pixels and texts; both outputs are L2-normalised ``[N, D]`` float32."""

    spec: PreprocessSpec
    logit_scale: float

    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[N, 3, h, w]`` normalised pixels -> ``[N, D]``."""
        ...

    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """``T`` strings -> ``[T, D]``."""
        ...


def _normalise(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x.float(), dim=-1)


class OpenClipEncoder:
    """An open_clip model with its tokenizer and preprocessing spec."""

    def __init__(self, model: Any, tokenizer: Any, cfg: ClipModelConfig) -> None:
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.device = torch.device(cfg.device)
        self.spec = spec_from_open_clip(model, cfg.resize_backend)
        self.logit_scale = float(model.logit_scale.exp().item())

    @torch.no_grad()
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[N, 3, h, w]`` -> ``[N, D]``."""
        dtype = next(self.model.parameters()).dtype
        return _normalise(self.model.encode_image(pixels.to(self.device, dtype)))

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """``T`` strings -> ``[T, D]``."""
        tokens = self.tokenizer(list(texts)).to(self.device)  # [T, context_length]
        return _normalise(self.model.encode_text(tokens))


class HFClipEncoder:
    """A transformers ``CLIPModel`` (e.g. PickScore) with its processor's tokenizer and image spec."""

    def __init__(self, model: Any, processor: Any, cfg: ClipModelConfig) -> None:
        self.model = model.eval().requires_grad_(False)
        self.processor = processor
        self.device = torch.device(cfg.device)
        self.spec = spec_from_hf(processor.image_processor)
        self.logit_scale = float(model.logit_scale.exp().item())

    @torch.no_grad()
    def encode_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[N, 3, h, w]`` -> ``[N, D]``."""
        out = self.model.get_image_features(pixel_values=pixels.to(self.device, self.model.dtype))
        return _normalise(getattr(out, "pooler_output", out))  # transformers 5 returns an output object

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        """``T`` strings -> ``[T, D]``."""
        tok = self.processor.tokenizer(list(texts), padding=True, truncation=True, max_length=77,
                                       return_tensors="pt").to(self.device)
        out = self.model.get_text_features(**tok)
        return _normalise(getattr(out, "pooler_output", out))


def load_encoder(cfg: ClipModelConfig) -> ClipEncoder:
    """Build the encoder ``cfg`` names, on ``cfg.device`` (toy weights from viva's assets or ``cfg.pretrained``)."""
    if cfg.model in ("toy", "toy-clip", "toy-pickscore"):
        from viva.rewards.toy_models import load_toy_clip

        kind = "pickscore" if cfg.model == "toy-pickscore" else "clip"
        model, tokenizer = load_toy_clip(kind, cfg.pretrained)
        return OpenClipEncoder(model.to(cfg.device), tokenizer, cfg)
    if cfg.backend == "transformers":
        return _load_hf(cfg)
    import open_clip

    model = open_clip.create_model(cfg.model, pretrained=cfg.pretrained, device=cfg.device,
                                   precision="fp32" if cfg.dtype == "float32" else
                                   {"bfloat16": "bf16", "float16": "fp16"}[cfg.dtype])
    return OpenClipEncoder(model, open_clip.get_tokenizer(cfg.model), cfg)


def _load_hf(cfg: ClipModelConfig) -> HFClipEncoder:
    from transformers import CLIPModel, CLIPProcessor

    processor = CLIPProcessor.from_pretrained(cfg.processor or cfg.model)
    model = CLIPModel.from_pretrained(cfg.model, dtype=DTYPES[cfg.dtype]).to(cfg.device)
    return HFClipEncoder(model, processor, cfg)


def frame_indices(num_frames: int, wanted: int) -> np.ndarray:
    """Uniformly spaced frame indices: ``round(linspace(0, F - 1, n))``; all frames if ``wanted`` is 0 or >= F."""
    if wanted <= 0 or wanted >= num_frames:
        return np.arange(num_frames)
    return np.round(np.linspace(0, num_frames - 1, wanted)).astype(np.int64)


def embed_videos(encoder: ClipEncoder, videos: np.ndarray, cfg: ClipModelConfig) -> torch.Tensor:
    """uint8 ``[B, F, H, W, 3]`` -> per-frame embeddings ``[B, n, D]``, ``micro_batch_size`` videos per forward."""
    idx = frame_indices(videos.shape[1], cfg.num_frames)
    out: List[torch.Tensor] = []
    for start in range(0, len(videos), cfg.micro_batch_size):
        chunk = videos[start:start + cfg.micro_batch_size][:, idx]  # [b, n, H, W, 3]
        b, n = chunk.shape[:2]
        frames = torch.from_numpy(np.ascontiguousarray(chunk.reshape(b * n, *chunk.shape[2:])))  # [b*n, H, W, 3]
        pixels = preprocess(frames.to(encoder_device(encoder)), encoder.spec)  # [b*n, 3, h, w]
        out.append(encoder.encode_pixels(pixels).reshape(b, n, -1).cpu())  # [b, n, D]
    return torch.cat(out)  # [B, n, D]


def embed_texts(encoder: ClipEncoder, texts: Sequence[str]) -> torch.Tensor:
    """Embed each distinct text once: ``[T, D]`` in the order of ``texts``."""
    unique: Dict[str, int] = {}
    for t in texts:
        unique.setdefault(t, len(unique))
    emb = encoder.encode_texts(list(unique)).cpu()  # [U, D]
    return emb[torch.tensor([unique[t] for t in texts])]  # [T, D]


def encoder_device(encoder: ClipEncoder) -> torch.device:
    """The device the encoder's weights live on (preprocessing runs there too)."""
    return getattr(encoder, "device", torch.device("cpu"))
