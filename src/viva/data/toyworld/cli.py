"""Write a toy-world dataset (JSONL manifest + mp4/png media). Run: viva toyworld --out data/toy --num 64"""

from __future__ import annotations

import argparse
import sys
from typing import List, Optional

from viva.data.manifest import write_manifest
from viva.data.sample import EDIT_TYPES
from viva.data.toyworld.world import SPLIT_CODES, ToyWorld


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="viva toyworld",
        description="Write N toy-world edit pairs as a JSONL manifest plus media files (lossless mp4, png for "
                    "1-frame samples, npz masks). Samples are deterministic in (seed, split, index, edit type).",
    )
    p.add_argument("--out", required=True, help="output folder (manifest.jsonl and media/ are written there)")
    p.add_argument("--num", type=int, required=True, help="number of samples")
    p.add_argument("--split", choices=sorted(SPLIT_CODES), default="train",
                   help="train (no hybrid) | heldout (other random stream) | hybrid (two ops combined)")
    p.add_argument("--seed", type=int, default=0, help="world seed (default 0)")
    p.add_argument("--edit-types", nargs="+", choices=EDIT_TYPES, default=None,
                   help="edit types to draw from (default: the split's list); 'style' gives 1-frame image pairs")
    p.add_argument("--images", action="store_true", help="write every edit as a 1-frame image pair")
    p.add_argument("--frames", type=int, default=8, help="frames per video (default 8)")
    p.add_argument("--size", type=int, nargs=2, default=(32, 32), metavar=("H", "W"), help="frame size (32 32)")
    p.add_argument("--name", default="manifest.jsonl", help="manifest file name")
    return p


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `viva toyworld`."""
    args = _parser().parse_args(argv)
    if args.num <= 0:
        print(f"viva toyworld: --num must be > 0, got {args.num}", file=sys.stderr)
        return 2
    if args.split == "train" and args.edit_types and "hybrid" in args.edit_types:
        print("viva toyworld: hybrid edits are held out of the train split; use --split hybrid", file=sys.stderr)
        return 2
    world = ToyWorld(args.seed, args.frames, args.size[0], args.size[1], split_name=args.split,
                     edit_types=tuple(args.edit_types) if args.edit_types else None)
    make = world.image_pair if args.images else world.sample
    path = write_manifest((make(i) for i in range(args.num)), args.out, name=args.name)
    print(f"wrote {args.num} {args.split} samples to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
