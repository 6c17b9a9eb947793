"""viva.samplers."""
