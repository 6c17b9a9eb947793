"""The reward-model contract: a batch of edits in, one float per sample (plus named sub-scores) out.

Frames: every video is ``[F, H, W, 3]`` RGB, either uint8 in [0, 255] or float in [0, 1]. The built-in models
quantise float frames to uint8 (``round(x * 255)``) before preprocessing, because both CLIP libraries preprocess
8-bit images; so a float video and its uint8 rendering score identically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Protocol, Sequence, runtime_checkable

import numpy as np


class RewardError(ValueError):
    """A batch or a score is invalid; the message names the sample(s) and the field."""


@dataclass(frozen=True)
class RewardBatch:
    """Edits to score. Videos are uint8 ``[B, F, H, W, 3]`` numpy arrays (float frames in [0, 1] are also accepted
    by the built-in models); captions follow VIVA: t_src describes the source, t_edit the intended result."""

    sample_ids: List[str]
    edited_videos: np.ndarray  # [B, F, H, W, 3] uint8
    source_videos: np.ndarray  # [B, F, H, W, 3] uint8
    instructions: List[str]  # t_ins
    source_captions: List[str]  # t_src
    edit_captions: List[str]  # t_edit
    reference_images: Optional[List[Optional[np.ndarray]]] = None  # each [H, W, 3] uint8 or None
    # The prompt each edit answers (an EditSample, with its target / mask / scene when the world has ground truth):
    # what ground-truth rewards such as `toy_oracle` score against. None for plain reward batches.
    prompts: Optional[List[Any]] = None

    def __len__(self) -> int:
        return len(self.sample_ids)

    @classmethod
    def from_videos(cls, sample_ids: Sequence[str], edited: Sequence[np.ndarray], source: Sequence[np.ndarray],
                    texts: "BatchTexts", reference_images: Optional[List[Optional[np.ndarray]]] = None,
                    ) -> "RewardBatch":
        """Stack per-sample ``[F, H, W, 3]`` videos, checking each one (errors name the sample)."""
        ids = list(sample_ids)
        if not (len(ids) == len(edited) == len(source)):
            raise RewardError(f"{len(ids)} sample ids, {len(edited)} edited and {len(source)} source videos")
        for sid, e, s in zip(ids, edited, source):
            _check_video(sid, "edited video", e)
            _check_video(sid, "source video", s)
            if e.shape != s.shape:
                raise RewardError(f"sample {sid}: edited video shape {e.shape} != source video shape {s.shape} "
                                  "(frame count and size must match)")
        shapes = {e.shape for e in edited}
        if len(shapes) > 1:
            raise RewardError(f"videos of one batch must share a shape, got {sorted(shapes)} (ids {ids})")
        return cls(ids, np.stack(edited), np.stack(source), list(texts.instructions), list(texts.source_captions),
                   list(texts.edit_captions), reference_images)


@dataclass(frozen=True)
class BatchTexts:
    """The three texts of a batch: t_ins, t_src, t_edit (one per sample each)."""

    instructions: Sequence[str]
    source_captions: Sequence[str]
    edit_captions: Sequence[str]


@dataclass(frozen=True)
class RewardOutput:
    """One score per sample (``[B]`` float64) and named sub-scores for logging."""

    scores: np.ndarray  # [B]
    sub_scores: Dict[str, np.ndarray] = field(default_factory=dict)  # name -> [B]


@runtime_checkable
class RewardModel(Protocol):
    """A reward: `setup` loads weights onto a device once; `score` is called on batches of any size."""

    name: str

    def setup(self, device: str) -> None:
        """Load weights onto ``device``; called once in the process that scores."""
        ...

    def score(self, batch: RewardBatch) -> RewardOutput:
        """Score every sample of ``batch``; raise (naming the sample) rather than return NaN or a made-up value."""
        ...


# ----------------------------------------------------------------------------------------------------------------
# Checks shared by every built-in reward (bad input -> RewardError naming the sample, never a silent 0)
# ----------------------------------------------------------------------------------------------------------------

TEXT_FIELDS = ("instructions", "source_captions", "edit_captions")


def _check_video(sample_id: str, what: str, video: np.ndarray) -> None:
    if not isinstance(video, np.ndarray) or video.ndim != 4 or video.shape[-1] != 3:
        raise RewardError(f"sample {sample_id}: {what} must be [F, H, W, 3], got "
                          f"{getattr(video, 'shape', type(video).__name__)}")
    if video.shape[0] < 1 or video.shape[1] < 1 or video.shape[2] < 1:
        raise RewardError(f"sample {sample_id}: {what} is empty, shape {video.shape}")
    if video.dtype != np.uint8 and not np.issubdtype(video.dtype, np.floating):
        raise RewardError(f"sample {sample_id}: {what} must be uint8 or float in [0, 1], got {video.dtype}")


def _check_float_range(batch: RewardBatch, name: str, videos: np.ndarray) -> None:
    if videos.dtype == np.uint8:
        return
    per_sample_ok = np.isfinite(videos).reshape(len(videos), -1).all(axis=1)
    per_sample_ok &= ((videos >= 0) & (videos <= 1)).reshape(len(videos), -1).all(axis=1)
    bad = [batch.sample_ids[i] for i in np.flatnonzero(~per_sample_ok)]
    if bad:
        raise RewardError(f"samples {bad}: {name} has float frames outside [0, 1] or non-finite values")


def validate_batch(batch: RewardBatch, texts: Sequence[str] = TEXT_FIELDS, need_source: bool = True) -> None:
    """Raise :class:`RewardError` naming the sample if ``batch`` cannot be scored (shapes, frames, empty text)."""
    n = len(batch.sample_ids)
    if n == 0:
        raise RewardError("empty reward batch")
    ev, sv = batch.edited_videos, batch.source_videos
    for name, v in (("edited_videos", ev), ("source_videos", sv)) if need_source else (("edited_videos", ev),):
        if not isinstance(v, np.ndarray) or v.ndim != 5 or v.shape[-1] != 3 or len(v) != n:
            raise RewardError(f"{name} must be [B={n}, F, H, W, 3], got {getattr(v, 'shape', type(v).__name__)} "
                              f"(ids {batch.sample_ids})")
        if min(v.shape[1:4]) < 1:
            raise RewardError(f"{name} has no frames/pixels, shape {v.shape} (ids {batch.sample_ids})")
        _check_video(batch.sample_ids[0], name, v[0])
        _check_float_range(batch, name, v)
    if need_source and ev.shape != sv.shape:
        raise RewardError(f"samples {batch.sample_ids}: edited videos {ev.shape} and source videos {sv.shape} "
                          "differ in frame count or size")
    for field_name in texts:
        values = getattr(batch, field_name)
        if len(values) != n:
            raise RewardError(f"{field_name} has {len(values)} entries for {n} samples")
        for sid, text in zip(batch.sample_ids, values):
            if not isinstance(text, str) or not text.strip():
                raise RewardError(f"sample {sid}: empty {field_name[:-1].replace('_', ' ')}")


def check_scores(name: str, batch: RewardBatch, scores: np.ndarray) -> np.ndarray:
    """Return ``scores`` as float64 ``[B]``; raise naming every sample whose score is NaN/inf."""
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)  # [B]
    if len(scores) != len(batch):
        raise RewardError(f"reward {name}: {len(scores)} scores for {len(batch)} samples")
    bad = [batch.sample_ids[i] for i in np.flatnonzero(~np.isfinite(scores))]
    if bad:
        raise RewardError(f"reward {name}: non-finite score for samples {bad}")
    return scores


def frames_as_uint8(videos: np.ndarray) -> np.ndarray:
    """uint8 frames as-is; float frames in [0, 1] quantised with ``round(x * 255)`` (see the module docstring)."""
    if videos.dtype == np.uint8:
        return videos
    return np.clip(np.rint(videos.astype(np.float64) * 255.0), 0, 255).astype(np.uint8)
