"""Object removal with a diffusers inpainting pipeline (``AutoPipelineForInpainting``: Stable Diffusion / SDXL
inpainting and friends), frame by frame in batches, composited so pixels outside the dilated mask are the source's
exactly. Weights: a hub id (e.g. ``stable-diffusion-v1-5/stable-diffusion-inpainting``) or a local pipeline folder.
"""

from __future__ import annotations

import numpy as np
import torch

from viva.config import DataPipelineConfig, StageSpec
from viva.data.pairs.components import DTYPES, check_options, require_model

DEFAULTS = {"prompt": "empty background, nothing there", "negative_prompt": "object, person, animal, text",
            "num_inference_steps": 25, "guidance_scale": 7.5, "batch_size": 8, "dilate": 4}


def dilate(masks: np.ndarray, radius: int) -> np.ndarray:
    """Grow ``[F, H, W]`` binary masks by ``radius`` pixels (square structuring element)."""
    if radius <= 0:
        return masks
    t = torch.from_numpy(masks.astype(np.float32))[:, None]  # [F, 1, H, W]
    return torch.nn.functional.max_pool2d(t, 2 * radius + 1, stride=1, padding=radius)[:, 0].numpy()


class DiffusersInpainter:
    """Inpaints every frame's (dilated) mask region."""

    def __init__(self, spec: StageSpec, cfg: DataPipelineConfig) -> None:
        self.opts = check_options("inpaint", spec.options, DEFAULTS)
        path = require_model("inpaint", spec.model)
        # imported after the checks: the import takes seconds
        from diffusers import AutoPipelineForInpainting

        self.device = torch.device(cfg.device)
        self.pipe = AutoPipelineForInpainting.from_pretrained(path, dtype=DTYPES[cfg.dtype]).to(self.device)
        self.pipe.set_progress_bar_config(disable=True)

    @torch.no_grad()
    def inpaint(self, frames: np.ndarray, masks: np.ndarray, seed: int) -> np.ndarray:
        """Frames with the masked object erased; identical to ``frames`` outside the dilated masks."""
        from PIL import Image

        f, h, w = frames.shape[:3]
        grown = dilate(masks, int(self.opts["dilate"]))  # [F, H, W]
        out = np.empty_like(frames)
        size = int(self.opts["batch_size"])
        generator = torch.Generator(device="cpu").manual_seed(seed)
        for i in range(0, f, size):
            chunk = range(i, min(f, i + size))
            result = self.pipe(prompt=[self.opts["prompt"]] * len(chunk),
                               negative_prompt=[self.opts["negative_prompt"]] * len(chunk),
                               image=[Image.fromarray(frames[j]) for j in chunk],
                               mask_image=[Image.fromarray((grown[j] * 255).astype(np.uint8)) for j in chunk],
                               height=h, width=w, num_inference_steps=int(self.opts["num_inference_steps"]),
                               guidance_scale=float(self.opts["guidance_scale"]), generator=generator,
                               output_type="np").images  # [b, H, W, 3] float in [0, 1]
            painted = np.clip(np.round(np.asarray(result, np.float32) * 255), 0, 255).astype(np.uint8)
            m = grown[i:i + len(chunk), ..., None]  # [b, H, W, 1]
            out[i:i + len(chunk)] = np.where(m > 0.5, painted, frames[i:i + len(chunk)])
        return out
