"""The HTTP API of `viva serve` (FastAPI), independent of where the model runs.

    POST /v1/edits              multipart: video, instruction, [reference], [lora, num_steps, guidance_scale, seed,
                                restore_size] -> 202 {"id": ...}
    GET  /v1/edits/{id}         status and progress
    GET  /v1/edits/{id}/video   the edited mp4 (409 until done)
    GET  /v1/loras              the adapters being served
    GET  /healthz               liveness (no auth)
    GET  /                      a small web page to try it (no auth; it sends the token you type)

Errors: 401 (bearer token), 404 (unknown job / LoRA), 409 (not done), 413 (upload size, duration, frame size),
415 (unsupported media), 422 (corrupt media, bad field), 503 (queue full, with Retry-After). Nothing is ever
unpickled: uploads are decoded by PyAV / PIL, answers are JSON or mp4.

``build_app(cfg, runner)`` takes any ``EditRunner`` (Ray Serve deployment handle in `viva serve`, an in-process
runner in tests).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import AsyncIterator, Optional, Protocol

import numpy as np
from fastapi import FastAPI, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from viva.config import ServeConfig
from viva.inference.jobs import JobStatus, JobStore, QueueFull
from viva.inference.media import MediaError, decode_image, decode_video
from viva.inference.pipeline import EditRequest, check_request

log = logging.getLogger(__name__)
STATIC_DIR = Path(__file__).resolve().parent / "static"


@dataclass(frozen=True)
class EditEvent:
    """One message of an edit's stream: progress (step / total), the result video, or an error."""

    kind: str  # progress | result | error
    step: int = 0
    total: int = 0
    video: Optional[np.ndarray] = None  # [F, H, W, 3] uint8 (kind == "result")
    error: Optional[str] = None


class EditRunner(Protocol):
    """Where edits run: a stream of EditEvents per request, ending with a result or an error."""

    def edit(self, request: EditRequest, lora: Optional[str]) -> AsyncIterator[EditEvent]:
        """Run one edit with LoRA ``lora`` (None: the base model)."""
        ...


class JobService:
    """Validates uploads, enqueues jobs (bounded) and follows them to an mp4 in the job directory."""

    def __init__(self, cfg: ServeConfig, runner: EditRunner, loras: list[str]) -> None:
        self.cfg = cfg
        self.runner = runner
        self.loras = sorted(loras)
        self.store = JobStore(cfg.job_dir, cfg.max_queue)
        self.fps: dict[str, float] = {}
        self._tasks: set[asyncio.Task] = set()

    def submit(self, request: EditRequest, fps: float, lora: Optional[str]) -> JobStatus:
        """Enqueue a validated request; raises QueueFull at the limit."""
        job = self.store.create(lora)
        self.fps[job.id] = fps
        task = asyncio.get_running_loop().create_task(self._follow(job.id, request, lora))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return job

    async def _follow(self, job_id: str, request: EditRequest, lora: Optional[str]) -> None:
        from viva.data.video_io import write_video

        self.store.update(job_id, state="running", total_steps=request.num_steps)
        try:
            async for event in self.runner.edit(request, lora):
                if event.kind == "progress":
                    self.store.update(job_id, step=event.step, total_steps=event.total)
                elif event.kind == "error":
                    raise _EditFailed(event.error or "the edit failed")
                elif event.kind == "result":
                    video = event.video  # [F, H, W, 3]
                    even = video.shape[1] % 2 == 0 and video.shape[2] % 2 == 0
                    path = self.store.output_path(job_id)
                    # libx264 (yuv420p) plays in browsers; odd sizes need the lossless rgb variant
                    await asyncio.to_thread(write_video, path, video, self.fps.pop(job_id, 8.0),
                                            "libx264" if even else "libx264rgb")
                    self.store.update(job_id, state="done")
                    return
            raise RuntimeError("the edit stream ended without a result")
        except _EditFailed as e:  # the worker's message is meant for the client (viva.inference.worker)
            log.warning("job %s failed: %s", job_id, e)
            self.store.update(job_id, state="failed", error=str(e).splitlines()[0][:300])
        except Exception:  # noqa: BLE001 - any failure is reported on the job, never lost; details stay in the log
            log.exception("job %s failed", job_id)
            self.store.update(job_id, state="failed",
                              error=f"internal error; the server log has the details (job {job_id})")


class _EditFailed(RuntimeError):
    """The runner reported an error event; its text is already fit for the client."""


def _check_auth(cfg: ServeConfig, request: Request) -> None:
    if not cfg.auth_token:
        return
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(), cfg.auth_token.encode()):
        raise HTTPException(401, "missing or wrong bearer token", headers={"WWW-Authenticate": "Bearer"})


def _field(form, name: str, cast, default, limit_chars: int = 64):
    raw = form.get(name)
    if raw is None or raw == "":
        return default
    if not isinstance(raw, str) or len(raw) > limit_chars:
        raise HTTPException(422, f"field {name!r}: expected a short text value")
    try:
        return cast(raw)
    except ValueError as e:
        raise HTTPException(422, f"field {name!r}: {e}") from e


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


