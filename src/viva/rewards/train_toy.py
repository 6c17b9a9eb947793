"""Train the toy world's reward models from a seed: a tiny CLIP and a PickScore-style model of the same class.

The CLIP: symmetric InfoNCE on toy frames <-> captions, where each edit brings its hard negatives (target, source,
a partly applied edit, the edit applied to the wrong object: ``viva.rewards.toy_negatives``), plus pairwise ranking
losses that order CLIP-IF (eq. 4) and CLIP-SP (eq. 5) of graded candidate edits as the toy oracle orders them.
PickScore: the CLIP fine-tuned with a Bradley-Terry loss on the same oracle-ordered candidate pairs.
With ``rollout_prompts > 0`` the candidates also include groups of the base editor's own rollouts (sampled as
Edit-GRPO samples them, on train-split prompts) ranked by the oracle: the on-policy preference data a reward model
is trained on (PickScore's are human choices between model samples; here the oracle chooses), so the rewards order
the edits GRPO actually compares within a group, artifacts included.
Run: ``viva rewards train-toy --out src/viva/assets/rewards --seed 0 --rollout-prompts 240 --threads 2`` (the shipped
weights; docs/rewards.md)
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from viva.rewards.image_preprocess import preprocess, spec_from_open_clip
from viva.rewards.toy_models import EMBED_KEY, WEIGHT_FILES, build_toy_clip, save_toy_clip

# (prompts, group size G, seed) -> per prompt the G edited videos [G, F, H, W, 3] uint8
RolloutSampler = Callable[[Sequence[Any], int, int], List[np.ndarray]]


@dataclass(frozen=True)
class ToyTrainConfig:
    """Sizes and schedules of the toy reward-model training (defaults: ~3-5 min on one CPU thread)."""

    seed: int = 0
    num_pairs: int = 1500  # train-split edits, each with NUM_CANDIDATES oracle-scored candidates
    hybrid_fraction: float = 0.15  # share of hybrid (two-step) edits among them
    clip_steps: int = 1000
    pickscore_steps: int = 500
    batch_prompts: int = 16  # edits per step of the candidate losses, NUM_CANDIDATES frames each
    rank_weight: float = 2.0  # CLIP-IF ranking loss
    sp_rank_weight: float = 1.0  # CLIP-SP ranking loss
    rank_tau: float = 0.05  # temperature of the pairwise logistic loss on cosine differences
    min_gap: float = 0.01  # pairs whose oracle scores differ by less are not ranked
    pickscore_tau: float = 4.0  # on logit_scale * cos: a wider score spread gives PickScore its share of eq. 7
    lr: float = 2e-3
    pickscore_lr: float = 5e-4
    weight_decay: float = 0.05
    threads: int = 1  # other processes share the CPU
    # On-policy preference data: train-split prompts (half hybrid, half single edits) whose base-editor rollouts join
    # the candidates, NUM_CANDIDATES - 2 rollouts each (+ target and source); 0 = synthetic candidates only.
    rollout_prompts: int = 0
    rollout_config: str = "configs/grpo/toy.yaml"  # sampler and base checkpoint of the rollouts (the CLI's sampler)
    # Ranking labels: "soft" (the shipped weights') = the oracle without its flat regions (docs/toyworld.md), so
    # candidates short of the edit (masked PSNR < 12 dB), where a weak base's rollouts live, are still ordered;
    # "hard" = the reported oracle, which ties them.
    labels: str = "soft"

    def __post_init__(self) -> None:
        # OneCycleLR needs a warm-up and a decay phase: fewer than 3 CLIP steps divide by zero inside torch.
        for key, low in (("clip_steps", 3), ("pickscore_steps", 1), ("num_pairs", 1), ("rollout_prompts", 0)):
            if getattr(self, key) < low:
                raise ValueError(f"toy reward training: {key} must be >= {low}, got {getattr(self, key)}")
        if self.labels not in ("soft", "hard"):
            raise ValueError(f"toy reward training: labels must be soft | hard, got {self.labels!r}")
        if not self.min_gap > 0:  # a pair set of only zero gaps would weigh its loss by 0 / 0
            raise ValueError(f"toy reward training: min_gap must be > 0, got {self.min_gap}")


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


@dataclass(frozen=True)
class CandidateData:
    """Candidate edits of ``N`` samples, one frame each: frames ``[N, K, H, W, 3]``, oracle ``[N, K]``."""

    frames: np.ndarray  # [N, K, H, W, 3] uint8 (candidate 0 = target, 1 = source)
    oracle: np.ndarray  # [N, K]
    captions: List[List[Optional[str]]]  # [N][K] scene caption of clean renders, else None
    t_src: List[str]
    t_edit: List[str]
    kinds: List[List[str]]  # [N][K] how each candidate was made (toy_negatives.candidates)


def make_candidates(seed: int, num: int, split: str = "train", hybrid_fraction: float = 0.15,
                    soft: bool = False) -> CandidateData:
    """``num`` edits of ``split`` (plus hybrids) with their hard negatives, one random frame per edit."""
    from viva.data.toyworld import ToyWorld
    from viva.rewards.toy_negatives import candidates

    world = ToyWorld(seed=seed).split(split)
    n_hybrid = int(num * hybrid_fraction)
    samples = [world.sample(i) for i in range(num - n_hybrid)]
    samples += [world.split("hybrid").sample(i + (0 if split == "train" else 100_000)) for i in range(n_hybrid)]
    rng = np.random.default_rng([seed, 4])
    frames, oracle, caps, kinds = [], [], [], []
    for s in samples:
        c = candidates(s, rng, soft=soft)
        frames.append(c.videos[:, int(rng.integers(c.videos.shape[1]))])  # [K, H, W, 3]
        oracle.append(c.oracle)
        caps.append(c.captions)
        kinds.append(c.kinds)
    return CandidateData(np.stack(frames), np.stack(oracle), caps, [s.source_caption for s in samples],
                         [s.edit_caption for s in samples], kinds)


def make_rollout_candidates(cfg: ToyTrainConfig, sample: RolloutSampler) -> CandidateData:
    """Groups of base-editor rollouts on train-split prompts, scored by the oracle, as candidate rows:
    ``[target, source, rollout_1 .. rollout_{K-2}]``, one random frame per row (the same frame for all K).

    ``sample(prompts, group_size, seed)`` draws the rollouts (the CLI passes Edit-GRPO's rollout sampler,
    ``viva.grpo.reward_agreement.rollout_sampler``; rewards/ does not import the recipe)."""
    from viva.data.toyworld import ToyWorld, oracle_score
    from viva.rewards.toy_negatives import NUM_CANDIDATES

    world = ToyWorld(seed=cfg.seed)  # train splits only: held-out prompts (eval_data, split heldout) stay unseen
    n_hyb = cfg.rollout_prompts // 2
    prompts = ([world.split("hybrid").sample(200_000 + i) for i in range(n_hyb)]
               + [world.split("train").sample(200_000 + i) for i in range(cfg.rollout_prompts - n_hyb)])
    edits = sample(prompts, NUM_CANDIDATES - 2, cfg.seed + 11)
    rng = np.random.default_rng([cfg.seed, 5])
    frames, oracle = [], []
    for p, edited in zip(prompts, edits):
        videos = [p.target_video, p.source_video, *edited]  # K x [F, H, W, 3]
        f = int(rng.integers(p.source_video.shape[0]))
        frames.append(np.stack([v[f] for v in videos]))  # [K, H, W, 3]
        oracle.append([oracle_score(v, p, soft=cfg.labels == "soft").total for v in videos])
    k = NUM_CANDIDATES
    return CandidateData(np.stack(frames), np.asarray(oracle, dtype=np.float32),
                         [[p.edit_caption, p.source_caption] + [None] * (k - 2) for p in prompts],
                         [p.source_caption for p in prompts], [p.edit_caption for p in prompts],
                         [["target", "source"] + ["rollout"] * (k - 2) for _ in prompts])


def concat_candidates(a: CandidateData, b: CandidateData) -> CandidateData:
    """Rows of ``a`` then rows of ``b`` (same K)."""
    if a.frames.shape[1:] != b.frames.shape[1:]:
        raise ValueError(f"candidate rows differ: {a.frames.shape[1:]} vs {b.frames.shape[1:]}")
    return CandidateData(np.concatenate([a.frames, b.frames]), np.concatenate([a.oracle, b.oracle]),
                         a.captions + b.captions, a.t_src + b.t_src, a.t_edit + b.t_edit, a.kinds + b.kinds)


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


def _optimizer(model: Any, lr: float, wd: float) -> torch.optim.Optimizer:
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2 and "embedding" not in n]
    other = [p for n, p in model.named_parameters() if not (p.ndim >= 2 and "embedding" not in n)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd}, {"params": other, "weight_decay": 0.0}], lr=lr)


def ranking_loss(scores: torch.Tensor, oracle: torch.Tensor, tau: float, min_gap: float,
                 valid: Optional[torch.Tensor] = None, group: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Pairwise logistic loss: every pair whose oracle scores differ by >= ``min_gap`` should be ordered the same
    way by ``scores`` (``[M]`` each); pairs are weighted by their oracle gap. ``valid [M]`` masks candidates out.
    With ``group [M]`` (the edit each candidate answers) the pairs inside a group, what group-relative advantages
    compare, count as much as all pairs together."""
    gap = oracle[:, None] - oracle[None, :]  # [M, M] > 0 where i should beat j
    use = gap >= min_gap
    if valid is not None:
        use = use & valid[:, None] & valid[None, :]
    diff = (scores[:, None] - scores[None, :]) / tau  # [M, M]
    loss = F.softplus(-diff) * gap

    def mean(sel: torch.Tensor) -> torch.Tensor:
        return loss[sel].sum() / gap[sel].sum() if sel.any() else scores.sum() * 0.0

    if group is None:
        return mean(use)
    return 0.5 * (mean(use) + mean(use & (group[:, None] == group[None, :])))


