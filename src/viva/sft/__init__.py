"""viva.sft."""
