"""How fast does an SFT recipe learn to paint the asked colour? A short from-scratch training on toy image pairs, then
the colour-binding accuracy on held-out add / recolor / replace image pairs, every 100 steps.

The model is the SFT recipe's (``configs/sft/toy.yaml`` + overrides: DiT overrides), trained with its lr, weight
decay, gradient clipping and masked loss in x0 space (``sft.mask_weight``, plain mean); unlike ``viva sft`` there is
no warmup, EMA, condition dropout or video batch, the data are image pairs of ``--types`` and the noise levels come
from ``--sigma``. Accuracy: for each held-out pair, the pixels of the edited region whose target is the new palette colour;
``x0`` = the model's one-step prediction from pure noise (sigma = 1), ``ode`` = the recipe's 10-step ODE sampler (last
evaluation only). Printed per evaluation: mean-colour accuracy (nearest palette colour of the region's mean is the
asked one) over all three types, per-pixel accuracy, then the mean-colour accuracy for add / recolor / replace.

Run (docs/sft.md, "Batch 32"): ``python bench/sft_colour_probe.py --steps 900 --batch-size 32`` vs
``--steps 1800 --batch-size 16`` (same pairs seen; ~5 min each on 2 cores).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

EVAL_TYPES = ("add", "recolor", "replace")


def main() -> None:
    """Train, evaluate every 100 steps, print one line per evaluation."""
    from viva.config import load_config
    from viva.data.toyworld.oracle import COLOR_TOL
    from viva.data.toyworld.scene import PALETTE
    from viva.sft.data import stack_pairs
    from viva.sft.evaluate import sample_edits
    from viva.sft.loss import add_noise, masked_flow_matching_loss, resize_mask_to_latent
    from viva.sft.model import build_sft_editor, select_trainable
    from viva.sft.pair_sources import toy_world
    from viva.sft.timesteps import sample_sigmas

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="configs/sft/toy.yaml")
    ap.add_argument("--steps", type=int, default=900)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--types", default="add,remove,replace,recolor,background,style",
                    help="training image edit types (reference needs its own bucket: left out)")
    ap.add_argument("--sigma", default="recipe", choices=["recipe", "one"],
                    help="recipe: the config's timestep sampling; one: sigma = 1 only")
    ap.add_argument("--eval-per-type", type=int, default=48)
    ap.add_argument("overrides", nargs="*", help="config overrides, e.g. sft.lr=1e-3")
    args = ap.parse_args()
    cfg = load_config(args.config, args.overrides)
    types = args.types.split(",")
    torch.manual_seed(cfg.seed)
    ed = build_sft_editor(cfg)
    ed.vlm.requires_grad_(False)
    params = select_trainable(ed.dit, "full")
    opt = torch.optim.AdamW(params.values(), lr=cfg.sft.lr, weight_decay=cfg.sft.weight_decay)
    train, held = toy_world(cfg, "train"), toy_world(cfg, "heldout")
    palette = np.array(list(PALETTE.values()), dtype=np.float32)  # [P, 3]
    bs = args.batch_size

    def loss_of(step: int) -> torch.Tensor:
        b = stack_pairs([train.image_pair(step * bs + i, types[(step * bs + i) % len(types)]) for i in range(bs)],
                        "image")
        g = torch.Generator().manual_seed(cfg.seed * 100003 + step)
        x0, src = ed.encode_videos(b.target), ed.encode_videos(b.source)  # [B, C, 1, h, w]
        if args.sigma == "one":
            sigma = torch.ones(bs)
        else:
            sigma = sample_sigmas(bs, cfg.sft.timestep_sampling, cfg.sft.timestep_shift, g)
        noisy = add_noise(x0, torch.randn(x0.shape, generator=g), sigma)
        cond = ed.encode_condition(list(b.instructions), b.source[:, 0], list(b.references))
        v = ed.velocity(noisy, src, sigma, cond, None)
        mask = resize_mask_to_latent(torch.from_numpy(b.mask), x0.shape[2:])
        return masked_flow_matching_loss(noisy - sigma.view(-1, 1, 1, 1, 1) * v, x0, mask, cfg.sft.mask_weight)

    evals = [held.image_pair(i, t) for t in EVAL_TYPES for i in range(args.eval_per_type)]

    def region(s) -> tuple[int | None, np.ndarray | None]:
        """The asked palette colour (most common in the target's edit region) and its pixels."""
        t, m = s.target_video[0].astype(np.float32), s.mask[0] > 0.5
        d = ((t[m][:, None, :] - palette[None]) ** 2).sum(-1)  # [N, P]
        near, ok = d.argmin(1), d.min(1) < COLOR_TOL**2  # the oracle's pixel-match tolerance
        if not ok.any():
            return None, None
        c = int(np.bincount(near[ok], minlength=len(palette)).argmax())
        sel = np.zeros_like(m)
        sel[m] = (near == c) & ok
        return c, sel

    @torch.no_grad()
    def evaluate(mode: str) -> str:
        ed.eval()
        hits = {t: [] for t in EVAL_TYPES}
        pix = []
        for i in range(0, len(evals), 16):
            chunk = evals[i:i + 16]
            if mode == "x0":
                b = stack_pairs(chunk, "image")
                src = ed.encode_videos(b.source)
                noise = torch.randn(src.shape, generator=torch.Generator().manual_seed(1))
                cond = ed.encode_condition(list(b.instructions), b.source[:, 0], list(b.references))
                out = ed.decode_latents(noise - ed.velocity(noise, src, torch.ones(len(chunk)), cond, None))
            else:
                out = sample_edits(ed, chunk, cfg.sampler, seed=1)
            for s, o in zip(chunk, out):
                c, sel = region(s)
                if c is None:
                    continue
                p = o[0].astype(np.float32)[sel]  # [N, 3]
                hits[s.edit_type].append(((palette - p.mean(0)) ** 2).sum(-1).argmin() == c)
                pix.append((((p[:, None] - palette[None]) ** 2).sum(-1).argmin(1) == c).mean())
        ed.train()
        per = " ".join(f"{t} {np.mean(h):.2f}" for t, h in hits.items())
        return f"{mode}: colour acc {np.mean([x for h in hits.values() for x in h]):.3f} pixel {np.mean(pix):.3f} ({per})"

    t0 = time.time()
    ed.train()
    for step in range(args.steps):
        loss = loss_of(step)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(list(params.values()), cfg.sft.max_grad_norm)
        opt.step()
        if (step + 1) % 100 == 0:
            line = evaluate("x0") + ("  " + evaluate("ode") if step + 1 == args.steps else "")
            print(f"step {step + 1:5d} loss {loss.item():.4f}  {line}  {time.time() - t0:.0f}s", flush=True)


if __name__ == "__main__":
    main()
