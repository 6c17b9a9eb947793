"""Exponential moving average of the trainable weights (fp32 shadow copies)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator

import torch
from torch import nn


class EMA:
    """shadow ← d·shadow + (1 − d)·param after every optimizer step; ``swapped_in`` evaluates with the shadow."""

    def __init__(self, params: Dict[str, nn.Parameter], decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.params = params
        self.shadow = {k: p.detach().float().clone() for k, p in params.items()}

    @torch.no_grad()
    def update(self) -> None:
        """One EMA step towards the current weights."""
        for k, p in self.params.items():
            self.shadow[k].lerp_(p.detach().float(), 1.0 - self.decay)

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """The shadow weights by parameter name."""
        return dict(self.shadow)

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        """Restore shadow weights; names must match the tracked parameters."""
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise KeyError(f"EMA state lacks {missing[:5]} ({len(missing)} names)")
        for k in self.shadow:
            self.shadow[k].copy_(state[k])

    @contextmanager
    def swapped_in(self) -> Iterator[None]:
        """Temporarily load the shadow weights into the model (restores the live weights on exit)."""
        live = {k: p.detach().clone() for k, p in self.params.items()}
        with torch.no_grad():
            for k, p in self.params.items():
                p.copy_(self.shadow[k].to(p.dtype))
        try:
            yield
        finally:
            with torch.no_grad():
                for k, p in self.params.items():
                    p.copy_(live[k])
