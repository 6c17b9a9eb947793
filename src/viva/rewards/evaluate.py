"""`viva eval`: VIE-Bench-style metrics of edited videos on a manifest, reported per task like VIVA's Table 1.

Metrics (per sample, averaged per task): CLIP-T = C(V_edit, t_edit) (frame-text alignment); video-text = cosine
of the mean-pooled frame embedding with t_edit (CLIP4Clip "meanP": ViCLIP is not packaged anywhere, and a
parameter-free pooling of the same CLIP keeps the metric reproducible); CLIP-IF / CLIP-SP (eqs. 4-5); PickScore;
CLIP and DINO consistency = mean cosine of consecutive frames; the toy-world oracle; optional VLM-judge scores.

Run: ``viva eval --config configs/eval/toy.yaml [manifest=... edited=DIR]``
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np
import torch

from viva.data.sample import EditSample
from viva.rewards.clip_backend import ClipModelConfig, embed_texts, embed_videos, frame_indices
from viva.rewards.clip_scorer import get_encoder, video_text_similarity, video_video_similarity
from viva.training.atomic import atomic_write_text

TASKS = ("add", "replace", "remove", "hybrid", "reference")  # Table 1's columns; other edit types follow them
METRICS = {  # key -> (column label, higher is better)
    "clip_t": ("CLIP-T", True), "video_text": ("Video-T (meanP)", True), "clip_if": ("CLIP-IF", True),
    "clip_sp": ("CLIP-SP", True), "pickscore": ("PickScore", True), "clip_consistency": ("CLIP cons.", True),
    "dino_consistency": ("DINO cons.", True), "oracle": ("Oracle", True),
    "judge_instruction_following": ("VLM IF", True), "judge_source_preservation": ("VLM SP", True),
    "judge_editing_quality": ("VLM EQ", True), "judge_subject_similarity": ("VLM Subj.", True),
}


@dataclass(frozen=True)
class EvalItem:
    """One manifest sample and the edited video being judged."""

    sample: EditSample
    edited: np.ndarray  # [F, H, W, 3] uint8


def load_items(cfg: Any) -> List[EvalItem]:
    """The manifest's samples paired with their edited videos (``cfg.edited``: target | source | a folder)."""
    from viva.data.manifest import ManifestDataset
    from viva.data.video_io import read_image, read_video

    data = ManifestDataset(cfg.manifest)
    n = len(data) if cfg.max_samples <= 0 else min(cfg.max_samples, len(data))
    items = []
    for i in range(n):
        s = data[i]
        if cfg.edited in ("target", "source"):
            video = s.target_video if cfg.edited == "target" else s.source_video
            if video is None:
                raise ValueError(f"sample {s.sample_id}: manifest has no target video to evaluate")
        else:
            video = _read_edit(Path(cfg.edited), s.sample_id, read_video, read_image)
        if video.shape != s.source_video.shape:
            raise ValueError(f"sample {s.sample_id}: edited video {video.shape} != source {s.source_video.shape}")
        items.append(EvalItem(s, video))
    return items


def _read_edit(folder: Path, sample_id: str, read_video: Any, read_image: Any) -> np.ndarray:
    if (folder / f"{sample_id}.mp4").is_file():
        return read_video(folder / f"{sample_id}.mp4")[0]
    if (folder / f"{sample_id}.png").is_file():
        return read_image(folder / f"{sample_id}.png")[None]
    raise FileNotFoundError(f"sample {sample_id}: no edited video {folder}/{sample_id}.mp4 or .png")


def _consistency(frames: torch.Tensor) -> torch.Tensor:
    """Mean cosine of consecutive frames ``[B, n, D]`` -> ``[B]`` (nan for 1-frame videos)."""
    if frames.shape[1] < 2:
        return torch.full((frames.shape[0],), float("nan"))
    return (frames[:, 1:] * frames[:, :-1]).sum(-1).mean(1)


