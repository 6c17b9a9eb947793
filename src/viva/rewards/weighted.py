"""The Edit-GRPO reward (VIVA eq. 7): R = w_IF * CLIP-IF + w_SP * CLIP-SP + w_PS * PickScore, or any weighted sum.

>>> import numpy as np
>>> from viva.rewards.base import RewardOutput
>>> out = weighted_sum({"a": RewardOutput(np.array([1.0, 2.0])), "b": RewardOutput(np.array([0.5, 0.0]))},
...                    {"a": 1.0, "b": 2.0})
>>> out.scores.tolist(), sorted(out.sub_scores)
([2.0, 2.0], ['a', 'b'])
"""

from __future__ import annotations

from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np

from viva.rewards.base import RewardBatch, RewardError, RewardModel, RewardOutput, check_scores


def weighted_sum(outputs: Mapping[str, RewardOutput], weights: Mapping[str, float]) -> RewardOutput:
    """Eq. 7 over named outputs; sub-scores keep every model's score under its name and its own sub-scores as
    ``name/sub``. Missing weights or length mismatches are errors."""
    if set(outputs) != set(weights):
        raise RewardError(f"weights {sorted(weights)} do not match reward outputs {sorted(outputs)}")
    lengths = {name: len(o.scores) for name, o in outputs.items()}
    if len(set(lengths.values())) != 1:
        raise RewardError(f"reward outputs differ in length: {lengths}")
    total = sum(float(weights[n]) * np.asarray(o.scores, dtype=np.float64) for n, o in outputs.items())
    subs: Dict[str, np.ndarray] = {}
    for name, o in outputs.items():
        subs[name] = np.asarray(o.scores, dtype=np.float64)
        subs.update({f"{name}/{k}": v for k, v in o.sub_scores.items()})
    return RewardOutput(np.asarray(total, dtype=np.float64), subs)


class WeightedReward:
    """A reward made of other rewards (eq. 7). ``viva`` in the registry: CLIP-IF + CLIP-SP + PickScore.

    Options: ``w_if``, ``w_sp``, ``w_ps`` (the eq. 7 weights) and ``model`` etc. passed to all three, or build one
    from ``parts=[(reward, weight), ...]`` directly.
    """

    name = "viva"

    def __init__(self, parts: Optional[List[Tuple[RewardModel, float]]] = None, w_if: float = 1.0,
                 w_sp: float = 1.0, w_ps: float = 1.0, **options: Any) -> None:
        if parts is None:
            from viva.rewards.clip_rewards import ClipIF, ClipSP
            from viva.rewards.pickscore import PickScore

            parts = [(ClipIF(**options), w_if), (ClipSP(**options), w_sp), (PickScore(**options), w_ps)]
        names = [p.name for p, _ in parts]
        if len(set(names)) != len(names):
            raise ValueError(f"reward names in a weighted sum must be distinct, got {names}")
        self.parts = list(parts)

    def setup(self, device: str) -> None:
        """Set up every part on ``device``."""
        for part, _ in self.parts:
            part.setup(device)

    def score(self, batch: RewardBatch) -> RewardOutput:
        """Score with every part and combine (eq. 7)."""
        outputs = {p.name: p.score(batch) for p, _ in self.parts}
        out = weighted_sum(outputs, {p.name: w for p, w in self.parts})
        return RewardOutput(check_scores(self.name, batch, out.scores), out.sub_scores)
