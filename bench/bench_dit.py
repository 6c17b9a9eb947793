"""Tiny EditDiT CPU timing (forward / forward+backward on a toy batch), parameter counts, tiny VLM asset size.

Run: python bench/bench_dit.py [--batch 8] [--iters 10]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from viva.models.dit import EditDiT
from viva.models.presets import dit_config
from viva.models.tiny_vlm import TINY_VLM_DIR


def _time_ms(fn, iters: int) -> tuple[float, float]:
    fn()  # warm-up
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), min(times)


def main() -> None:
    """Print the numbers."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--iters", type=int, default=10)
    ap.add_argument("--text-tokens", type=int, default=60)
    args = ap.parse_args()
    torch.manual_seed(0)
    dit = EditDiT.from_config(dit_config("tiny"))
    b, cfg = args.batch, dit.transformer.config
    noisy = torch.randn(b, 12, 8, 16, 16)  # [B, C, F, h, w]: 8 frames of 32x32 RGB through PixelCodec(2)
    source, sigma = torch.randn_like(noisy), torch.rand(b)
    text = torch.randn(b, args.text_tokens, cfg.text_embed_dim)  # [B, L, D]
    mask = torch.ones(b, args.text_tokens, dtype=torch.long)

    def fwd() -> None:
        with torch.no_grad():
            dit(noisy, source, sigma, text, mask)

    def fwd_bwd() -> None:
        dit.zero_grad(set_to_none=True)
        dit(noisy, source, sigma, text, mask).square().mean().backward()

    tokens = 8 * (16 // cfg.patch_size) ** 2
    print(f"threads={torch.get_num_threads()} batch={b} video_tokens/sample={tokens} text_tokens={args.text_tokens}")
    print(f"tiny DiT params: {dit.num_parameters():,}  (refiner {sum(p.numel() for p in dit.transformer.context_embedder.parameters()):,}, "
          f"projector {sum(p.numel() for p in dit.transformer.x_embedder.parameters()):,})")
    for name, fn in (("forward", fwd), ("forward+backward", fwd_bwd)):
        med, best = _time_ms(fn, args.iters)
        print(f"{name:17s} median {med:7.1f} ms  min {best:7.1f} ms")
    with torch.device("meta"):
        big = EditDiT.from_config(dit_config("hunyuan-13b"))
    print(f"hunyuan-13b EditDiT params (meta): {big.num_parameters():,}")
    size = sum(f.stat().st_size for f in Path(TINY_VLM_DIR).iterdir())
    print(f"tiny VLM asset: {size / 1e6:.2f} MB in {TINY_VLM_DIR}")


if __name__ == "__main__":
    main()
