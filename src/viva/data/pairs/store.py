"""The pairs pipeline's work folder: one sub-folder per stage, one status file per video (written last, atomically),
so a rerun skips every (stage, video) that has a status and redoes anything a crash cut short.

    work/clip/<id>.mp4      the fitted clip (lossless)     work/track/<id>.npz     masks (uint8 [F, H, W])
    work/detect/<id>.json   status + the Detection         work/inpaint/<id>.mp4   the object erased
    work/<stage>/<id>.json  {"ok", "reason", "seconds", ...}  for every stage
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from viva.data.pairs.components import Detection
from viva.data.video_io import read_video, write_video
from viva.training.atomic import atomic_path, atomic_write_bytes


@dataclass(frozen=True)
class VideoItem:
    """One source video of the run."""

    video_id: str
    path: str


@dataclass(frozen=True)
class StageStatus:
    """What a stage did with one video: kept (``ok``) or dropped with ``reason``; its wall time."""

    stage: str
    video_id: str
    ok: bool
    reason: Optional[str]
    seconds: float


class StageStore:
    """Paths and atomic reads/writes of every stage's per-video outputs under ``root``."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def path(self, stage: str, video_id: str, suffix: str) -> Path:
        """``root/stage/video_id.suffix`` (folder created)."""
        folder = self.root / stage
        folder.mkdir(parents=True, exist_ok=True)
        return folder / f"{video_id}{suffix}"

    def status(self, stage: str, video_id: str) -> Optional[Dict[str, Any]]:
        """The stage's status record for the video, or None when the stage has not finished it."""
        p = self.root / stage / f"{video_id}.json"
        if not p.is_file():
            return None
        return json.loads(p.read_text(encoding="utf-8"))

    def write_status(self, status: StageStatus, extra: Optional[Dict[str, Any]] = None) -> None:
        """Record the stage as done for the video (after its outputs are on disk)."""
        record = {**asdict(status), **(extra or {})}
        data = json.dumps(record, sort_keys=True).encode()
        atomic_write_bytes(self.path(status.stage, status.video_id, ".json"), data)

    def write_clip(self, stage: str, video_id: str, frames: np.ndarray) -> None:
        """Lossless mp4 of ``[F, H, W, 3]`` frames (atomic)."""
        write_video(self.path(stage, video_id, ".mp4"), frames, codec="libx264rgb")

    def read_clip(self, stage: str, video_id: str) -> np.ndarray:
        """Frames a stage wrote."""
        return read_video(self.path(stage, video_id, ".mp4"))[0]

    def write_masks(self, video_id: str, masks: np.ndarray) -> None:
        """Binary masks as uint8 npz (atomic)."""
        with atomic_path(self.path("track", video_id, ".npz")) as tmp:
            np.savez_compressed(tmp, mask=(masks > 0.5).astype(np.uint8))

    def read_masks(self, video_id: str) -> np.ndarray:
        """Masks ``[F, H, W]`` float32 in {0, 1}."""
        with np.load(self.path("track", video_id, ".npz")) as z:
            return z["mask"].astype(np.float32)

    def detection(self, video_id: str) -> Detection:
        """The detect stage's Detection for a kept video."""
        rec = self.status("detect", video_id)
        if not rec or not rec.get("ok"):
            raise FileNotFoundError(f"{self.root}/detect/{video_id}.json: no detection for {video_id}")
        return Detection(rec["label"], tuple(rec["box"]), rec["score"], rec["frame"])
