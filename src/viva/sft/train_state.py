"""Atomic, resumable SFT training state: weights, optimizer, scheduler, EMA and the step (the data cursor).

Layout: ``<dir>/step_00000100/{model.safetensors, ema.safetensors, optimizer.pt, state.json}`` plus a ``latest``
file naming the newest complete step. A checkpoint is written into a temporary sibling directory and renamed into
place, then ``latest`` is replaced atomically (`viva.training.atomic`), so a crash never leaves a half-written
checkpoint that resume picks.
Batches, noise and sigmas are pure functions of (seed, rank, step), so the step is the whole data/RNG cursor.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, Optional

import torch
from safetensors.torch import load_file, save_file

from viva.training import atomic

LATEST = "latest"


@dataclass(frozen=True)
class TrainStateMeta:
    """The scalar part of a training checkpoint."""

    step: int
    seed: int
    skipped_samples: int = 0
    loss: float = float("nan")


def save_train_state(root: str | Path, meta: TrainStateMeta, model: Dict[str, torch.Tensor],
                     optimizer: dict, ema: Optional[Dict[str, torch.Tensor]] = None, keep: int = 2) -> Path:
    """Write one checkpoint atomically, point ``latest`` at it and prune all but the newest ``keep``."""
    root = Path(root)
    atomic.recover(root)  # temp dirs a killed earlier save left (rank 0 alone writes here)
    final = root / f"step_{meta.step:08d}"
    with atomic.atomic_dir(final) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in model.items()}, str(tmp / "model.safetensors"))
        if ema is not None:
            save_file({k: v.detach().contiguous().cpu() for k, v in ema.items()}, str(tmp / "ema.safetensors"))
        torch.save(optimizer, tmp / "optimizer.pt")
        (tmp / "state.json").write_text(json.dumps(asdict(meta)))
    atomic.atomic_write_text(root / LATEST, final.name)
    _prune(root, keep)
    return final


def _prune(root: Path, keep: int) -> None:
    steps = sorted(p for p in root.glob("step_*") if p.is_dir())
    for old in steps[:-keep] if keep > 0 else []:
        shutil.rmtree(old, ignore_errors=True)


def latest_checkpoint(root: str | Path) -> Optional[Path]:
    """The newest complete checkpoint directory under ``root``, or None."""
    pointer = Path(root) / LATEST
    if not pointer.is_file():
        return None
    path = Path(root) / pointer.read_text().strip()
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{pointer} names {path.name}, which is missing or incomplete")
    return path


@dataclass(frozen=True)
class LoadedTrainState:
    """A checkpoint read back: tensors on the CPU, optimizer state loaded with ``weights_only=True``."""

    meta: TrainStateMeta
    model: Dict[str, torch.Tensor]
    optimizer: dict
    ema: Optional[Dict[str, torch.Tensor]]


def load_train_state(path: str | Path) -> LoadedTrainState:
    """Read a checkpoint directory written by :func:`save_train_state`."""
    path = Path(path)
    meta = TrainStateMeta(**json.loads((path / "state.json").read_text()))
    ema_file = path / "ema.safetensors"
    return LoadedTrainState(
        meta=meta,
        model=load_file(str(path / "model.safetensors")),
        optimizer=torch.load(path / "optimizer.pt", map_location="cpu", weights_only=True),
        ema=load_file(str(ema_file)) if ema_file.is_file() else None,
    )
