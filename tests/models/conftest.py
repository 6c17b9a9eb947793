"""Tiny model fixtures for the models tests (built from configs / the shipped tiny VLM, CPU only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from viva.models.codec import PixelCodec
from viva.models.dit import EditDiT
from viva.models.editor import VideoEditor
from viva.models.presets import dit_config
from viva.models.vlm_instructor import VLMInstructor


@pytest.fixture(scope="session")
def vlm() -> VLMInstructor:
    """The shipped tiny LLaVA instructor."""
    return VLMInstructor.from_pretrained("tiny", cache_size=64)


@pytest.fixture()
def dit() -> EditDiT:
    """A fresh random tiny EditDiT (12 latent channels, text dim 64)."""
    torch.manual_seed(0)
    return EditDiT.from_config(dit_config("tiny"))


@pytest.fixture()
def editor(dit: EditDiT, vlm: VLMInstructor) -> VideoEditor:
    """Tiny editor: PixelCodec(2) + tiny DiT + tiny VLM."""
    return VideoEditor(dit, vlm, PixelCodec(2))


@pytest.fixture()
def toy_videos() -> np.ndarray:
    """Two random uint8 toy videos [2, 8, 32, 32, 3]."""
    return np.random.default_rng(0).integers(0, 256, size=(2, 8, 32, 32, 3), dtype=np.uint8)
