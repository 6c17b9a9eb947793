"""Run observability: metrics to JSONL and wandb (offline by default), sample videos, a reward plot and a summary."""

from __future__ import annotations

import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional

import numpy as np

from viva.config import LoggingConfig


class RunLog:
    """Owns ``run_dir/metrics.jsonl``, ``run_dir/samples/``, ``reward_curve.png`` and ``summary.md``."""

    def __init__(self, run_dir: Path, cfg: LoggingConfig, config_dict: dict, resume: bool = False) -> None:
        self.run_dir = Path(run_dir)
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self.cfg = cfg
        self.metrics_path = self.run_dir / "metrics.jsonl"
        if not resume and self.metrics_path.exists():
            self.metrics_path.unlink()
        self.history: List[Dict[str, Any]] = self._read_history() if resume else []
        self.warnings: List[str] = []
        self._wandb = self._init_wandb(config_dict) if cfg.wandb and cfg.wandb_mode != "disabled" else None

    def rewind(self, step: int) -> None:
        """Drop the rows logged after the checkpoint of ``step`` (a resumed run logs them again), atomically.

        Kept: training rows of steps < ``step`` and evaluations up to ``step`` (the evaluation at a checkpoint runs
        after it is saved; only a fresh start, ``step`` 0, evaluates step 0 again).
        """
        def kept(row: Dict[str, Any]) -> bool:
            s = row.get("step", -1)
            return s < step or (row.get("kind") == "eval" and s == step and step > 0)

        self.history = [h for h in self.history if kept(h)]
        if not self.metrics_path.exists():
            return
        tmp = self.metrics_path.with_name(f".{self.metrics_path.name}.tmp")
        tmp.write_text("".join(json.dumps(h) + "\n" for h in self.history))
        os.replace(tmp, self.metrics_path)

    def _read_history(self) -> List[Dict[str, Any]]:
        if not self.metrics_path.exists():
            return []
        rows = []
        for line in self.metrics_path.read_text().splitlines():
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError:
                pass  # a row cut short by a kill -9 while it was appended
        return rows

    def _init_wandb(self, config_dict: dict):
        import wandb

        wdir = self.run_dir / "wandb"
        wdir.mkdir(exist_ok=True)
        for var in ("WANDB_DIR", "WANDB_CACHE_DIR", "WANDB_DATA_DIR", "WANDB_CONFIG_DIR"):
            os.environ.setdefault(var, str(wdir))
        return wandb.init(project=self.cfg.wandb_project, mode=self.cfg.wandb_mode, dir=str(wdir),
                          config=config_dict, reinit="finish_previous")

    def log(self, step: int, metrics: Dict[str, Any]) -> None:
        """Append one step's metrics (floats; non-finite values are written as null)."""
        row = {"step": step, **{k: _clean(v) for k, v in metrics.items()}}
        self.history = [h for h in self.history if h.get("step") != step or h.get("kind") != row.get("kind")]
        self.history.append(row)
        with open(self.metrics_path, "a") as f:
            f.write(json.dumps(row) + "\n")
        if self._wandb is not None:
            self._wandb.log({k: v for k, v in row.items() if isinstance(v, (int, float))}, step=step)

    def warn(self, message: str) -> None:
        """Print a warning to stderr now and keep it for the summary."""
        self.warnings.append(message)
        print(f"viva grpo: WARNING: {message}", file=sys.stderr, flush=True)

    def write_json(self, name: str, data: Dict[str, Any]) -> Path:
        """Write ``run_dir/name`` atomically (temp file + os.replace); non-finite floats become null."""
        out = self.run_dir / name
        tmp = self.run_dir / f".{name}.tmp"
        tmp.write_text(json.dumps(_clean_tree(data), indent=2) + "\n")
        os.replace(tmp, out)
        return out

    def write_sample(self, step: int, source: np.ndarray, edited: np.ndarray, name: str = "sample") -> Path:
        """Side-by-side source | edit mp4 (uint8 [F, H, W, 3] each); logged to wandb as a video file."""
        from viva.data.video_io import write_video

        out = self.run_dir / "samples" / f"{name}_step{step:06d}.mp4"
        out.parent.mkdir(parents=True, exist_ok=True)
        frames = np.concatenate([source, edited], axis=2)  # [F, H, 2W, 3]
        frames = np.repeat(np.repeat(frames, 4, axis=1), 4, axis=2)  # 4x nearest upscale so the toy edits are visible
        write_video(out, frames, fps=4, codec="libx264")
        if self._wandb is not None:
            import wandb

            self._wandb.log({name: wandb.Video(str(out), format="mp4")}, step=step)
        return out

    def finish(self, summary_lines: Optional[List[str]] = None) -> None:
        """Write the reward-curve PNG and the Markdown summary, close wandb."""
        self._plot()
        lines = ["# Edit-GRPO run summary", ""] + list(summary_lines or [])
        tmp = self.run_dir / ".summary.md.tmp"
        tmp.write_text("\n".join(lines) + "\n")
        os.replace(tmp, self.run_dir / "summary.md")
        if self._wandb is not None:
            self._wandb.finish()
            self._wandb = None

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


def _clean_tree(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _clean_tree(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_clean_tree(x) for x in v]
    return _clean(v)


def _clean(v: Any) -> Any:
    if isinstance(v, (np.floating, np.integer)):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v
