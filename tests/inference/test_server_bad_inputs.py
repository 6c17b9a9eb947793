"""Bad requests to the server fail alone: table-driven 4xx cases sent while another client's edit runs (in-process
ASGI app), streamed uploads stopped at the limit, short job errors, and a batch in which one request fails."""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Optional

import httpx
import numpy as np
import pytest

from tests.inference.conftest import SERVE_TOKEN, small_video
from viva.config import ServeConfig
from viva.data.video_io import write_video
from viva.inference.app import EditEvent, build_app
from viva.inference.pipeline import EditRequest

AUTH = {"Authorization": f"Bearer {SERVE_TOKEN}"}
LIMIT_MB = 0.5


class EchoRunner:
    """Returns the source video as the edit after ``num_steps`` progress events (no model)."""

    def __init__(self, fail_with: Optional[Exception] = None) -> None:
        self.fail_with = fail_with

    async def edit(self, request: EditRequest, lora: Optional[str]) -> AsyncIterator[EditEvent]:
        """Progress, then the result (or the configured exception)."""
        for step in range(1, request.num_steps + 1):
            await asyncio.sleep(0.01)
            yield EditEvent("progress", step, request.num_steps)
        if self.fail_with is not None:
            raise self.fail_with
        yield EditEvent("result", video=request.video)


def _app(tmp_path, runner):
    cfg = ServeConfig(auth_token=SERVE_TOKEN, job_dir=str(tmp_path / "jobs"), max_upload_mb=LIMIT_MB,
                      max_duration_s=2.0, max_instruction_chars=64, max_queue=8, loras=[])
    return build_app(cfg, runner, ["red"])


def _mp4(tmp_path, frames: int = 4) -> bytes:
    path = tmp_path / f"clip{frames}.mp4"
    write_video(path, small_video(frames=frames, height=16, width=16), fps=8, codec="libx264")
    return path.read_bytes()


async def _wait(client: httpx.AsyncClient, job_id: str) -> dict:
    for _ in range(1000):
        job = (await client.get(f"/v1/edits/{job_id}", headers=AUTH)).json()
        if job["state"] in ("done", "failed"):
            return job
        await asyncio.sleep(0.01)
    raise AssertionError(f"job {job_id} did not finish: {job}")


GOOD = {"instruction": "make it red", "num_steps": "3", "seed": "7"}
# (id, form fields replacing GOOD's, headers, expected status, text in the detail)
CASES = [
    ("seed-huge", {"seed": str(10**30)}, AUTH, 422, "seed must be an integer in [0, 4294967295]"),
    ("seed-negative", {"seed": "-1"}, AUTH, 422, "seed must be"),
    ("seed-not-a-number", {"seed": "abc"}, AUTH, 422, "field 'seed'"),
    ("steps-0", {"num_steps": "0"}, AUTH, 422, "num_steps must be in [1, 1000]"),
    ("steps-huge", {"num_steps": "100000"}, AUTH, 422, "num_steps must be in [1, 1000]"),
    ("guidance-nan", {"guidance_scale": "nan"}, AUTH, 422, "guidance_scale must be in [0, 50]"),
    ("guidance-negative", {"guidance_scale": "-5"}, AUTH, 422, "guidance_scale must be in [0, 50]"),
    ("restore-size-not-bool", {"restore_size": "maybe"}, AUTH, 422, "not a boolean"),
    ("instruction-empty", {"instruction": "  "}, AUTH, 422, "field 'instruction'"),
    ("instruction-too-long", {"instruction": "x" * 65}, AUTH, 422, "the limit is 64"),
    ("unknown-lora", {"lora": "blue"}, AUTH, 404, "unknown LoRA 'blue'"),
    ("no-token", {}, {}, 401, "bearer token"),
    ("wrong-token", {}, {"Authorization": "Bearer nope"}, 401, "bearer token"),
]


