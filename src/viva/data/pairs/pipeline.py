"""`viva data pairs`: clip -> detect -> track masks -> inpaint -> quality control -> SFT manifest, stage by stage
on Ray actors (each stage's actors load its weights once and are released before the next stage starts).

Resumable: every (stage, video) writes its outputs and then a status under the work folder; a rerun skips
every one that has a status and only videos kept by a stage go on to the next. The manifest (remove pairs, and
add pairs when ``pairs.add_pairs``) is rewritten from the kept videos at the end, in the format `viva sft` reads.

Run: ``viva data pairs --videos DIR -o data/pairs [--config configs/data/real.yaml] [key=value ...]``
"""

from __future__ import annotations

import collections
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Callable, Dict, Iterator, List, Optional

from viva.config import ConfigError, DataPipelineConfig, StageSpec
from viva.data.clips import list_videos, video_id
from viva.data.manifest import write_manifest
from viva.data.pairs.registry import STAGES, resolve
from viva.data.pairs.store import StageStore, VideoItem
from viva.data.pairs.worker import STAGE_ORDER, StageWorker
from viva.data.sample import EditSample
from viva.data.video_io import VideoReadError
from viva.data.work_pool import PoolSpec, WorkPool, ray_session

Progress = Callable[[str], None]


@dataclass(frozen=True)
class StageReport:
    """One stage over the run: videos in, run now, skipped (done before), kept, mean seconds per video it ran."""

    stage: str
    videos: int
    ran: int
    skipped: int
    kept: int
    mean_seconds: float
    drop_reasons: Dict[str, int]


@dataclass(frozen=True)
class PairsReport:
    """What the run produced (also written to ``<output>/report.json``)."""

    manifest: Path
    videos: int
    kept: int
    pairs: int
    stages: List[StageReport]


def _stderr(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def plan(videos_dir: Path, extensions: List[str]) -> List[VideoItem]:
    """Every video under the folder with its id; two files with one id are an error."""
    items: Dict[str, VideoItem] = {}
    for path in list_videos(videos_dir, extensions):
        vid = video_id(path, videos_dir)
        if vid in items:
            raise VideoReadError(f"{path} and {items[vid].path} both give sample id {vid!r}; rename one of them")
        items[vid] = VideoItem(vid, str(path.resolve()))
    return list(items.values())


def prepare_config(cfg: DataPipelineConfig) -> DataPipelineConfig:
    """The config with ``prompt_dir`` and every stage's local weights folder made absolute (actors on other nodes or
    in other working directories see the same files). Component names and the QC prompt files are checked here,
    before any stage runs."""
    def local(spec: StageSpec) -> StageSpec:
        if spec.model and Path(spec.model).exists():
            return replace(spec, model=str(Path(spec.model).resolve()))
        return spec

    p = cfg.pairs
    pairs = replace(p, detect=local(p.detect), track=local(p.track), inpaint=local(p.inpaint), qc=local(p.qc))
    cfg = replace(cfg, prompt_dir=str(Path(cfg.prompt_dir).resolve()), pairs=pairs)
    for stage in STAGES:
        resolve(stage, getattr(cfg.pairs, stage).component)
    if cfg.pairs.qc.component == "vlm":
        from viva.data.pairs.vlm_qc import load_qc_prompts

        load_qc_prompts(cfg.prompt_dir)
    return cfg


def work_fingerprint(cfg: DataPipelineConfig) -> dict:
    """What a work folder's outputs depend on: the pairs section (without Ray resources), seed, device, dtype."""
    pairs = asdict(cfg.pairs)
    for stage in STAGES:
        for key in ("num_actors", "num_cpus", "num_gpus"):
            pairs[stage].pop(key)
    return {"pairs": pairs, "seed": cfg.seed, "device": cfg.device, "dtype": cfg.dtype,
            "qc_model": cfg.pairs.qc.model or cfg.vlm.model, "prompt_dir": cfg.prompt_dir}


def check_work_config(store: StageStore, cfg: DataPipelineConfig) -> None:
    """Resume only a work folder made with the same settings (recorded in ``config.json`` on the first run)."""
    path = store.root / "config.json"
    now = json.loads(json.dumps(work_fingerprint(cfg)))  # tuples -> lists, as read back
    if not path.is_file():
        store.root.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(now, indent=2, sort_keys=True))
        return
    before = json.loads(path.read_text())
    diff = sorted(_diff(before, now))
    if diff:
        raise ConfigError(f"{store.root} holds outputs made with other settings ({'; '.join(diff[:5])}): "
                             "use another --work folder, or delete this one to start over")


