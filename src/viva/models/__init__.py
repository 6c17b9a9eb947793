"""viva.models."""
