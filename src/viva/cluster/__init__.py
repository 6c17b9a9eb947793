"""viva.cluster."""
