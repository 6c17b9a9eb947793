"""VLM instructor: cache (one model run for repeated inputs), empty instruction, padding, processor round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoProcessor

from viva.models.tiny_vlm import TINY_VLM_DIR, build_processor, build_tiny_vlm
from viva.models.vlm_instructor import TextCondition, VLMInstructor


def _frame(v: int, size: int = 32) -> np.ndarray:
    return np.full((size, size, 3), v, dtype=np.uint8)


def test_encode_shapes_and_empty_instruction(vlm: VLMInstructor) -> None:
    cond = vlm.encode(["add a red circle", ""], [_frame(1), _frame(1)], [None, _frame(9, 48)])
    assert cond.hidden_states.shape[0] == 2 and cond.hidden_states.shape[2] == vlm.hidden_size
    assert cond.mask.shape == cond.hidden_states.shape[:2]
    lengths = cond.mask.sum(1)
    assert lengths.min() > 16  # at least the system prompt + one image's tokens
    for i, n in enumerate(lengths.tolist()):  # right-padded: valid tokens first
        assert cond.mask[i, :n].all() and not cond.mask[i, n:].any()
    assert torch.isfinite(cond.hidden_states).all()


def test_cache_runs_model_once_for_repeated_inputs(vlm: VLMInstructor) -> None:
    vlm.clear_cache()
    calls, hits = vlm.forward_calls, vlm.cache_hits
    group = vlm.encode(["recolor the disk"] * 4, [_frame(3)] * 4, [None] * 4)  # a group of G = 4
    assert vlm.forward_calls == calls + 1
    again = vlm.encode(["recolor the disk"], [_frame(3)], [None])
    assert vlm.forward_calls == calls + 1 and vlm.cache_hits == hits + 3 + 1
    assert torch.equal(group.hidden_states[0], group.hidden_states[3])
    assert torch.equal(again.hidden_states[0], group.hidden_states[0])
    vlm.encode(["recolor the disk"], [_frame(4)], [None])  # a different frame is a miss
    assert vlm.forward_calls == calls + 2


def test_cached_equals_batched_with_padding(vlm: VLMInstructor) -> None:
    vlm.clear_cache()
    short = vlm.encode([""], [_frame(5)], [None])
    vlm.clear_cache()
    both = vlm.encode(["replace the green triangle with a yellow star", ""], [_frame(2), _frame(5)], [None, None])
    n = short.length
    assert torch.allclose(both.hidden_states[1, :n], short.hidden_states[0], atol=1e-5)


def test_bad_inputs_name_the_field(vlm: VLMInstructor) -> None:
    with pytest.raises(ValueError, match="first_frames\\[1\\]"):
        vlm.encode(["a", "b"], [_frame(1), np.zeros((32, 32), np.uint8)], [None, None])
    with pytest.raises(ValueError, match="2 instructions, 1 frames"):
        vlm.encode(["a", "b"], [_frame(1)], [None, None])


def test_text_condition_pad_cat_index() -> None:
    a = TextCondition(torch.ones(2, 3, 4), torch.ones(2, 3, dtype=torch.long))
    b = TextCondition(torch.ones(1, 5, 4), torch.ones(1, 5, dtype=torch.long))
    c = TextCondition.cat([a, b])
    assert c.hidden_states.shape == (3, 5, 4) and c.mask.sum().item() == 11
    assert c.hidden_states[0, 3:].abs().sum() == 0
    assert c.index(2).length == 5 and c.index(2).batch_size == 1
    assert c.repeat(2).batch_size == 6
    with pytest.raises(ValueError):
        b.pad_to(3)


def test_processor_round_trip(tmp_path) -> None:
    proc = build_processor()
    proc.save_pretrained(tmp_path)
    loaded = AutoProcessor.from_pretrained(tmp_path)
    text = "<|begin_of_text|>add a red circle <image>"
    ids = proc.tokenizer(text).input_ids
    assert loaded.tokenizer(text).input_ids == ids
    assert loaded.tokenizer.decode(ids) == text
    assert loaded.tokenizer.convert_tokens_to_ids("<image>") == proc.tokenizer.convert_tokens_to_ids("<image>")
    assert loaded.chat_template == proc.chat_template
    assert loaded.image_processor.crop_size == proc.image_processor.crop_size


def test_shipped_asset_is_reproducible(tmp_path) -> None:
    build_tiny_vlm(tmp_path, seed=0)
    fresh, shipped = load_file(str(tmp_path / "model.safetensors")), load_file(str(TINY_VLM_DIR / "model.safetensors"))
    assert fresh.keys() == shipped.keys()
    assert all(torch.equal(fresh[k], shipped[k]) for k in fresh)
    assert (tmp_path / "tokenizer.json").read_text() == (TINY_VLM_DIR / "tokenizer.json").read_text()
