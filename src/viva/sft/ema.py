"""Exponential moving average of the trainable weights (fp32 shadow copies)."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Dict, Iterator

import torch
from torch import nn


NUM_UPDATES_KEY = "__ema_num_updates__"  # stored beside the shadow weights so a resume continues the warmup


class EMA:
    """shadow ← d_n·shadow + (1 − d_n)·param after every optimizer step; ``swapped_in`` evaluates with the shadow.

    d_n = min(decay, (1 + n) / (10 + n)) after n updates: the warmup of diffusers' ``EMAModel``. Without it a short
    run keeps decay^steps of the random initialisation in the shadow (0.999^1200 = 30 %).
    """

    def __init__(self, params: Dict[str, nn.Parameter], decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = decay
        self.params = params
        self.shadow = {k: p.detach().float().clone() for k, p in params.items()}
        self.num_updates = 0

    def current_decay(self) -> float:
        """The decay the next update uses (warmup, capped at ``decay``)."""
        return min(self.decay, (1.0 + self.num_updates) / (10.0 + self.num_updates))

    @torch.no_grad()
    def update(self) -> None:
        """One EMA step towards the current weights."""
        d = self.current_decay()
        for k, p in self.params.items():
            self.shadow[k].lerp_(p.detach().float(), 1.0 - d)
        self.num_updates += 1

    def state_dict(self) -> Dict[str, torch.Tensor]:
        """The shadow weights by parameter name, plus the update count (for the warmup)."""
        return {**self.shadow, NUM_UPDATES_KEY: torch.tensor(self.num_updates, dtype=torch.int64)}

    def load_state_dict(self, state: Dict[str, torch.Tensor]) -> None:
        """Restore shadow weights and the update count; names must match the tracked parameters."""
        missing = sorted(set(self.shadow) - set(state))
        if missing:
            raise KeyError(f"EMA state lacks {missing[:5]} ({len(missing)} names)")
        if NUM_UPDATES_KEY not in state:
            raise KeyError(f"EMA state lacks {NUM_UPDATES_KEY} (written by an older viva); cannot resume its warmup")
        for k in self.shadow:
            self.shadow[k].copy_(state[k])
        self.num_updates = int(state[NUM_UPDATES_KEY])

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
