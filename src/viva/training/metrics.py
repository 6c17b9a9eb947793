"""The metrics sink SFT and Edit-GRPO share: ``<run_dir>/metrics.jsonl`` (one JSON object per row, appended) mirrored
to wandb (offline by default; ``WANDB_MODE`` in the environment wins over ``logging.wandb_mode``)."""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from viva.config import LoggingConfig
from viva.training.atomic import atomic_write_text

log = logging.getLogger(__name__)


class MetricsSink:
    """Owns ``metrics.jsonl`` of one run (a fresh run starts it empty; a resumed one appends) and the wandb run."""

    def __init__(self, run_dir: str | Path, cfg: LoggingConfig, config: dict, job_type: str,
                 resume: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.run_dir / "metrics.jsonl"
        if not resume and self.path.exists():
            self.path.unlink()
        self._wandb = start_wandb(cfg, self.run_dir, config, job_type) if cfg.wandb else None

    def read(self) -> List[Dict[str, Any]]:
        """The rows written so far (a last row cut short by a kill -9 is skipped)."""
        if not self.path.exists():
            return []
        rows = []
        for line in self.path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a row cut short by a kill -9 while it was appended
        return rows

    def rewrite(self, rows: List[Dict[str, Any]]) -> None:
        """Replace the file by ``rows`` atomically (a resumed run drops the rows it logs again)."""
        if self.path.exists():
            atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in rows))

    def log(self, step: int, metrics: Dict[str, Any]) -> Dict[str, Any]:
        """Append ``{"step": step, **metrics}`` (non-finite floats become null) and send its numbers to wandb;
        returns the row as written."""
        row = {"step": step, **{k: clean(v) for k, v in metrics.items()}}
        with open(self.path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in row.items() if isinstance(v, (int, float)) and k != "step"}, step=step)
        return row

    def log_video(self, key: str, path: Path, step: int) -> None:
        """Attach an mp4 (written by PyAV; no moviepy needed for a file path) to the wandb run."""
        if self._wandb is not None:
            import wandb

            self._wandb.log({key: wandb.Video(str(path), format="mp4")}, step=step)

    def close(self) -> None:
        """Finish the wandb run."""
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def start_wandb(cfg: LoggingConfig, run_dir: Path, config: dict, job_type: str) -> Optional[Any]:
    """A wandb run writing under ``run_dir/wandb``; None when wandb is disabled or not installed."""
    mode = os.environ.get("WANDB_MODE", cfg.wandb_mode)
    if mode == "disabled":
        return None
    try:
        import wandb
    except ImportError:
        log.warning("wandb is not installed; metrics go to metrics.jsonl only")
        return None
    run_dir = Path(run_dir).resolve()
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
        os.environ.setdefault(var, str(run_dir / "wandb"))
    return wandb.init(project=cfg.wandb_project, mode=mode, dir=str(run_dir), config=config, job_type=job_type,
                      reinit="finish_previous")


def clean(v: Any) -> Any:
    """A JSON-ready value: numpy scalars become Python numbers, non-finite floats None, containers recursively."""
    if isinstance(v, dict):
        return {str(k): clean(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [clean(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
