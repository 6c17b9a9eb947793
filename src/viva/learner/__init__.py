"""viva.learner: Edit-GRPO math (advantages, clipped loss, KL) and, in `viva.learner.learner`, the LoRA learner.

Note: `viva.learner.grpo_loss` is the function; import its module's other names with
`from viva.learner.grpo_loss import GRPOLossOutput`.
"""

from typing import Any

from viva.learner.advantages import group_advantages
from viva.learner.grpo_loss import GRPOLossOutput, grpo_loss
from viva.learner.kl import gaussian_kl

__all__ = ["GRPOLossOutput", "gaussian_kl", "group_advantages", "grpo_loss"]


def __getattr__(name: str) -> Any:
    """Import the (heavier) Learner class lazily, so the pure math imports without it."""
    if name == "Learner":
        from viva.learner.learner import Learner

        return Learner
    raise AttributeError(f"module 'viva.learner' has no attribute {name!r}")
