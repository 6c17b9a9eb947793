"""Quality control of synthesised pairs by a chat VLM (the same engines as `viva data triplets`: an
OpenAI-compatible endpoint or vLLM), with the prompt files ``qc_system.txt`` / ``qc_user.txt`` (``$num_frames``,
``$object``). The answer is ``{"keep": bool, "score": 0-10, "reason": str}``; a malformed answer is asked again up to
``max_attempts`` times, then the pair is dropped with the reason. ``accept_all`` keeps every pair (no VLM).

>>> parse_verdict('{"keep": true, "score": 8, "reason": "clean"}', min_score=7)
QCVerdict(keep=True, score=8.0, reason='clean')
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from viva.config import DataPipelineConfig, StageSpec
from viva.data.pairs.components import PairCandidate, QCVerdict, check_options
from viva.data.vlm_chat import MalformedAnswer, PromptFile, build_engine, first_json_object, user_turn

DEFAULTS = {"min_score": 7, "num_frames": 2, "max_side": 512, "max_attempts": 3}
SYSTEM_FILE, USER_FILE, USER_FIELDS = "qc_system.txt", "qc_user.txt", ("num_frames", "object")


def load_qc_prompts(prompt_dir: str | Path) -> tuple[PromptFile, PromptFile]:
    """(system, user) QC prompt files of ``prompt_dir``, checked."""
    d = Path(prompt_dir)
    return PromptFile.load(d / SYSTEM_FILE, ()), PromptFile.load(d / USER_FILE, USER_FIELDS)


def parse_verdict(text: str, min_score: float) -> QCVerdict:
    """The verdict in a VLM answer: kept only when ``keep`` is true and ``score >= min_score``."""
    obj = first_json_object(text)
    keep, score, reason = obj.get("keep"), obj.get("score"), obj.get("reason", "")
    if not isinstance(keep, bool):
        raise MalformedAnswer(f"key 'keep' must be true or false, got {keep!r}")
    if isinstance(score, bool) or not isinstance(score, (int, float)) or not 0 <= score <= 10:
        raise MalformedAnswer(f"key 'score' must be a number in 0-10, got {score!r}")
    if not isinstance(reason, str):
        raise MalformedAnswer(f"key 'reason' must be text, got {reason!r}")
    return QCVerdict(keep and score >= min_score, float(score), reason.strip())


def _thumbs(frames: np.ndarray, idx: np.ndarray, max_side: int) -> list:
    from PIL import Image

    out = []
    for i in idx:
        im = Image.fromarray(frames[i])
        im.thumbnail((max_side, max_side), Image.BICUBIC)
        out.append(np.asarray(im))
    return out


class VLMQualityCheck:
    """Shows the VLM source and edited frames at the same times and asks whether the object is cleanly gone."""

    def __init__(self, spec: StageSpec, cfg: DataPipelineConfig) -> None:
        self.opts = check_options("qc", spec.options, DEFAULTS)
        self.system, self.user = load_qc_prompts(cfg.prompt_dir)
        vlm = cfg.vlm if spec.model is None else dataclasses.replace(cfg.vlm, model=spec.model)
        self.engine = build_engine(vlm, max_images=2 * int(self.opts["num_frames"]), seed=cfg.seed)

    def check(self, pair: PairCandidate) -> QCVerdict:
        """The VLM's verdict; after ``max_attempts`` malformed answers or failed requests, a drop with the reason."""
        n = int(self.opts["num_frames"])
        idx = np.unique(np.linspace(0, len(pair.source) - 1, n).round().astype(int))
        frames = _thumbs(pair.source, idx, self.opts["max_side"]) + _thumbs(pair.edited, idx, self.opts["max_side"])
        text = self.user.render(num_frames=len(idx), object=pair.label)
        conversation = [{"role": "system", "content": self.system.render()}, user_turn(text, frames)]
        error = ""
        for _ in range(int(self.opts["max_attempts"])):
            reply = self.engine.complete([conversation])[0]
            if not reply.ok:
                error = f"request failed: {reply.error}"
                continue
            try:
                return parse_verdict(reply.text or "", float(self.opts["min_score"]))
            except MalformedAnswer as e:
                error = f"malformed answer: {e}"
        return QCVerdict(False, 0.0, f"{error} (after {self.opts['max_attempts']} tries)")


class AcceptAll:
    """Keeps every pair (no quality control); for pipelines checked by other means."""

    def __init__(self, spec: StageSpec, cfg: DataPipelineConfig) -> None:
        check_options("qc", spec.options, {})

    def check(self, pair: PairCandidate) -> QCVerdict:
        """Always keep."""
        return QCVerdict(True, 10.0, "accept_all")
