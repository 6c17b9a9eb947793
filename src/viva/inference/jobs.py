"""Edit jobs of the server: a bounded table of jobs and a server-owned directory of their files.

A job's id is 128 random bits (hex); its files live in ``root/<id>/`` under fixed names (``source``, ``reference``,
``output.mp4``), so no client-provided name ever reaches the file system. At most ``max_active`` jobs are queued or
running at once; ``create`` refuses more with ``QueueFull`` (the server answers 503). Finished jobs beyond
``max_finished`` are forgotten oldest-first and their files removed.
"""

from __future__ import annotations

import dataclasses
import secrets
import shutil
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from viva.training.atomic import atomic_write_bytes

STATES = ("queued", "running", "done", "failed")


class QueueFull(RuntimeError):
    """Too many jobs are queued or running; retry later."""


@dataclass(frozen=True)
class JobStatus:
    """What ``GET /v1/edits/{id}`` reports."""

    id: str
    state: str  # queued | running | done | failed
    step: int = 0  # denoising steps done
    total_steps: int = 0
    error: Optional[str] = None
    lora: Optional[str] = None
    created_at: float = 0.0
    finished_at: Optional[float] = None

    @property
    def progress(self) -> float:
        """Fraction of the denoising steps done (1.0 when done)."""
        if self.state == "done":
            return 1.0
        return self.step / self.total_steps if self.total_steps else 0.0

    def to_json(self) -> dict:
        """Plain JSON-able dict (no pickle on the wire)."""
        return {**dataclasses.asdict(self), "progress": round(self.progress, 4)}


class JobStore:
    """Thread-safe bounded job table with one private directory per job."""

    def __init__(self, root: str | Path, max_active: int, max_finished: int = 256) -> None:
        if max_active < 1:
            raise ValueError(f"max_active must be >= 1, got {max_active}")
        self.root = Path(root).resolve()
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.max_active = max_active
        self.max_finished = max_finished
        self._jobs: "OrderedDict[str, JobStatus]" = OrderedDict()
        self._lock = threading.Lock()

    def create(self, lora: Optional[str] = None) -> JobStatus:
        """A new queued job with its own directory; raises ``QueueFull`` at the limit."""
        with self._lock:
            if self.num_active() >= self.max_active:
                raise QueueFull(f"{self.max_active} jobs already queued or running")
            job_id = secrets.token_hex(16)
            self.dir(job_id).mkdir(mode=0o700)
            job = JobStatus(id=job_id, state="queued", lora=lora, created_at=time.time())
            self._jobs[job_id] = job
            return job

    def num_active(self) -> int:
        """Jobs queued or running."""
        return sum(j.state in ("queued", "running") for j in self._jobs.values())

    def get(self, job_id: str) -> Optional[JobStatus]:
        """The job's status, or None if unknown (or forgotten)."""
        with self._lock:
            return self._jobs.get(job_id)

    def dir(self, job_id: str) -> Path:
        """The job's private directory (the id is validated: hex only)."""
        if not job_id or any(c not in "0123456789abcdef" for c in job_id):
            raise KeyError(f"malformed job id {job_id!r}")
        return self.root / job_id

    def output_path(self, job_id: str) -> Path:
        """Where the edited mp4 of a job goes."""
        return self.dir(job_id) / "output.mp4"

    def update(self, job_id: str, **changes) -> JobStatus:
        """Replace fields of a job's status (state, step, total_steps, error); returns the new status."""
        with self._lock:
            job = dataclasses.replace(self._jobs[job_id], **changes)
            if job.state in ("done", "failed") and job.finished_at is None:
                job = dataclasses.replace(job, finished_at=time.time())
            self._jobs[job_id] = job
            self._forget_old()
            return job

    def _forget_old(self) -> None:
        finished = [j.id for j in self._jobs.values() if j.state in ("done", "failed")]
        for job_id in finished[: max(0, len(finished) - self.max_finished)]:
            del self._jobs[job_id]
            shutil.rmtree(self.dir(job_id), ignore_errors=True)

    def write_file(self, job_id: str, name: str, data: bytes) -> Path:
        """Atomically write one of a job's fixed-name files."""
        if name not in ("source", "reference", "output.mp4"):
            raise ValueError(f"unknown job file name {name!r}")
        return atomic_write_bytes(self.dir(job_id) / name, data)
