"""Inference benchmark (tiny preset, CPU): latency per edit for eager vs torch.compile, and requests/s of
`viva serve` under concurrency, printed side by side in one run.

Run: ``.venv/bin/python bench/bench_inference.py [--steps 10] [--frames 8] [--concurrency 1 8] [--no-serve]``

The model has random weights (speed does not depend on them). Latency: median of ``--repeats`` edits after one
warm-up edit (the compile time of the first call is reported separately). Throughput: N clients submit at once
and poll until all N jobs are done; requests/s = N / wall time (HTTP, decoding, batching and mp4 writing included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def make_base(tmp: Path) -> Path:
    """A random-weight tiny base checkpoint."""
    import torch

    from viva.config import ModelConfig
    from viva.models.checkpoint import save_base_checkpoint
    from viva.models.presets import build_editor

    torch.manual_seed(0)
    cfg = ModelConfig()
    return save_base_checkpoint(build_editor(cfg), tmp / "base", cfg)


def latency(base: Path, backend: str, video: np.ndarray, steps: int, repeats: int) -> dict:
    """First-call and median per-edit seconds of EditPipeline on ``backend``."""
    from viva.inference.loader import EditorSpec, load_editor
    from viva.inference.pipeline import EditPipeline

    pipe = EditPipeline(load_editor(EditorSpec(str(base), backend=backend)))
    t = time.perf_counter()
    pipe(video, "make the ball red", num_steps=steps, seed=0)
    first = time.perf_counter() - t
    times = []
    for i in range(repeats):
        t = time.perf_counter()
        pipe(video, "make the ball red", num_steps=steps, seed=i + 1)
        times.append(time.perf_counter() - t)
    return {"first_s": first, "median_s": statistics.median(times)}


async def _burst(url: str, clip: bytes, n: int, steps: int) -> float:
    import httpx

    async with httpx.AsyncClient(base_url=url, timeout=600) as client:
        t = time.perf_counter()
        posts = await asyncio.gather(*[
            client.post("/v1/edits", files={"video": ("c.mp4", clip, "video/mp4")},
                        data={"instruction": f"edit {i}", "num_steps": str(steps), "seed": str(i)})
            for i in range(n)])
        ids = [p.json()["id"] for p in posts if p.status_code == 202]
        if len(ids) != n:
            raise RuntimeError(f"only {len(ids)} of {n} requests accepted: {[p.status_code for p in posts]}")
        pending = set(ids)
        while pending:
            for job_id in list(pending):
                state = (await client.get(f"/v1/edits/{job_id}")).json()["state"]
                if state == "failed":
                    raise RuntimeError(f"job {job_id} failed")
                if state == "done":
                    pending.discard(job_id)
            await asyncio.sleep(0.05)
        return time.perf_counter() - t


def throughput(base: Path, tmp: Path, video: np.ndarray, steps: int, levels: list[int]) -> dict:
    """requests/s of a live `viva serve` (Ray Serve, eager) at each concurrency level."""
    import ray
    from ray import serve

    from viva.config import ModelConfig, ServeConfig
    from viva.data.video_io import write_video
    from viva.inference.server import run

    clip_path = tmp / "clip.mp4"
    write_video(clip_path, video, fps=8)
    cfg = ServeConfig(port=8791, model=ModelConfig(base_checkpoint=str(base)), job_dir=str(tmp / "jobs"),
                      max_queue=max(levels) + 1, max_batch_size=8)
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run(cfg, blocking=False)
        url = f"http://127.0.0.1:{cfg.port}"
        asyncio.run(_burst(url, clip_path.read_bytes(), 1, steps))  # warm-up
        return {n: n / asyncio.run(_burst(url, clip_path.read_bytes(), n, steps)) for n in levels}
    finally:
        serve.shutdown()
        ray.shutdown()


def main() -> None:
    """Run both measurements and print one table."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--frames", type=int, default=8)
    p.add_argument("--size", type=int, nargs=2, default=[32, 32], metavar=("H", "W"))
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    p.add_argument("--no-serve", action="store_true", help="skip the Ray Serve throughput part")
    args = p.parse_args()
    os.environ.setdefault("TORCHINDUCTOR_CACHE_DIR", str(Path(tempfile.gettempdir()) / "viva_inductor"))
    video = np.random.default_rng(0).integers(0, 256, size=(args.frames, *args.size, 3), dtype=np.uint8)
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        base = make_base(tmp)
        rows = {b: latency(base, b, video, args.steps, args.repeats) for b in ("eager", "compile")}
        rps = {} if args.no_serve else throughput(base, tmp, video, args.steps, args.concurrency)
    print(f"\ntiny preset, {args.frames} frames {args.size[0]}x{args.size[1]}, {args.steps} steps, CFG 2.0, CPU")
    print(f"{'backend':<10}{'first edit (s)':>16}{'per edit (s)':>14}")
    for name, r in rows.items():
        print(f"{name:<10}{r['first_s']:>16.3f}{r['median_s']:>14.3f}")
    print(f"speed-up compile vs eager: {rows['eager']['median_s'] / rows['compile']['median_s']:.2f}x")
    for n, value in rps.items():
        print(f"viva serve (eager), {n:>2} concurrent clients: {value:6.2f} requests/s")


if __name__ == "__main__":
    main()
