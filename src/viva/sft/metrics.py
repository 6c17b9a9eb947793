"""SFT metrics sinks: a JSONL file (always), wandb (offline by default, optional) and a rich progress bar."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Dict, Optional

from viva.config import LoggingConfig, SFTConfig, to_dict

log = logging.getLogger(__name__)


class MetricsLogger:
    """Writes one JSON line per logged step to ``<output_dir>/metrics.jsonl`` and mirrors it to wandb."""

    def __init__(self, cfg: SFTConfig, enabled: bool = True) -> None:
        self.enabled = enabled
        self.path = Path(cfg.output_dir) / "metrics.jsonl"
        self._wandb: Any = None
        self._progress: Any = None
        self._task: Any = None
        if enabled:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._wandb = _start_wandb(cfg.logging, cfg) if cfg.logging.wandb else None

    def start_progress(self, total: int, completed: int) -> None:
        """Show a progress bar over the training steps (rank 0, when logging.progress)."""
        if not self.enabled:
            return
        from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

        self._progress = Progress(TextColumn("sft"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                  TextColumn("{task.fields[info]}"), TimeRemainingColumn())
        self._task = self._progress.add_task("sft", total=total, completed=completed, info="")
        self._progress.start()

    def log(self, step: int, metrics: Dict[str, float]) -> None:
        """Append the metrics of ``step`` (and advance the progress bar)."""
        if not self.enabled:
            return
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        with self.path.open("a") as f:
            f.write(json.dumps(row) + "\n")
        if self._wandb is not None:
            self._wandb.log(metrics, step=step)
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=f"loss {metrics.get('loss', float('nan')):.4f}")

    def advance(self, step: int) -> None:
        """Move the progress bar without writing metrics."""
        if self._progress is not None:
            self._progress.update(self._task, completed=step)

    def log_video(self, key: str, path: Path, step: int) -> None:
        """Attach an mp4 written by PyAV to wandb (no moviepy needed for a file path)."""
        if self._wandb is not None:
            import wandb

            self._wandb.log({key: wandb.Video(str(path), format="mp4")}, step=step)

    def close(self) -> None:
        """Stop the progress bar and finish the wandb run."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None


def _start_wandb(lcfg: LoggingConfig, cfg: SFTConfig) -> Optional[Any]:
    """A wandb run writing under the output directory; None when wandb is disabled or missing."""
    mode = os.environ.get("WANDB_MODE", lcfg.wandb_mode)
    if mode == "disabled":
        return None
    try:
        import wandb
    except ImportError:
        log.warning("wandb is not installed; metrics go to metrics.jsonl only")
        return None
    run_dir = Path(cfg.output_dir).resolve()
    for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR"):
        os.environ.setdefault(var, str(run_dir))
    return wandb.init(project=lcfg.wandb_project, mode=mode, dir=str(run_dir), config=to_dict(cfg),
                      job_type="sft", reinit="finish_previous")
