"""mp4/png I/O: lossless round trip, fps, odd sizes, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from viva.data.video_io import VideoReadError, VideoWriteError, read_image, read_video, write_image, write_video


def _frames(f: int, h: int, w: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (f, h, w, 3), dtype=np.uint8)


@pytest.mark.parametrize("size", [(32, 32), (31, 33)])
def test_lossless_round_trip_and_fps(tmp_path: Path, size: tuple) -> None:
    frames = _frames(8, *size)
    path = tmp_path / "v.mp4"
    write_video(path, frames, fps=12)
    out, fps = read_video(path)
    assert out.dtype == np.uint8 and np.array_equal(out, frames)
    assert fps == pytest.approx(12)
    assert np.array_equal(read_video(path, max_frames=3)[0], frames[:3])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_ffv1_mkv_is_lossless(tmp_path: Path) -> None:
    frames = _frames(3, 17, 9)
    write_video(tmp_path / "v.mkv", frames, codec="ffv1")
    assert np.array_equal(read_video(tmp_path / "v.mkv")[0], frames)


def test_lossy_codec_is_close_and_rejects_odd_sizes(tmp_path: Path) -> None:
    from viva.data.toyworld import ToyWorld

    frames = ToyWorld(seed=0).sample(0, "add").target_video
    write_video(tmp_path / "v.mp4", frames, codec="libx264")
    out, _ = read_video(tmp_path / "v.mp4")
    assert out.shape == frames.shape
    assert np.abs(out.astype(int) - frames).mean() < 8
    with pytest.raises(VideoWriteError, match="even"):
        write_video(tmp_path / "odd.mp4", _frames(2, 31, 32), codec="libx264")


def test_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(VideoReadError, match="missing.mp4"):
        read_video(tmp_path / "missing.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all" * 10)
    with pytest.raises(VideoReadError, match="bad.mp4"):
        read_video(bad)
    with pytest.raises(VideoWriteError, match="uint8"):
        write_video(tmp_path / "f.mp4", _frames(2, 8, 8).astype(np.float32))
    with pytest.raises(VideoReadError, match="nope.png"):
        read_image(tmp_path / "nope.png")


def test_png_round_trip(tmp_path: Path) -> None:
    img = _frames(1, 7, 5)[0]
    write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(tmp_path / "a.png"), img)
