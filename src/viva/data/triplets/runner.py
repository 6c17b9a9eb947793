"""Triplets for a folder of videos, spread over Ray actors, appended to a JSONL manifest as they arrive.

Resumable: a rerun skips every video whose id is already in the manifest (ids are the video paths under the
folder). Each manifest or rejects line is one fsync'd append (``viva.data.append_log``): a crash loses at most the
batches in flight. Videos in the rejects file are tried again by a rerun.

Run: ``viva data triplets --videos DIR -o data/real/manifest.jsonl [--config configs/data/real.yaml]``
"""

from __future__ import annotations

import os
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import numpy as np

from viva.config import DataPipelineConfig
from viva.data.append_log import AppendLog
from viva.data.clips import list_videos, video_id
from viva.data.triplets.worker import TripletJob, TripletPrompts, TripletResult, TripletWorker
from viva.data.video_io import VideoReadError
from viva.data.work_pool import PoolSpec, WorkPool, ray_session

Progress = Callable[[str], None]


@dataclass(frozen=True)
class TripletsReport:
    """What one run did: videos found, already done, written now, rejected now; mean seconds per video."""

    manifest: Path
    rejects: Path
    videos: int
    already_done: int
    written: int
    rejected: int
    seconds_per_video: float


def default_rejects(manifest: Path) -> Path:
    """``data/x.jsonl`` -> ``data/x.rejects.jsonl``."""
    return manifest.with_name(manifest.stem + ".rejects.jsonl")


def edit_types_for(vid: str, cfg: DataPipelineConfig) -> tuple[str, ...]:
    """The edit types one video's instruction combines: drawn from (seed, id), so a rerun asks the same."""
    t = cfg.triplets
    rng = np.random.default_rng([cfg.seed, zlib.crc32(vid.encode("utf-8"))])
    k = int(rng.integers(t.min_edit_types, t.max_edit_types + 1))
    return tuple(str(x) for x in rng.choice(t.edit_types, size=k, replace=False))


def plan_jobs(cfg: DataPipelineConfig, videos_dir: Path, done: set[str]) -> tuple[List[TripletJob], int]:
    """(jobs for the videos not in ``done``, number of videos found); two files with one id are an error."""
    videos = list_videos(videos_dir, cfg.triplets.video_extensions)
    seen: dict[str, Path] = {}
    jobs = []
    for path in videos:
        vid = video_id(path, videos_dir)
        if vid in seen:
            raise VideoReadError(f"{path} and {seen[vid]} both give sample id {vid!r}; rename one of them")
        seen[vid] = path
        if vid not in done:
            jobs.append(TripletJob(vid, str(path.resolve()), edit_types_for(vid, cfg)))
    return jobs, len(videos)


def manifest_row(result: TripletResult, manifest_dir: Path) -> dict:
    """One prompt line of the manifest (``viva.data.manifest`` keys; the source path relative to its folder)."""
    assert result.triplet is not None
    types = result.job.edit_types
    return {"id": result.job.video_id, "instruction": result.triplet.instruction,
            "source_caption": result.triplet.t_src, "edit_caption": result.triplet.t_edit,
            "source": os.path.relpath(result.job.path, manifest_dir),
            "edit_type": types[0] if len(types) == 1 else "hybrid"}


def reject_row(result: TripletResult) -> dict:
    """One line of the rejects file: the video, why, after how many tries."""
    return {"id": result.job.video_id, "source": result.job.path, "reason": result.reason,
            "attempts": result.attempts, "edit_types": list(result.job.edit_types)}


def _batches(jobs: List[TripletJob], size: int) -> Iterator[List[TripletJob]]:
    for i in range(0, len(jobs), size):
        yield jobs[i:i + size]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def run_triplets(cfg: DataPipelineConfig, videos_dir: str | Path, manifest: str | Path,
                 rejects: str | Path | None = None, local: bool = False,
                 progress: Optional[Progress] = _stderr) -> TripletsReport:
    """Describe every video under ``videos_dir`` not yet in ``manifest``; ``local`` runs one worker in-process."""
    videos_dir, manifest = Path(videos_dir), Path(manifest)
    out, rej = AppendLog(manifest), AppendLog(Path(rejects) if rejects else default_rejects(manifest))
    out.repair()
    rej.repair()
    prompts = TripletPrompts.load(cfg.prompt_dir)  # a bad prompt file fails before any request
    jobs, total = plan_jobs(cfg, videos_dir, out.ids())
    written = rejected = 0
    start = time.perf_counter()
    if jobs:
        with ray_session(cfg.cluster, local):
            spec = PoolSpec(n=min(cfg.triplets.num_actors, len(jobs)), num_cpus=cfg.triplets.num_cpus,
                            num_gpus=cfg.vlm.num_gpus if cfg.vlm.engine == "vllm" else 0.0,
                            runtime_env=dict(cfg.vlm.runtime_env or {}), local=local, role="triplets")
            with WorkPool(TripletWorker, spec, init_args=(cfg, prompts)) as pool:
                for _, results in pool.map("run_batch", _batches(jobs, cfg.triplets.batch_size)):
                    for r in results:
                        if r.triplet is not None:
                            out.append(manifest_row(r, manifest.parent.resolve()))
                            written += 1
                        else:
                            rej.append(reject_row(r))
                            rejected += 1
                    if progress:
                        progress(f"triplets: {written + rejected}/{len(jobs)} videos ({written} written, "
                                 f"{rejected} rejected; {total - len(jobs)} already in {manifest})")
    per_video = (time.perf_counter() - start) / max(1, len(jobs))
    return TripletsReport(manifest, rej.path, total, total - len(jobs), written, rejected, per_video)

