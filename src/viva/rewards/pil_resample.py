"""Pillow's resampling (``Image.resize``, 8-bit RGB) reproduced bit-exactly as two batched matmuls.

Pillow (libImaging/Resample.c) resizes in two separable passes, horizontal first, each with a fixed-point kernel:
coefficients are normalised, scaled by ``2**22`` and rounded half away from zero; every output pixel is
``clip8((2**21 + sum(in * k)) >> 22)`` and the intermediate image is 8-bit. Those integers stay below 2**53, so a
float64 matmul computes them exactly and the whole video resizes in one call (no loop over frames).
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Dict, Tuple

import torch

PRECISION_BITS = 32 - 8 - 2  # Resample.c


def _bicubic(x: float) -> float:
    a = -0.5  # Pillow's bicubic uses a = -0.5 (torch's non-antialiased bicubic uses -0.75)
    x = abs(x)
    if x < 1.0:
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1
    if x < 2.0:
        return (((x - 5) * x + 8) * x - 4) * a
    return 0.0


def _bilinear(x: float) -> float:
    x = abs(x)
    return 1.0 - x if x < 1.0 else 0.0


# name -> (filter, support), as in Resample.c
FILTERS: Dict[str, Tuple[Callable[[float], float], float]] = {"bicubic": (_bicubic, 2.0), "bilinear": (_bilinear, 1.0)}


@lru_cache(maxsize=64)
def coefficient_matrix(in_size: int, out_size: int, kernel: str) -> torch.Tensor:
    """Fixed-point weights ``[out_size, in_size]`` (float64 holding integers) of one Pillow resampling pass."""
    filt, base_support = FILTERS[kernel]
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = base_support * filterscale
    weights = torch.zeros(out_size, in_size, dtype=torch.float64)
    for xx in range(out_size):  # runs once per (size, kernel): the matrix is cached
        center = (xx + 0.5) * scale
        xmin = max(math.trunc(center - support + 0.5), 0)
        xmax = min(math.trunc(center + support + 0.5), in_size)
        ws = [filt((x + xmin - center + 0.5) / filterscale) for x in range(xmax - xmin)]
        total = sum(ws)
        ws = [w / total if total != 0.0 else w for w in ws]
        # C's (int)(v +- 0.5) truncates toward zero: round half away from zero
        fixed = [math.trunc(w * (1 << PRECISION_BITS) + (0.5 if w >= 0 else -0.5)) for w in ws]
        weights[xx, xmin:xmax] = torch.tensor(fixed, dtype=torch.float64)
    return weights


def _pass(x: torch.Tensor, weights: torch.Tensor) -> torch.Tensor:
    """One pass along the last dim of ``x`` (uint8 values as float64), rounded and clipped to 8 bits."""
    acc = x @ weights.T + float(1 << (PRECISION_BITS - 1))  # exact: all values are integers < 2**53
    return torch.floor(acc / float(1 << PRECISION_BITS)).clamp_(0, 255)


def pil_resize(images: torch.Tensor, size: Tuple[int, int], kernel: str = "bicubic") -> torch.Tensor:
    """Resize uint8 ``[N, C, H, W]`` to ``size=(h, w)`` exactly as ``PIL.Image.resize((w, h), kernel)`` does."""
    if images.dtype != torch.uint8:
        raise TypeError(f"pil_resize needs uint8 images, got {images.dtype}")
    if kernel not in FILTERS:
        raise ValueError(f"unsupported resampling kernel {kernel!r}; expected one of {sorted(FILTERS)}")
    out_h, out_w = size
    in_h, in_w = images.shape[-2:]
    x = images.to(torch.float64)  # [N, C, H, W]
    if out_w != in_w:  # horizontal pass first, as Pillow does
        x = _pass(x, coefficient_matrix(in_w, out_w, kernel).to(x.device))  # [N, C, H, w]
    if out_h != in_h:
        x = _pass(x.transpose(-1, -2), coefficient_matrix(in_h, out_h, kernel).to(x.device)).transpose(-1, -2)
    return x.to(torch.uint8)  # [N, C, h, w]
