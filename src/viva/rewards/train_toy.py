"""Train the toy world's reward models from a seed: a tiny CLIP (contrastive, toy frames <-> captions, with each
edit's source/target captions as hard negatives) and a PickScore-style model of the same class fine-tuned from it
on preferences (Bradley-Terry). Run: ``viva rewards train-toy --out src/viva/assets/rewards --seed 0``
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, List, Tuple

import numpy as np
import torch
import torch.nn.functional as F

from viva.rewards.image_preprocess import preprocess, spec_from_open_clip
from viva.rewards.toy_degrade import degrade
from viva.rewards.toy_models import EMBED_KEY, WEIGHT_FILES, build_toy_clip, save_toy_clip


@dataclass(frozen=True)
class ToyTrainConfig:
    """Sizes and schedules of the toy reward-model training (defaults: ~3 min on one CPU thread)."""

    seed: int = 0
    num_pairs: int = 3000  # train-split edits; each gives (source, t_src) and (target, t_edit)
    hybrid_fraction: float = 0.15  # share of hybrid (two-step) edits among them
    clip_steps: int = 1500
    pickscore_steps: int = 400
    batch_pairs: int = 64
    lr: float = 2e-3
    pickscore_lr: float = 5e-4
    weight_decay: float = 0.05
    threads: int = 1  # other processes share the CPU


@dataclass(frozen=True)
class ToyData:
    """Pre-rendered training pairs: videos ``[N, F, H, W, 3]`` uint8 and their two captions."""

    source: np.ndarray  # [N, F, H, W, 3]
    target: np.ndarray  # [N, F, H, W, 3]
    t_src: List[str]
    t_edit: List[str]


def make_data(seed: int, num_pairs: int, split: str = "train", hybrid_fraction: float = 0.15) -> ToyData:
    """Render ``num_pairs`` toy-world edits of ``split`` (plus a share of hybrid edits)."""
    from viva.data.toyworld import ToyWorld

    world = ToyWorld(seed=seed).split(split)
    hybrid = world.split("hybrid")
    n_hybrid = int(num_pairs * hybrid_fraction)
    samples = [world.sample(i) for i in range(num_pairs - n_hybrid)]
    samples += [hybrid.sample(i + (0 if split == "train" else 100_000)) for i in range(n_hybrid)]
    return ToyData(np.stack([s.source_video for s in samples]), np.stack([s.target_video for s in samples]),
                   [s.source_caption for s in samples], [s.edit_caption for s in samples])


class CompactTokens:
    """Maps CLIP BPE ids to a dense 0..n-1 range (order kept, so the EOT id stays the largest: argmax pooling)."""

    def __init__(self, tokenizer: Any, captions: List[str]) -> None:
        self.tokenizer = tokenizer
        ids = torch.unique(tokenizer(sorted(set(captions))))  # sorted; includes 0 (padding), SOT, EOT
        self.token_ids = ids  # [n]
        self.lookup = torch.zeros(int(ids.max()) + 1, dtype=torch.int64)
        self.lookup[ids] = torch.arange(len(ids))

    def __call__(self, texts: List[str]) -> torch.Tensor:
        """Dense ids ``[T, context_length]``; a token unseen at construction is an error."""
        raw = self.tokenizer(texts)  # [T, L]
        if int(raw.max()) >= len(self.lookup) or not torch.isin(raw, self.token_ids).all():
            raise ValueError(f"toy training saw a token outside its vocabulary in {texts[:3]}")
        return self.lookup[raw]


def _compact_model(vocab: CompactTokens) -> Any:
    model, _ = build_toy_clip()
    model.token_embedding = torch.nn.Embedding(len(vocab.token_ids), model.token_embedding.weight.shape[1])
    torch.nn.init.normal_(model.token_embedding.weight, std=0.02)
    return model


def _frames(videos: np.ndarray, rows: np.ndarray, rng: np.random.Generator) -> torch.Tensor:
    """One random frame per chosen video, uint8 ``[b, H, W, 3]``."""
    f = rng.integers(videos.shape[1], size=len(rows))
    return torch.from_numpy(videos[rows, f])


def _scores(model: Any, pixels: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    img = F.normalize(model.encode_image(pixels), dim=-1)  # [I, D]
    txt = F.normalize(model.encode_text(tokens), dim=-1)  # [T, D]
    return model.logit_scale.exp() * img @ txt.T  # [I, T]


def clip_loss(model: Any, pixels: torch.Tensor, tokens: torch.Tensor, captions: List[str]) -> torch.Tensor:
    """Symmetric InfoNCE; images whose captions are identical all count as positives (soft targets)."""
    logits = _scores(model, pixels, tokens)  # [N, N]
    same = torch.tensor([[a == b for b in captions] for a in captions], dtype=torch.float32)  # [N, N]
    target = same / same.sum(1, keepdim=True)
    return 0.5 * (torch.sum(-target * logits.log_softmax(1), 1).mean()
                  + torch.sum(-target * logits.T.log_softmax(1), 1).mean())


def _step_batch(data: ToyData, vocab: CompactTokens, spec: Any, rng: np.random.Generator,
                batch: int) -> Tuple[torch.Tensor, torch.Tensor, List[str]]:
    rows = rng.choice(len(data.t_src), size=batch, replace=False)
    frames = torch.cat([_frames(data.source, rows, rng), _frames(data.target, rows, rng)])  # [2b, H, W, 3]
    captions = [data.t_src[i] for i in rows] + [data.t_edit[i] for i in rows]
    return preprocess(frames, spec), vocab(captions), captions


def _optimizer(model: Any, lr: float, wd: float) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": other, "weight_decay": 0.0}], lr=lr)


def train_clip(data: ToyData, vocab: CompactTokens, cfg: ToyTrainConfig, log: Any = print) -> Any:
    """Contrastive training of the toy CLIP; returns the (compact-vocabulary) model."""
    model = _compact_model(vocab).train()
    spec = spec_from_open_clip(model)
    opt = _optimizer(model, cfg.lr, cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.clip_steps, pct_start=max(0.05, 2.0 / cfg.clip_steps))
    rng = np.random.default_rng([cfg.seed, 1])
    for step in range(cfg.clip_steps):
        pixels, tokens, captions = _step_batch(data, vocab, spec, rng, cfg.batch_pairs)
        loss = clip_loss(model, pixels, tokens, captions)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, np.log(100))
        if step % 100 == 0 or step == cfg.clip_steps - 1:
            log(f"clip step {step:5d} loss {loss.item():.4f}")
    return model.eval()


def preference_loss(model: Any, win: torch.Tensor, lose: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """Bradley-Terry: -log sigmoid(s(win, t) - s(lose, t)), s = logit_scale * cos (PickScore's score)."""
    s_win = _scores(model, win, tokens).diagonal()  # [b]
    s_lose = _scores(model, lose, tokens).diagonal()  # [b]
    return -F.logsigmoid(s_win - s_lose).mean()


def preference_batch(data: ToyData, rows: np.ndarray, rng: np.random.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """(preferred, rejected) uint8 frames for prompts t_edit[rows]: clean target vs a degraded target, or vs the
    unedited source (which does not match t_edit)."""
    clean = _frames(data.target, rows, rng)  # [b, H, W, 3]
    f = rng.integers(data.source.shape[1], size=len(rows))
    worse = degrade(clean, rng)  # [b, H, W, 3]
    use_source = torch.from_numpy(rng.random(len(rows)) < 0.25)
    worse = torch.where(use_source[:, None, None, None], torch.from_numpy(data.source[rows, f]), worse)
    return clean, worse


def train_pickscore(clip: Any, data: ToyData, vocab: CompactTokens, cfg: ToyTrainConfig, log: Any = print) -> Any:
    """Fine-tune a copy of the toy CLIP on toy preferences; returns the new model."""
    import copy

    model = copy.deepcopy(clip).train()
    spec = spec_from_open_clip(model)
    opt = _optimizer(model, cfg.pickscore_lr, cfg.weight_decay)
    rng = np.random.default_rng([cfg.seed, 2])
    for step in range(cfg.pickscore_steps):
        rows = rng.choice(len(data.t_edit), size=cfg.batch_pairs, replace=False)
        win, lose = preference_batch(data, rows, rng)
        tokens = vocab([data.t_edit[i] for i in rows])
        loss = preference_loss(model, preprocess(win, spec), preprocess(lose, spec), tokens)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 100 == 0 or step == cfg.pickscore_steps - 1:
            log(f"pickscore step {step:5d} loss {loss.item():.4f}")
    return model.eval()


def _save(model: Any, vocab: CompactTokens, path: Path, meta: Dict[str, str]) -> None:
    sd = dict(model.state_dict())
    sd["token_rows"] = sd.pop(EMBED_KEY)  # the compact table is already the rows of vocab.token_ids, in order
    sd["token_ids"] = vocab.token_ids
    save_toy_clip(sd, path, meta)


def run(out_dir: Path, cfg: ToyTrainConfig, log: Any = print) -> Dict[str, Any]:
    """Train both models, write them to ``out_dir`` and return their held-out metrics."""
    from viva.rewards.toy_eval import evaluate_toy_models

    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    data = make_data(cfg.seed, cfg.num_pairs, "train", cfg.hybrid_fraction)
    vocab = CompactTokens(build_toy_clip()[1], data.t_src + data.t_edit + _extra_captions())
    clip = train_clip(data, vocab, cfg, log)
    pick = train_pickscore(clip, data, vocab, cfg, log)
    meta = {"config": json.dumps(asdict(cfg)), "trained_by": "viva rewards train-toy"}
    out_dir = Path(out_dir)
    _save(clip, vocab, out_dir / WEIGHT_FILES["clip"], meta)
    _save(pick, vocab, out_dir / WEIGHT_FILES["pickscore"], meta)
    metrics = evaluate_toy_models(out_dir, seed=cfg.seed)
    metrics["train_seconds"] = round(time.time() - t0, 1)
    log(json.dumps(metrics, indent=2))
    return metrics


def _extra_captions() -> List[str]:
    """Every colour/shape/background word, so held-out captions never hit an unseen token."""
    from viva.data.toyworld import BACKGROUNDS, PALETTE, SHAPES
    from viva.data.toyworld.scene import BACKGROUND_PHRASES

    words = [f"an {c} {s}" if c[0] in "aeiou" else f"a {c} {s}" for c in PALETTE for s in SHAPES]
    return words + [f"an empty scene of {BACKGROUND_PHRASES[b]}" for b in BACKGROUNDS] + ["a, b and c on"]
