"""EMA of the SFT weights: the diffusers-style warmup, and a state round trip that keeps the warmup position."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from viva.sft.ema import EMA


def test_warmup_forgets_the_initialisation() -> None:
    p = nn.Parameter(torch.zeros(3))
    ema = EMA({"w": p}, decay=0.999)
    with torch.no_grad():
        p.fill_(1.0)  # the live weights jump away from the initial 0
    keep = 1.0
    for n in range(200):
        d = min(0.999, (1 + n) / (10 + n))
        assert ema.current_decay() == pytest.approx(d)
        keep *= d
        ema.update()
    # shadow = (1 - prod d_n) * 1 + prod d_n * 0; without warmup 0.999^200 = 82 % of the init would remain.
    assert torch.allclose(ema.shadow["w"], torch.full((3,), 1.0 - keep))
    assert keep < 0.1
    assert ema.current_decay() == pytest.approx(201 / 210)  # still warming up: below the 0.999 cap


def test_state_round_trip_keeps_update_count() -> None:
    p = nn.Parameter(torch.randn(4))
    a = EMA({"w": p}, decay=0.99)
    for _ in range(7):
        a.update()
    b = EMA({"w": p}, decay=0.99)
    b.load_state_dict(a.state_dict())
    assert b.num_updates == 7 and b.current_decay() == a.current_decay()
    kept = b.shadow["w"].clone()
    with pytest.raises(KeyError, match="lacks"):
        b.load_state_dict({"w": torch.zeros(4)})
    assert torch.equal(b.shadow["w"], kept)  # a rejected state leaves the shadow as it was
