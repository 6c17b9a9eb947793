"""viva.rollout."""
