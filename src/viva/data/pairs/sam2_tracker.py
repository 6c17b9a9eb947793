"""Mask tracking with transformers' SAM 2 video model (``Sam2VideoModel`` + ``Sam2VideoProcessor``): the detected
box prompts the object on its frame, SAM 2 propagates it through the clip (forward, then backward when the box is
not on the first frame). Weights: a hub id (e.g. ``facebook/sam2.1-hiera-large``) or a local directory.
"""

from __future__ import annotations

import numpy as np
import torch

from viva.config import DataPipelineConfig, StageSpec
from viva.data.pairs.components import DTYPES, Detection, check_options, require_model

DEFAULTS = {"mask_threshold": 0.0}  # on the mask logits


class Sam2VideoTracker:
    """Binary masks of the detected object on every frame."""

    def __init__(self, spec: StageSpec, cfg: DataPipelineConfig) -> None:
        self.opts = check_options("track", spec.options, DEFAULTS)
        path = require_model("track", spec.model)
        # imported after the checks: the import takes seconds
        from transformers import Sam2VideoModel, Sam2VideoProcessor

        self.device, self.dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
        self.processor = Sam2VideoProcessor.from_pretrained(path)
        self.model = Sam2VideoModel.from_pretrained(path).to(self.device, self.dtype).eval()

    @torch.no_grad()
    def track(self, frames: np.ndarray, detection: Detection) -> np.ndarray:
        """Masks ``[F, H, W]`` float32 in {0, 1}."""
        f, h, w = frames.shape[:3]
        session = self.processor.init_video_session(video=list(frames), inference_device=self.device,
                                                    dtype=self.dtype)
        self.processor.add_inputs_to_inference_session(inference_session=session, frame_idx=detection.frame,
                                                       obj_ids=1, input_boxes=[[list(detection.box)]])
        masks = np.zeros((f, h, w), np.float32)
        for reverse in ((False, True) if detection.frame > 0 else (False,)):
            for out in self.model.propagate_in_video_iterator(inference_session=session,
                                                              start_frame_idx=detection.frame, reverse=reverse):
                logits = self.processor.post_process_masks([out.pred_masks], [(h, w)], binarize=False)[0]
                masks[out.frame_idx] = (logits[0, 0].float() > self.opts["mask_threshold"]).cpu().numpy()
        return masks
