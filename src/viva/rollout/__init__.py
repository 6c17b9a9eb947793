"""viva.rollout: what a rollout actor runs (`RolloutWorker`: sample groups with recorded log-probs, load adapters)."""
