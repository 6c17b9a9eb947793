"""viva.learner."""
