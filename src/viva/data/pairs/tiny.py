"""Tiny random-weight versions of the pairs stages' real models, written as local folders the real loaders read
(``from_pretrained(path)``): Grounding DINO (Swin + BERT, ~0.4 M parameters), SAM 2 video (Hiera, ~1.3 M) and a
Stable Diffusion inpainting pipeline (UNet + VAE + CLIP text encoder, ~0.2 M). Built offline from configs in a few
seconds; their outputs are meaningless but have the real shapes, so the pipeline runs end to end on a CPU.

Run: ``python -m viva.data.pairs.tiny OUT_DIR`` (then ``pairs.detect.model=OUT_DIR/grounding_dino`` etc.)
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import torch

SAM_SIZE = 128  # SAM 2 input side of the tiny model
QUERY_WORDS = ["person", "dog", "cat", "car", "bicycle", "bird", "horse", "bike", "rabbit", "phone", "man", "tree"]


@dataclass(frozen=True)
class TinyModels:
    """Folders of the tiny detect / track / inpaint weights."""

    detect: Path
    track: Path
    inpaint: Path


def write_tiny_grounding_dino(out: Path) -> Path:
    """Grounding DINO with a 4-stage Swin (width 16) and a 1-layer BERT over a word-level vocabulary."""
    import transformers as tf

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", "a", "the", *QUERY_WORDS]
    tokenizer = tf.BertTokenizer(vocab={w: i for i, w in enumerate(words)})
    backbone = tf.SwinConfig(image_size=64, patch_size=4, embed_dim=16, depths=[1, 1, 1, 1], num_heads=[1, 1, 2, 2],
                             window_size=2, out_features=["stage2", "stage3", "stage4"])
    text = tf.BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=64, max_position_embeddings=64)
    cfg = tf.GroundingDinoConfig(backbone_config=backbone, text_config=text, num_queries=20, encoder_layers=1,
                                 decoder_layers=2, encoder_ffn_dim=64, decoder_ffn_dim=64, encoder_attention_heads=2,
                                 decoder_attention_heads=2, d_model=32, max_text_len=32, encoder_n_points=2,
                                 decoder_n_points=2)
    processor = tf.GroundingDinoProcessor(
        image_processor=tf.GroundingDinoImageProcessor(size={"shortest_edge": 64, "longest_edge": 96}),
        tokenizer=tokenizer)
    tf.GroundingDinoForObjectDetection(cfg).save_pretrained(out)
    processor.save_pretrained(out)
    return out


def write_tiny_sam2(out: Path) -> Path:
    """SAM 2 video at 128 px: a 6-block Hiera (widths 16-128), 128-wide prompt/mask decoder, 64-channel memory."""
    import transformers as tf

    s = SAM_SIZE
    hiera = tf.Sam2HieraDetConfig(hidden_size=16, num_attention_heads=1, image_size=[s, s],
                                  blocks_per_stage=[1, 2, 2, 1], embed_dim_per_stage=[16, 32, 64, 128],
                                  num_attention_heads_per_stage=[1, 1, 2, 2],
                                  window_size_per_stage=[4, 4, 4, 2], global_attention_blocks=[4],
                                  window_positional_embedding_background_size=[2, 2])
    vision = tf.Sam2VisionConfig(backbone_config=hiera, backbone_channel_list=[128, 64, 32, 16],
                                 backbone_feature_sizes=[[s // 4] * 2, [s // 8] * 2, [s // 16] * 2],
                                 fpn_hidden_size=128)
    # The memory width must stay 64 (transformers hard-codes the memory cross-attention's input width) and below the
    # hidden width (object pointers are split into hidden/64 memory tokens).
    cfg = tf.Sam2VideoConfig(
        vision_config=vision, image_size=s, num_maskmem=3,
        prompt_encoder_config=dict(hidden_size=128, image_size=s, patch_size=16, mask_input_channels=4),
        mask_decoder_config=dict(hidden_size=128, mlp_dim=64, num_attention_heads=2, iou_head_hidden_dim=32),
        memory_attention_hidden_size=128, memory_attention_num_layers=1, memory_attention_feed_forward_hidden_size=64,
        memory_attention_rope_feat_sizes=[s // 16, s // 16], memory_encoder_hidden_size=128,
        memory_encoder_output_channels=64, mask_downsampler_embed_dim=128, memory_fuser_embed_dim=128,
        memory_fuser_intermediate_dim=64)
    model = tf.Sam2VideoModel(cfg)
    with torch.no_grad():  # random weights would often call the object absent (all-empty masks): say it is there
        model.mask_decoder.pred_obj_score_head.proj_out.bias.fill_(10.0)
    model.save_pretrained(out)
    processor = tf.Sam2VideoProcessor(
        image_processor=tf.Sam2ImageProcessor(size={"height": s, "width": s},
                                              mask_size={"height": s // 4, "width": s // 4}),
        video_processor=tf.Sam2VideoVideoProcessor(size={"height": s, "width": s}), target_size=s)
    processor.save_pretrained(out)
    return out


def write_tiny_inpaint(out: Path) -> Path:
    """A Stable Diffusion inpainting pipeline: 2-level UNet (9 input channels), 2-level VAE, 1-layer CLIP text."""
    import transformers as tf
    from diffusers import AutoencoderKL, DDIMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel

    unet = UNet2DConditionModel(block_out_channels=(16, 32), layers_per_block=1, sample_size=16, in_channels=9,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=16,
                                attention_head_dim=4, norm_num_groups=8)
    vae = AutoencoderKL(block_out_channels=[16, 32], in_channels=3, out_channels=3, latent_channels=4,
                        down_block_types=["DownEncoderBlock2D"] * 2, up_block_types=["UpDecoderBlock2D"] * 2,
                        norm_num_groups=8, sample_size=32)
    chars = list("abcdefghijklmnopqrstuvwxyz0123456789.,'-")
    vocab = {c: i for i, c in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    text = tf.CLIPTextModel(tf.CLIPTextConfig(vocab_size=len(vocab), hidden_size=16, intermediate_size=32,
                                              num_attention_heads=2, num_hidden_layers=1, max_position_embeddings=77,
                                              projection_dim=16, bos_token_id=len(vocab) - 2,
                                              eos_token_id=len(vocab) - 1, pad_token_id=len(vocab) - 1))
    tokenizer = tf.CLIPTokenizer(vocab=vocab, merges=[], model_max_length=77)  # character-level, no merges
    pipe = StableDiffusionInpaintPipeline(vae=vae, text_encoder=text, unet=unet, tokenizer=tokenizer,
                                          scheduler=DDIMScheduler(steps_offset=1),
                                          safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    pipe.save_pretrained(out)
    return out


def write_tiny_models(root: str | Path, seed: int = 0) -> TinyModels:
    """All three under ``root`` (deterministic in ``seed``)."""
    root = Path(root)
    torch.manual_seed(seed)
    return TinyModels(write_tiny_grounding_dino(root / "grounding_dino"), write_tiny_sam2(root / "sam2_video"),
                      write_tiny_inpaint(root / "sd_inpaint"))


if __name__ == "__main__":
    models = write_tiny_models(sys.argv[1] if len(sys.argv) > 1 else "runs/tiny_pair_models")
    print(f"pairs.detect.model={models.detect} pairs.track.model={models.track} pairs.inpaint.model={models.inpaint}")
