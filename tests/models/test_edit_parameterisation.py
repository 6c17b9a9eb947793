"""EditDiT's source_x0 / source_affine predictions, attention pooling, the VLM's system-prompt crop, and their
checkpoint round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from viva.models.dit import EditDiT
from viva.models.presets import dit_config
from viva.samplers import denoise, sigma_schedule


def _inputs(b: int = 2, text_len: int = 6):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(b, 12, 2, 8, 8, generator=g)  # [B, C, F, h, w]
    src = torch.randn(b, 12, 2, 8, 8, generator=g)
    text = torch.randn(b, text_len, 64, generator=g)  # [B, L, D]
    return x, src, text, torch.ones(b, text_len, dtype=torch.long)


def test_source_x0_starts_as_copy_source_and_velocity_matches_its_x0() -> None:
    torch.manual_seed(0)
    dit = EditDiT.from_config(dit_config("tiny"), prediction="source_x0")
    x, src, text, mask = _inputs()
    sigma = torch.tensor([1.0, 0.3])
    v = dit(x, src, sigma, text, mask)
    x0 = x - sigma.view(-1, 1, 1, 1, 1) * v
    torch.testing.assert_close(x0, src, rtol=0, atol=1e-5)  # zero output layer: x0 = source exactly
    # A whole ODE run of the untrained editor returns the source (the copy-source baseline).
    traj = denoise(lambda z, s: dit(z, src, s, text, mask), x, sigma_schedule(4, 3.0), kind="ode")
    torch.testing.assert_close(traj.final, src, rtol=0, atol=1e-5)
    with torch.no_grad():
        dit.transformer.proj_out.bias.fill_(0.25)  # any output is a residual on the source
    x0 = x - sigma.view(-1, 1, 1, 1, 1) * dit(x, src, sigma, text, mask)
    torch.testing.assert_close(x0, src + 0.25, rtol=0, atol=1e-5)


def _set_affine(dit: EditDiT, mat: torch.Tensor, bias: torch.Tensor) -> None:
    """Make the transformer output the constant affine parameters ``A`` (3x3), ``b`` (3) and no residual."""
    with torch.no_grad():
        dit.transformer.proj_out.weight.zero_()
        out = torch.zeros(dit.transformer.config.out_channels)
        out[12:21], out[21:24] = mat.reshape(-1), bias
        cfg = dit.transformer.config
        # proj_out is channel-major (diffusers unpatchify): each channel once per cell of the patch
        dit.transformer.proj_out.bias.copy_(out.repeat_interleave(cfg.patch_size_t * cfg.patch_size ** 2))


def test_source_affine_starts_as_copy_source_and_recolours_the_source_pixels() -> None:
    from viva.models.codec import PixelCodec

    torch.manual_seed(0)
    dit = EditDiT.from_config(dit_config("tiny"), prediction="source_affine")
    assert (dit.latent_channels, dit.transformer.config.out_channels) == (12, 24)
    codec = PixelCodec(2)
    video = torch.zeros(2, 3, 2, 16, 16)  # [B, 3, F, H, W]: background 0, a 3-pixel object of colour (0.5, -0.5, 0)
    video[:, 0, :, 5, 6:9], video[:, 1, :, 5, 6:9] = 0.5, -0.5
    src = codec.encode(video)  # [B, 12, F, 8, 8]
    x, _, text, mask = _inputs()
    sigma = torch.tensor([1.0, 0.3])
    x0 = x - sigma.view(-1, 1, 1, 1, 1) * dit(x, src, sigma, text, mask)
    torch.testing.assert_close(x0, src, rtol=0, atol=1e-5)  # zero output layer: the copy-source editor
    # A colour transform that swaps red and green and keeps black: the object turns (-0.5, 0.5, 0) pixel for pixel
    # (its 3-pixel shape, not the 4x4 token it sits in), the background stays.
    swap = torch.tensor([[-1.0, 1.0, 0.0], [1.0, -1.0, 0.0], [0.0, 0.0, 0.0]])  # I + A = [[0,1,0],[1,0,0],[0,0,1]]
    _set_affine(dit, swap, torch.zeros(3))
    edit = codec.decode(x - sigma.view(-1, 1, 1, 1, 1) * dit(x, src, sigma, text, mask))
    want = video.clone()
    want[:, 0, :, 5, 6:9], want[:, 1, :, 5, 6:9] = -0.5, 0.5
    torch.testing.assert_close(edit, want, rtol=0, atol=1e-5)
    _set_affine(dit, -torch.eye(3), torch.tensor([0.1, 0.2, 0.3]))  # I + A = 0: every pixel becomes the offset
    flat = codec.decode(x - sigma.view(-1, 1, 1, 1, 1) * dit(x, src, sigma, text, mask))
    torch.testing.assert_close(flat, torch.tensor([0.1, 0.2, 0.3]).view(1, 3, 1, 1, 1).expand_as(video),
                               rtol=0, atol=1e-5)


def test_source_affine_needs_a_pixel_latent_and_the_pixel_codec() -> None:
    from viva.config import ConfigError, ModelConfig

    with pytest.raises(ValueError, match="source_affine needs a pixel codec"):
        EditDiT.from_config(dict(dit_config("tiny"), in_channels=32, out_channels=16), prediction="source_affine")
    with pytest.raises(ConfigError, match="model.prediction: source_affine needs model.codec: pixel"):
        ModelConfig(prediction="source_affine", codec="hunyuan-vae")


@pytest.mark.parametrize("prediction", ["source_x0", "source_affine"])
def test_pixel_head_starts_as_the_identity_and_edits_single_pixels(prediction: str) -> None:
    from viva.models.codec import PixelCodec

    torch.manual_seed(0)
    dit = EditDiT.from_config(dit_config("tiny"), prediction=prediction, pixel_head=4)
    extra = 12 if prediction == "source_affine" else 0
    assert dit.transformer.config.out_channels == 12 + extra + 4 * 4  # 4 feature maps x 2 x 2 pixels per cell
    x, src, text, mask = _inputs()
    sigma = torch.tensor([1.0, 0.3])
    x0 = x - sigma.view(-1, 1, 1, 1, 1) * dit(x, src, sigma, text, mask)
    torch.testing.assert_close(x0, src, rtol=0, atol=1e-5)  # zero output layers: still the copy-source editor
    # The head's pixels are the codec's pixels: a correction at pixel (y, x) of frame f lands exactly there.
    codec = PixelCodec(2)
    video = codec.decode(src)  # [B, 3, F, 16, 16]
    head = dit.pixel_head
    assert torch.equal(head._to_latent(head._to_pixels(src), 2), src)
    assert torch.equal(head._to_pixels(src).reshape(2, 2, 3, 16, 16), video.permute(0, 2, 1, 3, 4))
    with torch.no_grad():
        head.out.bias.copy_(torch.tensor([0.5, 0.0, 0.0]))  # the head adds +0.5 red to every pixel
    x0 = x - sigma.view(-1, 1, 1, 1, 1) * dit(x, src, sigma, text, mask)
    want = video.clone()
    want[:, 0] += 0.5
    torch.testing.assert_close(codec.decode(x0), want, rtol=0, atol=1e-5)
    # The head reads the transformer's feature maps: a feature written by proj_out changes the refined x0.
    with torch.no_grad():
        head.out.weight.normal_(0, 0.1)
        before = dit(x, src, sigma, text, mask)
        dit.transformer.proj_out.bias[-16:].fill_(1.0)
        assert not torch.allclose(dit(x, src, sigma, text, mask), before)


def test_pixel_head_needs_a_pixel_latent_and_an_x0_prediction() -> None:
    from viva.config import ConfigError, ModelConfig

    with pytest.raises(ValueError, match="pixel_head needs prediction"):
        EditDiT.from_config(dit_config("tiny"), prediction="velocity", pixel_head=4)
    with pytest.raises(ValueError, match="pixel_head needs prediction"):
        EditDiT.from_config(dict(dit_config("tiny"), in_channels=32, out_channels=16), prediction="source_x0",
                            pixel_head=4)
    with pytest.raises(ConfigError, match="model.pixel_head"):
        ModelConfig(prediction="source_x0", codec="hunyuan-vae", pixel_head=4)
    with pytest.raises(ConfigError, match="model.pixel_head"):
        ModelConfig(prediction="source_x0", pixel_head=-1)


def test_attention_pooling_ignores_padding_and_reads_the_tokens() -> None:
    torch.manual_seed(0)
    dit = EditDiT.from_config(dit_config("tiny"), text_pooling="attention")
    x, src, text, mask = _inputs()
    padded = torch.cat([text, torch.randn(2, 3, 64)], dim=1)
    pmask = torch.cat([mask, torch.zeros(2, 3, dtype=torch.long)], dim=1)
    torch.testing.assert_close(dit.pooled(text, mask), dit.pooled(padded, pmask))
    other = text.clone()
    other[:, 2] += 1.0
    assert not torch.allclose(dit.pooled(text, mask), dit.pooled(other, mask))
    assert not hasattr(dit, "pooled_proj")


def test_bad_prediction_or_pooling_is_refused() -> None:
    with pytest.raises(ValueError, match="prediction"):
        EditDiT.from_config(dit_config("tiny"), prediction="epsilon")
    with pytest.raises(ValueError, match="text_pooling"):
        EditDiT.from_config(dit_config("tiny"), text_pooling="max")


def test_vlm_crop_keeps_the_user_turn(vlm) -> None:
    from viva.models.vlm_instructor import VLMInstructor

    frame = np.zeros((32, 32, 3), np.uint8)
    cropped = VLMInstructor(vlm.model, vlm.processor, crop_system=True)
    full = vlm.encode(["make the red circle purple"], [frame])
    short = cropped.encode(["make the red circle purple"], [frame])
    n_full, n_short = int(full.mask.sum()), int(short.mask.sum())
    assert n_short < n_full / 2  # the system prompt outnumbers the user turn
    torch.testing.assert_close(short.hidden_states[0, :n_short], full.hidden_states[0, n_full - n_short:n_full])
    other = cropped.encode(["make the red circle green"], [frame])
    assert not torch.allclose(short.hidden_states, other.hidden_states)


def test_checkpoint_records_prediction_pooling_and_crop(tmp_path) -> None:
    import types

    from viva.config import ModelConfig
    from viva.models.checkpoint import load_base_checkpoint, read_checkpoint_config, save_base_checkpoint

    for prediction, pixel_head in (("source_x0", 0), ("source_affine", 0), ("source_affine", 3)):
        torch.manual_seed(0)
        dit = EditDiT.from_config(dit_config("tiny"), prediction=prediction, text_pooling="attention",
                                  pixel_head=pixel_head)
        with torch.no_grad():
            dit.transformer.proj_out.weight.normal_()
            if pixel_head:
                dit.pixel_head.out.weight.normal_(0, 0.1)
        out = tmp_path / f"{prediction}{pixel_head}"
        save_base_checkpoint(types.SimpleNamespace(dit=dit), out, ModelConfig(vlm_crop_system=True))
        meta = read_checkpoint_config(out)
        assert (meta["prediction"], meta["text_pooling"], meta["vlm_crop_system"], meta["pixel_head"]) == (
            prediction, "attention", True, pixel_head)
        back = load_base_checkpoint(out)
        x, src, text, mask = _inputs()
        sigma = torch.tensor([0.7, 0.2])
        torch.testing.assert_close(back(x, src, sigma, text, mask), dit(x, src, sigma, text, mask))
