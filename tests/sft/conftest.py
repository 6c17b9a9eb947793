"""Tiny SFT configs for tests: 2-frame 16x16 toy-world pairs, batch 2, no wandb / progress bar."""

from __future__ import annotations

import pytest

from viva.config import load_config


def tiny_sft_config(tmp_path, *overrides: str):
    """An SFTConfig small enough for a few CPU steps in a second or two."""
    base = [
        f"output_dir={tmp_path}", "data.num_frames=2", "data.height=16", "data.width=16",
        "sft.batch_size=2", "sft.steps=2", "sft.warmup_steps=0", "sft.log_every=1", "sft.checkpoint_every=0",
        "sft.image_prob=0.5", "logging.wandb=false", "logging.progress=false",
        "sampler.num_steps=2", "sampler.kind=ode", "sft.lr=1e-3",
    ]
    return load_config(None, base + list(overrides), recipe="sft")


@pytest.fixture
def sft_config(tmp_path):
    """Factory: ``sft_config(*overrides)`` builds a tiny SFTConfig writing under tmp_path."""
    return lambda *o: tiny_sft_config(tmp_path, *o)
