"""Video and image files: mp4 via PyAV, png via PIL. Arrays are uint8 ``[F, H, W, 3]`` (an image is ``[H, W, 3]``).

The default codec, libx264rgb at crf 0, is lossless (exact round trip, any frame size; measured with PyAV 18.1).
``libx264`` at crf 18 (yuv420p) is lossy (~1.5/255 mean error) and needs even frame sizes, but plays everywhere.
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Optional, Tuple

import av
import numpy as np
from PIL import Image

from viva.training.atomic import atomic_path

# codec -> (pixel format, encoder options)
CODECS = {
    "libx264rgb": ("rgb24", {"crf": "0"}),  # lossless
    "ffv1": ("bgr0", {}),  # lossless, use a .mkv container
    "libx264": ("yuv420p", {"crf": "18"}),  # lossy, for viewing
}


class VideoReadError(ValueError):
    """A video or image file is missing, unreadable or not what was expected; the message names the file."""


class VideoWriteError(ValueError):
    """Frames cannot be written as asked; the message names the file and the problem."""


def _check_frames(path: Path, frames: np.ndarray) -> None:
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise VideoWriteError(f"{path}: frames must be uint8 [F, H, W, 3], got "
                              f"{getattr(frames, 'dtype', type(frames))} {getattr(frames, 'shape', '')}")
    if frames.shape[0] == 0:
        raise VideoWriteError(f"{path}: no frames to write")


def write_video(path: str | Path, frames: np.ndarray, fps: float = 8, codec: str = "libx264rgb") -> None:
    """Write uint8 ``[F, H, W, 3]`` frames atomically."""
    path = Path(path)
    _check_frames(path, frames)
    if codec not in CODECS:
        raise VideoWriteError(f"{path}: unknown codec {codec!r}; expected one of {sorted(CODECS)}")
    pix_fmt, options = CODECS[codec]
    _, h, w, _ = frames.shape
    if pix_fmt == "yuv420p" and (h % 2 or w % 2):
        raise VideoWriteError(f"{path}: {codec} (yuv420p) needs even frame sizes, got {h}x{w}; "
                              f"use codec='libx264rgb' (lossless, any size)")
    with atomic_path(path) as tmp:
        with av.open(str(tmp), "w", format="matroska" if path.suffix == ".mkv" else "mp4") as container:
            stream = container.add_stream(codec, rate=Fraction(fps).limit_denominator(1001))
            stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
            stream.options = dict(options)
            for frame in frames:
                container.mux(stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")))
            container.mux(stream.encode())


def read_video(path: str | Path, max_frames: Optional[int] = None) -> Tuple[np.ndarray, float]:
    """Decode a video file: (uint8 ``[F, H, W, 3]``, fps)."""
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: video file not found")
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            stream = container.streams.video[0]
            rate = stream.average_rate or stream.guessed_rate
            frames = []
            for frame in container.decode(stream):
                frames.append(frame.to_ndarray(format="rgb24"))  # [H, W, 3]
                if max_frames is not None and len(frames) >= max_frames:
                    break
    except VideoReadError:
        raise
    except (av.FFmpegError, ValueError, OSError) as e:
        raise VideoReadError(f"{path}: cannot decode video: {e}") from e
    if not frames:
        raise VideoReadError(f"{path}: video has no frames")
    return np.stack(frames), float(rate) if rate else 0.0


def write_image(path: str | Path, image: np.ndarray) -> None:
    """Write a uint8 ``[H, W, 3]`` (or ``[H, W]``) png atomically."""
    path = Path(path)
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim not in (2, 3):
        raise VideoWriteError(f"{path}: image must be uint8 [H, W, 3] or [H, W], got "
                              f"{getattr(image, 'dtype', type(image))} {getattr(image, 'shape', '')}")
    with atomic_path(path) as tmp:
        Image.fromarray(image).save(tmp, format="PNG")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as uint8 ``[H, W, 3]`` RGB."""
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: image file not found")
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
    except (OSError, ValueError) as e:
        raise VideoReadError(f"{path}: cannot decode image: {e}") from e
