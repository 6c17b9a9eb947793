"""What an SFT base does, as one PNG: held-out toy prompts per edit type, frame 0 of source | edit | target | |edit -
target|, upscaled 4x, with each row's oracle printed (docs/sft.md shows the shipped base's).

Run: ``python bench/sft_strip.py --checkpoint src/viva/assets/toy_base --per-type 3 -o docs/img/sft_base_strip.png``
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np


def main() -> None:
    """Write the PNG and print instruction, oracle, edit accuracy and masked PSNR per row."""
    from PIL import Image

    from viva.config import load_config
    from viva.data.toyworld import oracle_score
    from viva.models.presets import build_editor
    from viva.sft.evaluate import VIDEO_EDIT_TYPES, heldout_samples, sample_edits

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/sft/toy.yaml", help="held-out data and sampler")
    ap.add_argument("--checkpoint", required=True, help="base checkpoint directory")
    ap.add_argument("--per-type", type=int, default=3)
    ap.add_argument("--types", default=",".join(VIDEO_EDIT_TYPES))
    ap.add_argument("-o", "--output", required=True)
    ap.add_argument("overrides", nargs="*")
    args = ap.parse_args()
    cfg = load_config(args.config, args.overrides)
    editor = build_editor(dataclasses.replace(cfg.model, base_checkpoint=args.checkpoint))
    rows = []
    for t in args.types.split(","):
        samples = heldout_samples(cfg, t, args.per_type)
        for s, v in zip(samples, sample_edits(editor, samples, cfg.sampler, seed=cfg.seed)):
            o = oracle_score(v, s)
            print(f"{t:10s} oracle {o.total:.2f}  edit acc {o.edit_accuracy:.2f}  masked PSNR {o.masked_psnr:5.1f} dB"
                  f"  {s.instruction!r}")
            diff = np.abs(v[0].astype(np.int16) - s.target_video[0].astype(np.int16)).astype(np.uint8)
            rows.append(np.concatenate([s.source_video[0], v[0], s.target_video[0], diff], axis=1))  # [H, 4W, 3]
    img = np.concatenate(rows, axis=0)
    Image.fromarray(img).resize((img.shape[1] * 4, img.shape[0] * 4), Image.NEAREST).save(args.output)
    print(f"wrote {args.output}: rows = prompts, columns = source | edit | target | |edit - target| (frame 0)")


if __name__ == "__main__":
    main()
