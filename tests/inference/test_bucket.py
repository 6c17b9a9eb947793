"""Aspect buckets, centre crop, restore and temporal windows."""

from __future__ import annotations

import numpy as np
import pytest

from viva.inference import bucket as bk


@pytest.mark.parametrize("h, w", [(720, 1280), (144, 176), (32, 32), (1080, 608), (31, 45)])
def test_bucket_keeps_aspect_and_multiple(h: int, w: int) -> None:
    b = bk.choose_bucket(h, w, area=32 * 32, multiple=8)
    assert b.height % 8 == 0 and b.width % 8 == 0
    assert 0.5 * 1024 <= b.height * b.width <= 2 * 1024
    # the resized frame covers the bucket and keeps the input's aspect ratio (to one pixel of rounding)
    assert b.resized_height >= b.height and b.resized_width >= b.width
    assert abs(b.resized_height / b.resized_width - h / w) < 2.0 / min(b.resized_height, b.resized_width)


def test_fit_and_restore_shapes_and_values() -> None:
    video = np.random.default_rng(0).integers(0, 256, size=(3, 45, 80, 3), dtype=np.uint8)
    b = bk.choose_bucket(45, 80, area=32 * 32, multiple=4)
    fitted = bk.fit_to_bucket(video, b)
    assert fitted.shape == (3, b.height, b.width, 3) and fitted.dtype == np.uint8
    back = bk.restore(fitted, video, b)
    assert back.shape == video.shape
    flat = np.full((2, 20, 30, 3), 77, np.uint8)  # a constant video survives fit + restore exactly
    fb = bk.choose_bucket(20, 30, 24 * 16, 4)
    np.testing.assert_array_equal(bk.restore(bk.fit_to_bucket(flat, fb), flat, fb), flat)


@pytest.mark.parametrize("frames, window, t, expect", [(20, 8, 1, 8), (5, 8, 1, 5), (1, 8, 1, 1), (20, 33, 4, 21),
                                                        (40, 33, 4, 33), (10, 33, 4, 13)])
def test_window_length(frames: int, window: int, t: int, expect: int) -> None:
    assert bk.window_length(frames, window, t) == expect


def test_windows_round_trip() -> None:
    video = np.arange(11)[:, None, None, None].repeat(2, 1).repeat(2, 2).repeat(3, 3).astype(np.uint8)
    w = bk.to_windows(video, 4)
    assert w.shape == (3, 4, 2, 2, 3)
    assert (w[-1, -1] == 10).all()  # padding repeats the last frame
    np.testing.assert_array_equal(bk.from_windows(w, 11), video)
