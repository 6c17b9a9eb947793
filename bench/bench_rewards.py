"""Reward throughput (videos/s): the toy CLIP and a ViT-B-32-sized CLIP (random weights, same compute as the real
one), micro-batched vs one video at a time, side by side in one run.

Run: ``python bench/bench_rewards.py [--videos 32] [--frames 8] [--size 224] [--micro-batch 16]``
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from viva.rewards.base import RewardBatch
from viva.rewards.clip_rewards import ClipIF


def _batch(n: int, frames: int, size: int) -> RewardBatch:
    rng = np.random.default_rng(0)
    v = rng.integers(0, 256, size=(n, frames, size, size, 3), dtype=np.uint8)
    texts = [f"a red circle number {i}" for i in range(n)]
    return RewardBatch([f"v{i}" for i in range(n)], v, v, texts, texts, texts[::-1])


def _throughput(reward: ClipIF, batch: RewardBatch, repeats: int) -> float:
    reward.score(RewardBatch(batch.sample_ids[:1], batch.edited_videos[:1], batch.source_videos[:1],
                             batch.instructions[:1], batch.source_captions[:1], batch.edit_captions[:1]))  # warm-up
    t = time.perf_counter()
    for _ in range(repeats):
        reward.score(batch)
    return repeats * len(batch) / (time.perf_counter() - t)


def main() -> None:
    """Print a table: model, input size, micro-batch, videos/s."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--videos", type=int, default=32)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, default=224, help="frame size for the ViT-B model (toy uses 32)")
    p.add_argument("--micro-batch", type=int, default=16)
    p.add_argument("--repeats", type=int, default=1)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    rows = []
    for model, size in (("toy", 32), ("ViT-B-32", args.size)):
        batch = _batch(args.videos, args.frames, size)
        for mb in (args.micro_batch, 1):
            reward = ClipIF(model=model, pretrained=None, micro_batch_size=mb, num_frames=args.frames,
                            device=args.device)
            reward.setup(args.device)
            rows.append((model, f"{args.frames}x{size}x{size}", mb, _throughput(reward, batch, args.repeats)))
    print(f"threads={torch.get_num_threads()} device={args.device} videos={args.videos}")
    print(f"{'model':10s} {'video':12s} {'micro_batch':>11s} {'videos/s':>10s}")
    for model, shape, mb, vps in rows:
        print(f"{model:10s} {shape:12s} {mb:11d} {vps:10.2f}")


if __name__ == "__main__":
    main()
