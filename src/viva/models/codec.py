"""Latent codecs: video ``[B, 3, F, H, W]`` in [-1, 1] <-> latents ``[B, C, F', H', W']``.

``PixelCodec`` is an exact space-to-depth (lossless) codec for the toy world; ``HunyuanVAECodec`` wraps diffusers'
``AutoencoderKLHunyuanVideo`` (causal 3D VAE: F frames -> 1 + (F - 1) / 4 latent frames, 8x spatial). An image is a
1-frame video in both.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch
from torch import nn

HUNYUAN_VAE_ID = "hunyuanvideo-community/HunyuanVideo"


@runtime_checkable
class LatentCodec(Protocol):
    """Maps pixel videos to latents and back."""

    latent_channels: int
    spatial_factor: int
    temporal_factor: int

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Video ``[B, 3, F, H, W]`` float in [-1, 1] -> latents ``[B, C, F', H', W']``."""
        ...

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Latents ``[B, C, F', H', W']`` -> video ``[B, 3, F, H, W]`` float (about [-1, 1])."""
        ...


def _check_video(video: torch.Tensor, spatial: int) -> None:
    if video.ndim != 5 or video.shape[1] != 3:
        raise ValueError(f"codec.encode expects a video [B, 3, F, H, W], got shape {tuple(video.shape)}")
    if video.shape[-1] % spatial or video.shape[-2] % spatial:
        raise ValueError(f"codec.encode: H, W = {tuple(video.shape[-2:])} must be multiples of {spatial}")


def space_to_depth(x: torch.Tensor, f: int) -> torch.Tensor:
    """``[B, c, F, H, W] -> [B, c*f*f, F, H/f, W/f]``; channel index ci * f * f + dy * f + dx (PixelCodec)."""
    b, c, t, h, w = x.shape
    x = x.reshape(b, c, t, h // f, f, w // f, f).permute(0, 1, 4, 6, 2, 3, 5)  # [B, c, f, f, F, H/f, W/f]
    return x.reshape(b, c * f * f, t, h // f, w // f)


def depth_to_space(x: torch.Tensor, f: int) -> torch.Tensor:
    """The exact inverse of ``space_to_depth``: ``[B, c*f*f, F, h, w] -> [B, c, F, h*f, w*f]``."""
    b, cl, t, h, w = x.shape
    x = x.reshape(b, cl // (f * f), f, f, t, h, w).permute(0, 1, 4, 5, 2, 6, 3)  # [B, c, F, h, f, w, f]
    return x.reshape(b, cl // (f * f), t, h * f, w * f)


class PixelCodec(nn.Module):
    """Exact space-to-depth codec: ``[B, 3, F, H, W] -> [B, 3*f*f, F, H/f, W/f]`` (lossless, no parameters)."""

    def __init__(self, factor: int = 2) -> None:
        super().__init__()
        if factor < 1:
            raise ValueError(f"PixelCodec factor must be >= 1, got {factor}")
        self.factor = factor
        self.latent_channels = 3 * factor * factor
        self.spatial_factor = factor
        self.temporal_factor = 1

    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Space-to-depth; channel index = c * f * f + dy * f + dx."""
        _check_video(video, self.factor)
        return space_to_depth(video, self.factor)  # [B, 3*f*f, F, H/f, W/f]

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Depth-to-space, the exact inverse of ``encode``."""
        if latents.shape[1] != self.latent_channels:
            raise ValueError(f"PixelCodec.decode expects {self.latent_channels} channels, got {latents.shape[1]}")
        return depth_to_space(latents, self.factor)  # [B, 3, F, H, W]


class HunyuanVAECodec(nn.Module):
    """diffusers ``AutoencoderKLHunyuanVideo``; latents are scaled by ``config.scaling_factor`` (0.476986 real)."""

    def __init__(self, vae: nn.Module) -> None:
        super().__init__()
        self.vae = vae.eval().requires_grad_(False)
        self.latent_channels = int(vae.config.latent_channels)
        self.spatial_factor = int(vae.config.spatial_compression_ratio)
        self.temporal_factor = int(vae.config.temporal_compression_ratio)
        self.scaling_factor = float(vae.config.scaling_factor)

    @classmethod
    def from_pretrained(cls, path: str | None = None, dtype: torch.dtype = torch.float32) -> "HunyuanVAECodec":
        """Load the VAE from a hub id / local pipeline dir (subfolder ``vae``) or a VAE dir with config.json."""
        from pathlib import Path

        from diffusers import AutoencoderKLHunyuanVideo

        path = path or HUNYUAN_VAE_ID
        sub = None if (Path(path) / "config.json").is_file() else "vae"
        vae = AutoencoderKLHunyuanVideo.from_pretrained(path, subfolder=sub, torch_dtype=dtype)
        return cls(vae)

    @torch.no_grad()
    def encode(self, video: torch.Tensor) -> torch.Tensor:
        """Deterministic encode (posterior mode, so the source latent is a fixed function of the video)."""
        _check_video(video, self.spatial_factor)
        frames = video.shape[2]
        if (frames - 1) % self.temporal_factor:
            raise ValueError(
                f"HunyuanVAECodec: the causal VAE needs 1 + {self.temporal_factor}k frames, got {frames}"
            )
        video = video.to(self.vae.dtype)
        latents = self.vae.encode(video).latent_dist.mode()  # [B, C, 1 + (F-1)/4, H/8, W/8]
        return latents * self.scaling_factor

    @torch.no_grad()
    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        """Unscale and decode to ``[B, 3, F, H, W]``."""
        latents = latents.to(self.vae.dtype) / self.scaling_factor
        return self.vae.decode(latents).sample
