"""Held-out evaluation of an SFT model on the toy world: ODE sampling with CFG, oracle score per edit type.

Run: ``python -m viva.sft.evaluate --config configs/sft/toy.yaml --checkpoint src/viva/assets/toy_base``
(``--checkpoint none`` scores the untrained preset, ``--checkpoint copy-source`` the no-edit baseline that returns
the source video unchanged: perfect preservation, no edit).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from pathlib import Path
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch

from viva.config import SamplerConfig, SFTConfig, load_config
from viva.data.sample import EditSample
from viva.sft.pair_sources import toy_world

VIDEO_EDIT_TYPES = ("add", "remove", "replace", "recolor", "background", "reference")


@torch.no_grad()
def sample_edits(editor, samples: Sequence[EditSample], sampler: SamplerConfig, seed: int) -> np.ndarray:
    """Edit same-shape samples with deterministic ODE sampling + CFG; returns uint8 ``[B, F, H, W, 3]``."""
    from viva.samplers import denoise, sigma_schedule

    editor.eval()
    sources = np.stack([s.source_video for s in samples])  # [B, F, H, W, 3]
    refs = [s.reference_image for s in samples]
    source = editor.encode_videos(sources)  # [B, C, F', h, w]
    reference = editor.encode_reference(refs)  # [B, C, 1, h, w] | None
    cond = editor.encode_condition([s.instruction for s in samples], sources[:, 0], refs)
    null = editor.null_condition(sources[:, 0], refs)
    g = torch.Generator().manual_seed(seed)
    noise = torch.randn(source.shape, generator=g).to(source.device, source.dtype)  # [B, C, F', h, w]

    def velocity_fn(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        return editor.guided_velocity(x, source, sigma, cond, null, sampler.guidance_scale, reference)

    traj = denoise(velocity_fn, noise, sigma_schedule(sampler.num_steps, sampler.shift), kind="ode", record=False)
    return editor.decode_latents(traj.final)  # [B, F, H, W, 3]


def heldout_samples(cfg: SFTConfig, edit_type: str, count: int) -> List[EditSample]:
    """``count`` held-out toy prompts of one edit type (``hybrid`` comes from the hybrid split, never trained)."""
    split = "hybrid" if edit_type == "hybrid" else "heldout"
    world = toy_world(cfg, split)
    return [world.sample(i, edit_type) for i in range(count)]


def oracle_scores_per_type(editor, cfg: SFTConfig, edit_types: Sequence[str], count: int,
                           batch_size: int = 8) -> Dict[str, list]:
    """Every held-out prompt's `OracleScore`, per edit type (``count`` prompts each).

    ``editor=None`` scores the copy-source baseline (the edit is the unchanged source video).
    """
    from viva.data.toyworld import oracle_score

    out: Dict[str, list] = {}
    for t in edit_types:
        samples = heldout_samples(cfg, t, count)
        out[t] = []
        for i in range(0, count, batch_size):
            chunk = samples[i:i + batch_size]
            if editor is None:
                edited = np.stack([s.source_video for s in chunk])
            else:
                edited = sample_edits(editor, chunk, cfg.sampler, seed=cfg.seed + i)
            out[t] += [oracle_score(v, s) for v, s in zip(edited, chunk)]
    return out


def oracle_per_type(editor, cfg: SFTConfig, edit_types: Sequence[str], count: int,
                    batch_size: int = 8) -> Dict[str, float]:
    """Mean oracle total per edit type on ``count`` held-out prompts each, plus their unweighted ``mean``."""
    per_type = oracle_scores_per_type(editor, cfg, edit_types, count, batch_size)
    out = {t: float(np.mean([o.total for o in scores])) for t, scores in per_type.items()}
    out["mean"] = float(np.mean([out[t] for t in edit_types]))
    return out


def summarize(per_type: Dict[str, list]) -> Dict[str, float]:
    """The report row: per type the mean oracle, its s.e.m. over prompts and the edit accuracy; ``mean`` over all
    types given, ``single_mean`` / ``single_edit_accuracy`` over the single-edit types (what docs/sft.md targets)."""
    row: Dict[str, float] = {}
    for t, scores in per_type.items():
        totals = np.array([o.total for o in scores])
        row[t] = float(totals.mean())
        row[f"{t}/sem"] = float(totals.std(ddof=1) / np.sqrt(len(totals))) if len(totals) > 1 else float("nan")
        row[f"{t}/edit_accuracy"] = float(np.nanmean([o.edit_accuracy for o in scores]))
    row["mean"] = float(np.mean([row[t] for t in per_type]))
    single = [t for t in per_type if t in VIDEO_EDIT_TYPES]
    if single:
        row["single_mean"] = float(np.mean([row[t] for t in single]))
        row["single_edit_accuracy"] = float(np.nanmean([o.edit_accuracy for t in single for o in per_type[t]]))
    return row


def write_sample_grid(editor, cfg: SFTConfig, path: Path) -> Path:
    """An mp4 of held-out prompts, each row ``source | edit | target``, one per video edit type."""
    from viva.data.video_io import write_video

    types = [t for t in VIDEO_EDIT_TYPES if t in cfg.data.edit_types] or list(VIDEO_EDIT_TYPES[:1])
    rows = []
    for t in types[: max(1, cfg.sft.num_sample_edits)]:
        s = heldout_samples(cfg, t, 1)
        edited = sample_edits(editor, s, cfg.sampler, seed=cfg.seed)[0]  # [F, H, W, 3]
        rows.append(np.concatenate([s[0].source_video, edited, s[0].target_video], axis=2))  # [F, H, 3W, 3]
    grid = np.concatenate(rows, axis=1)  # [F, rows*H, 3W, 3]
    write_video(path, grid, fps=4)
    return path


def _editor_for(cfg: SFTConfig, checkpoint: Optional[str]):
    from viva.models.presets import build_editor
    from viva.sft.model import build_sft_editor

    if checkpoint == "copy-source":
        return None
    if checkpoint in (None, "none"):
        torch.manual_seed(cfg.seed)  # the untrained model: the same random init SFT starts from
        return build_sft_editor(cfg)
    return build_editor(dataclasses.replace(cfg.model, base_checkpoint=checkpoint))


def main(argv: List[str]) -> int:
    """Print a JSON row of oracle scores per edit type for one checkpoint."""
    p = argparse.ArgumentParser(prog="python -m viva.sft.evaluate", description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True)
    p.add_argument("--checkpoint", default="none",
                   help="base checkpoint dir, 'none' for the untrained preset, or 'copy-source' for the no-edit baseline")
    p.add_argument("--per-type", type=int, default=32)
    p.add_argument("--types", default=",".join(VIDEO_EDIT_TYPES + ("hybrid",)))
    p.add_argument("--label", default=None)
    p.add_argument("--out", default=None, help="append the JSON row to this file")
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    editor = _editor_for(cfg, args.checkpoint)
    scores = summarize(oracle_scores_per_type(editor, cfg, args.types.split(","), args.per_type))
    row = {"label": args.label or args.checkpoint, "per_type": args.per_type, **scores}
    print(json.dumps(row))
    if args.out:
        with open(args.out, "a") as f:
            f.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
