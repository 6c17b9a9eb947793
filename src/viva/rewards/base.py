"""The reward-model contract: a batch of edits in, one float per sample (plus named sub-scores) out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class RewardBatch:
    """Edits to score. Videos are uint8 ``[B, F, H, W, 3]`` numpy arrays (float frames in [0, 1] are also accepted
    by the built-in models); captions follow VIVA: t_src describes the source, t_edit the intended result."""

    sample_ids: List[str]
    edited_videos: np.ndarray  # [B, F, H, W, 3] uint8
    source_videos: np.ndarray  # [B, F, H, W, 3] uint8
    instructions: List[str]  # t_ins
    source_captions: List[str]  # t_src
    edit_captions: List[str]  # t_edit
    reference_images: Optional[List[Optional[np.ndarray]]] = None  # each [H, W, 3] uint8 or None

    def __len__(self) -> int:
        return len(self.sample_ids)


@dataclass(frozen=True)
class RewardOutput:
    """One score per sample (``[B]`` float64) and named sub-scores for logging."""

    scores: np.ndarray  # [B]
    sub_scores: Dict[str, np.ndarray] = field(default_factory=dict)  # name -> [B]


@runtime_checkable
class RewardModel(Protocol):
    """A reward: `setup` loads weights onto a device once; `score` is called on batches of any size."""

    name: str

    def setup(self, device: str) -> None:
        """Load weights onto ``device``; called once in the process that scores."""
        ...

    def score(self, batch: RewardBatch) -> RewardOutput:
        """Score every sample of ``batch``; raise (naming the sample) rather than return NaN or a made-up value."""
        ...
