"""Edit-GRPO checkpoints: LoRA, optimizer, RNG states, data cursor, policy_version and step, written atomically.

A kill -9 at any point of ``save_checkpoint`` leaves the previous checkpoint (or the new one) whole:
``latest_checkpoint(run_dir, recover=True)`` removes half-written temp dirs and restores a checkpoint that was being
replaced (`viva.training.atomic`).
"""

from __future__ import annotations

import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from safetensors.torch import load_file, save_file

from viva.training import atomic


@dataclass(frozen=True)
class RunState:
    """Where a run stands after `step` completed updates."""

    step: int
    policy_version: int
    cursor: int  # prompt cursor at the start of step `step` (see PromptStream)
    rejects: int


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {"torch": torch.get_rng_state(), "numpy": torch.from_numpy(np_state[1].astype(np.int64)),
            "numpy_pos": int(np_state[2]), "python": torch.tensor(random.getstate()[1], dtype=torch.int64)}


def _restore_rng(rng: dict) -> None:
    torch.set_rng_state(rng["torch"])
    np.random.set_state(("MT19937", rng["numpy"].numpy().astype(np.uint32), int(rng["numpy_pos"]), 0, 0.0))
    random.setstate((3, tuple(int(x) for x in rng["python"].tolist()), None))


def save_checkpoint(run_dir: Path, state: RunState, learner_state: dict) -> Path:
    """Write ``run_dir/checkpoints/step_N`` as a whole directory (`viva.training.atomic.atomic_dir`), then point
    ``latest`` at it atomically. A checkpoint of the same step is moved aside, not deleted, until the new one is in
    place, so no instant exists without a whole copy of it on disk."""
    root = Path(run_dir) / "checkpoints"
    final = root / f"step_{state.step:06d}"
    with atomic.atomic_dir(final) as tmp:
        save_file({k: v.contiguous() for k, v in learner_state["lora"].items()}, str(tmp / "lora.safetensors"))
        torch.save({"optimizer": learner_state["optimizer"], "rng": _rng_state()}, tmp / "trainer_state.pt")
        (tmp / "state.json").write_text(json.dumps(asdict(state), indent=2))
    atomic.atomic_write_text(root / "latest", final.name)
    return final


def recover_checkpoints(run_dir: Path) -> None:
    """Undo what a killed ``save_checkpoint`` left: temp dirs go, a checkpoint moved aside comes back."""
    atomic.recover(Path(run_dir) / "checkpoints")


def latest_checkpoint(run_dir: Path, recover: bool = False) -> Optional[Path]:
    """The checkpoint ``latest`` names (or the newest complete one if it names none), or None.

    ``recover``: first clean up after a killed save (``recover_checkpoints``); do it when resuming.
    """
    root = Path(run_dir) / "checkpoints"
    if recover:
        recover_checkpoints(run_dir)
    pointer = root / "latest"
    if pointer.is_file():
        path = root / pointer.read_text().strip()
        if (path / "state.json").is_file():
            return path
        if not recover:
            raise FileNotFoundError(f"{pointer} names {path}, which is not a complete checkpoint")
    complete = sorted(p for p in root.glob("step_*") if (p / "state.json").is_file()) if root.is_dir() else []
    return complete[-1] if complete else None


def load_checkpoint(path: Path) -> tuple[RunState, dict]:
    """Read a checkpoint (safetensors + ``torch.load(weights_only=True)``) and restore the RNG states."""
    path = Path(path)
    state = RunState(**json.loads((path / "state.json").read_text()))
    trainer = torch.load(path / "trainer_state.pt", weights_only=True)
    _restore_rng(trainer["rng"])
    learner_state = {"lora": load_file(str(path / "lora.safetensors")), "optimizer": trainer["optimizer"],
                     "policy_version": state.policy_version}
    return state, learner_state