class _CandidateBatch:
    """One step's candidates: pixels ``[B*K, 3, h, w]``, oracle ``[B*K]``, prompt index per candidate."""

    def __init__(self, data: CandidateData, vocab: CompactTokens, spec: Any, rng: np.random.Generator,
                 batch: int) -> None:
        rows = rng.choice(len(data.t_src), size=batch, replace=False)
        b, k = len(rows), data.frames.shape[1]
        self.k = k
        self.pixels = preprocess(torch.from_numpy(data.frames[rows].reshape(b * k, *data.frames.shape[2:])), spec)
        self.oracle = torch.from_numpy(data.oracle[rows].reshape(-1)).float()  # [B*K]
        self.prompt = torch.arange(b).repeat_interleave(k)  # [B*K]
        self.t_edit = vocab([data.t_edit[i] for i in rows])  # [B, L]
        self.t_src = vocab([data.t_src[i] for i in rows])  # [B, L]
        caps = [(n, c) for n, c in enumerate(x for i in rows for x in data.captions[i]) if c is not None]
        self.cap_rows = torch.tensor([n for n, _ in caps])
        self.captions = [c for _, c in caps]
        self.cap_tokens = vocab(self.captions)


def candidate_losses(model: Any, cb: _CandidateBatch, cfg: ToyTrainConfig) -> Dict[str, torch.Tensor]:
    """Contrastive loss over the captioned candidates, CLIP-IF and CLIP-SP ranking losses over all of them."""
    img = F.normalize(model.encode_image(cb.pixels), dim=-1)  # [B*K, D]
    txt = F.normalize(model.encode_text(torch.cat([cb.t_edit, cb.t_src, cb.cap_tokens])), dim=-1)
    b = len(cb.t_edit)
    t_edit, t_src, t_cap = txt[:b], txt[b:2 * b], txt[2 * b:]  # [B, D], [B, D], [C, D]
    logits = model.logit_scale.exp() * img[cb.cap_rows] @ t_cap.T  # [C, C]
    same = torch.tensor([[a == c for c in cb.captions] for a in cb.captions], dtype=torch.float32)
    target = same / same.sum(1, keepdim=True)
    contrastive = 0.5 * (torch.sum(-target * logits.log_softmax(1), 1).mean()
                         + torch.sum(-target * logits.T.log_softmax(1), 1).mean())
    clip_if = (img * t_edit[cb.prompt]).sum(-1) - (img * t_src[cb.prompt]).sum(-1)  # [B*K] eq. 4, one frame
    src = img[cb.prompt * cb.k + 1]  # candidate 1 of each edit is its source
    clip_sp = (img * src).sum(-1)  # [B*K] eq. 5, one frame
    not_source = torch.arange(len(img)) % cb.k != 1  # the source's CLIP-SP is 1 by definition: not ranked
    return {"contrastive": contrastive,
            "rank_if": ranking_loss(clip_if, cb.oracle, cfg.rank_tau, cfg.min_gap, group=cb.prompt),
            "rank_sp": ranking_loss(clip_sp, cb.oracle, cfg.rank_tau, cfg.min_gap, not_source, cb.prompt)}


