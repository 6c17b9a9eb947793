"""viva.inference."""
