"""viva: Edit-GRPO post-training of an instruction-based video-editing DiT (after VIVA), on Ray."""

__version__ = "0.1.0"
