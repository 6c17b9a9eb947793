"""SFT metrics: the shared JSONL + wandb sink (`viva.training.metrics.MetricsSink`) on rank 0, and a rich progress
bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from viva.config import SFTConfig, to_dict
from viva.training.metrics import MetricsSink


class MetricsLogger:
    """Rank 0 writes one JSON line per logged step to ``<output_dir>/metrics.jsonl`` and mirrors it to wandb; other
    ranks log nothing."""

    def __init__(self, cfg: SFTConfig, enabled: bool = True) -> None:
        self.enabled = enabled
        self._sink = MetricsSink(cfg.output_dir, cfg.logging, to_dict(cfg), "sft", cfg.resume) if enabled else None
        self._progress: Any = None
        self._task: Any = None

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
        if self._sink is None:
            return
        self._sink.log(step, {k: float(v) for k, v in metrics.items()})
        if self._progress is not None:
            self._progress.update(self._task, completed=step, info=f"loss {metrics.get('loss', float('nan')):.4f}")

    def advance(self, step: int) -> None:
        """Move the progress bar without writing metrics."""
        if self._progress is not None:
            self._progress.update(self._task, completed=step)

    def log_video(self, key: str, path: Path, step: int) -> None:
        """Attach an mp4 to the wandb run."""
        if self._sink is not None:
            self._sink.log_video(key, path, step)

    def close(self) -> None:
        """Stop the progress bar and finish the wandb run."""
        if self._progress is not None:
            self._progress.stop()
            self._progress = None
        if self._sink is not None:
            self._sink.close()
