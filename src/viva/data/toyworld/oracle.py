"""The toy world's oracle: how well an edited video matches the exact ground truth (formula in docs/toyworld.md)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from viva.data.sample import EditSample
from viva.data.toyworld.edits import touched_ids
from viva.data.toyworld.scene import BACKGROUND_ID, parse_scene_json, render_ids

PSNR_CAP = 100.0  # dB reported for an exact match
PSNR_LOW, PSNR_HIGH = 12.0, 35.0  # q(psnr) maps [PSNR_LOW, PSNR_HIGH] dB linearly onto [0, 1]
COLOR_TOL = 40.0  # a pixel matches when its RGB L2 distance to the ground truth is below this (palette gaps >= 60)
MATCH_FRACTION = 0.5  # an element is correct when at least this fraction of its pixels match
# Weights of the total; terms that are undefined for a sample (nan) are dropped and the rest renormalised.
WEIGHTS = {"masked": 0.35, "unmasked": 0.15, "edit": 0.35, "preserve": 0.15}


@dataclass(frozen=True)
class OracleScore:
    """Oracle terms of one edited video; ``total`` in [0, 1]. nan marks a term undefined for this sample."""

    total: float
    masked_psnr: float  # dB inside the edit mask (the edit itself)
    unmasked_psnr: float  # dB outside the mask (preservation)
    object_accuracy: float  # fraction of all scene elements correct
    edit_accuracy: float  # fraction of the elements the edit touches that are correct
    preserve_accuracy: float  # fraction of the untouched elements that are correct


def _psnr(sq_err: np.ndarray, region: np.ndarray) -> float:
    if not region.any():
        return math.nan
    mse = float(sq_err[region].mean())
    return PSNR_CAP if mse <= 0 else min(PSNR_CAP, 10.0 * math.log10(255.0**2 / mse))


def _quality(psnr: float, low: float = PSNR_LOW) -> float:
    return psnr if math.isnan(psnr) else float(np.clip((psnr - low) / (PSNR_HIGH - low), 0.0, 1.0))


def _elements(sample: EditSample, shape: tuple) -> list[tuple[np.ndarray, bool]]:
    """(region [F, H, W] bool, touched) for every target object, the background and every removed object."""
    if sample.scene_json is None:
        return []
    source, target, style = parse_scene_json(sample.scene_json)
    if style is not None:
        return [(np.ones(shape, dtype=bool), True)]
    ids_src, ids_tgt = render_ids(source, *shape), render_ids(target, *shape)  # [F, H, W] each
    touched = touched_ids(source, target)
    out = [(ids_tgt == o.oid, o.oid in touched) for o in target.objects]
    out.append((ids_tgt == BACKGROUND_ID, BACKGROUND_ID in touched))
    out += [(ids_src == o.oid, True) for o in source.objects if target.find(o.oid) is None]
    return [(region, t) for region, t in out if region.any()]  # fully occluded elements cannot be judged


def _mean(xs: list[float]) -> float:
    return float(np.mean(xs)) if xs else math.nan


def oracle_score(edited: np.ndarray, sample: EditSample, soft: bool = False, dense: bool = False,
                 gated: bool = False) -> OracleScore:
    """Score an edited uint8 ``[F, H, W, 3]`` video against the sample's ground-truth target.

    ``soft=True`` is the same formula without its flat regions, for use as a training reward (docs/toyworld.md):
    q maps PSNR from 0 dB (not 12) and an element counts min(1, matching fraction / 0.5) instead of 0 or 1. The
    hard oracle (the default) is the one every evaluation reports. ``dense=True`` (with ``soft``) also removes the
    per-pixel threshold: a pixel at RGB distance d > 40 from the target counts (40 / d)^2 instead of 0, so an
    object drawn in a colour that is closer but not yet right already earns element credit. ``gated=True`` (a
    training-reward form, hard or soft) multiplies the two edit terms by the hard q(unmasked PSNR), so paint sprayed
    outside the edit region costs the edit's credit, not only the preservation terms (docs/grpo.md, rung a).
    """
    target = sample.target_video
    if target is None:
        raise ValueError(f"sample {sample.sample_id}: the oracle needs a ground-truth target_video")
    if not isinstance(edited, np.ndarray) or edited.dtype != np.uint8 or edited.shape != target.shape:
        raise ValueError(f"sample {sample.sample_id}: edited video must be uint8 {target.shape}, got "
                         f"{getattr(edited, 'dtype', type(edited))} {getattr(edited, 'shape', '')}")
    diff = edited.astype(np.float32) - target.astype(np.float32)  # [F, H, W, 3]
    sq_err = (diff**2).mean(axis=-1)  # [F, H, W]
    if dense and not soft:
        raise ValueError("oracle_score: dense=True is a form of the soft oracle; pass soft=True as well")
    dist = np.sqrt((diff**2).sum(axis=-1))  # [F, H, W]
    match = (np.where(dist < COLOR_TOL, 1.0, (COLOR_TOL / np.maximum(dist, COLOR_TOL)) ** 2) if dense
             else dist < COLOR_TOL)  # [F, H, W] per-pixel credit
    mask = sample.mask > 0.5 if sample.mask is not None else (sample.source_video != target).any(-1)
    masked, unmasked = _psnr(sq_err, mask), _psnr(sq_err, ~mask)
    low = 0.0 if soft else PSNR_LOW

    def correct(frac: float) -> float:
        return min(1.0, frac / MATCH_FRACTION) if soft else float(frac >= MATCH_FRACTION)

    elements = [(correct(float(match[r].mean())), t) for r, t in _elements(sample, target.shape[:3])]
    edit_acc = _mean([ok for ok, t in elements if t])
    keep_acc = _mean([ok for ok, t in elements if not t])
    terms = {"masked": _quality(masked, low), "unmasked": _quality(unmasked, low), "edit": edit_acc,
             "preserve": keep_acc}
    if gated and not math.isnan(unmasked):
        gate = _quality(unmasked)  # the hard q, from 12 dB, in both forms: a spray below 12 dB earns no edit credit
        terms["masked"], terms["edit"] = terms["masked"] * gate, terms["edit"] * gate
    used = {k: v for k, v in terms.items() if not math.isnan(v)}
    total = sum(WEIGHTS[k] * v for k, v in used.items()) / sum(WEIGHTS[k] for k in used)
    return OracleScore(
        total=float(total), masked_psnr=masked, unmasked_psnr=unmasked,
        object_accuracy=_mean([ok for ok, _ in elements]), edit_accuracy=edit_acc, preserve_accuracy=keep_acc,
    )


def oracle_scores(edited: np.ndarray | Sequence[np.ndarray], samples: Sequence[EditSample]) -> List[OracleScore]:
    """Batched ``oracle_score``: ``edited`` is uint8 ``[B, F, H, W, 3]`` or a list of ``[F, H, W, 3]``."""
    if len(edited) != len(samples):
        raise ValueError(f"oracle_scores: {len(edited)} edited videos for {len(samples)} samples")
    return [oracle_score(np.asarray(v), s) for v, s in zip(edited, samples)]
