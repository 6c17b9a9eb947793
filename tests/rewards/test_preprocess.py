"""Our batched preprocessing equals each library's own preprocess on real photos (skimage, CC0) to 1e-5."""

from __future__ import annotations

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image

from viva.rewards.base import frames_as_uint8
from viva.rewards.image_preprocess import preprocess, spec_from_hf, spec_from_open_clip
from viva.rewards.pil_resample import pil_resize

PHOTOS = ("chelsea", "astronaut", "coffee")


@pytest.fixture(scope="module")
def open_clip_224():
    """The library's own eval transform for a 224 px model (ViT-H-14's preprocess config)."""
    import open_clip

    from viva.rewards.toy_models import register_config

    register_config()
    model, _, transform = open_clip.create_model_and_transforms("viva-toy-clip", pretrained=None,
                                                                force_image_size=224)
    return model, transform


@pytest.mark.parametrize("name", PHOTOS)
@pytest.mark.parametrize("backend", ["matmul", "pil"])
def test_open_clip_preprocess_matches_library(open_clip_224, name, backend):
    model, transform = open_clip_224
    img = getattr(skimage.data, name)()  # [H, W, 3] uint8, not square
    ref = transform(Image.fromarray(img))[None]  # [1, 3, 224, 224]
    out = preprocess(torch.from_numpy(img)[None], spec_from_open_clip(model, backend))
    assert out.shape == ref.shape
    assert (out - ref).abs().max().item() < 1e-5


@pytest.mark.parametrize("name", PHOTOS)
def test_transformers_clip_processor_matches(name):
    from transformers import CLIPImageProcessor

    proc = CLIPImageProcessor()  # the ViT-H-14 / PickScore processor settings (224, bicubic, OpenAI mean/std)
    img = getattr(skimage.data, name)()
    ref = proc(images=[img], return_tensors="pt")["pixel_values"]  # [1, 3, 224, 224]
    out = preprocess(torch.from_numpy(img)[None], spec_from_hf(proc))
    assert (out - ref).abs().max().item() < 1e-5


def test_batched_video_equals_per_frame(open_clip_224):
    model, _ = open_clip_224
    img = skimage.data.chelsea()
    video = np.stack([img, img[:, ::-1], np.roll(img, 7, axis=0)])  # [3, H, W, 3]
    spec = spec_from_open_clip(model)
    batched = preprocess(torch.from_numpy(np.ascontiguousarray(video)), spec)
    single = torch.cat([preprocess(torch.from_numpy(np.ascontiguousarray(f))[None], spec) for f in video])
    assert torch.equal(batched, single)


@pytest.mark.parametrize("size", [(224, 336), (150, 225), (300, 40), (17, 451)])
def test_pil_resize_kernel_is_pillows(size):
    img = skimage.data.chelsea()  # 300 x 451
    ref = np.asarray(Image.fromarray(img).resize(size[::-1], Image.BICUBIC))
    out = pil_resize(torch.from_numpy(img).permute(2, 0, 1)[None].contiguous(), size)[0].permute(1, 2, 0)
    assert np.array_equal(out.numpy(), ref)


def test_float_frames_quantise_like_uint8():
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, size=(2, 4, 5, 3), dtype=np.uint8)
    assert np.array_equal(frames_as_uint8(u8.astype(np.float32) / 255.0), u8)
