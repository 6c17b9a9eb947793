"""Image-only style edits of the toy world: whole-frame pixel transforms that exist only as 1-frame pairs."""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np


def invert(video: np.ndarray) -> np.ndarray:
    """Negative image."""
    return 255 - video


def grayscale(video: np.ndarray) -> np.ndarray:
    """Luma (BT.601) replicated on three channels."""
    luma = video.astype(np.float32) @ np.array([0.299, 0.587, 0.114], dtype=np.float32)  # [F, H, W]
    return np.repeat(np.rint(luma).astype(np.uint8)[..., None], 3, axis=-1)


def pixelate(video: np.ndarray, block: int = 4) -> np.ndarray:
    """Each ``block x block`` cell takes its mean colour (edge cells may be smaller)."""
    f, h, w, _ = video.shape
    ph, pw = -h % block, -w % block
    padded = np.pad(video.astype(np.float32), ((0, 0), (0, ph), (0, pw), (0, 0)), mode="edge")
    cells = padded.reshape(f, (h + ph) // block, block, (w + pw) // block, block, 3).mean(axis=(2, 4))
    up = np.repeat(np.repeat(cells, block, axis=1), block, axis=2)[:, :h, :w]  # [F, H, W, 3]
    return np.rint(up).astype(np.uint8)


def sketch(video: np.ndarray) -> np.ndarray:
    """Pencil sketch: dark lines where the luma changes, white paper elsewhere."""
    luma = grayscale(video)[..., 0].astype(np.float32)  # [F, H, W]
    gx = np.abs(np.diff(luma, axis=2, append=luma[:, :, -1:]))
    gy = np.abs(np.diff(luma, axis=1, append=luma[:, -1:, :]))
    ink = np.clip((gx + gy) * 2.0, 0, 255)
    return np.repeat((255 - ink).astype(np.uint8)[..., None], 3, axis=-1)


STYLES: Dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "invert": invert, "grayscale": grayscale, "pixelate": pixelate, "sketch": sketch,
}
STYLE_INSTRUCTIONS = {
    "invert": "invert the colors",
    "grayscale": "make it black and white",
    "pixelate": "pixelate the image",
    "sketch": "make it a pencil sketch",
}
STYLE_CAPTIONS = {
    "invert": "in inverted colors",
    "grayscale": "in black and white",
    "pixelate": "as pixel art",
    "sketch": "as a pencil sketch",
}
