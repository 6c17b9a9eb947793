"""Fit any video to the model's bucket and back: aspect-ratio buckets, centre crop, temporal windows.

A model is trained at one pixel area (tiny: 32x32; HunyuanVideo: 544x960) with sizes that are multiples of
``codec.spatial_factor * patch_size``. For an input of H x W we pick the bucket (h, w) of about that area whose aspect
ratio is closest to H / W, resize so the frame *covers* the bucket (aspect kept) and centre-crop the overflow
(at most a few percent of one side). ``restore`` is the inverse: the edited bucket frames are resized back to the
cropped region's size and pasted into the source frames, so the output has the input's size; the thin cropped
borders, if any, keep the source pixels.

Time. Long videos are cut into consecutive windows of ``window`` frames (the last one padded by repeating its
final frame, trimmed after decoding); a causal VAE needs ``1 + t*k`` frames per window. All windows of a video are
denoised together as one batch with the same instruction and first-frame condition, so the edit stays consistent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

# Training area (pixels) and temporal window of each preset; "tiny" is the toy world's 32x32, 8 frames.
PRESET_AREA = {"tiny": 32 * 32, "hunyuan-13b": 544 * 960}
PRESET_WINDOW = {"tiny": 8, "hunyuan-13b": 33}


@dataclass(frozen=True)
class Bucket:
    """Target size of the model's input and where it sits in the source frame."""

    height: int  # bucket size fed to the model
    width: int
    crop_top: int  # crop of the *resized* frame
    crop_left: int
    resized_height: int  # size the source is resized to before cropping (covers the bucket)
    resized_width: int


def choose_bucket(height: int, width: int, area: int, multiple: int) -> Bucket:
    """The bucket of about ``area`` pixels (sides multiples of ``multiple``) nearest in aspect to ``height x width``."""
    if height <= 0 or width <= 0:
        raise ValueError(f"video size must be positive, got {height}x{width}")
    aspect = height / width
    h = max(multiple, round(math.sqrt(area * aspect) / multiple) * multiple)
    w = max(multiple, round(math.sqrt(area / aspect) / multiple) * multiple)
    return cover(height, width, h, w)


def cover(height: int, width: int, h: int, w: int) -> Bucket:
    """Resize ``height x width`` (aspect kept) to cover ``h x w``, then centre-crop to exactly ``h x w``."""
    scale = max(h / height, w / width)  # cover: both sides >= the bucket's
    rh, rw = max(h, round(height * scale)), max(w, round(width * scale))
    return Bucket(h, w, (rh - h) // 2, (rw - w) // 2, rh, rw)


def _resize(frames: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """uint8 frames ``[F, 3, H, W]`` -> ``[F, 3, h, w]``: antialiased bilinear on uint8 (torch's fast CPU path)."""
    if tuple(frames.shape[-2:]) == tuple(size):
        return frames
    x = frames.contiguous(memory_format=torch.channels_last)
    return F.interpolate(x, size=size, mode="bilinear", align_corners=False, antialias=True)


def _to_tensor(video: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.require(video, requirements=["C", "W"])).permute(0, 3, 1, 2)  # [F, 3, H, W] uint8


def _to_numpy(frames: torch.Tensor) -> np.ndarray:
    return frames.permute(0, 2, 3, 1).contiguous().numpy()  # [F, H, W, 3] uint8


def fit_to_bucket(video: np.ndarray, bucket: Bucket) -> np.ndarray:
    """uint8 ``[F, H, W, 3]`` -> uint8 ``[F, h, w, 3]``: resize to cover the bucket, then centre-crop."""
    x = _resize(_to_tensor(video), (bucket.resized_height, bucket.resized_width))  # [F, 3, rh, rw]
    x = x[:, :, bucket.crop_top: bucket.crop_top + bucket.height, bucket.crop_left: bucket.crop_left + bucket.width]
    return _to_numpy(x)


def restore(edited: np.ndarray, source: np.ndarray, bucket: Bucket) -> np.ndarray:
    """Edited bucket frames ``[F, h, w, 3]`` back into the source's ``[F, H, W, 3]`` (inverse of fit_to_bucket)."""
    n, height, width = source.shape[:3]
    sy, sx = height / bucket.resized_height, width / bucket.resized_width
    top, left = round(bucket.crop_top * sy), round(bucket.crop_left * sx)
    ch = min(height - top, round(bucket.height * sy))
    cw = min(width - left, round(bucket.width * sx))
    patch = _to_numpy(_resize(_to_tensor(edited), (ch, cw)))  # [F, ch, cw, 3]
    out = source.copy()
    out[:, top: top + ch, left: left + cw] = patch
    return out


def window_length(num_frames: int, window: int, temporal_factor: int) -> int:
    """Frames per window: ``window`` (or the whole clip if shorter), made ``1 + t*k`` for a causal codec."""
    n = max(1, min(num_frames, window))
    if temporal_factor <= 1:
        return n
    k = math.ceil((n - 1) / temporal_factor) if n < window else (n - 1) // temporal_factor
    return 1 + k * temporal_factor


def to_windows(video: np.ndarray, window: int) -> np.ndarray:
    """``[F, h, w, 3]`` -> ``[N, window, h, w, 3]``, the last window padded by repeating the final frame."""
    n = video.shape[0]
    count = math.ceil(n / window)
    pad = count * window - n
    if pad:
        video = np.concatenate([video, np.repeat(video[-1:], pad, axis=0)], axis=0)
    return video.reshape(count, window, *video.shape[1:])


def from_windows(windows: np.ndarray, num_frames: int) -> np.ndarray:
    """``[N, window, h, w, 3]`` -> ``[num_frames, h, w, 3]`` (drops the padding)."""
    return windows.reshape(-1, *windows.shape[2:])[:num_frames]
