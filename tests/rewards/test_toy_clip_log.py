"""Loading the shipped toy CLIP does not log open_clip's "initialized randomly" warning (its weights are loaded
right after); building a random one still does, because there it is true."""

from __future__ import annotations

import logging

from viva.rewards.toy_models import build_toy_clip, load_toy_clip

WARNING = "No pretrained weights loaded for model 'viva-toy-clip'"


def test_loading_the_trained_toy_clip_logs_no_random_init_warning(caplog):
    with caplog.at_level(logging.WARNING):
        load_toy_clip("clip")
    assert WARNING not in caplog.text
    with caplog.at_level(logging.WARNING):
        build_toy_clip()
    assert WARNING in caplog.text
    assert not logging.getLogger().filters  # the filter is gone after the call