def clip_metrics(items: List[EvalItem], cfg: Any) -> Dict[str, np.ndarray]:
    """CLIP-T, video-text, CLIP-IF, CLIP-SP, CLIP consistency and PickScore for every item."""
    ccfg = ClipModelConfig(model=cfg.clip_model, pretrained=cfg.clip_pretrained, device=cfg.device,
                           micro_batch_size=cfg.micro_batch_size, num_frames=cfg.num_frames)
    enc = get_encoder(ccfg)
    edited = np.stack([it.edited for it in items])  # [N, F, H, W, 3]
    e = embed_videos(enc, edited, ccfg)  # [N, n, D]
    s = embed_videos(enc, np.stack([it.sample.source_video for it in items]), ccfg)  # [N, n, D]
    t_edit = embed_texts(enc, [it.sample.edit_caption for it in items])  # [N, D]
    t_src = embed_texts(enc, [it.sample.source_caption for it in items])  # [N, D]
    pooled = torch.nn.functional.normalize(e.mean(1), dim=-1)  # [N, D] meanP video embedding
    out = {"clip_t": video_text_similarity(e, t_edit), "video_text": (pooled * t_edit).sum(-1),
           "clip_if": video_text_similarity(e, t_edit) - video_text_similarity(e, t_src),
           "clip_sp": video_video_similarity(s, e), "clip_consistency": _consistency(e)}
    pick_model = "toy-pickscore" if cfg.pickscore_model == "toy" else cfg.pickscore_model
    pcfg = ClipModelConfig(model=pick_model, backend="open_clip" if pick_model.startswith("toy") else "transformers",
                           processor=None if pick_model.startswith("toy") else
                           "laion/CLIP-ViT-H-14-laion2B-s32B-b79K", device=cfg.device,
                           micro_batch_size=cfg.micro_batch_size, num_frames=cfg.num_frames)
    penc = get_encoder(pcfg)
    pe = embed_videos(penc, edited, pcfg)
    out["pickscore"] = penc.logit_scale * video_text_similarity(pe, embed_texts(penc, [it.sample.edit_caption
                                                                                        for it in items]))
    return {k: v.double().numpy() for k, v in out.items()}


def dino_consistency(items: List[EvalItem], cfg: Any) -> np.ndarray:
    """Mean cosine of consecutive frames' DINO features, per item."""
    from viva.rewards.dino import load_dino

    enc = load_dino(cfg.dino_model, cfg.device, cfg.seed)
    edited = np.stack([it.edited for it in items])  # [N, F, H, W, 3]
    idx = frame_indices(edited.shape[1], cfg.num_frames)
    n = len(idx)
    feats = torch.cat([enc.encode(edited[i:i + cfg.micro_batch_size][:, idx].reshape(-1, *edited.shape[2:]))
                       for i in range(0, len(edited), cfg.micro_batch_size)])  # [N*n, D]
    return _consistency(feats.reshape(len(edited), n, -1)).double().numpy()


def oracle_metric(items: List[EvalItem]) -> Optional[np.ndarray]:
    """Toy-world oracle total per item (None unless every sample carries a scene)."""
    if not all(it.sample.scene_json for it in items):
        return None
    from viva.data.toyworld import oracle_score

    return np.array([oracle_score(it.edited, it.sample).total for it in items], dtype=np.float64)


def judge_metrics(items: List[EvalItem], cfg: Any) -> Dict[str, np.ndarray]:
    """VLM-judge scores per item (nan subject similarity where there is no reference)."""
    from viva.rewards.judge import CRITERIA, VLMJudge

    judge = VLMJudge(cfg.judge_url, cfg.judge_model or "default", os.environ.get("VIVA_JUDGE_API_KEY"),
                     max_frames=cfg.judge_max_frames)
    rows = [judge.judge(it.sample.sample_id, it.sample.instruction, it.sample.source_video, it.edited,
                        it.sample.reference_image) for it in items]
    return {f"judge_{c}": np.array([np.nan if getattr(r, c) is None else getattr(r, c) for r in rows])
            for c in CRITERIA}