def _diff(a: object, b: object, key: str = "") -> Iterator[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            yield from _diff(a.get(k), b.get(k), f"{key}.{k}" if key else k)
    elif a != b:
        yield f"{key}: {a!r} -> {b!r}"


def _pool_spec(cfg: DataPipelineConfig, stage: str, todo: int, local: bool) -> PoolSpec:
    """Ray resources of a stage's actors; the clip stage (decoding only) borrows detect's actor count and CPUs."""
    spec = cfg.pairs.detect if stage == "clip" else getattr(cfg.pairs, stage)
    gpus = 0.0 if stage == "clip" else spec.num_gpus
    runtime_env = dict(cfg.vlm.runtime_env or {}) if stage == "qc" and cfg.vlm.engine == "vllm" else {}
    if stage == "qc" and cfg.vlm.engine == "vllm":
        gpus = max(gpus, cfg.vlm.num_gpus)
    return PoolSpec(n=min(spec.num_actors, todo), num_cpus=spec.num_cpus, num_gpus=gpus, runtime_env=runtime_env,
                    local=local, role=f"pairs:{stage}")


def run_stage(cfg: DataPipelineConfig, stage: str, store: StageStore, items: List[VideoItem], local: bool,
              progress: Optional[Progress]) -> tuple[List[VideoItem], StageReport]:
    """Run one stage over the videos it has not finished; returns (videos it kept, its report)."""
    todo = [it for it in items if store.status(stage, it.video_id) is None]
    start, ran = time.perf_counter(), 0
    if todo:
        with WorkPool(StageWorker, _pool_spec(cfg, stage, len(todo), local), (stage, cfg, str(store.root))) as pool:
            for _, status in pool.map("process", todo):
                ran += 1
                if progress:
                    verdict = "kept" if status.ok else f"dropped: {status.reason}"
                    progress(f"pairs/{stage}: {ran}/{len(todo)} {status.video_id} {verdict} ({status.seconds:.2f} s)")
    records = {it.video_id: store.status(stage, it.video_id) for it in items}
    kept = [it for it in items if records[it.video_id]["ok"]]
    reasons = collections.Counter(r["reason"] for r in records.values() if not r["ok"])
    ran_seconds = [records[it.video_id]["seconds"] for it in todo]
    report = StageReport(stage, len(items), len(todo), len(items) - len(todo), len(kept),
                         sum(ran_seconds) / len(ran_seconds) if ran_seconds else 0.0, dict(reasons))
    if progress:
        progress(f"pairs/{stage}: {len(kept)}/{len(items)} kept ({len(todo)} run, {report.skipped} done before; "
                 f"{time.perf_counter() - start:.1f} s)")
    return kept, report


def pair_samples(cfg: DataPipelineConfig, store: StageStore, kept: List[VideoItem]) -> Iterator[EditSample]:
    """The remove pair (source -> object erased) of every kept video, and its reverse add pair if configured."""
    p = cfg.pairs
    for it in kept:
        obj = store.detection(it.video_id).label
        source, erased = store.read_clip("clip", it.video_id), store.read_clip("inpaint", it.video_id)
        masks = store.read_masks(it.video_id)
        with_obj, without = p.caption_with.format(object=obj), p.caption_without.format(object=obj)
        yield EditSample(f"{it.video_id}-remove", p.remove_instruction.format(object=obj), with_obj, without,
                         source, erased, masks, edit_type="remove")
        if p.add_pairs:
            yield EditSample(f"{it.video_id}-add", p.add_instruction.format(object=obj), without, with_obj,
                             erased, source, masks, edit_type="add")


def run_pairs(cfg: DataPipelineConfig, videos_dir: str | Path, out_dir: str | Path, work_dir: str | Path | None = None,
              local: bool = False, progress: Optional[Progress] = _stderr) -> PairsReport:
    """Every stage over every video under ``videos_dir``, then ``out_dir/manifest.jsonl`` + ``media/``."""
    out_dir = Path(out_dir)
    store = StageStore(Path(work_dir or out_dir / "work").resolve())
    cfg = prepare_config(cfg)
    check_work_config(store, cfg)
    items = plan(Path(videos_dir), cfg.triplets.video_extensions)
    reports, alive = [], items
    with ray_session(cfg.cluster, local):
        for stage in STAGE_ORDER:
            alive, report = run_stage(cfg, stage, store, alive, local, progress)
            reports.append(report)
    pairs = len(alive) * (2 if cfg.pairs.add_pairs else 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = PairsReport(out_dir / "manifest.jsonl", len(items), len(alive), pairs, reports)
    (out_dir / "report.json").write_text(json.dumps(_as_json(result), indent=2))
    if not alive:
        raise VideoReadError(f"{videos_dir}: no video survived the pipeline; drop reasons per stage: "
                             f"{ {r.stage: r.drop_reasons for r in reports} } (see {out_dir / 'report.json'})")
    write_manifest(pair_samples(cfg, store, alive), out_dir)  # media first, then the manifest, atomically
    return result


def _as_json(report: PairsReport) -> dict:
    out = asdict(report)
    out["manifest"] = str(report.manifest)
    return out
