"""CLIP image preprocessing as batched tensor ops that reproduce each library's own pipeline.

Two pipelines, read from the model's own config:
- open_clip (``model.visual.preprocess_cfg``): torchvision ``Resize`` on a PIL image (Pillow bicubic), ``CenterCrop``
  with ``round`` offsets, ``ToTensor`` (/255), ``Normalize``.
- transformers ``CLIPImageProcessor`` (5.x, torchvision backend): ``tvF.resize`` on uint8 tensors (antialiased
  bicubic), centre crop with truncated offsets, fused ``(x - 255*mean) / (255*std)``.
The Pillow resize runs as two exact fixed-point matmuls (:mod:`viva.rewards.pil_resample`), so a whole video is
processed in one call; ``resize_backend="pil"`` instead calls Pillow per frame (bit-exact in every case, slower).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Tuple

import numpy as np
import torch

from viva.rewards.pil_resample import pil_resize


@dataclass(frozen=True)
class PreprocessSpec:
    """What one library does to an image before its vision tower."""

    size: Tuple[int, int]  # (h, w) fed to the model
    mean: Tuple[float, float, float]
    std: Tuple[float, float, float]
    resize_mode: str = "shortest"  # shortest (resize short side, centre crop) | squash (resize to size)
    interpolation: str = "bicubic"  # bicubic | bilinear
    flavour: str = "open_clip"  # open_clip (Pillow resize, round crop) | transformers (tensor resize, trunc crop)
    resize_backend: str = "matmul"  # open_clip flavour only: matmul (batched, exact kernel) | pil (per frame)

    def __post_init__(self) -> None:
        if self.resize_mode not in ("shortest", "squash"):
            raise ValueError(f"unsupported resize_mode {self.resize_mode!r} (shortest | squash)")
        if self.flavour not in ("open_clip", "transformers"):
            raise ValueError(f"unsupported preprocessing flavour {self.flavour!r}")
        if self.resize_backend not in ("matmul", "pil"):
            raise ValueError(f"unsupported resize_backend {self.resize_backend!r} (matmul | pil)")


def spec_from_open_clip(model: Any, resize_backend: str = "matmul") -> PreprocessSpec:
    """The spec of an open_clip model, from ``model.visual.preprocess_cfg``."""
    cfg = dict(model.visual.preprocess_cfg)
    size = cfg["size"]
    size = (size, size) if isinstance(size, int) else tuple(size)
    if cfg.get("mode", "RGB") != "RGB":
        raise ValueError(f"open_clip preprocess mode {cfg.get('mode')!r} is not supported (RGB only)")
    if cfg.get("resize_mode", "shortest") == "shortest" and size[0] != size[1]:
        raise ValueError(f"open_clip 'shortest' resize with a non-square size {size} is not supported")
    return PreprocessSpec(size=size, mean=tuple(cfg["mean"]), std=tuple(cfg["std"]),
                          resize_mode=cfg.get("resize_mode", "shortest"), interpolation=cfg["interpolation"],
                          flavour="open_clip", resize_backend=resize_backend)


def spec_from_hf(processor: Any) -> PreprocessSpec:
    """The spec of a transformers ``CLIPImageProcessor`` (shortest_edge resize + centre crop)."""
    size, crop = processor.size, processor.crop_size
    if not (processor.do_resize and processor.do_center_crop and processor.do_normalize and processor.do_rescale):
        raise ValueError("only CLIPImageProcessor with resize, centre crop, rescale and normalise is supported")
    if "shortest_edge" not in size or abs(processor.rescale_factor - 1 / 255) > 1e-12:
        raise ValueError(f"unsupported CLIPImageProcessor size={dict(size)} rescale={processor.rescale_factor}")
    interp = {2: "bilinear", 3: "bicubic"}.get(int(processor.resample))
    if interp is None:
        raise ValueError(f"unsupported CLIPImageProcessor resample {processor.resample!r}")
    resize_to = int(size["shortest_edge"])
    crop_hw = (int(crop["height"]), int(crop["width"]))
    if crop_hw != (resize_to, resize_to):
        raise ValueError(f"CLIPImageProcessor crop {crop_hw} != shortest_edge {resize_to} is not supported")
    return PreprocessSpec(size=crop_hw, mean=tuple(processor.image_mean), std=tuple(processor.image_std),
                          interpolation=interp, flavour="transformers")


def _shortest_side_size(h: int, w: int, target: int) -> Tuple[int, int]:
    # torchvision / transformers: the long side is int(target * long / short) (truncated)
    if w <= h:
        return int(target * h / w), target
    return target, int(target * w / h)


def _resize(x: torch.Tensor, out_hw: Tuple[int, int], spec: PreprocessSpec) -> torch.Tensor:
    """uint8 ``[N, 3, H, W]`` -> uint8 ``[N, 3, h, w]`` with the library's own resize."""
    if tuple(x.shape[-2:]) == tuple(out_hw):
        return x  # both libraries return the image unchanged (Pillow copies, torchvision is a no-op)
    if spec.flavour == "transformers":
        from torchvision.transforms.v2 import functional as tvF
        mode = {"bicubic": tvF.InterpolationMode.BICUBIC, "bilinear": tvF.InterpolationMode.BILINEAR}
        return tvF.resize(x, list(out_hw), interpolation=mode[spec.interpolation], antialias=True)
    if spec.resize_backend == "pil":
        return _pil_per_frame(x, out_hw, spec.interpolation)
    return pil_resize(x, out_hw, spec.interpolation)


def _pil_per_frame(x: torch.Tensor, out_hw: Tuple[int, int], kernel: str) -> torch.Tensor:
    from PIL import Image
    resample = {"bicubic": Image.BICUBIC, "bilinear": Image.BILINEAR}[kernel]
    frames = x.permute(0, 2, 3, 1).cpu().numpy()  # [N, H, W, 3]
    out = np.stack([np.asarray(Image.fromarray(f).resize(out_hw[::-1], resample)) for f in frames])
    return torch.from_numpy(out).permute(0, 3, 1, 2).to(x.device)  # [N, 3, h, w]


def _crop_offset(extent: int, crop: int, flavour: str) -> int:
    if flavour == "open_clip":
        return int(round((extent - crop) / 2.0))  # torchvision CenterCrop (Python round: half to even)
    return int((extent - crop) / 2.0)  # transformers' torchvision backend truncates


def preprocess(frames: torch.Tensor, spec: PreprocessSpec) -> torch.Tensor:
    """uint8 frames ``[N, H, W, 3]`` -> normalised float32 ``[N, 3, h, w]``, batched (no loop over frames)."""
    if frames.dtype != torch.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"preprocess needs uint8 [N, H, W, 3] frames, got {frames.dtype} {tuple(frames.shape)}")
    x = frames.permute(0, 3, 1, 2).contiguous()  # [N, 3, H, W]
    h, w = x.shape[-2:]
    if spec.resize_mode == "squash":
        x = _resize(x, spec.size, spec)
    else:
        x = _resize(x, _shortest_side_size(h, w, spec.size[0]), spec)
        top = _crop_offset(x.shape[-2], spec.size[0], spec.flavour)
        left = _crop_offset(x.shape[-1], spec.size[1], spec.flavour)
        x = x[..., top:top + spec.size[0], left:left + spec.size[1]]  # [N, 3, h, w]
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    if spec.flavour == "transformers":
        return (x.float() - mean * 255.0) / (std * 255.0)  # fused rescale + normalise, as the processor does
    return (x.float() / 255.0 - mean) / std  # ToTensor then Normalize
