"""Held-out quality of the toy reward models: zero-shot caption choice among 8, how often CLIP-IF ranks the
ground-truth edit above the unedited source, a partly applied edit and a wrong-object edit, PickScore's preference
accuracy, and (``viva rewards eval-toy``) rank agreement with the oracle on base rollouts
(``viva.grpo.reward_agreement``).
Run: ``viva rewards eval-toy`` (the static part is also printed at the end of ``viva rewards train-toy``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np
import torch

from viva.rewards.clip_backend import ClipModelConfig, OpenClipEncoder, embed_texts, embed_videos
from viva.rewards.clip_rewards import clip_if_from_embeddings
from viva.rewards.toy_degrade import KINDS, degrade
from viva.rewards.toy_models import WEIGHT_FILES, load_toy_clip


def _encoder(kind: str, weights_dir: Optional[Path]) -> OpenClipEncoder:
    path = None if weights_dir is None else Path(weights_dir) / WEIGHT_FILES[kind]
    model, tok = load_toy_clip(kind, path)
    return OpenClipEncoder(model, tok, ClipModelConfig(model="toy"))


def caption_choice_accuracy(enc: OpenClipEncoder, data: Any, rng: np.random.Generator) -> float:
    """For each held-out target video: pick t_edit among 8 captions (t_edit, t_src and 6 other held-out captions)."""
    pool = sorted(set(data.t_edit) | set(data.t_src))
    frames = embed_videos(enc, data.target, ClipModelConfig(model="toy", micro_batch_size=64))  # [N, n, D]
    correct = 0
    for i in range(len(data.t_edit)):
        others = [c for c in rng.choice(pool, size=12, replace=False) if c not in (data.t_edit[i], data.t_src[i])]
        cands = [data.t_edit[i], data.t_src[i]] + others[:6]
        sims = torch.einsum("nd,cd->c", frames[i], embed_texts(enc, cands))  # [8]
        correct += int(sims.argmax().item() == 0)
    return correct / len(data.t_edit)


def clip_if_win_rate(enc: OpenClipEncoder, data: Any) -> float:
    """Fraction of held-out edits with CLIP-IF(target video) > CLIP-IF(unedited source video) (eq. 4)."""
    cfg = ClipModelConfig(model="toy", micro_batch_size=64)
    t_edit, t_src = embed_texts(enc, data.t_edit), embed_texts(enc, data.t_src)  # [N, D]
    tgt = clip_if_from_embeddings(embed_videos(enc, data.target, cfg), t_edit, t_src)  # [N]
    src = clip_if_from_embeddings(embed_videos(enc, data.source, cfg), t_edit, t_src)  # [N]
    return float((tgt > src).float().mean())


def clip_if_hard_negatives(enc: OpenClipEncoder, cands: Any) -> Dict[str, float]:
    """How often CLIP-IF (one frame) ranks the target above each captioned hard negative of the same edit."""
    cfg = ClipModelConfig(model="toy", micro_batch_size=256)
    n, k = cands.oracle.shape
    frames = embed_videos(enc, cands.frames.reshape(n * k, 1, *cands.frames.shape[2:]), cfg).reshape(n, k, -1)
    t_edit, t_src = embed_texts(enc, cands.t_edit), embed_texts(enc, cands.t_src)  # [N, D]
    clip_if = torch.einsum("nkd,nd->nk", frames, t_edit) - torch.einsum("nkd,nd->nk", frames, t_src)  # [N, K]
    out = {}
    for kind in ("source", "partial", "wrong_object"):
        cols = [(i, j) for i in range(n) for j, name in enumerate(cands.kinds[i]) if name == kind]
        if cols:
            out[f"vs_{kind}"] = float(np.mean([float(clip_if[i, 0] > clip_if[i, j]) for i, j in cols]))
            out[f"n_{kind}"] = len(cols)
    return out


def preference_accuracy(enc: OpenClipEncoder, data: Any, rng: np.random.Generator) -> Dict[str, float]:
    """How often PickScore prefers the clean target frame over each degradation, and over the source frame."""
    clean = torch.from_numpy(data.target[:, 0])  # [N, H, W, 3]
    text = embed_texts(enc, data.t_edit)  # [N, D]
    cfg = ClipModelConfig(model="toy", micro_batch_size=256)

    def score(frames: torch.Tensor) -> torch.Tensor:
        return (embed_videos(enc, frames.numpy()[:, None], cfg)[:, 0] * text).sum(-1)  # [N]

    base = score(clean)
    out = {}
    for k, kind in enumerate(KINDS):
        worse = degrade(clean, rng, kind=k)
        out[f"vs_{kind}"] = float((base > score(worse)).float().mean())
    out["vs_source"] = float((base > score(torch.from_numpy(data.source[:, 0]))).float().mean())
    out["mean"] = float(np.mean(list(out.values())))
    return out


def evaluate_toy_models(weights_dir: Optional[Path] = None, seed: int = 0, num: int = 400) -> Dict[str, Any]:
    """All three held-out metrics (split ``heldout`` of the toy world, plus hybrid edits)."""
    from viva.rewards.train_toy import make_candidates, make_data

    data = make_data(seed, num, "heldout")
    cands = make_candidates(seed, num, "heldout")
    rng = np.random.default_rng([seed, 3])
    clip = _encoder("clip", weights_dir)
    pick = _encoder("pickscore", weights_dir)
    return {
        "heldout_samples": num,
        "caption_choice_acc_8way": round(caption_choice_accuracy(clip, data, rng), 4),
        "chance": 0.125,
        "clip_if_target_beats_source": round(clip_if_win_rate(clip, data), 4),
        "clip_if_target_beats_1frame": {k: round(v, 4) for k, v in clip_if_hard_negatives(clip, cands).items()},
        "pickscore_preference_acc": {k: round(v, 4) for k, v in preference_accuracy(pick, data, rng).items()},
        "pickscore_caption_choice_acc_8way": round(caption_choice_accuracy(pick, data, rng), 4),
    }
