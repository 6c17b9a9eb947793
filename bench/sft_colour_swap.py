"""Does the base read the colour word? One held-out `add` prompt, the colour word swapped through the palette, the
same noise: prints the mean RGB the base paints inside the target object's mask for each colour word.

Run: ``python bench/sft_colour_swap.py --checkpoint src/viva/assets/toy_base``
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np


def main() -> None:
    """Print one row per colour word: the instruction and the mean painted colour in the mask."""
    from viva.config import load_config
    from viva.data.toyworld.scene import PALETTE
    from viva.models.presets import build_editor
    from viva.sft.evaluate import heldout_samples, sample_edits

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/sft/toy.yaml")
    ap.add_argument("--checkpoint", required=True)
    ap.add_argument("--index", type=int, default=0, help="which held-out add prompt")
    args = ap.parse_args()
    cfg = load_config(args.config, [])
    editor = build_editor(dataclasses.replace(cfg.model, base_checkpoint=args.checkpoint))
    s = heldout_samples(cfg, "add", args.index + 1)[args.index]
    word = next(c for c in PALETTE if f" {c} " in f" {s.instruction} ")
    mask = s.mask[0] > 0.5
    for colour, rgb in PALETTE.items():
        variant = dataclasses.replace(s, instruction=s.instruction.replace(word, colour))
        painted = sample_edits(editor, [variant], cfg.sampler, seed=cfg.seed)[0][0][mask].mean(0)
        print(f"{variant.instruction!r:45s} painted {np.round(painted).astype(int)}  asked {tuple(rgb)}")


if __name__ == "__main__":
    main()
