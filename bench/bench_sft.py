"""SFT throughput: samples/s and utilisation (achieved FLOP/s over this machine's measured fp32 matmul peak).

Presets: ``tiny`` (the shipped toy model) and ``small-cpu`` (a wider/deeper DiT built here from the tiny config:
4 heads x 32, 4 dual-stream + 2 single-stream blocks), both on toy-world 8x32x32 video pairs mixed with image pairs
exactly as `viva sft` trains. FLOPs per step are counted with ``torch.utils.flop_counter.FlopCounterMode`` over a
whole training step (VLM instructor forward on cache misses + DiT forward/backward + optimizer-free parts).

Run: ``python bench/bench_sft.py --threads 2 --steps 20``
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from viva.config import load_config

PRESETS = {
    "tiny": {},
    "small-cpu": dict(num_attention_heads=4, attention_head_dim=32, num_layers=4, num_single_layers=2,
                      rope_axes_dim=(8, 12, 12)),
}


def matmul_peak(n: int = 2048, repeats: int = 5) -> float:
    """Best fp32 matmul FLOP/s of ``repeats`` n×n×n products (the utilisation reference)."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    best = 0.0
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = max(best, 2 * n**3 / (time.perf_counter() - t))
    return best


def build_trainer(preset: str, batch_size: int, image_prob: float):
    """An SFTTrainer on toy-world pairs whose DiT is the named bench preset."""
    from viva.models.dit import EditDiT
    from viva.models.presets import build_editor, dit_config
    from viva.sft.trainer import SFTTrainer

    cfg = load_config(None, [f"sft.batch_size={batch_size}", f"sft.image_prob={image_prob}", "sft.warmup_steps=0",
                             "logging.wandb=false", "logging.progress=false", "output_dir=runs/bench-sft"],
                      recipe="sft")
    editor = build_editor(cfg.model)
    if PRESETS[preset]:
        base = dit_config("tiny", editor.codec.latent_channels, editor.vlm.hidden_size)
        editor.dit = EditDiT.from_config({**base, **PRESETS[preset]})
    trainer = SFTTrainer(cfg)
    trainer.setup(editor=editor)
    return trainer


def bench(preset: str, steps: int, batch_size: int, image_prob: float, peak: float) -> dict:
    """Time ``steps`` training steps (after 2 warm-up steps) and count one step's FLOPs per modality."""
    trainer = build_trainer(preset, batch_size, image_prob)
    for k in range(2):
        trainer.train_step(k)
    flops = {}
    for k in range(2, 40):  # one video step and one image step, counted
        modality = trainer.sampler.modality(k)
        if modality in flops:
            continue
        with FlopCounterMode(display=False) as counter:
            trainer.train_step(k)
        flops[modality] = counter.get_total_flops()
        if len(flops) == 2 or image_prob in (0.0, 1.0):
            break
    seen, total_flops = 0, 0.0
    t = time.perf_counter()
    for k in range(100, 100 + steps):
        trainer.train_step(k)
        seen += batch_size
        total_flops += flops[trainer.sampler.modality(k)]
    elapsed = time.perf_counter() - t
    achieved = total_flops / elapsed
    return {"preset": preset, "dit_params": trainer.editor.dit.num_parameters(), "batch_size": batch_size,
            "image_prob": image_prob, "steps": steps, "samples_per_s": seen / elapsed,
            "gflop_per_video_step": flops.get("video", float("nan")) / 1e9,
            "gflop_per_image_step": flops.get("image", float("nan")) / 1e9,
            "achieved_gflops": achieved / 1e9, "peak_gflops": peak / 1e9, "utilisation": achieved / peak}


def main(argv: list[str]) -> int:
    """Print one JSON line per preset."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--image-prob", type=float, default=0.6)
    p.add_argument("--presets", default="tiny,small-cpu")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    peak = matmul_peak()
    print(json.dumps({"threads": args.threads, "matmul_peak_gflops": peak / 1e9}))
    for preset in args.presets.split(","):
        print(json.dumps(bench(preset, args.steps, args.batch_size, args.image_prob, peak)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
