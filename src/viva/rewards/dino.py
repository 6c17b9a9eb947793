"""DINO image features for the temporal-consistency metric: a timm ViT (real weights by id, e.g.
``vit_small_patch16_224.dino``) or transformers ``AutoModel`` (``facebook/dino-vits16``); ``toy`` is a seeded
random-init ViT on 32 px frames (no DINO weights exist offline; random ViT features still track frame-to-frame
structure, but read its numbers as a sanity check, not as DINO)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class DinoEncoder:
    """CLS features of frames, L2-normalised ``[N, D]``; preprocessing is tensor resize (shortest side to
    size / crop_pct, antialiased bicubic), centre crop, ImageNet normalisation (timm's eval transform, on tensors)."""

    def __init__(self, model: Any, size: int, crop_pct: float, device: str, hf: bool = False) -> None:
        self.model = model.eval().requires_grad_(False).to(device)
        self.size, self.crop_pct, self.device, self.hf = size, crop_pct, torch.device(device), hf

    def _pixels(self, frames: torch.Tensor) -> torch.Tensor:
        x = frames.permute(0, 3, 1, 2).float() / 255.0  # [N, 3, H, W]
        h, w = x.shape[-2:]
        short = int(self.size / self.crop_pct)
        if (h, w) != (self.size, self.size):
            new = (short, int(short * w / h)) if h <= w else (int(short * h / w), short)
            x = F.interpolate(x, size=new, mode="bicubic", antialias=True, align_corners=False)
            top, left = (x.shape[-2] - self.size) // 2, (x.shape[-1] - self.size) // 2
            x = x[..., top:top + self.size, left:left + self.size]
        mean = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
        return ((x - mean) / std).to(self.device)  # [N, 3, size, size]

    @torch.no_grad()
    def encode(self, frames: np.ndarray) -> torch.Tensor:
        """uint8 ``[N, H, W, 3]`` -> ``[N, D]``."""
        x = self._pixels(torch.from_numpy(np.ascontiguousarray(frames)))
        if self.hf:
            feats = self.model(pixel_values=x).last_hidden_state[:, 0]
        else:
            feats = self.model.forward_features(x)[:, 0]  # CLS token
        return F.normalize(feats.float(), dim=-1).cpu()


def load_dino(name: str, device: str = "cpu", seed: int = 0) -> DinoEncoder:
    """``toy`` | a timm model name (``vit_small_patch16_224.dino``) | ``hf:<id or path>`` (transformers)."""
    if name.startswith("hf:"):
        from transformers import AutoModel

        model = AutoModel.from_pretrained(name[3:])
        return DinoEncoder(model, int(model.config.image_size), 0.875, device, hf=True)
    import timm

    if name == "toy":
        torch.manual_seed(seed)
        model = timm.create_model("vit_tiny_patch16_224", pretrained=False, img_size=32, patch_size=4,
                                  num_classes=0)
        return DinoEncoder(model, 32, 1.0, device)
    model = timm.create_model(name, pretrained=True, num_classes=0)
    cfg = timm.data.resolve_data_config(model=model)
    return DinoEncoder(model, int(cfg["input_size"][-1]), float(cfg.get("crop_pct", 0.875)), device)
