"""Untrusted uploads -> uint8 arrays, with the reason when they are refused (the server maps it to an HTTP status).

- 413: the video is longer than the duration limit (checked while decoding, so a long video is not decoded whole);
- 415: not a media type we read (no container PyAV recognises, no video stream, not an image);
- 422: a recognised container or image that fails to decode (truncated, corrupt), or zero frames.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import numpy as np
from PIL import Image, UnidentifiedImageError

# Leading bytes of the containers we accept; a file that starts like one of these but fails to decode is corrupt.
MAX_FRAME_PIXELS = 3840 * 2160  # 4K; larger frames are refused with 413 before decoding the rest
_VIDEO_MAGIC = (b"\x1aE\xdf\xa3", b"RIFF", b"OggS", b"FLV", b"\x00\x00\x01\xba", b"GIF8")


class MediaError(ValueError):
    """An upload is refused; ``status`` is the HTTP status (413 | 415 | 422), the message says why."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class DecodedVideo:
    """Frames uint8 ``[F, H, W, 3]`` and the frame rate."""

    frames: np.ndarray
    fps: float


def _looks_like_video(data: bytes) -> bool:
    return data[4:8] == b"ftyp" or any(data.startswith(m) for m in _VIDEO_MAGIC)


def decode_video(data: bytes, max_duration_s: float, field: str = "video") -> DecodedVideo:
    """Decode an uploaded video; raise MediaError (413 / 415 / 422) naming ``field`` when it is refused."""
    if not data:
        raise MediaError(422, f"{field}: empty upload")
    try:
        container = av.open(io.BytesIO(data), mode="r")
    except (av.FFmpegError, ValueError, OSError) as e:
        status = 422 if _looks_like_video(data) else 415
        kind = "corrupt video" if status == 422 else "unsupported media type (not a video PyAV can read)"
        raise MediaError(status, f"{field}: {kind}: {e}") from e
    with container:
        if not container.streams.video:
            raise MediaError(415, f"{field}: no video stream in the upload")
        stream = container.streams.video[0]
        fps = float(stream.average_rate or stream.guessed_rate or 0.0) or 8.0
        max_frames = int(max_duration_s * fps) + 1
        frames = []
        try:
            for frame in container.decode(stream):
                if frame.width * frame.height > MAX_FRAME_PIXELS:
                    raise MediaError(413, f"{field}: {frame.width}x{frame.height} frames exceed the 4K limit")
                frames.append(frame.to_ndarray(format="rgb24"))  # [H, W, 3]
                if len(frames) > max_frames:
                    raise MediaError(413, f"{field}: longer than the {max_duration_s:g} s limit")
        except MediaError:
            raise
        except (av.FFmpegError, ValueError) as e:
            raise MediaError(422, f"{field}: corrupt video after {len(frames)} frames: {e}") from e
    if not frames:
        raise MediaError(422, f"{field}: the video has no decodable frames")
    if len({f.shape for f in frames}) != 1:
        raise MediaError(422, f"{field}: the frame size changes inside the video")
    return DecodedVideo(np.stack(frames), fps)


def decode_image(data: bytes, field: str = "reference") -> np.ndarray:
    """Decode an uploaded image to uint8 ``[H, W, 3]`` RGB; MediaError 415 / 422 when refused."""
    if not data:
        raise MediaError(422, f"{field}: empty upload")
    try:
        with Image.open(io.BytesIO(data)) as im:
            fmt = im.format
            try:
                return np.asarray(im.convert("RGB"), dtype=np.uint8).copy()
            except (OSError, ValueError) as e:
                raise MediaError(422, f"{field}: corrupt {fmt} image: {e}") from e
    except Image.DecompressionBombError as e:
        raise MediaError(413, f"{field}: image too large: {e}") from e
    except UnidentifiedImageError as e:
        raise MediaError(415, f"{field}: unsupported media type (not an image PIL can read)") from e
