"""Edit-GRPO checkpoints: LoRA, optimizer, RNG states, data cursor, policy_version and step, written atomically."""

from __future__ import annotations

import json
import os
import random
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

import numpy as np
import torch
from safetensors.torch import load_file, save_file


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
    """Write ``run_dir/checkpoints/step_N`` via a temp dir + rename, then point ``latest`` at it atomically."""
    root = Path(run_dir) / "checkpoints"
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step_{state.step:06d}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp_", dir=root))
    try:
        save_file({k: v.contiguous() for k, v in learner_state["lora"].items()}, str(tmp / "lora.safetensors"))
        torch.save({"optimizer": learner_state["optimizer"], "rng": _rng_state()}, tmp / "trainer_state.pt")
        (tmp / "state.json").write_text(json.dumps(asdict(state), indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    link_tmp = root / ".latest.tmp"
    link_tmp.write_text(final.name)
    os.replace(link_tmp, root / "latest")
    return final


def latest_checkpoint(run_dir: Path) -> Optional[Path]:
    """The checkpoint ``latest`` names, or None."""
    pointer = Path(run_dir) / "checkpoints" / "latest"
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{pointer} names {path}, which is not a complete checkpoint")
    return path


def load_checkpoint(path: Path) -> tuple[RunState, dict]:
    """Read a checkpoint (safetensors + ``torch.load(weights_only=True)``) and restore the RNG states."""
    path = Path(path)
    state = RunState(**json.loads((path / "state.json").read_text()))
    trainer = torch.load(path / "trainer_state.pt", weights_only=True)
    _restore_rng(trainer["rng"])
    learner_state = {"lora": load_file(str(path / "lora.safetensors")), "optimizer": trainer["optimizer"],
                     "policy_version": state.policy_version}
    return state, learner_state
