"""Run observability: metrics to JSONL and wandb (offline by default), sample videos, a reward plot and a summary."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from viva.config import LoggingConfig
from viva.training.atomic import atomic_write_text
from viva.training.metrics import MetricsSink, clean


class RunLog:
    """Owns ``run_dir/metrics.jsonl`` (through the shared `MetricsSink`), ``run_dir/samples/``, ``reward_curve.png``
    and ``summary.md``; keeps the rows logged so far (``history``, complete after a resume)."""

    def __init__(self, run_dir: Path, cfg: LoggingConfig, config_dict: dict, resume: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.cfg = cfg
        self.sink = MetricsSink(self.run_dir, cfg, config_dict, job_type="grpo", resume=resume)
        self.history: List[Dict[str, Any]] = self.sink.read() if resume else []
        self.warnings: List[str] = []

    def rewind(self, step: int) -> None:
        """Drop the rows logged after the checkpoint of ``step`` (a resumed run logs them again), atomically.

        Kept: training rows of steps < ``step`` and evaluations up to ``step`` (the evaluation at a checkpoint runs
        after it is saved; only a fresh start, ``step`` 0, evaluates step 0 again).
        """
        def kept(row: Dict[str, Any]) -> bool:
            s = row.get("step", -1)
            return s < step or (row.get("kind") == "eval" and s == step and step > 0)

        self.history = [h for h in self.history if kept(h)]
        self.sink.rewrite(self.history)

    def log(self, step: int, metrics: Dict[str, Any]) -> None:
        """Append one step's metrics (floats; non-finite values are written as null)."""
        row = self.sink.log(step, metrics)
        self.history = [h for h in self.history if h.get("step") != step or h.get("kind") != row.get("kind")]
        self.history.append(row)

    def warn(self, message: str) -> None:
        """Print a warning to stderr now and keep it for the summary."""
        self.warnings.append(message)
        print(f"viva grpo: WARNING: {message}", file=sys.stderr, flush=True)

    def write_json(self, name: str, data: Dict[str, Any]) -> Path:
        """Write ``run_dir/name`` atomically; non-finite floats become null."""
        return atomic_write_text(self.run_dir / name, json.dumps(clean(data), indent=2) + "\n")

    def write_sample(self, step: int, source: np.ndarray, edited: np.ndarray, name: str = "sample") -> Path:
        """Side-by-side source | edit mp4 (uint8 [F, H, W, 3] each); logged to wandb as a video file."""
        from viva.data.video_io import write_video

        out = self.run_dir / "samples" / f"{name}_step{step:06d}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        frames = np.concatenate([source, edited], axis=2)  # [F, H, 2W, 3]
        frames = np.repeat(np.repeat(frames, 4, axis=1), 4, axis=2)  # 4x nearest upscale so the toy edits are visible
        write_video(out, frames, fps=4, codec="libx264")
        self.sink.log_video(name, out, step)
        return out

    def finish(self, summary_lines: Optional[List[str]] = None) -> None:
        """Write the reward-curve PNG and the Markdown summary, close wandb."""
        self._plot()
        lines = ["# Edit-GRPO run summary", ""] + list(summary_lines or [])
        atomic_write_text(self.run_dir / "summary.md", "\n".join(lines) + "\n")
        self.sink.close()

    def _plot(self) -> None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        train = [h for h in self.history if h.get("kind") == "train"]
        if not train:
            return
        keys = sorted(k for k in train[0] if k.startswith("reward/") and k.endswith("/mean"))
        keys += [k for k in ("oracle/mean",) if k in train[0]]  # the truth beside the rewards: hacking shows
        fig, ax = plt.subplots(figsize=(7, 4))
        steps = [h["step"] for h in train]
        for k in keys:
            ax.plot(steps, [h.get(k) for h in train], label=k)
        evals = [h for h in self.history if h.get("kind") == "eval"]
        if evals:
            ax.plot([h["step"] for h in evals], [h.get("eval/reward_mean") for h in evals], "ko--",
                    label="eval/reward_mean (held-out)")
            if any(h.get("eval/oracle_mean") is not None for h in evals):
                ax.plot([h["step"] for h in evals], [h.get("eval/oracle_mean") for h in evals], "rs--",
                        label="eval/oracle_mean (held-out)")
        ax.set_xlabel("step")
        ax.set_ylabel("reward")
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(self.run_dir / "reward_curve.png", dpi=100)
        plt.close(fig)
