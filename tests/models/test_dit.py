"""EditDiT: shapes (video, reference, image), zero-init source half from a T2V DiT, gradients, 13B on meta."""

from __future__ import annotations

import pytest
import torch
from diffusers import HunyuanVideoTransformer3DModel

from viva.models.dit import EditDiT
from viva.models.presets import dit_config


def _inputs(b: int = 2, f: int = 8, c: int = 12):
    g = torch.Generator().manual_seed(1)
    noisy = torch.randn(b, c, f, 16, 16, generator=g)
    source = torch.randn(b, c, f, 16, 16, generator=g)
    text = torch.randn(b, 10, 64, generator=g)
    mask = torch.ones(b, 10, dtype=torch.long)
    mask[1, 7:] = 0  # right padding
    return noisy, source, torch.tensor([0.3, 0.9][:b]), text, mask


def test_forward_shapes(dit: EditDiT) -> None:
    noisy, source, sigma, text, mask = _inputs()
    assert dit(noisy, source, sigma, text, mask).shape == noisy.shape
    ref = torch.randn(2, 12, 1, 16, 16)
    out_ref = dit(noisy, source, sigma, text, mask, reference=ref)
    assert out_ref.shape == noisy.shape
    img = dit(noisy[:, :, :1], source[:, :, :1], sigma, text, mask)
    assert img.shape == (2, 12, 1, 16, 16)


def test_reference_and_source_change_output(dit: EditDiT) -> None:
    noisy, source, sigma, text, mask = _inputs()
    base = dit(noisy, source, sigma, text, mask)
    assert not torch.allclose(base, dit(noisy, source, sigma, text, mask, torch.randn(2, 12, 1, 16, 16)))
    assert not torch.allclose(base, dit(noisy, torch.randn_like(source), sigma, text, mask))


def test_padded_text_tokens_are_ignored(dit: EditDiT) -> None:
    noisy, source, sigma, text, mask = _inputs()
    out = dit(noisy, source, sigma, text, mask)
    text2 = text.clone()
    text2[1, 7:] = 100.0  # garbage in the padded slots of sample 1
    assert torch.allclose(out, dit(noisy, source, sigma, text2, mask), atol=1e-5)


def test_source_ignored_at_init_from_t2v() -> None:
    cfg = dit_config("tiny")
    cfg.update(in_channels=12)  # a "pretrained" text-to-video DiT: 12 input channels
    torch.manual_seed(0)
    t2v = HunyuanVideoTransformer3DModel.from_config(cfg)
    dit = EditDiT.from_t2v(t2v)
    assert dit.transformer.config.in_channels == 24
    assert torch.count_nonzero(dit.transformer.x_embedder.proj.weight[:, 12:]) == 0
    noisy, source, sigma, text, mask = _inputs()
    out_a = dit(noisy, source, sigma, text, mask)
    out_b = dit(noisy, torch.randn_like(source) * 5, sigma, text, mask)
    assert torch.equal(out_a, out_b)
    # ... and the noisy half is the pretrained T2V model exactly
    t2v_out = t2v(
        hidden_states=noisy, timestep=sigma * 1000, encoder_hidden_states=text, encoder_attention_mask=mask,
        pooled_projections=dit.pooled(text, mask), guidance=torch.full((2,), 6000.0), return_dict=False,
    )[0]
    assert torch.allclose(out_a, t2v_out, atol=1e-5)


def test_gradients_reach_projector_refiner_blocks(dit: EditDiT) -> None:
    noisy, source, sigma, text, mask = _inputs()
    dit(noisy, source, sigma, text, mask).square().mean().backward()
    t = dit.transformer
    for name, mod in {
        "x_embedder (projector)": t.x_embedder,
        "context_embedder (token refiner)": t.context_embedder.token_refiner,
        "double block": t.transformer_blocks[0],
        "single block": t.single_transformer_blocks[0],
        "pooled_proj": dit.pooled_proj,
    }.items():
        grads = [p.grad for p in mod.parameters() if p.requires_grad]
        assert grads and all(g is not None for g in grads), name
        assert sum(g.abs().sum() for g in grads) > 0, name
    assert dit.transformer.x_embedder.proj.weight.grad[:, 12:].abs().sum() > 0  # source half learns


def test_tiny_preset_is_small(dit: EditDiT) -> None:
    assert dit.num_parameters() < 2_000_000


def test_hunyuan_13b_on_meta_device() -> None:
    with torch.device("meta"):
        dit = EditDiT.from_config(dit_config("hunyuan-13b"))
    n = dit.num_parameters()
    assert 12.5e9 < n < 13.5e9, n
    w = dit.transformer.x_embedder.proj.weight
    assert w.is_meta and tuple(w.shape) == (3072, 32, 1, 2, 2)
    assert dit.transformer.proj_out.out_features == 16 * 4
    assert dit.transformer.config.text_embed_dim == 4096


def test_in_channels_must_be_twice_out() -> None:
    cfg = dit_config("tiny")
    cfg.update(in_channels=12)
    with pytest.raises(ValueError, match="in_channels = 2"):
        EditDiT.from_config(cfg)
