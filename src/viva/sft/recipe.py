"""`viva sft`: supervised fine-tuning of the editing model (VIVA §3.2); writes ``<output_dir>/base``.

Run: ``viva sft --config configs/sft/toy.yaml [key=value ...]`` (``sft.num_workers > 1`` runs data-parallel on
Ray Train; ``resume=true`` continues from ``<output_dir>/checkpoints/latest``).
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List

import torch

from viva.config import ConfigError, SFTConfig, load_config


def run(cfg: SFTConfig):
    """Run SFT in this process (one worker) or on Ray Train (``sft.num_workers > 1``); returns ``SFTResult``."""
    if cfg.sft.num_workers > 1:
        from viva.sft.ray_trainer import run_sft_ray

        return run_sft_ray(cfg)
    from viva.sft.trainer import run_sft

    return run_sft(cfg)


def main(argv: List[str]) -> int:
    """Parse `viva sft` arguments, run, print where the base checkpoint went."""
    p = argparse.ArgumentParser(prog="viva sft", description="SFT of the editing model (writes a base checkpoint).")
    p.add_argument("--config", required=True, help="YAML with recipe: sft (e.g. configs/sft/toy.yaml)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. sft.steps=100")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    try:
        cfg = load_config(args.config, args.overrides, recipe="sft")
    except ConfigError as e:
        print(f"viva sft: {e}", file=sys.stderr)
        return 2
    if not isinstance(cfg, SFTConfig):
        print(f"viva sft: {args.config} is a '{cfg.recipe}' config, not 'sft'", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    result = run(cfg)
    print(f"viva sft: {result.steps} steps, final loss {result.final_loss:.4f}, {result.skipped_samples} bad samples "
          f"skipped, {result.samples_per_s:.1f} samples/s; base checkpoint: {result.base_checkpoint}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
