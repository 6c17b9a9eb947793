"""Open-vocabulary detection with transformers' Grounding DINO (``GroundingDinoForObjectDetection``).

Each query is its own text prompt (one batched forward over ``len(queries)`` copies of the frame), so a box's
label is exactly the query that found it — no phrase splitting of a combined prompt. Weights: a hub id (e.g.
``IDEA-Research/grounding-dino-base``) or a local directory with the model and its processor.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import torch

from viva.config import DataPipelineConfig, StageSpec
from viva.data.pairs.components import DTYPES, Detection, check_options, require_model

DEFAULTS = {"box_threshold": 0.35, "text_threshold": 0.25, "frame": 0, "min_box_area": 0.005,
            "max_box_area": 0.8}


class GroundingDinoDetector:
    """The highest-scoring box of any query on one frame, within the box-area limits (fractions of the frame)."""

    def __init__(self, spec: StageSpec, cfg: DataPipelineConfig) -> None:
        self.opts = check_options("detect", spec.options, DEFAULTS)
        path = require_model("detect", spec.model)
        # imported after the checks: the import takes seconds
        from transformers import AutoProcessor, GroundingDinoForObjectDetection

        self.device, self.dtype = torch.device(cfg.device), DTYPES[cfg.dtype]
        self.processor = AutoProcessor.from_pretrained(path)
        self.model = GroundingDinoForObjectDetection.from_pretrained(path).to(self.device, self.dtype).eval()

    @torch.no_grad()
    def detect(self, frames: np.ndarray, queries: Sequence[str]) -> Optional[Detection]:
        """Best detection on frame ``options.frame``, or None."""
        from PIL import Image

        index = min(int(self.opts["frame"]), len(frames) - 1)
        h, w = frames.shape[1:3]
        texts = [q.strip().lower().rstrip(".") + "." for q in queries]  # Grounding DINO's phrase format
        image = Image.fromarray(frames[index])
        inputs = self.processor(images=[image] * len(texts), text=texts, return_tensors="pt", padding=True)
        inputs = inputs.to(self.device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.dtype)
        outputs = self.model(**inputs)
        results = self.processor.post_process_grounded_object_detection(
            outputs, inputs["input_ids"], threshold=self.opts["box_threshold"],
            text_threshold=self.opts["text_threshold"], target_sizes=[(h, w)] * len(texts))
        best: Optional[Detection] = None
        for query, res in zip(queries, results):
            for score, box in zip(res["scores"].tolist(), res["boxes"].tolist()):
                x0, y0, x1, y1 = max(0.0, box[0]), max(0.0, box[1]), min(float(w), box[2]), min(float(h), box[3])
                area = max(0.0, x1 - x0) * max(0.0, y1 - y0) / (h * w)
                if not self.opts["min_box_area"] <= area <= self.opts["max_box_area"]:
                    continue
                if best is None or score > best.score:
                    best = Detection(query, (x0, y0, x1, y1), float(score), index)
        return best
