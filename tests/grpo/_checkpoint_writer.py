"""A process that writes GRPO checkpoints in a loop until it is killed (for the kill -9 test)."""

from __future__ import annotations

import torch

from viva.grpo.run_state import RunState, save_checkpoint


def save_forever(run_dir: str, acks: str, numel: int) -> None:
    """Save steps 1, 1, 2, 2, ... (each step twice: a re-save replaces a checkpoint, as the final save does); after
    each save returns, append its step to ``acks``: from then on that checkpoint must survive any kill."""
    step = 0
    while True:
        step += 1
        for _ in range(2):
            lora = {"layer.lora_A.weight": torch.full((numel,), float(step))}
            save_checkpoint(run_dir, RunState(step, step, 2 * step, 0), {"lora": lora, "optimizer": {"n": step}})
            with open(acks, "a") as f:
                f.write(f"{step}\n")
