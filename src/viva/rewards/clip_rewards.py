"""CLIP-IF (VIVA eq. 4) and CLIP-SP (eq. 5): instruction following and source preservation in CLIP space.

>>> from viva.rewards.clip_rewards import clip_if_from_embeddings
>>> import torch
>>> e = torch.tensor([[[1.0, 0.0]]]); t_edit = torch.tensor([[1.0, 0.0]]); t_src = torch.tensor([[0.0, 1.0]])
>>> clip_if_from_embeddings(e, t_edit, t_src).tolist()
[1.0]
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from viva.rewards.base import RewardBatch, RewardOutput, check_scores, frames_as_uint8, validate_batch
from viva.rewards.clip_backend import OPEN_CLIP_DEFAULT, embed_texts, embed_videos
from viva.rewards.clip_scorer import ClipScorer, make_config, video_text_similarity, video_video_similarity

CLIP_DEFAULTS = {"model": OPEN_CLIP_DEFAULT[0], "pretrained": OPEN_CLIP_DEFAULT[1], "backend": "open_clip"}


def clip_if_from_embeddings(edit_frames: torch.Tensor, t_edit: torch.Tensor, t_src: torch.Tensor) -> torch.Tensor:
    """Eq. 4: C(V_edit, t_edit) - C(V_edit, t_src); ``[B, n, D]``, ``[B, D]``, ``[B, D]`` -> ``[B]``."""
    return video_text_similarity(edit_frames, t_edit) - video_text_similarity(edit_frames, t_src)


def clip_sp_from_embeddings(source_frames: torch.Tensor, edit_frames: torch.Tensor) -> torch.Tensor:
    """Eq. 5: C(V_src, V_edit), frame-aligned mean cosine; ``[B, n, D]`` x2 -> ``[B]``."""
    return video_video_similarity(source_frames, edit_frames)


class ClipIF:
    """CLIP-IF reward (eq. 4). Options: see :class:`viva.rewards.clip_backend.ClipModelConfig`."""

    name = "clip_if"

    def __init__(self, **options: Any) -> None:
        self.scorer = ClipScorer(self.name, make_config(self.name, CLIP_DEFAULTS, options))

    def setup(self, device: str) -> None:
        """Load the CLIP onto ``device``."""
        self.scorer.setup(device)

    def score(self, batch: RewardBatch) -> RewardOutput:
        """C(V_edit, t_edit) - C(V_edit, t_src) per sample; sub-scores ``clip_t_edit``, ``clip_t_src``."""
        validate_batch(batch, ("source_captions", "edit_captions"), need_source=False)
        enc, cfg = self.scorer.ready(), self.scorer.cfg
        frames = embed_videos(enc, frames_as_uint8(batch.edited_videos), cfg)  # [B, n, D]
        sim_edit = video_text_similarity(frames, embed_texts(enc, batch.edit_captions))  # [B]
        sim_src = video_text_similarity(frames, embed_texts(enc, batch.source_captions))  # [B]
        scores = check_scores(self.name, batch, (sim_edit - sim_src).numpy())
        return RewardOutput(scores, {"clip_t_edit": sim_edit.double().numpy(), "clip_t_src": sim_src.double().numpy()})


class ClipSP:
    """CLIP-SP reward (eq. 5). Options: see :class:`viva.rewards.clip_backend.ClipModelConfig`."""

    name = "clip_sp"

    def __init__(self, **options: Any) -> None:
        self.scorer = ClipScorer(self.name, make_config(self.name, CLIP_DEFAULTS, options))

    def setup(self, device: str) -> None:
        """Load the CLIP onto ``device``."""
        self.scorer.setup(device)

    def score(self, batch: RewardBatch) -> RewardOutput:
        """Frame-aligned mean cosine between source and edited frames."""
        validate_batch(batch, (), need_source=True)
        enc, cfg = self.scorer.ready(), self.scorer.cfg
        n = len(batch)
        # source and edit frames go through the encoder together: one forward per micro-batch
        both = np.concatenate([frames_as_uint8(batch.source_videos), frames_as_uint8(batch.edited_videos)])
        emb = embed_videos(enc, both, cfg)  # [2B, n, D]
        scores = check_scores(self.name, batch, clip_sp_from_embeddings(emb[:n], emb[n:]).numpy())
        return RewardOutput(scores, {})
