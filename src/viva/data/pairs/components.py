"""The four pluggable components of paired-data synthesis, as protocols, and the records they exchange.

Every component is built as ``Component(spec: StageSpec, cfg: DataPipelineConfig)`` inside the actor that runs
it (weights load once per actor) and validates ``spec.options`` with :func:`check_options`. Frames are uint8
``[F, H, W, 3]``, masks float32 ``[F, H, W]`` in {0, 1} (1 = the object), boxes ``(x0, y0, x1, y1)`` in pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Protocol, Sequence, Tuple

import numpy as np
import torch

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
Box = Tuple[float, float, float, float]  # x0, y0, x1, y1 in pixels of the clip


class StageOptionsError(ValueError):
    """A stage's ``options`` has an unknown key or a bad value; the message names the stage and the key."""


@dataclass(frozen=True)
class Detection:
    """The object a pair is built around: which query matched, where (on ``frame``), how sure."""

    label: str
    box: Box
    score: float
    frame: int = 0


@dataclass(frozen=True)
class PairCandidate:
    """What quality control judges: the clip, its inpainted version, the masks and the object's name."""

    video_id: str
    label: str
    source: np.ndarray  # [F, H, W, 3] uint8
    edited: np.ndarray  # [F, H, W, 3] uint8
    masks: np.ndarray  # [F, H, W] float32


@dataclass(frozen=True)
class QCVerdict:
    """Keep the pair or not, the judge's 0-10 score, and why."""

    keep: bool
    score: float
    reason: str


class Detector(Protocol):
    """Finds one object (from ``queries``) in a clip."""

    def detect(self, frames: np.ndarray, queries: Sequence[str]) -> Optional[Detection]:
        """The best detection, or None when no query is found above the thresholds."""
        ...


class Tracker(Protocol):
    """Segments the object in the box on every frame."""

    def track(self, frames: np.ndarray, detection: Detection) -> np.ndarray:
        """Masks ``[F, H, W]`` float32 in {0, 1}."""
        ...


class Inpainter(Protocol):
    """Erases the masked object from every frame."""

    def inpaint(self, frames: np.ndarray, masks: np.ndarray, seed: int) -> np.ndarray:
        """Frames ``[F, H, W, 3]`` uint8, identical to ``frames`` outside the (dilated) masks."""
        ...


class QualityCheck(Protocol):
    """Accepts or rejects a synthesised pair."""

    def check(self, pair: PairCandidate) -> QCVerdict:
        """The verdict on one pair."""
        ...


def check_options(stage: str, options: Mapping[str, Any], defaults: Mapping[str, Any]) -> Dict[str, Any]:
    """``defaults`` overridden by ``options``; an unknown key is an error naming the stage and the known keys."""
    unknown = sorted(set(options) - set(defaults))
    if unknown:
        raise StageOptionsError(f"pairs.{stage}.options: unknown key(s) {unknown}; known: {sorted(defaults)}")
    return {**defaults, **dict(options)}


def require_model(stage: str, model: Optional[str]) -> str:
    """The stage's weights (hub id or local path); a missing one is an error naming the key."""
    if not model:
        raise StageOptionsError(f"pairs.{stage}.model must name the weights (a hub id or a local directory)")
    return model
