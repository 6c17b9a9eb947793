"""An optional VLM judge: an OpenAI-compatible chat endpoint (e.g. a vLLM server on a GPU node) rates an edit
0-10 on instruction following, source preservation, editing quality and (with a reference image) subject
similarity, following the VIVA paper's evaluation criteria (rubric paraphrased in RUBRIC below)."""

from __future__ import annotations

import base64
import io
import json
import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

import numpy as np

from viva.rewards.clip_backend import frame_indices

CRITERIA = ("instruction_following", "source_preservation", "editing_quality", "subject_similarity")
RUBRIC = """You are an expert judge of instruction-based video editing. You see frames of the SOURCE video, frames
of the EDITED video, the editing INSTRUCTION and, for reference-based edits, a REFERENCE image. Score each
criterion from 0 (worst) to 10 (best):
- instruction_following: does the edited video do exactly what the instruction asks (right object, attribute,
  count, position), and nothing it does not ask for? 0 = ignored or wrong edit, 10 = fully and precisely done.
- source_preservation: are the regions, subjects, motion and background the instruction does not mention kept
  identical to the source? 0 = unrelated video, 10 = everything else unchanged.
- editing_quality: is the result visually plausible and clean (no artifacts, blur, flicker, broken geometry,
  temporal inconsistency)? 0 = unusable, 10 = indistinguishable from a real video.
- subject_similarity: only when a REFERENCE image is given: does the inserted/edited subject match it in
  identity, shape and colour? 0 = unrelated, 10 = the same subject. Use null when there is no reference.
Answer with one JSON object and nothing else, e.g.
{"instruction_following": 7, "source_preservation": 9, "editing_quality": 8, "subject_similarity": null}"""


class JudgeError(RuntimeError):
    """The judge endpoint failed or answered something that is not a valid score object; names the sample."""


@dataclass(frozen=True)
class JudgeScores:
    """0-10 scores of one edit; ``subject_similarity`` is None without a reference image."""

    instruction_following: float
    source_preservation: float
    editing_quality: float
    subject_similarity: Optional[float]


def png_data_url(image: np.ndarray) -> str:
    """uint8 ``[H, W, 3]`` -> ``data:image/png;base64,...``."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _images(label: str, frames: np.ndarray, max_frames: int) -> List[Dict[str, Any]]:
    parts: List[Dict[str, Any]] = [{"type": "text", "text": f"{label}:"}]
    for i in frame_indices(len(frames), max_frames):
        parts.append({"type": "image_url", "image_url": {"url": png_data_url(frames[i])}})
    return parts


def build_messages(instruction: str, source: np.ndarray, edited: np.ndarray, reference: Optional[np.ndarray],
                   max_frames: int = 4) -> List[Dict[str, Any]]:
    """The chat messages of one judgement (system rubric + a user turn with the frames as data URLs)."""
    content: List[Dict[str, Any]] = [{"type": "text", "text": f"INSTRUCTION: {instruction}"}]
    content += _images("SOURCE frames", source, max_frames) + _images("EDITED frames", edited, max_frames)
    if reference is not None:
        content += _images("REFERENCE image", reference[None], 1)
    return [{"role": "system", "content": RUBRIC}, {"role": "user", "content": content}]


def parse_scores(text: str, sample_id: str, has_reference: bool) -> JudgeScores:
    """The first JSON object in ``text`` as :class:`JudgeScores`; out-of-range or missing values are errors."""
    match = re.search(r"\{.*\}", text, flags=re.S)
    try:
        obj = json.loads(match.group(0)) if match else None
    except json.JSONDecodeError:
        obj = None
    if not isinstance(obj, dict):
        raise JudgeError(f"sample {sample_id}: judge answer is not a JSON object: {text[:200]!r}")
    values: Dict[str, Optional[float]] = {}
    for key in CRITERIA:
        v = obj.get(key)
        if key == "subject_similarity" and not has_reference:
            values[key] = None
            continue
        if not isinstance(v, (int, float)) or isinstance(v, bool) or not 0 <= v <= 10:
            raise JudgeError(f"sample {sample_id}: judge score {key}={v!r} is missing or outside 0-10")
        values[key] = float(v)
    return JudgeScores(**values)  # type: ignore[arg-type]


class VLMJudge:
    """Client of an OpenAI-compatible ``/v1/chat/completions`` endpoint (httpx, temperature 0)."""

    def __init__(self, url: str, model: str, api_key: Optional[str] = None, timeout_s: float = 120.0,
                 max_frames: int = 4) -> None:
        base = url.rstrip("/")
        self.endpoint = base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")
        self.model, self.max_frames, self.timeout_s = model, max_frames, timeout_s
        self.headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    def judge(self, sample_id: str, instruction: str, source: np.ndarray, edited: np.ndarray,
              reference: Optional[np.ndarray] = None) -> JudgeScores:
        """Score one edit; raises :class:`JudgeError` naming the sample on any failure."""
        import httpx

        body = {"model": self.model, "temperature": 0.0, "max_tokens": 256,
                "messages": build_messages(instruction, source, edited, reference, self.max_frames)}
        try:
            resp = httpx.post(self.endpoint, json=body, headers=self.headers, timeout=self.timeout_s)
            resp.raise_for_status()
            text = resp.json()["choices"][0]["message"]["content"]
        except (httpx.HTTPError, KeyError, IndexError, ValueError, TypeError) as e:
            raise JudgeError(f"sample {sample_id}: judge request to {self.endpoint} failed: {e}") from e
        return parse_scores(text, sample_id, reference is not None)
