"""Reward models for Edit-GRPO (VIVA eqs. 4-7) and their registry. Light on import: the CLIP libraries load only
when a reward is set up. See docs/rewards.md."""

from viva.rewards.base import BatchTexts, RewardBatch, RewardError, RewardModel, RewardOutput
from viva.rewards.registry import RegistryError, get_reward, list_rewards, register_reward

__all__ = [
    "BatchTexts", "RegistryError", "RewardBatch", "RewardError", "RewardModel", "RewardOutput", "get_reward",
    "list_rewards", "register_reward",
]
