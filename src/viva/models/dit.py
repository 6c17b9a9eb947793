"""EditDiT: diffusers' HunyuanVideo transformer adapted for editing (VIVA eq. 2).

Input. The noisy latent and the source latent are channel-concatenated, ``[B, 2C, F, h, w]``, and patchified by
the transformer's own patch embed ``x_embedder`` (a Conv3d with kernel = stride = (pt, p, p)). A Conv3d over the
concatenation is exactly "patchify both, concatenate, project" of eq. 2: ``x_embedder`` *is* the trainable
projector. Built from a pretrained text-to-video DiT (C input channels), the projector keeps the pretrained
weights on the noisy half and gets ZERO weights on the new source half, so at initialisation the model ignores
the source and reproduces the T2V model exactly; SFT teaches it to read the source.

Text. ``text_states`` are the VLM instructor's last hidden states (eq. 1). They go through HunyuanVideo's own
``context_embedder`` (``HunyuanVideoTokenRefiner``), which is trainable: it is VIVA's token refiner. HunyuanVideo
also needs ``pooled_projections`` (a CLIP pooled vector in the T2V model); here they are the masked mean of the VLM
tokens through a trainable linear ``pooled_proj``. The text mask must be right-padded (valid tokens first): the
transformer builds its joint attention mask from the count of valid tokens.

Time. ``sigma`` in [0, 1] (1 = pure noise); the timestep embedding receives ``sigma * 1000``. If the config has
``guidance_embeds`` (the real HunyuanVideo does: guidance-distilled), a fixed embedded guidance value from
ModelConfig is passed as ``guidance * 1000`` like diffusers' HunyuanVideoPipeline.

Reference image. Its latent ``[B, C, 1, h, w]`` joins as an extra clean leading latent frame on the frame axis of
BOTH streams (noisy stream: the clean reference latent; source stream: the reference latent too, so the source
half of the projector sees it as well). The output velocity drops that frame.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from diffusers import HunyuanVideoTransformer3DModel
from torch import nn

from viva.models.codec import depth_to_space, space_to_depth


PREDICTIONS = ("velocity", "source_x0", "source_affine")
AFFINE_PARAMS = 12  # source_affine: a 3x3 colour matrix and a colour offset per latent cell
TEXT_POOLINGS = ("mean", "attention")
PIXEL_HEAD_WIDTH = 32  # hidden channels of the pixel head's convolutions


class PixelHead(nn.Module):
    """A small convolutional refiner of the x0 prediction at pixel resolution (pixel codecs; ``pixel_head`` > 0).

    The transformer's patch tokens paint whole ``p*f x p*f``-pixel blocks: every token's pixels come from one linear
    read-out of one hidden state, so an object's outline is as coarse as the token grid. Like the decoder of a latent
    diffusion model's autoencoder, this head turns the token-grid prediction into pixels: it reads the decoded x0, the
    source and the noisy input at pixel resolution, ``k`` feature maps per pixel that the transformer writes as extra
    output channels, and sigma, and adds a correction to x0 (the last convolution starts at zero: a new head is the
    identity). Four 3x3 convolutions: a receptive field of 9 x 9 pixels, ~24k multiply-adds per pixel.
    """

    def __init__(self, factor: int, features: int, width: int = PIXEL_HEAD_WIDTH) -> None:
        super().__init__()
        self.factor, self.features = int(factor), int(features)
        cin = 3 + features + 3 + 3 + 1  # x0, features, source, noisy, sigma
        self.convs = nn.ModuleList([nn.Conv2d(cin, width, 3, padding=1), nn.Conv2d(width, width, 3, padding=1),
                                    nn.Conv2d(width, width, 3, padding=1)])
        self.out = nn.Conv2d(width, 3, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def _to_pixels(self, x: torch.Tensor) -> torch.Tensor:
        """Pixel-codec latent ``[B, c*f*f, F, h, w] -> [B*F, c, h*f, w*f]`` (frames as images)."""
        px = depth_to_space(x, self.factor)  # [B, c, F, H, W]
        return px.transpose(1, 2).flatten(0, 1)

    def _to_latent(self, x: torch.Tensor, b: int) -> torch.Tensor:
        """Inverse of ``_to_pixels``: ``[B*F, c, H, W] -> [B, c*f*f, F, H/f, W/f]``."""
        px = x.unflatten(0, (b, x.shape[0] // b)).transpose(1, 2)  # [B, c, F, H, W]
        return space_to_depth(px, self.factor)

    def forward(self, x0: torch.Tensor, features: torch.Tensor, source: torch.Tensor, noisy: torch.Tensor,
                sigma: torch.Tensor) -> torch.Tensor:
        """Refined x0 ``[B, C, F, h, w]`` (all latents ``[B, *, F, h, w]``; ``sigma`` ``[B]``)."""
        b = x0.shape[0]
        px = self._to_pixels(torch.cat([x0, features, source, noisy], dim=1))  # [B*F, 9 + k, H, W]
        s = sigma.to(px.dtype).reshape(-1).expand(b).repeat_interleave(px.shape[0] // b)  # [B*F]
        h = torch.cat([px, s[:, None, None, None].expand(-1, 1, *px.shape[2:])], dim=1)
        for conv in self.convs:
            h = nn.functional.silu(conv(h))
        return x0 + self._to_latent(self.out(h), b)


class AttentionPool(nn.Module):
    """Multi-head attention pooling of the VLM tokens with learned queries: ``[B, L, D] -> [B, P]``.

    Unlike the masked mean, each head can pick out the few instruction tokens among the image tokens (CLIP's and
    Perceiver's attention pooling); the result feeds HunyuanVideo's pooled text vector, i.e. every block's AdaLN.
    """

    def __init__(self, dim: int, out_dim: int, heads: int = 4) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"AttentionPool: text dim {dim} is not divisible by {heads} heads")
        self.heads = heads
        self.query = nn.Parameter(torch.randn(heads, dim // heads) * (dim // heads) ** -0.5)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)
        self.out = nn.Linear(dim, out_dim)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Pool ``x`` ``[B, L, D]`` over the valid tokens of ``mask`` ``[B, L]``."""
        b, n, d = x.shape
        k = self.key(x).view(b, n, self.heads, d // self.heads)  # [B, L, H, d]
        v = self.value(x).view(b, n, self.heads, d // self.heads)  # [B, L, H, d]
        logits = torch.einsum("blhd,hd->bhl", k, self.query.to(k.dtype)) * (d // self.heads) ** -0.5  # [B, H, L]
        logits = logits.masked_fill(~mask.bool()[:, None, :], float("-inf"))
        pooled = torch.einsum("bhl,blhd->bhd", logits.softmax(-1), v)  # [B, H, d]
        return self.out(pooled.reshape(b, d))


class EditDiT(nn.Module):
    """HunyuanVideo transformer over ``noisy ⊕ source`` (eq. 2); ``forward`` always returns the velocity ``noise - x0``.

    ``prediction`` says what the transformer's output means: ``velocity`` (the pretrained T2V convention) or
    ``source_x0``, the clean edit as a residual on the source, ``x0 = source + out``, turned into the velocity
    ``(noisy - x0) / sigma``. With ``source_x0`` the unedited region is the identity at every noise level (a zero
    output copies the source exactly; the output projection starts at zero), so training spends its capacity on the
    edit itself instead of on carrying noise and source through the patch tokens (docs/sft.md, measured).

    ``source_affine`` (pixel codecs only: latent channel ``c * k + j`` is colour ``c`` of the cell's pixel ``j``) adds
    a per-cell colour transform of the source to that residual, ``x0 = (I + A) source + b + out``, with ``A`` (3x3)
    and ``b`` (3) from 12 more output channels: a recolor or a removal maps the source's own pixels, so its edit keeps
    the source's shapes at pixel resolution instead of painting whole patch tokens (docs/sft.md, measured).

    ``pixel_head = k > 0`` (pixel codecs, ``source_x0`` / ``source_affine``) adds ``k`` feature maps per pixel to the
    transformer's output and a ``PixelHead`` that refines x0 at pixel resolution from them.
    """

    def __init__(self, transformer: HunyuanVideoTransformer3DModel, guidance: float = 6.0,
                 prediction: str = "velocity", text_pooling: str = "mean", pixel_head: int = 0) -> None:
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"EditDiT prediction must be one of {PREDICTIONS}, got {prediction!r}")
        if text_pooling not in TEXT_POOLINGS:
            raise ValueError(f"EditDiT text_pooling must be one of {TEXT_POOLINGS}, got {text_pooling!r}")
        self.prediction = prediction
        self.text_pooling = text_pooling
        cfg = transformer.config
        c = int(cfg.in_channels) // 2
        factor = math.isqrt(c // 3) if c % 3 == 0 else 0
        if pixel_head < 0:
            raise ValueError(f"EditDiT pixel_head must be >= 0 feature channels, got {pixel_head}")
        if pixel_head and (prediction == "velocity" or factor * factor * 3 != c):
            raise ValueError(f"EditDiT pixel_head needs prediction source_x0 | source_affine and a pixel codec's "
                             f"latent (3 x f x f channels), got prediction {prediction!r} and {c} channels")
        self.pixel_head_features = int(pixel_head)
        self._pixel_feature_channels = factor * factor * self.pixel_head_features  # transformer output channels
        extra = (AFFINE_PARAMS if prediction == "source_affine" else 0) + self._pixel_feature_channels
        if cfg.in_channels != 2 * (cfg.out_channels - extra):
            raise ValueError(
                f"EditDiT ({prediction}) needs in_channels = 2 * (out_channels - {extra}) (noisy ⊕ source), got "
                f"{cfg.in_channels}, {cfg.out_channels}"
            )
        if extra and (cfg.in_channels // 2) % 3:
            raise ValueError(f"EditDiT source_affine needs a pixel codec's latent (3 colours x pixels per cell), got "
                             f"{cfg.in_channels // 2} channels")
        self.transformer = transformer
        self.latent_channels = int(cfg.in_channels) // 2
        self.guidance = float(guidance)
        # VLM tokens -> HunyuanVideo's pooled text vector (replaces the CLIP pooled output): masked mean + linear, or
        # attention pooling. The mean path keeps its old parameter name so earlier checkpoints load.
        if text_pooling == "mean":
            self.pooled_proj = nn.Linear(cfg.text_embed_dim, cfg.pooled_projection_dim)
        else:
            self.text_pool = AttentionPool(cfg.text_embed_dim, cfg.pooled_projection_dim)
        if pixel_head:
            self.pixel_head = PixelHead(factor, pixel_head)

    @classmethod
    def from_config(cls, config: dict[str, Any], guidance: float = 6.0, prediction: str = "velocity",
                    text_pooling: str = "mean", pixel_head: int = 0) -> "EditDiT":
        """Random-initialised EditDiT from a transformer config (``in_channels`` = 2 * latent channels; for
        ``source_affine`` ``out_channels`` becomes latent channels + 12, the affine parameters, and ``pixel_head = k``
        adds ``k`` feature maps per pixel, ``k * f * f`` channels for a pixel codec of factor ``f``)."""
        config = dict(config)
        c = int(config["in_channels"]) // 2
        out = c + (AFFINE_PARAMS if prediction == "source_affine" else 0)
        if pixel_head and c % 3 == 0:
            out += (c // 3) * pixel_head  # f * f = c / 3 for a pixel codec (validated in __init__)
        if out != c:
            config["out_channels"] = out
        dit = cls(HunyuanVideoTransformer3DModel.from_config(config), guidance, prediction, text_pooling, pixel_head)
        if prediction != "velocity":  # start as the copy-source editor (DiT's zero-initialised final layer)
            nn.init.zeros_(dit.transformer.proj_out.weight)
            nn.init.zeros_(dit.transformer.proj_out.bias)
        return dit

    @classmethod
    def from_t2v(cls, t2v: HunyuanVideoTransformer3DModel, guidance: float = 6.0) -> "EditDiT":
        """Widen a pretrained T2V transformer's patch embed to ``2C`` inputs; the source half starts at zero."""
        cfg = dict(t2v.config)
        c = int(cfg["in_channels"])
        cfg.update(in_channels=2 * c, out_channels=int(cfg.get("out_channels") or c))
        state = dict(t2v.state_dict())
        w = state["x_embedder.proj.weight"]  # [D, C, pt, p, p]
        state["x_embedder.proj.weight"] = torch.cat([w, torch.zeros_like(w)], dim=1)  # [D, 2C, pt, p, p]
        with torch.device("meta"):
            transformer = HunyuanVideoTransformer3DModel.from_config(cfg)
        transformer.load_state_dict(state, strict=True, assign=True)
        dit = cls(transformer.to(w.dtype), guidance)
        return dit.to(w.device)

    @classmethod
    def from_pretrained_t2v(cls, path: str, dtype: torch.dtype = torch.float32, guidance: float = 6.0) -> "EditDiT":
        """Load a T2V HunyuanVideo transformer (hub id or local path, subfolder ``transformer``) and widen it."""
        from pathlib import Path

        sub = None if (Path(path) / "config.json").is_file() else "transformer"
        t2v = HunyuanVideoTransformer3DModel.from_pretrained(path, subfolder=sub, torch_dtype=dtype)
        return cls.from_t2v(t2v, guidance)

    def pooled(self, text_states: torch.Tensor, text_mask: torch.Tensor) -> torch.Tensor:
        """HunyuanVideo's pooled text vector ``[B, P]`` from the tokens ``[B, L, D]``: masked mean through
        ``pooled_proj``, or attention pooling (``text_pooling``)."""
        if self.text_pooling == "attention":
            return self.text_pool(text_states, text_mask)
        m = text_mask.to(text_states.dtype).unsqueeze(-1)  # [B, L, 1]
        mean = (text_states * m).sum(1) / m.sum(1).clamp_min(1.0)  # [B, D]
        return self.pooled_proj(mean)

    def forward(
        self,
        noisy: torch.Tensor,
        source: torch.Tensor,
        sigma: torch.Tensor,
        text_states: torch.Tensor,
        text_mask: torch.Tensor,
        reference: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Velocity ``[B, C, F, h, w]`` for ``noisy``/``source`` ``[B, C, F, h, w]`` at noise level ``sigma`` ``[B]`` > 0."""
        if noisy.shape != source.shape:
            raise ValueError(f"EditDiT: noisy {tuple(noisy.shape)} and source {tuple(source.shape)} differ")
        out = self._transformer_out(noisy, source, sigma, text_states, text_mask, reference)  # [B, C, F, h, w]
        if self.prediction == "velocity":
            return out
        n_feat = self._pixel_feature_channels
        edit = out[:, :out.shape[1] - n_feat] if n_feat else out
        x0 = source + edit if self.prediction == "source_x0" else self._affine_x0(source, edit)
        if n_feat:
            x0 = self.pixel_head(x0, out[:, -n_feat:], source, noisy, sigma)
        s = sigma.to(out.dtype).reshape(-1).expand(out.shape[0]).reshape(-1, *([1] * (out.ndim - 1)))  # [B, 1, ...]
        return (noisy - x0) / s  # v = (x_sigma - x0) / sigma

    def _affine_x0(self, source: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
        """``x0 = (I + A) source + b + residual`` per latent cell; ``out`` ``[B, C + 12, F, h, w]`` (pixel-head
        features already split off)."""
        b, c = source.shape[:2]
        rest = source.shape[2:]  # F, h, w
        residual, mat, bias = out[:, :c], out[:, c:c + 9], out[:, c + 9:c + AFFINE_PARAMS]
        pixels = source.reshape(b, 3, c // 3, *rest)  # [B, 3, k, F, h, w] colour x pixel of the cell
        mixed = pixels + torch.einsum("bijfhw,bjkfhw->bikfhw", mat.reshape(b, 3, 3, *rest), pixels)
        return (mixed + bias.reshape(b, 3, 1, *rest)).reshape(b, c, *rest) + residual

    def _transformer_out(self, noisy, source, sigma, text_states, text_mask, reference) -> torch.Tensor:
        """The transformer's raw output ``[B, C, F, h, w]`` (reference frame dropped)."""
        if reference is not None:
            noisy = torch.cat([reference.to(noisy.dtype), noisy], dim=2)  # [B, C, 1+F, h, w]
            source = torch.cat([reference.to(source.dtype), source], dim=2)  # [B, C, 1+F, h, w]
        x = torch.cat([noisy, source], dim=1)  # [B, 2C, F(+1), h, w]  (eq. 2)
        b = x.shape[0]
        timestep = sigma.to(x.dtype).reshape(-1).expand(b) * 1000.0  # [B]
        text_states = text_states.to(x.dtype)
        guidance = None
        if self.transformer.config.guidance_embeds:
            guidance = torch.full((b,), self.guidance * 1000.0, device=x.device, dtype=x.dtype)
        out = self.transformer(
            hidden_states=x,
            timestep=timestep,
            encoder_hidden_states=text_states,
            encoder_attention_mask=text_mask,
            pooled_projections=self.pooled(text_states, text_mask),
            guidance=guidance,
            return_dict=False,
        )[0]  # [B, C, F(+1), h, w]
        return out[:, :, 1:] if reference is not None else out

    def num_parameters(self) -> int:
        """All parameters (projector, refiner, blocks, pooled_proj)."""
        return sum(p.numel() for p in self.parameters())