def per_task(items: List[EvalItem], metrics: Dict[str, np.ndarray]) -> Dict[str, Dict[str, float]]:
    """Mean of every metric per edit type (Table 1 columns first) and over all samples (nan-aware)."""
    groups: Dict[str, List[int]] = defaultdict(list)
    for i, it in enumerate(items):
        groups[it.sample.edit_type].append(i)
    order = [t for t in TASKS if t in groups] + sorted(t for t in groups if t not in TASKS)
    table: Dict[str, Dict[str, float]] = {}
    for task, rows in [(t, groups[t]) for t in order] + [("all", list(range(len(items))))]:
        table[task] = {k: _nanmean(v[rows]) for k, v in metrics.items()}
        table[task]["n"] = len(rows)
    return table


def _nanmean(x: np.ndarray) -> float:
    return float(np.nanmean(x)) if np.isfinite(x).any() else float("nan")


def markdown_table(table: Dict[str, Dict[str, float]], method: str) -> str:
    """Table-1 layout: one column per task (add / replace / remove / hybrid / reference, then others, then all),
    one row per metric, for one method."""
    tasks = list(table)
    lines = [f"**{method}**", "", "| Metric | " + " | ".join(t.capitalize() for t in tasks) + " |",
             "|---|" + "---:|" * len(tasks)]
    lines.append("| n | " + " | ".join(str(int(table[t]["n"])) for t in tasks) + " |")
    for key, (label, higher) in METRICS.items():
        if key not in table["all"]:
            continue
        cells = ["–" if np.isnan(table[t][key]) else f"{table[t][key]:.4f}" for t in tasks]
        lines.append(f"| {label} {'↑' if higher else '↓'} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def run_eval(cfg: Any) -> Dict[str, Any]:
    """Compute every metric, write ``metrics.json`` and ``table.md`` into ``cfg.output_dir``; return the report."""
    # 1. Load the samples and the edits being judged
    items = load_items(cfg)
    if not items:
        raise ValueError(f"manifest {cfg.manifest} has no samples")
    # 2. Model-based metrics
    metrics = clip_metrics(items, cfg)
    metrics["dino_consistency"] = dino_consistency(items, cfg)
    oracle = oracle_metric(items)
    if oracle is not None:
        metrics["oracle"] = oracle
    if cfg.judge_url:
        metrics.update(judge_metrics(items, cfg))
    # 3. Aggregate per task and write
    table = per_task(items, metrics)
    report = {"method": cfg.method_name, "manifest": str(cfg.manifest), "edited": cfg.edited,
              "models": {"clip": cfg.clip_model, "pickscore": cfg.pickscore_model, "dino": cfg.dino_model},
              "video_text_note": "mean-pooled CLIP frame embeddings (CLIP4Clip meanP); ViCLIP is not packaged",
              "per_task": table,
              "per_sample": {it.sample.sample_id: {k: float(v[i]) for k, v in metrics.items()}
                             for i, it in enumerate(items)}}
    out = Path(cfg.output_dir)
    atomic_write_text(out / "metrics.json", json.dumps(report, indent=2, allow_nan=True))
    atomic_write_text(out / "table.md", markdown_table(table, cfg.method_name))
    return report


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `viva eval`."""
    from viva.config import load_config

    p = argparse.ArgumentParser(prog="viva eval", description=__doc__.splitlines()[0])
    p.add_argument("--config", default=None, help="an eval YAML (configs/eval/toy.yaml)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. manifest=data/m.jsonl edited=DIR")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides, recipe="eval")
    report = run_eval(cfg)
    print(markdown_table(report["per_task"], cfg.method_name))
    print(f"wrote {Path(cfg.output_dir) / 'metrics.json'} and table.md")
    return 0
