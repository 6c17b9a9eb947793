"""The triplet worker: keyframes of each video -> VLM -> checked triplet, retried a bounded number of times.

A plain class; ``viva.data.work_pool.WorkPool`` places N of them as Ray actors (the engine — an HTTP client or a
vLLM engine holding a GPU — is built inside the actor). One call handles a batch of videos so vLLM generates them
together; an OpenAI-compatible endpoint gets them ``vlm.concurrency`` at a time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from viva.config import DataPipelineConfig
from viva.data.clips import read_keyframes
from viva.data.triplets.answer import Triplet, parse_triplet
from viva.data.video_io import VideoReadError
from viva.data.vlm_chat import Conversation, MalformedAnswer, PromptFile, build_engine, user_turn

SYSTEM_FILE, USER_FILE = "triplet_system.txt", "triplet_user.txt"
USER_FIELDS = ("edit_types", "num_frames")


@dataclass(frozen=True)
class TripletJob:
    """One video to describe, and the edit types its instruction must combine."""

    video_id: str
    path: str
    edit_types: Tuple[str, ...]


@dataclass(frozen=True)
class TripletResult:
    """A checked triplet, or why there is none (``reason``) after ``attempts`` tries."""

    job: TripletJob
    triplet: Optional[Triplet]
    attempts: int
    reason: Optional[str] = None
    seconds: float = 0.0


@dataclass(frozen=True)
class TripletPrompts:
    """The system and user prompt files (``$edit_types``, ``$num_frames`` in the user one)."""

    system: PromptFile
    user: PromptFile

    @classmethod
    def load(cls, prompt_dir: str | Path) -> "TripletPrompts":
        """Read and check ``triplet_system.txt`` and ``triplet_user.txt`` in ``prompt_dir``."""
        d = Path(prompt_dir)
        return cls(PromptFile.load(d / SYSTEM_FILE, ()), PromptFile.load(d / USER_FILE, USER_FIELDS))

    def conversation(self, job: TripletJob, frames) -> Conversation:
        """System prompt + one user turn holding the frames and the rendered request."""
        text = self.user.render(edit_types=", ".join(job.edit_types), num_frames=len(frames))
        return [{"role": "system", "content": self.system.render()}, user_turn(text, frames)]


class TripletWorker:
    """Holds the VLM engine; ``run_batch`` is the one method the runner calls."""

    def __init__(self, cfg: DataPipelineConfig, prompts: TripletPrompts) -> None:
        self.cfg, self.prompts = cfg, prompts
        self.engine = build_engine(cfg.vlm, max_images=cfg.triplets.num_frames, seed=cfg.seed)

    def run_batch(self, jobs: List[TripletJob]) -> List[TripletResult]:
        """Triplets for every job; a malformed answer or failed request is retried up to ``max_attempts`` times."""
        start = time.perf_counter()
        results: dict[int, TripletResult] = {}
        convs: dict[int, Conversation] = {}
        for i, job in enumerate(jobs):
            try:
                frames = read_keyframes(job.path, self.cfg.triplets.num_frames, self.cfg.triplets.max_side)
                convs[i] = self.prompts.conversation(job, frames)
            except VideoReadError as e:
                results[i] = TripletResult(job, None, 0, f"video: {e}")
        last_error: dict[int, str] = {}
        for attempt in range(1, self.cfg.triplets.max_attempts + 1):
            todo = sorted(i for i in convs if i not in results)
            if not todo:
                break
            for i, reply in zip(todo, self.engine.complete([convs[i] for i in todo])):
                if not reply.ok:
                    last_error[i] = f"request failed: {reply.error}"
                    continue
                try:
                    results[i] = TripletResult(jobs[i], parse_triplet(reply.text or ""), attempt)
                except MalformedAnswer as e:
                    last_error[i] = f"malformed answer: {e}"
        seconds = (time.perf_counter() - start) / max(1, len(jobs))
        attempts = self.cfg.triplets.max_attempts
        return [_with_time(results.get(i) or TripletResult(job, None, attempts, last_error[i]), seconds)
                for i, job in enumerate(jobs)]


def _with_time(result: TripletResult, seconds: float) -> TripletResult:
    return TripletResult(result.job, result.triplet, result.attempts, result.reason, seconds)
