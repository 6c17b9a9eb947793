"""Latent codecs: exact pixel round trip, tiny HunyuanVideo VAE shapes (video and 1-frame image)."""

from __future__ import annotations

import pytest
import torch
from diffusers import AutoencoderKLHunyuanVideo

from viva.models.codec import HunyuanVAECodec, LatentCodec, PixelCodec


def test_pixel_codec_exact_round_trip() -> None:
    codec = PixelCodec(2)
    video = torch.rand(2, 3, 8, 32, 32) * 2 - 1
    latents = codec.encode(video)
    assert latents.shape == (2, 12, 8, 16, 16)
    assert torch.equal(codec.decode(latents), video)
    assert isinstance(codec, LatentCodec)
    # channel layout is a true space-to-depth: latent (c=0, dy=1, dx=0) at (0,0) is pixel (1, 0)
    assert latents[0, 2, 0, 0, 0] == video[0, 0, 0, 1, 0]


def test_pixel_codec_image_and_bad_shape() -> None:
    codec = PixelCodec(2)
    img = torch.rand(1, 3, 1, 32, 32)
    assert torch.equal(codec.decode(codec.encode(img)), img)
    with pytest.raises(ValueError, match="multiples of 2"):
        codec.encode(torch.rand(1, 3, 1, 31, 32))


@pytest.fixture(scope="module")
def tiny_vae_codec() -> HunyuanVAECodec:
    torch.manual_seed(0)
    vae = AutoencoderKLHunyuanVideo(
        latent_channels=4, block_out_channels=(8, 8, 8, 8), layers_per_block=1, norm_num_groups=4,
        down_block_types=("HunyuanVideoDownBlock3D",) * 4, up_block_types=("HunyuanVideoUpBlock3D",) * 4,
        mid_block_add_attention=False,
    )
    return HunyuanVAECodec(vae)


@pytest.mark.parametrize("frames,latent_frames", [(5, 2), (1, 1)])
def test_hunyuan_vae_shapes(tiny_vae_codec: HunyuanVAECodec, frames: int, latent_frames: int) -> None:
    video = torch.rand(1, 3, frames, 32, 32) * 2 - 1
    latents = tiny_vae_codec.encode(video)
    assert latents.shape == (1, 4, latent_frames, 4, 4)
    assert tiny_vae_codec.decode(latents).shape == video.shape
    assert tiny_vae_codec.scaling_factor == pytest.approx(0.476986)


def test_hunyuan_vae_rejects_bad_frame_count(tiny_vae_codec: HunyuanVAECodec) -> None:
    with pytest.raises(ValueError, match="1 \\+ 4k frames"):
        tiny_vae_codec.encode(torch.zeros(1, 3, 4, 32, 32))
