"""Continue training a base checkpoint for N more steps of an SFT recipe (the trainer's own setup on the loaded
weights: fresh AdamW at the recipe's constant lr, fresh EMA, no warmup), then score it on the held-out toy world — to ask "what would more steps of this kind buy?" without a
from-scratch run. docs/sft.md used it to compare 800 extra steps at timestep shift 3 against shift 8.

Run: ``python bench/sft_continue.py --checkpoint src/viva/assets/toy_base --steps 800 --per-type 16 \
    --out /tmp/cont sft.timestep_shift=3.0 sft.lr=1e-3``
Steps are drawn at step indices 10000 + k (batches, noise and sigmas the recipe's own steps never used).
Prints the loss every 100 steps and one JSON row (as ``python -m viva.sft.evaluate`` does) at the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/sft/toy.yaml")
    p.add_argument("--checkpoint", required=True, help="base checkpoint dir to continue from")
    p.add_argument("--steps", type=int, required=True)
    p.add_argument("--per-type", type=int, default=16)
    p.add_argument("--out", required=True, help="output dir (the continued base is written to OUT/base)")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the recipe (e.g. sft.timestep_shift=3.0)")
    args = p.parse_args(argv)

    import dataclasses

    from viva.config import load_config
    from viva.models.checkpoint import load_base_checkpoint
    from viva.models.presets import build_editor
    from viva.sft import evaluate as ev
    from viva.sft.model import build_sft_editor
    from viva.sft.trainer import SFTTrainer

    cfg = load_config(args.config, [*args.overrides, f"output_dir={args.out}", "logging.progress=false",
                                    "sft.refine_from_step=null", "sft.warmup_steps=0", "sft.schedule=constant"])
    editor = build_sft_editor(cfg)  # the recipe's architecture, then the checkpoint's weights
    editor.dit.load_state_dict(load_base_checkpoint(args.checkpoint).state_dict(), strict=True)
    trainer = SFTTrainer(cfg)
    trainer.setup(editor)  # optimizer, schedule and EMA start from the loaded weights
    t0, losses = time.perf_counter(), []
    for k in range(args.steps):
        losses.append(trainer.train_step(10_000 + k)["loss"])
        if (k + 1) % 100 == 0:
            print(f"step {k + 1}: loss {sum(losses[-100:]) / 100:.4f} ({time.perf_counter() - t0:.0f} s)", flush=True)
    base = trainer.export_base(Path(args.out) / "base")
    editor = build_editor(dataclasses.replace(cfg.model, base_checkpoint=str(base)))
    row = ev.summarize(ev.oracle_scores_per_type(editor, cfg, [*ev.VIDEO_EDIT_TYPES, "hybrid"], args.per_type))
    print(json.dumps({"label": f"{args.checkpoint} +{args.steps} {' '.join(args.overrides)}",
                      "per_type": args.per_type, **row}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