async def _read_upload(form, name: str, max_bytes: int, required: bool) -> Optional[bytes]:
    upload = form.get(name)
    if upload is None or isinstance(upload, str):
        if required:
            raise HTTPException(422, f"field {name!r}: a file upload is required")
        return None
    data = await upload.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise HTTPException(413, f"field {name!r}: larger than {max_bytes / 2**20:g} MB")
    return data


def _limited(request: Request, max_body: int, limit_mb: float) -> Request:
    """The request with a body that stops with 413 once more than ``max_body`` bytes arrive (chunked uploads
    have no Content-Length: the limit is enforced while streaming, before the form is parsed whole)."""
    received = 0

    async def receive() -> dict:
        nonlocal received
        message = await request.receive()
        if message.get("type") == "http.request":
            received += len(message.get("body", b""))
            if received > max_body:
                raise HTTPException(413, f"request body larger than the {limit_mb:g} MB upload limit")
        return message

    return Request(request.scope, receive)


async def _parse_edit(service: JobService, request: Request) -> tuple[EditRequest, float, Optional[str]]:
    cfg = service.cfg
    max_bytes = int(cfg.max_upload_mb * 2**20)
    max_body = max_bytes + 2**20  # the uploads plus the form fields and multipart headers
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_body:
        raise HTTPException(413, f"request body larger than the {cfg.max_upload_mb:g} MB upload limit")
    form = await _limited(request, max_body, cfg.max_upload_mb).form(max_files=2, max_fields=16)
    instruction = form.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        raise HTTPException(422, "field 'instruction': required, non-empty text")
    if len(instruction) > cfg.max_instruction_chars:
        raise HTTPException(422, f"field 'instruction': {len(instruction)} characters; the limit is "
                                 f"{cfg.max_instruction_chars}")
    lora = _field(form, "lora", str, None, 128)
    if lora is not None and lora not in service.loras:
        raise HTTPException(404, f"unknown LoRA {lora!r}; served: {service.loras}")
    video_bytes = await _read_upload(form, "video", max_bytes, required=True)
    ref_bytes = await _read_upload(form, "reference", max_bytes, required=False)
    try:
        video = await asyncio.to_thread(decode_video, video_bytes, cfg.max_duration_s)
        reference = None if ref_bytes is None else await asyncio.to_thread(decode_image, ref_bytes)
    except MediaError as e:
        raise HTTPException(e.status, e.reason) from e
    s = cfg.sampler
    edit = EditRequest(
        video=video.frames, instruction=instruction, reference=reference,
        num_steps=_field(form, "num_steps", int, s.num_steps),
        guidance_scale=_field(form, "guidance_scale", float, s.guidance_scale),
        seed=_field(form, "seed", int, 0), restore_size=_field(form, "restore_size", _bool, True),
    )
    try:
        check_request(edit, cfg.max_instruction_chars)
    except ValueError as e:
        raise HTTPException(422, str(e)) from e
    return edit, video.fps, lora


def build_app(cfg: ServeConfig, runner: EditRunner, loras: list[str]) -> FastAPI:
    """The FastAPI application of `viva serve` over ``runner``."""
    app = FastAPI(title="viva", version="1")
    service = JobService(cfg, runner, loras)
    app.state.service = service

    @app.get("/healthz")
    async def healthz() -> dict:
        return {"status": "ok", "active_jobs": service.store.num_active(), "max_queue": cfg.max_queue}

    @app.get("/", response_class=HTMLResponse)
    async def index() -> HTMLResponse:
        return HTMLResponse((STATIC_DIR / "index.html").read_text())

    @app.get("/v1/loras")
    async def list_loras(request: Request) -> dict:
        _check_auth(cfg, request)
        return {"loras": service.loras}

    @app.post("/v1/edits", status_code=202)
    async def create_edit(request: Request) -> JSONResponse:
        _check_auth(cfg, request)
        edit, fps, lora = await _parse_edit(service, request)
        try:
            job = service.submit(edit, fps, lora)
        except QueueFull as e:
            raise HTTPException(503, f"queue full: {e}", headers={"Retry-After": "5"}) from e
        return JSONResponse(job.to_json(), status_code=202)

    @app.get("/v1/edits/{job_id}")
    async def get_edit(job_id: str, request: Request) -> dict:
        _check_auth(cfg, request)
        return _job_or_404(service, job_id).to_json()

    @app.get("/v1/edits/{job_id}/video")
    async def get_video(job_id: str, request: Request) -> FileResponse:
        _check_auth(cfg, request)
        job = _job_or_404(service, job_id)
        if job.state != "done":
            raise HTTPException(409, f"job {job_id} is {job.state}, not done")
        return FileResponse(service.store.output_path(job_id), media_type="video/mp4", filename="edit.mp4")

    return app


def _job_or_404(service: JobService, job_id: str) -> JobStatus:
    job = service.store.get(job_id) if all(c in "0123456789abcdef" for c in job_id) else None
    if job is None:
        raise HTTPException(404, f"no job {job_id!r}")
    return job
