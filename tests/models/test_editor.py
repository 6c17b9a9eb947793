"""VideoEditor (codec I/O, CFG in one batched forward), base checkpoints and build_editor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from viva.config import LoRAConfig, ModelConfig
from viva.models.checkpoint import DIT_FILE, load_base_checkpoint, save_base_checkpoint
from viva.models.editor import VideoEditor
from viva.models.presets import build_editor


def test_encode_decode_videos_exact(editor: VideoEditor, toy_videos: np.ndarray) -> None:
    latents = editor.encode_videos(toy_videos)
    assert latents.shape == (2, 12, 8, 16, 16)
    assert np.array_equal(editor.decode_latents(latents), toy_videos)
    ref = editor.encode_reference([toy_videos[0, 0], toy_videos[1, 0]])
    assert ref.shape == (2, 12, 1, 16, 16)
    assert editor.encode_reference([None, None]) is None
    with pytest.raises(ValueError, match="uint8"):
        editor.encode_videos(toy_videos.astype(np.float32))


@torch.no_grad()
def test_guided_velocity_is_batched_cfg(editor: VideoEditor, toy_videos: np.ndarray) -> None:
    frames = list(toy_videos[:, 0])
    cond = editor.encode_condition(["add a red circle to the left", "remove the blue square"], frames)
    null = editor.null_condition(frames)
    assert null.length != cond.length  # different token counts get padded for the batched forward
    source = editor.encode_videos(toy_videos)
    noisy = torch.randn_like(source)
    sigma = torch.tensor([0.7, 0.7])
    ref = editor.encode_reference(frames)
    v_c = editor.velocity(noisy, source, sigma, cond, ref)
    v_n = editor.velocity(noisy, source, sigma, null, ref)
    v = editor.guided_velocity(noisy, source, sigma, cond, null, 3.0, ref)
    assert torch.allclose(v, v_n + 3.0 * (v_c - v_n), atol=1e-4)
    assert torch.equal(editor.guided_velocity(noisy, source, sigma, cond, null, 1.0, ref), v_c)


def test_vlm_instructor_is_frozen(editor: VideoEditor) -> None:
    assert not any(p.requires_grad for p in editor.vlm.parameters())
    assert any(p.requires_grad for p in editor.dit.parameters())


def test_base_checkpoint_round_trip(editor: VideoEditor, tmp_path) -> None:
    cfg = ModelConfig()
    out = save_base_checkpoint(editor, tmp_path / "ckpt", cfg)
    save_base_checkpoint(editor, tmp_path / "ckpt", cfg)  # overwriting is atomic too
    dit = load_base_checkpoint(out)
    a, b = editor.dit.state_dict(), dit.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    built = build_editor(ModelConfig(base_checkpoint=str(out)))
    assert all(torch.equal(a[k], v) for k, v in built.dit.state_dict().items())


def test_checkpoint_errors_name_the_file(editor: VideoEditor, tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="config.json"):
        load_base_checkpoint(tmp_path / "nope")
    out = save_base_checkpoint(editor, tmp_path / "ckpt", ModelConfig())
    (out / DIT_FILE).unlink()
    with pytest.raises(FileNotFoundError, match=DIT_FILE):
        load_base_checkpoint(out)


def test_build_editor_tiny_with_lora() -> None:
    ed = build_editor(ModelConfig(), LoRAConfig(rank=2, alpha=4.0))
    trainable = [n for n, p in ed.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert ed.dit.transformer.config.in_channels == 24
    with pytest.raises(ValueError, match="model.preset"):
        build_editor(ModelConfig(preset="huge"))


def test_checkpoint_mismatch_is_named(editor: VideoEditor, tmp_path) -> None:
    import json

    out = save_base_checkpoint(editor, tmp_path / "ckpt", ModelConfig())
    meta = json.loads((out / "config.json").read_text())
    meta["dit_config"]["num_layers"] = 3
    (out / "config.json").write_text(json.dumps(meta))
    with pytest.raises(ValueError, match="dit.safetensors does not match"):
        load_base_checkpoint(out)