def _fit(model: Any, opt: torch.optim.Optimizer, loss: torch.Tensor) -> None:
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()


def train_clip(data: CandidateData, vocab: CompactTokens, cfg: ToyTrainConfig, log: Any = print) -> Any:
    """Contrastive + ranking training of the toy CLIP; returns the (compact-vocabulary) model."""
    model = _compact_model(vocab).train()
    spec = spec_from_open_clip(model)
    opt = _optimizer(model, cfg.lr, cfg.weight_decay)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.clip_steps,
                                                pct_start=max(0.05, 2.0 / cfg.clip_steps))
    rng = np.random.default_rng([cfg.seed, 1])
    for step in range(cfg.clip_steps):
        parts = candidate_losses(model, _CandidateBatch(data, vocab, spec, rng, cfg.batch_prompts), cfg)
        loss = parts["contrastive"] + cfg.rank_weight * parts["rank_if"] + cfg.sp_rank_weight * parts["rank_sp"]
        _fit(model, opt, loss)
        sched.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, np.log(100))
        if step % 100 == 0 or step == cfg.clip_steps - 1:
            log(f"clip step {step:5d} " + " ".join(f"{k} {v.item():.4f}" for k, v in parts.items()))
    return model.eval()


def preference_loss(model: Any, cb: _CandidateBatch, cfg: ToyTrainConfig) -> torch.Tensor:
    """Bradley-Terry on oracle-ordered candidate pairs: -log sigmoid(s_i - s_j) for oracle_i > oracle_j, with
    s = logit_scale * cos(frame, t_edit) (PickScore's score)."""
    img = F.normalize(model.encode_image(cb.pixels), dim=-1)  # [B*K, D]
    txt = F.normalize(model.encode_text(cb.t_edit), dim=-1)  # [B, D]
    s = model.logit_scale.exp() * (img * txt[cb.prompt]).sum(-1)  # [B*K]
    return ranking_loss(s, cb.oracle, cfg.pickscore_tau, cfg.min_gap, group=cb.prompt)


