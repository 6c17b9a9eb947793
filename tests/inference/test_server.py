"""`viva serve` on 127.0.0.1 driven over real HTTP: edits, every refusal, 20 concurrent requests, auth."""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import pytest

from tests.inference.conftest import SERVE_TOKEN, small_video
from viva.data.video_io import read_video, write_video

pytestmark = pytest.mark.integration
AUTH = {"Authorization": f"Bearer {SERVE_TOKEN}"}


def _mp4(tmp_path, frames: int = 9, fps: float = 10, seed: int = 0) -> bytes:
    path = tmp_path / f"v{frames}_{seed}.mp4"
    write_video(path, small_video(frames=frames, seed=seed), fps=fps)
    return path.read_bytes()


def _post(url: str, video: bytes, headers=AUTH, **fields) -> httpx.Response:
    data = {"instruction": "make the ball red", **{k: str(v) for k, v in fields.items()}}
    return httpx.post(url + "/v1/edits", files={"video": ("clip.mp4", video, "video/mp4")}, data=data,
                      headers=headers, timeout=60)


def _wait(url: str, job_id: str, timeout: float = 60) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = httpx.get(f"{url}/v1/edits/{job_id}", headers=AUTH, timeout=10).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.1)
    raise AssertionError(f"job {job_id} not finished after {timeout} s: {job}")


def test_health_and_loras(server) -> None:
    url, _ = server
    assert httpx.get(url + "/healthz").json()["status"] == "ok"
    assert httpx.get(url + "/v1/loras", headers=AUTH).json() == {"loras": ["grpo", "red"]}


def test_successful_edits_with_and_without_lora(server, tmp_path) -> None:
    url, cfg = server
    video = _mp4(tmp_path, frames=9, fps=10)
    outputs = {}
    for lora in (None, "red"):
        fields = {"seed": 3} if lora is None else {"seed": 3, "lora": lora}
        r = _post(url, video, **fields)
        assert r.status_code == 202, r.text
        job = _wait(url, r.json()["id"])
        assert job["state"] == "done" and job["progress"] == 1.0 and job["step"] == job["total_steps"] == 2, job
        got = httpx.get(f"{url}/v1/edits/{job['id']}/video", headers=AUTH, timeout=30)
        assert got.status_code == 200 and got.headers["content-type"] == "video/mp4"
        (tmp_path / "out.mp4").write_bytes(got.content)
        frames, fps = read_video(tmp_path / "out.mp4")
        assert frames.shape == (9, 30, 44, 3) and fps == pytest.approx(10)
        outputs[lora] = frames
    assert not np.array_equal(outputs[None], outputs["red"])  # the multiplexed LoRA was applied


def test_refusals(server, tmp_path) -> None:
    url, cfg = server
    ok = _mp4(tmp_path)
    assert _post(url, ok, headers={}).status_code == 401
    assert _post(url, ok, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert httpx.get(url + "/v1/loras").status_code == 401
    big = _post(url, b"\0" * int(1.2 * 2**20))
    assert big.status_code == 413 and "MB" in big.json()["detail"]
    long = _post(url, _mp4(tmp_path, frames=30, fps=10))  # 3 s > max_duration_s = 2
    assert long.status_code == 413 and "2 s" in long.json()["detail"]
    text = _post(url, b"this is not a video at all")
    assert text.status_code == 415 and "unsupported" in text.json()["detail"]
    corrupt = _post(url, ok[: len(ok) // 2])
    assert corrupt.status_code == 422 and "corrupt" in corrupt.json()["detail"]
    wordy = httpx.post(url + "/v1/edits", files={"video": ("a.mp4", ok, "video/mp4")},
                       data={"instruction": "x" * 65}, headers=AUTH)
    assert wordy.status_code == 422 and "limit is 64" in wordy.json()["detail"]
    assert _post(url, ok, lora="nope").status_code == 404
    assert _post(url, ok, num_steps="many").status_code == 422
    bad_ref = httpx.post(url + "/v1/edits", files={"video": ("a.mp4", ok, "video/mp4"),
                                                   "reference": ("r.png", b"GIF89a-broken", "image/png")},
                         data={"instruction": "add it"}, headers=AUTH)
    assert bad_ref.status_code in (415, 422) and "reference" in bad_ref.json()["detail"]
    assert httpx.get(url + "/v1/edits/" + "0" * 32, headers=AUTH).status_code == 404
    assert httpx.get(url + "/v1/edits/../../etc/passwd", headers=AUTH).status_code == 404


def test_twenty_concurrent_requests_none_lost(server, tmp_path) -> None:
    url, cfg = server
    videos = [_mp4(tmp_path, frames=5, seed=i % 3) for i in range(20)]

    async def submit_all() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=url, headers=AUTH, timeout=60) as client:
            return await asyncio.gather(*[
                client.post("/v1/edits", files={"video": ("c.mp4", v, "video/mp4")},
                            data={"instruction": f"edit {i}", "seed": str(i)}) for i, v in enumerate(videos)])

    responses = asyncio.run(submit_all())
    codes = [r.status_code for r in responses]
    assert set(codes) <= {202, 503}, codes
    for r in responses:
        if r.status_code == 503:
            assert r.headers.get("retry-after") and "queue full" in r.json()["detail"]
    accepted = [r.json()["id"] for r in responses if r.status_code == 202]
    assert len(accepted) >= 1
    finished = [_wait(url, job_id, timeout=120) for job_id in accepted]
    assert all(job["state"] == "done" for job in finished), [j for j in finished if j["state"] != "done"]
    # once drained, the server takes new work again
    assert _post(url, videos[0]).status_code == 202
