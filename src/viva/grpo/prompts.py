"""Prompt stream with a resumable cursor: epoch-wise permutations of the dataset, bad samples skipped and reported."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import torch

from viva.data.sample import EditSample


@dataclass(frozen=True)
class Reject:
    """A sample that could not be used, with why."""

    index: int
    sample_id: str
    reason: str


class PromptStream:
    """Deterministic in (seed, cursor): prompt k of the run is dataset[perm_epoch[k % N]] with epoch = k // N."""

    def __init__(self, dataset: Sequence[EditSample], seed: int, rejects_file: Optional[str] = None,
                 max_consecutive_rejects: int = 100) -> None:
        if len(dataset) == 0:
            raise ValueError("prompt dataset is empty")
        self.dataset, self.seed = dataset, seed
        self.cursor = 0
        self.rejects: list[Reject] = []
        self.rejects_file = Path(rejects_file) if rejects_file else None
        self.max_consecutive_rejects = max_consecutive_rejects
        self._perm_epoch, self._perm = -1, None

    def _index(self, k: int) -> int:
        n = len(self.dataset)
        epoch = k // n
        if epoch != self._perm_epoch:
            gen = torch.Generator().manual_seed(self.seed * 7919 + epoch)
            self._perm, self._perm_epoch = torch.randperm(n, generator=gen).tolist(), epoch
        return self._perm[k % n]

    @property
    def epoch(self) -> int:
        """Epochs completed by the cursor."""
        return self.cursor // len(self.dataset)

    def take(self, count: int) -> list[EditSample]:
        """The next ``count`` usable prompts; unusable ones are reported (id + reason) and skipped."""
        out, misses = [], 0
        while len(out) < count:
            idx = self._index(self.cursor)
            self.cursor += 1
            try:
                out.append(self.dataset[idx])
                misses = 0
            except (ValueError, OSError, KeyError) as e:  # SampleError / VideoReadError are ValueErrors
                self._reject(idx, e)
                misses += 1
                if misses >= self.max_consecutive_rejects:
                    raise RuntimeError(f"{misses} consecutive unusable prompts; last: {e}") from e
        return out

    def _reject(self, idx: int, err: Exception) -> None:
        sample_id = getattr(err, "sample_id", None) or f"index:{idx}"
        rej = Reject(idx, str(sample_id), str(err))
        self.rejects.append(rej)
        if self.rejects_file is not None:
            self.rejects_file.parent.mkdir(parents=True, exist_ok=True)
            with open(self.rejects_file, "a") as f:
                f.write(json.dumps(rej.__dict__) + "\n")
                f.flush()
                os.fsync(f.fileno())