def train_pickscore(clip: Any, data: CandidateData, vocab: CompactTokens, cfg: ToyTrainConfig,
                    log: Any = print) -> Any:
    """Fine-tune a copy of the toy CLIP on oracle-ordered preferences; returns the new model."""
    import copy

    model = copy.deepcopy(clip).train()
    spec = spec_from_open_clip(model)
    opt = _optimizer(model, cfg.pickscore_lr, cfg.weight_decay)
    rng = np.random.default_rng([cfg.seed, 2])
    for step in range(cfg.pickscore_steps):
        loss = preference_loss(model, _CandidateBatch(data, vocab, spec, rng, cfg.batch_prompts), cfg)
        _fit(model, opt, loss)
        if step % 100 == 0 or step == cfg.pickscore_steps - 1:
            log(f"pickscore step {step:5d} loss {loss.item():.4f}")
    return model.eval()


def _save(model: Any, vocab: CompactTokens, path: Path, meta: Dict[str, str]) -> None:
    sd = dict(model.state_dict())
    sd["token_rows"] = sd.pop(EMBED_KEY)  # the compact table is already the rows of vocab.token_ids, in order
    sd["token_ids"] = vocab.token_ids
    save_toy_clip(sd, path, meta)


def run(out_dir: Path, cfg: ToyTrainConfig, log: Any = print, sample: Optional[RolloutSampler] = None
        ) -> Dict[str, Any]:
    """Train both models and write them to ``out_dir``; returns ``{"train_seconds": ...}``. Their held-out metrics
    come from ``viva.rewards.toy_eval.evaluate_toy_models(out_dir)`` (``viva rewards train-toy`` prints both).
    ``sample`` draws the on-policy rollouts (needed when ``cfg.rollout_prompts > 0``)."""
    if cfg.rollout_prompts > 0 and sample is None:
        raise ValueError("toy reward training: rollout_prompts > 0 needs a rollout sampler")
    torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    t0 = time.time()
    data = make_candidates(cfg.seed, cfg.num_pairs, "train", cfg.hybrid_fraction, soft=cfg.labels == "soft")
    if cfg.rollout_prompts > 0:
        data = concat_candidates(data, make_rollout_candidates(cfg, sample))
    captions = [c for row in data.captions for c in row if c is not None]
    vocab = CompactTokens(build_toy_clip()[1], data.t_src + data.t_edit + captions + _extra_captions())
    log(f"{cfg.num_pairs} edits x {data.frames.shape[1]} candidates rendered in {time.time() - t0:.0f} s")
    clip = train_clip(data, vocab, cfg, log)
    pick = train_pickscore(clip, data, vocab, cfg, log)
    meta = {"config": json.dumps(asdict(cfg)), "trained_by": "viva rewards train-toy"}
    out_dir = Path(out_dir)
    _save(clip, vocab, out_dir / WEIGHT_FILES["clip"], meta)
    _save(pick, vocab, out_dir / WEIGHT_FILES["pickscore"], meta)
    return {"train_seconds": round(time.time() - t0, 1)}


def _extra_captions() -> List[str]:
    """Every colour/shape/background word, so held-out captions never hit an unseen token."""
    from viva.data.toyworld import BACKGROUNDS, PALETTE, SHAPES
    from viva.data.toyworld.scene import BACKGROUND_PHRASES

    words = [f"an {c} {s}" if c[0] in "aeiou" else f"a {c} {s}" for c in PALETTE for s in SHAPES]
    return words + [f"an empty scene of {BACKGROUND_PHRASES[b]}" for b in BACKGROUNDS] + ["a, b and c on"]
