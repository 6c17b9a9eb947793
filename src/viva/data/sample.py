"""The prompt record that crosses process boundaries: one editing request with its ground truth, if known."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np

EDIT_TYPES = ("add", "remove", "replace", "recolor", "background", "hybrid", "reference", "style")


@dataclass(frozen=True)
class EditSample:
    """One editing request. Videos are uint8 ``[F, H, W, 3]`` numpy arrays; an image is a 1-frame video."""

    sample_id: str
    instruction: str  # t_ins
    source_caption: str  # t_src
    edit_caption: str  # t_edit
    source_video: np.ndarray  # [F, H, W, 3] uint8
    target_video: Optional[np.ndarray] = None  # [F, H, W, 3] uint8, ground truth when known (SFT pairs, toy world)
    mask: Optional[np.ndarray] = None  # [F, H, W] float32 in [0, 1]; 1 where the edit changes pixels
    reference_image: Optional[np.ndarray] = None  # [H, W, 3] uint8
    edit_type: str = "add"
    # Toy world only: JSON of the source/target scene specs so the oracle can check per-object correctness.
    scene_json: Optional[str] = None

    def __post_init__(self) -> None:
        v = self.source_video
        if not isinstance(v, np.ndarray) or v.dtype != np.uint8 or v.ndim != 4 or v.shape[-1] != 3:
            raise ValueError(f"sample {self.sample_id}: source_video must be uint8 [F, H, W, 3], got "
                             f"{getattr(v, 'dtype', type(v))} {getattr(v, 'shape', '')}")
        if self.target_video is not None and self.target_video.shape != v.shape:
            raise ValueError(f"sample {self.sample_id}: target_video shape {self.target_video.shape} "
                             f"!= source_video shape {v.shape}")
        if self.mask is not None and self.mask.shape != v.shape[:3]:
            raise ValueError(f"sample {self.sample_id}: mask shape {self.mask.shape} != {v.shape[:3]}")
        if not self.instruction.strip():
            raise ValueError(f"sample {self.sample_id}: empty instruction")

    @property
    def num_frames(self) -> int:
        """Frames in the source video (1 for an image pair)."""
        return int(self.source_video.shape[0])
