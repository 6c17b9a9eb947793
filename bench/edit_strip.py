"""Before/after picture: held-out toy prompts edited by the base and by base + the GRPO LoRA, as one PNG.

Each row is one prompt, frames 0 and F-1 side by side: source | base edit | base + LoRA edit | target, with the
oracle score of both edits printed per row. The base and LoRA load through viva edit's own loader
(`viva.inference.loader.load_editor`), sampling is the deterministic ODE of the config's sampler.

Run: ``python bench/edit_strip.py --base src/viva/assets/toy_base --lora runs/grpo-toy/lora -o docs/img/grpo_strip.png``
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np


def main() -> None:
    """Write the PNG and print the oracle of every row."""
    from PIL import Image

    from viva.config import load_config
    from viva.data.dataset import build_dataset
    from viva.data.toyworld import oracle_score
    from viva.inference.loader import EditorSpec, load_editor
    from viva.sft.evaluate import sample_edits

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/grpo/toy.yaml", help="sampler and eval data (eval_data section)")
    ap.add_argument("--base", required=True)
    ap.add_argument("--lora", required=True)
    ap.add_argument("--prompts", type=int, default=6)
    ap.add_argument("-o", "--output", required=True)
    args = ap.parse_args()
    cfg = load_config(args.config, [])
    sampler = dataclasses.replace(cfg.sampler, kind="ode")
    if cfg.eval_data is None or cfg.eval_data.source != "toyworld":
        raise SystemExit(f"{args.config}: eval_data must be a toy-world section (the strip needs the oracle)")
    eval_set = build_dataset(cfg.eval_data, split=cfg.eval_data.split or "heldout")  # the driver's eval prompts
    prompts = [eval_set[i] for i in range(args.prompts)]
    edits = [sample_edits(load_editor(EditorSpec(base=args.base, loras=lo)), prompts, sampler, seed=0)
             for lo in ((), (args.lora,))]  # [2][B, F, H, W, 3]
    rows = []
    for i, p in enumerate(prompts):
        before, after = (oracle_score(e[i], p).total for e in edits)
        print(f"{p.instruction!r}: oracle base {before:.3f} -> base + LoRA {after:.3f}")
        last = p.source_video.shape[0] - 1
        rows.append(np.concatenate([np.concatenate([p.source_video[f], edits[0][i][f], edits[1][i][f],
                                                    p.target_video[f]], axis=1) for f in (0, last)], axis=1))
    img = np.concatenate(rows, axis=0)  # [rows*H, 8W, 3]
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).resize((img.shape[1] * 3, img.shape[0] * 3), Image.NEAREST).save(args.output)
    print(f"wrote {args.output}: rows = prompts; columns = frame 0 then frame {last}: source | base | base + LoRA | target")


if __name__ == "__main__":
    main()
