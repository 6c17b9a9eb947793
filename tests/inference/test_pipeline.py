"""EditPipeline: any input size in, the same size out; seeded; batching does not change a result."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.inference.conftest import small_video
from viva.inference.loader import EditorSpec, load_editor
from viva.inference.pipeline import EditPipeline, EditRequest


@pytest.fixture(scope="module")
def pipe(base_ckpt: Path, vlm_name: str) -> EditPipeline:
    spec = EditorSpec(str(base_ckpt), vlm=None if vlm_name == "tiny" else vlm_name)
    return EditPipeline(load_editor(spec))


def test_edit_keeps_size_frames_and_is_seeded(pipe: EditPipeline) -> None:
    video = small_video(frames=11, height=30, width=44)
    steps = []
    out = pipe(video, "make the ball red", num_steps=3, seed=5, progress=lambda d, t: steps.append((d, t)))
    assert out.shape == video.shape and out.dtype == np.uint8
    assert steps == [(1, 3), (2, 3), (3, 3)]
    np.testing.assert_array_equal(out, pipe(video, "make the ball red", num_steps=3, seed=5))
    assert not np.array_equal(out, pipe(video, "make the ball red", num_steps=3, seed=6))
    bucket = pipe.run([EditRequest(video, "make the ball red", num_steps=3, seed=5, restore_size=False)])[0]
    b = pipe.bucket_for(video)
    assert bucket.shape == (11, b.height, b.width, 3)


def test_batched_equals_single(pipe: EditPipeline) -> None:
    a = EditRequest(small_video(seed=1), "make it red", num_steps=2, seed=1)
    b = EditRequest(small_video(seed=2), "remove the ball", num_steps=2, seed=2)
    together = pipe.run([a, b])
    for req, out in zip([a, b], together):
        single = pipe.run([req])[0]
        assert np.abs(single.astype(int) - out.astype(int)).max() <= 1  # float reduction order only


def test_reference_image_and_bad_inputs(pipe: EditPipeline) -> None:
    video = small_video()
    ref = np.full((50, 20, 3), 200, np.uint8)
    assert pipe(video, "add this", reference=ref, num_steps=1).shape == video.shape
    with pytest.raises(ValueError, match="instruction"):
        pipe(video, "   ", num_steps=1)
    with pytest.raises(ValueError, match="uint8"):
        pipe(video.astype(np.float32), "x", num_steps=1)
    with pytest.raises(ValueError, match="differ"):
        pipe.run([EditRequest(video, "a", num_steps=1), EditRequest(video, "a", num_steps=2)])
