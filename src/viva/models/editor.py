"""VideoEditor: the assembled policy — frozen VLM instructor + EditDiT (+ LoRA) + latent codec."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from viva.models.codec import LatentCodec
from viva.models.dit import EditDiT
from viva.models.vlm_instructor import TextCondition, VLMInstructor


def _to_pixels(videos: np.ndarray, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    if not isinstance(videos, np.ndarray) or videos.dtype != np.uint8 or videos.ndim != 5 or videos.shape[-1] != 3:
        desc = f"{getattr(videos, 'dtype', type(videos))} {getattr(videos, 'shape', '')}"
        raise ValueError(f"VideoEditor: videos must be uint8 [B, F, H, W, 3], got {desc}")
    x = torch.from_numpy(np.array(videos, copy=True)).to(device)  # [B, F, H, W, 3]; copy: Ray arrays are read-only
    return (x.permute(0, 4, 1, 2, 3).to(dtype) / 127.5 - 1.0)  # [B, 3, F, H, W] in [-1, 1]


class VideoEditor(nn.Module):
    """Instruction-based video editor: ``velocity`` / ``guided_velocity`` over latents, plus codec + VLM I/O."""

    def __init__(self, dit: EditDiT, vlm: VLMInstructor, codec: LatentCodec) -> None:
        super().__init__()
        if dit.latent_channels != codec.latent_channels:
            raise ValueError(f"DiT latent channels {dit.latent_channels} != codec {codec.latent_channels}")
        self.dit = dit
        self.vlm = vlm
        self.codec = codec

    @property
    def device(self) -> torch.device:
        """Device of the DiT weights."""
        return next(self.dit.parameters()).device

    @property
    def dtype(self) -> torch.dtype:
        """Dtype of the DiT weights."""
        return next(self.dit.parameters()).dtype

    @torch.no_grad()
    def encode_videos(self, videos: np.ndarray) -> torch.Tensor:
        """uint8 ``[B, F, H, W, 3]`` -> latents ``[B, C, F', h, w]``."""
        return self.codec.encode(_to_pixels(videos, self.device, self.dtype)).to(self.dtype)

    @torch.no_grad()
    def decode_latents(self, latents: torch.Tensor) -> np.ndarray:
        """Latents ``[B, C, F', h, w]`` -> uint8 ``[B, F, H, W, 3]``."""
        video = self.codec.decode(latents).float().clamp(-1, 1)  # [B, 3, F, H, W]
        u8 = ((video + 1.0) * 127.5).round().to(torch.uint8)
        return u8.permute(0, 2, 3, 4, 1).cpu().numpy()  # [B, F, H, W, 3]

    def encode_reference(self, references: Sequence[np.ndarray | None] | None) -> torch.Tensor | None:
        """Reference images uint8 ``[H, W, 3]`` -> latents ``[B, C, 1, h, w]``; None if every entry is None."""
        if references is None or all(r is None for r in references):
            return None
        if any(r is None for r in references):
            raise ValueError("encode_reference: a batch mixes samples with and without a reference image")
        return self.encode_videos(np.stack(references)[:, None])  # [B, C, 1, h, w]

    def encode_condition(
        self,
        instructions: list[str],
        first_frames: Sequence[np.ndarray],
        references: Sequence[np.ndarray | None] | None = None,
    ) -> TextCondition:
        """VLM tokens of (instruction, first frame, reference) (eq. 1), cached; on the DiT's device/dtype."""
        return self.vlm.encode(instructions, list(first_frames), references).to(self.device, self.dtype)

    def null_condition(
        self, first_frames: Sequence[np.ndarray], references: Sequence[np.ndarray | None] | None = None
    ) -> TextCondition:
        """Unconditional CFG branch: empty instruction, same frames (the source video is in both branches)."""
        return self.encode_condition([""] * len(first_frames), first_frames, references)

    def velocity(
        self,
        noisy: torch.Tensor,
        source: torch.Tensor,
        sigma: torch.Tensor,
        cond: TextCondition,
        reference: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """DiT velocity ``[B, C, F, h, w]`` (sigma ``[B]``, 1 = pure noise)."""
        return self.dit(noisy, source, sigma, cond.hidden_states, cond.mask, reference)

    def guided_velocity(
        self,
        noisy: torch.Tensor,
        source: torch.Tensor,
        sigma: torch.Tensor,
        cond: TextCondition,
        null_cond: TextCondition,
        guidance_scale: float,
        reference: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """CFG on the instruction only, one batched forward: ``v = v_null + s * (v_cond - v_null)``."""
        if guidance_scale == 1.0:
            return self.velocity(noisy, source, sigma, cond, reference)
        both = TextCondition.cat([cond, null_cond])
        ref2 = None if reference is None else torch.cat([reference, reference])
        sigma = sigma.reshape(-1).expand(noisy.shape[0])
        v = self.velocity(
            torch.cat([noisy, noisy]), torch.cat([source, source]), torch.cat([sigma, sigma]), both, ref2
        )  # [2B, C, F, h, w]
        v_cond, v_null = v.chunk(2)
        return v_null + guidance_scale * (v_cond - v_null)
