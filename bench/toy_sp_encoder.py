"""Can CLIP-SP (eq. 5, a source-to-edit cosine) agree with the toy oracle on the base's rollouts if its image encoder
is trained for nothing else?

The shipped toy CLIP serves CLIP-IF and CLIP-SP with one encoder (docs/rewards.md), so its image embedding must
keep the colours and backgrounds the captions name. This script trains image encoders on the CLIP-SP ranking loss
alone (``viva.rewards.train_toy.ranking_loss`` on ``cos(e_src, e_cand)`` over the same oracle-scored candidates
``viva rewards train-toy`` uses: the synthetic ones plus the base's own rollouts, soft labels), once fine-tuned from
the shipped CLIP and once with a freshly initialised image tower per seed, and prints each one's Spearman rho with
the oracle over held-out SDE rollouts of the shipped base (the ``viva rewards eval-toy`` rollouts), beside the
shipped encoder and two pixel statistics (mean squared change from the source, frame-to-frame flicker).

Run: ``python bench/toy_sp_encoder.py [--seeds 0,1,2] [--steps 3000] [--cache DIR]`` (~22 min on 2 cores: ~11 min of
sampling, whose results are cached in ``--cache`` (delete it when the shipped base changes), then ~11 min of training).
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import numpy as np


def cached(path: Path, make) -> dict:
    """``make()`` (a dict of arrays), kept at ``path`` (.npz, loaded without pickle) so a rerun skips the sampling."""
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    out = make()
    tmp = path.with_name(path.stem + ".tmp.npz")
    np.savez(tmp, **out)
    tmp.replace(path)
    return out


def eval_rollouts(prompts: int, group_size: int) -> dict:
    """G SDE rollouts per held-out prompt (hybrid + single edits) of the shipped base, with their oracle scores."""
    from viva.grpo.reward_agreement import AgreementConfig, load_grpo_config, sample_rollouts

    cfg = AgreementConfig(num_hybrid=prompts, num_single=prompts, group_size=group_size, threads=2)
    r = sample_rollouts(load_grpo_config(cfg), cfg)
    return {"src": np.stack([g.request.prompt.source_video for g in r.groups]),
            "edit": np.stack([np.stack(g.edited_videos) for g in r.groups]), "oracle": r.oracle}


def train_candidates(rollout_prompts: int) -> dict:
    """The candidates of ``viva rewards train-toy --seed 0 --rollout-prompts N`` (soft labels): frames and oracle."""
    from viva.grpo.reward_agreement import rollout_sampler
    from viva.rewards.train_toy import ToyTrainConfig, concat_candidates, make_candidates, make_rollout_candidates

    tc = ToyTrainConfig(seed=0, rollout_prompts=rollout_prompts, threads=2)
    data = make_candidates(tc.seed, tc.num_pairs, "train", tc.hybrid_fraction, soft=True)
    data = concat_candidates(data, make_rollout_candidates(tc, rollout_sampler(tc.rollout_config, 2, print)))
    return {"frames": data.frames, "oracle": data.oracle}


def sp_scores(model, tok, ev: dict):
    """CLIP-SP of every rollout with ``model`` as the encoder, through the reward's own embedding path: ``[P, G]``."""
    import torch

    from viva.rewards.clip_backend import OpenClipEncoder, embed_videos
    from viva.rewards.clip_rewards import CLIP_DEFAULTS, clip_sp_from_embeddings
    from viva.rewards.clip_scorer import make_config

    cfg = make_config("clip_sp", CLIP_DEFAULTS, {"model": "toy"})
    enc = OpenClipEncoder(model.eval(), tok, cfg)
    p, g = ev["oracle"].shape
    out = np.zeros((p, g))
    with torch.no_grad():
        for i in range(p):
            src = embed_videos(enc, ev["src"][i][None], cfg)  # [1, n, D]
            out[i] = clip_sp_from_embeddings(src.expand(g, -1, -1), embed_videos(enc, ev["edit"][i], cfg)).numpy()
    return out