@pytest.mark.parametrize("fields, headers, status, detail", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_request_fails_alone(tmp_path, fields, headers, status, detail):
    video = _mp4(tmp_path)

    async def scenario():
        transport = httpx.ASGITransport(app=_app(tmp_path, EchoRunner()))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            files = {"video": ("clip.mp4", video, "video/mp4")}
            other = await client.post("/v1/edits", data=GOOD, files=files, headers=AUTH)  # another client's job
            assert other.status_code == 202, other.text
            bad = await client.post("/v1/edits", data={**GOOD, **fields}, files=files, headers=headers)
            job = await _wait(client, other.json()["id"])
            again = await client.post("/v1/edits", data=GOOD, files=files, headers=AUTH)  # the server still serves
            return bad, job, (await _wait(client, again.json()["id"]))

    bad, job, after = asyncio.run(scenario())
    assert bad.status_code == status and detail in bad.json()["detail"], bad.text
    assert job["state"] == "done" and after["state"] == "done", (job, after)


def _multipart_chunks(boundary: str, total: int, sent: list):
    """A multipart body with one video part of ``total`` bytes, produced lazily; ``sent`` counts the bytes read."""
    chunk = b"\0" * 65536

    async def body():
        head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"instruction\"\r\n\r\nmake it red\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"video\"; filename=\"v.mp4\"\r\n"
                f"Content-Type: video/mp4\r\n\r\n").encode()
        yield head
        for _ in range(total // len(chunk)):
            sent[0] += len(chunk)
            yield chunk
        yield f"\r\n--{boundary}--\r\n".encode()

    return body()


def test_chunked_upload_is_refused_while_streaming(tmp_path):
    sent = [0]
    total = 64 * 2**20  # 128 times the limit, with no Content-Length

    async def scenario():
        transport = httpx.ASGITransport(app=_app(tmp_path, EchoRunner()))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            headers = {**AUTH, "Content-Type": "multipart/form-data; boundary=xyz"}
            return await client.post("/v1/edits", content=_multipart_chunks("xyz", total, sent), headers=headers)

    r = asyncio.run(scenario())
    assert r.status_code == 413 and "MB" in r.json()["detail"], r.text
    assert sent[0] <= 2 * 2**20, f"{sent[0]} bytes read before the 413"  # stopped near the 0.5 MB limit


def test_job_errors_are_short_and_the_details_are_logged(tmp_path, caplog):
    internal = RuntimeError("ray.exceptions.RayTaskError(ValueError): Traceback (most recent call last):\n"
                            "  File \"/home/ray/anaconda3/lib/python3.11/site-packages/ray/serve/_private/replica.py\"")
    video = _mp4(tmp_path)

    async def scenario():
        transport = httpx.ASGITransport(app=_app(tmp_path, EchoRunner(fail_with=internal)))
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            r = await client.post("/v1/edits", data=GOOD, files={"video": ("c.mp4", video, "video/mp4")},
                                  headers=AUTH)
            return await _wait(client, r.json()["id"])

    with caplog.at_level(logging.ERROR, logger="viva.inference.app"):
        job = asyncio.run(scenario())
    assert job["state"] == "failed"
    assert "internal error" in job["error"] and job["id"] in job["error"]
    assert "Traceback" not in job["error"] and "ray" not in job["error"].lower() and "\n" not in job["error"]
    assert "replica.py" in caplog.text  # the full text is in the server log


@pytest.fixture(scope="module")
def worker(base_ckpt, vlm_name):
    from viva.inference.adapters import AdapterBank
    from viva.inference.loader import EditorSpec, load_editor
    from viva.inference.pipeline import EditPipeline, PipelineOptions
    from viva.inference.worker import EditWorker

    editor = load_editor(EditorSpec(str(base_ckpt), vlm=None if vlm_name == "tiny" else vlm_name))
    return EditWorker(EditPipeline(editor, PipelineOptions(area=16 * 16, window=4)), AdapterBank(editor, {}))


def _run_batch(worker, requests) -> list:
    async def collect():
        final = [None] * len(requests)
        async for events in worker.run_batch(requests, None):
            for i, e in enumerate(events):
                if e is not StopIteration and e.kind in ("result", "error"):
                    final[i] = e
        return final

    return asyncio.run(collect())


def test_a_bad_request_in_a_batch_fails_alone(worker):
    video = small_video(frames=4, height=16, width=16)
    good = EditRequest(video, "make it red", num_steps=1, seed=1)
    huge_seed = EditRequest(video, "make it blue", num_steps=1, seed=10**30)  # same shape: batched with `good`
    out = _run_batch(worker, [good, huge_seed])
    assert out[0].kind == "result" and out[0].video.shape == video.shape
    assert out[1].kind == "error" and "seed" in out[1].error
    alone = _run_batch(worker, [good])[0]
    np.testing.assert_array_equal(out[0].video, alone.video)  # same edit as without the bad neighbour


def test_a_batch_that_fails_is_retried_one_by_one(worker, monkeypatch):
    video = small_video(frames=4, height=16, width=16)
    run = worker.pipeline.run

    def run_or_fail(requests, progress=None):  # a request that breaks whatever batch it is in
        if any(r.instruction == "boom" for r in requests):
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return run(requests, progress)

    monkeypatch.setattr(worker.pipeline, "run", run_or_fail)
    reqs = [EditRequest(video, "make it red", num_steps=1, seed=s) for s in (1, 2)]
    out = _run_batch(worker, [reqs[0], EditRequest(video, "boom", num_steps=1, seed=3), reqs[1]])
    assert [e.kind for e in out] == ["result", "error", "result"]
    assert "internal error" in out[1].error and "CUDA" not in out[1].error
