"""viva.rewards."""