def train_sp(model, data: dict, steps: int, lr: float, seed: int, batch: int = 16):
    """The CLIP-SP ranking loss of ``train_toy.candidate_losses`` alone (the source itself is not ranked)."""
    import torch
    import torch.nn.functional as F

    from viva.rewards.image_preprocess import preprocess, spec_from_open_clip
    from viva.rewards.train_toy import ToyTrainConfig, _fit, _optimizer, ranking_loss

    model.train()
    for q in model.parameters():
        q.requires_grad_(True)
    spec = spec_from_open_clip(model)
    tc = ToyTrainConfig()  # the shipped training's ranking temperature, pair gap and weight decay
    opt = _optimizer(model, lr, tc.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.05)
    rng = np.random.default_rng([seed, 7])
    frames, k = data["frames"], data["frames"].shape[1]  # [N, K, H, W, 3]
    for step in range(steps):
        rows = rng.choice(len(frames), size=batch, replace=False)
        pix = preprocess(torch.from_numpy(frames[rows].reshape(batch * k, *frames.shape[2:])), spec)
        oracle = torch.from_numpy(data["oracle"][rows].reshape(-1)).float()
        group = torch.arange(batch).repeat_interleave(k)
        img = F.normalize(model.encode_image(pix), dim=-1)
        sp = (img * img[group * k + 1]).sum(-1)  # candidate 1 of each edit is its source
        _fit(model, opt, ranking_loss(sp, oracle, tc.rank_tau, tc.min_gap, torch.arange(len(img)) % k != 1, group))
        sched.step()
    return model.eval()


def main() -> None:
    """Sample (or load) the data, train the encoders, print one row each."""
    import torch

    from viva.grpo.reward_agreement import agreement
    from viva.rewards.toy_models import build_toy_clip, load_toy_clip

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", default="0,1,2", help="training seeds of the SP-only encoders")
    ap.add_argument("--steps", type=int, default=3000, help="training steps of each fresh image tower")
    ap.add_argument("--prompts", type=int, default=48, help="held-out hybrid prompts, and as many single-edit ones")
    ap.add_argument("--group-size", type=int, default=6)
    ap.add_argument("--rollout-prompts", type=int, default=240, help="train-split prompts of on-policy candidates")
    ap.add_argument("--cache", default="runs/toy_sp_encoder", help="folder for the sampled rollouts")
    args = ap.parse_args()
    torch.set_num_threads(2)
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    ev = cached(cache / f"eval_{args.prompts}x{args.group_size}.npz",
                lambda: eval_rollouts(args.prompts, args.group_size))
    data = cached(cache / f"train_{args.rollout_prompts}.npz", lambda: train_candidates(args.rollout_prompts))
    print(f"{ev['oracle'].size} held-out rollouts, {len(data['frames'])} training edits ({time.time() - t0:.0f} s)")
    hyb = slice(0, args.prompts)

    def row(label: str, scores: np.ndarray) -> None:
        a, h = agreement(scores, ev["oracle"]), agreement(scores[hyb], ev["oracle"][hyb])
        print(f"| {label} | {a['across']:+.3f} | {a['within']:+.3f} | {h['across']:+.3f} | {h['within']:+.3f} |",
              flush=True)

    print("| CLIP-SP encoder / statistic | across | within group | hybrid across | hybrid within |")
    print("|---|---:|---:|---:|---:|")
    src = ev["src"].astype(np.float32)[:, None]
    edit = ev["edit"].astype(np.float32)
    row("pixels: mean squared change from the source", ((edit - src) ** 2).mean((2, 3, 4, 5)))
    row("pixels: minus frame-to-frame flicker", -np.abs(np.diff(edit, axis=2)).mean((2, 3, 4, 5)))
    shipped, tok = load_toy_clip("clip")
    row("shipped toy CLIP (shared with CLIP-IF)", sp_scores(shipped, tok, ev))
    for seed in [int(s) for s in args.seeds.split(",")]:
        torch.manual_seed(seed)
        tuned = train_sp(copy.deepcopy(shipped), data, 500, 5e-4, seed)
        row(f"shipped CLIP + 500 steps of the SP loss only, seed {seed}", sp_scores(tuned, tok, ev))
        torch.manual_seed(seed)
        fresh = copy.deepcopy(shipped)
        fresh.visual.load_state_dict(build_toy_clip(weights_follow=True)[0].visual.state_dict())
        fresh = train_sp(fresh, data, args.steps, 2e-3, seed)
        row(f"fresh image tower, {args.steps} steps of the SP loss only, seed {seed}", sp_scores(fresh, tok, ev))
    print(f"done in {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
