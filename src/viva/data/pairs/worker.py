"""One pairs stage on one video at a time: read the previous stage's outputs from the work folder, run the
stage's component, write this stage's outputs and then its status. A plain class; ``WorkPool`` places N of them as
Ray actors, each loading the component's weights once. Only the small ``StageStatus`` travels back to the driver.
"""

from __future__ import annotations

import dataclasses
import time
import zlib
from typing import Any, Dict, Optional, Tuple

from viva.config import DataPipelineConfig
from viva.data.clips import read_clip
from viva.data.pairs.components import PairCandidate
from viva.data.pairs.registry import build_component
from viva.data.pairs.store import StageStatus, StageStore, VideoItem
from viva.data.video_io import VideoReadError

STAGE_ORDER = ("clip", "detect", "track", "inpaint", "qc")
Outcome = Tuple[bool, Optional[str], Dict[str, Any]]  # kept, why not, extra status fields


class StageWorker:
    """Runs ``stage`` (one of STAGE_ORDER) for one video per ``process`` call."""

    def __init__(self, stage: str, cfg: DataPipelineConfig, work_dir: str) -> None:
        if stage not in STAGE_ORDER:
            raise ValueError(f"unknown pairs stage {stage!r}; stages: {list(STAGE_ORDER)}")
        self.stage, self.cfg, self.store = stage, cfg, StageStore(work_dir)
        self.component = None if stage == "clip" else build_component(stage, getattr(cfg.pairs, stage), cfg)

    def process(self, item: VideoItem) -> StageStatus:
        """Run the stage on ``item`` and record its status (the video's data problems are drops, not errors)."""
        start = time.perf_counter()
        try:
            ok, reason, extra = getattr(self, f"_{self.stage}")(item)
        except VideoReadError as e:
            ok, reason, extra = False, f"video: {e}", {}
        status = StageStatus(self.stage, item.video_id, ok, reason, time.perf_counter() - start)
        self.store.write_status(status, extra)
        return status

    def _clip(self, item: VideoItem) -> Outcome:
        p = self.cfg.pairs
        frames = read_clip(item.path, p.num_frames, p.frame_stride, p.height, p.width)  # [F, H, W, 3]
        self.store.write_clip("clip", item.video_id, frames)
        return True, None, {}

    def _detect(self, item: VideoItem) -> Outcome:
        det = self.component.detect(self.store.read_clip("clip", item.video_id), self.cfg.pairs.queries)
        if det is None:
            return False, f"no object among {list(self.cfg.pairs.queries)} above the detection thresholds", {}
        return True, None, dataclasses.asdict(det)

    def _track(self, item: VideoItem) -> Outcome:
        frames = self.store.read_clip("clip", item.video_id)
        masks = self.component.track(frames, self.store.detection(item.video_id))  # [F, H, W]
        area = float(masks.mean())
        self.store.write_masks(item.video_id, masks)
        p = self.cfg.pairs
        if not p.min_mask_area <= area <= p.max_mask_area:
            return False, f"mask area {area:.4f} outside [{p.min_mask_area}, {p.max_mask_area}]", {"area": area}
        if not masks.reshape(len(masks), -1).any(axis=1).all():
            return False, "the object is lost on some frames (empty masks)", {"area": area}
        return True, None, {"area": area}

    def _inpaint(self, item: VideoItem) -> Outcome:
        frames = self.store.read_clip("clip", item.video_id)
        seed = (self.cfg.seed * 1_000_003 + zlib.crc32(item.video_id.encode("utf-8"))) % 2**31
        edited = self.component.inpaint(frames, self.store.read_masks(item.video_id), seed)
        self.store.write_clip("inpaint", item.video_id, edited)
        return True, None, {"seed": seed}

    def _qc(self, item: VideoItem) -> Outcome:
        store, vid = self.store, item.video_id
        pair = PairCandidate(vid, store.detection(vid).label, store.read_clip("clip", vid),
                             store.read_clip("inpaint", vid), store.read_masks(vid))
        verdict = self.component.check(pair)
        extra = {"score": verdict.score, "qc_reason": verdict.reason}
        return verdict.keep, None if verdict.keep else f"quality control: {verdict.reason}", extra
