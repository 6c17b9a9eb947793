"""PickScore reward (VIVA eq. 6): the preference model's score of the edited video for t_edit.

PickScore(V, t) = mean over sampled frames of ``logit_scale * cos(e_frame, e_text)`` (the score PickScore_v1
ranks images with; ``logit_scale`` ~ 100), times ``scale`` (1 by default).
"""

from __future__ import annotations

from typing import Any

from viva.rewards.base import RewardBatch, RewardOutput, check_scores, frames_as_uint8, validate_batch
from viva.rewards.clip_backend import PICKSCORE_DEFAULT, embed_texts, embed_videos
from viva.rewards.clip_scorer import ClipScorer, make_config, video_text_similarity

PICKSCORE_DEFAULTS = {"model": PICKSCORE_DEFAULT[0], "processor": PICKSCORE_DEFAULT[1], "backend": "transformers"}


class PickScore:
    """PickScore reward (eq. 6). Options: ``scale`` plus :class:`viva.rewards.clip_backend.ClipModelConfig`."""

    name = "pickscore"

    def __init__(self, scale: float = 1.0, **options: Any) -> None:
        if options.get("model") == "toy":
            options = {**options, "model": "toy-pickscore"}
        self.scale = float(scale)
        self.scorer = ClipScorer(self.name, make_config(self.name, PICKSCORE_DEFAULTS, options))

    def setup(self, device: str) -> None:
        """Load the preference model onto ``device``."""
        self.scorer.setup(device)

    def score(self, batch: RewardBatch) -> RewardOutput:
        """``scale * logit_scale * C(V_edit, t_edit)``; sub-score ``pickscore_raw`` (without ``scale``)."""
        validate_batch(batch, ("edit_captions",), need_source=False)
        enc, cfg = self.scorer.ready(), self.scorer.cfg
        frames = embed_videos(enc, frames_as_uint8(batch.edited_videos), cfg)  # [B, n, D]
        raw = enc.logit_scale * video_text_similarity(frames, embed_texts(enc, batch.edit_captions))  # [B]
        scores = check_scores(self.name, batch, self.scale * raw.numpy())
        return RewardOutput(scores, {"pickscore_raw": raw.double().numpy()})
