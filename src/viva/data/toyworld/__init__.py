"""viva.data.toyworld."""
