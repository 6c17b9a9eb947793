"""A tiny LLaVA (tiny Llama + tiny CLIP vision tower) built fully offline, shipped in ``viva/assets/tiny_vlm``.

The tokenizer is a byte-level BPE trained on a small built-in corpus, with the Llama-3 special tokens and
``<image>``; the processor is a ``LlavaProcessor`` with a Llama-3-style chat template kept in this file. Weights
come from a seeded init, so ``build_tiny_vlm(out_dir, seed=0)`` reproduces the shipped files (SFT checkpoints
depend on the exact instructor weights).

Run: ``python -c "from viva.models.tiny_vlm import build_tiny_vlm; build_tiny_vlm('src/viva/assets/tiny_vlm')"``
"""

from __future__ import annotations

from pathlib import Path

import torch

TINY_VLM_DIR = Path(__file__).resolve().parent.parent / "assets" / "tiny_vlm"
IMAGE_SIZE = 32
PATCH_SIZE = 8
VOCAB_SIZE = 512
SPECIAL_TOKENS = [
    "<|begin_of_text|>",
    "<|end_of_text|>",
    "<|start_header_id|>",
    "<|end_header_id|>",
    "<|eot_id|>",
    "<|pad|>",
    "<image>",
]

# Llama-3 style; list contents may hold {"type": "image"} and {"type": "text", "text": ...} parts.
CHAT_TEMPLATE = (
    "<|begin_of_text|>{% for message in messages %}"
    "<|start_header_id|>{{ message['role'] }}<|end_header_id|>\n\n"
    "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
    "{% for part in message['content'] %}{% if part['type'] == 'image' %}<image>\n"
    "{% elif part['type'] == 'text' %}{{ part['text'] }}{% endif %}{% endfor %}{% endif %}<|eot_id|>"
    "{% endfor %}{% if add_generation_prompt %}<|start_header_id|>assistant<|end_header_id|>\n\n{% endif %}"
)

_WORDS = (
    "add remove replace recolor change turn make the a an of in on to into with and background foreground "
    "red green blue yellow purple orange cyan magenta white black gray brown pink "
    "circle square triangle star disk box ball shape object objects small large big tiny left right top bottom "
    "center moving static video frame image reference edit edited source instruction please keep everything else "
    "same color sky grass sea sand wall floor striped dotted plain bright dark "
    "you are a video editing assistant describe what should change follow the user"
)
_SENTENCES = [
    "add a red circle to the left of the video",
    "remove the blue square",
    "replace the green triangle with a yellow star",
    "recolor the purple disk to orange",
    "change the background to a striped blue sky",
    "turn the small box into a large ball",
    "make the background dark gray and keep everything else the same",
    "You are a video editing assistant. Follow the user's instruction.",
    "The quick brown fox jumps over the lazy dog. 0123456789 !?.,;:'\"()[]{}-_/",
]


def _corpus() -> list[str]:
    return _SENTENCES + _WORDS.split() + [_WORDS]


def build_tokenizer():
    """Byte-level BPE (vocab 512) + Llama-3 special tokens + ``<image>``, as a ``PreTrainedTokenizerFast``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        special_tokens=SPECIAL_TOKENS,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_corpus(), trainer=trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        bos_token="<|begin_of_text|>",
        eos_token="<|eot_id|>",
        pad_token="<|pad|>",
        padding_side="right",  # the DiT's joint attention mask expects valid tokens first
        extra_special_tokens={"image_token": "<image>"},
    )


def build_processor():
    """``LlavaProcessor`` = tiny tokenizer + ``CLIPImageProcessor`` (32x32) + the chat template."""
    from transformers import CLIPImageProcessor, LlavaProcessor

    image_processor = CLIPImageProcessor(
        size={"shortest_edge": IMAGE_SIZE}, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    )
    return LlavaProcessor(
        image_processor=image_processor,
        tokenizer=build_tokenizer(),
        patch_size=PATCH_SIZE,
        vision_feature_select_strategy="default",
        chat_template=CHAT_TEMPLATE,
        num_additional_image_tokens=1,  # the CLIP CLS token (dropped by the "default" strategy)
    )


def build_model(vocab_size: int, image_token_id: int, pad_token_id: int, seed: int = 0):
    """Tiny ``LlavaForConditionalGeneration`` (Llama 2x64, CLIP 2x32 at 32 px / patch 8) from a seeded init."""
    from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration

    text = LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=512,
        pad_token_id=pad_token_id,
        tie_word_embeddings=True,
    )
    vision = CLIPVisionConfig(
        hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=2,
        image_size=IMAGE_SIZE, patch_size=PATCH_SIZE, projection_dim=32,
    )
    cfg = LlavaConfig(
        vision_config=vision, text_config=text, image_token_id=image_token_id,
        vision_feature_layer=-1, vision_feature_select_strategy="default", projector_hidden_act="gelu",
        tie_word_embeddings=True,
    )
    torch.manual_seed(seed)
    return LlavaForConditionalGeneration(cfg).eval()


def build_tiny_vlm(out_dir: str | Path, seed: int = 0) -> Path:
    """Build and save the tiny VLM (safetensors weights + tokenizer/processor files) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    processor = build_processor()
    tok = processor.tokenizer
    model = build_model(len(tok), tok.convert_tokens_to_ids("<image>"), tok.pad_token_id, seed)
    model.save_pretrained(out, safe_serialization=True)
    processor.save_pretrained(out)
    return out
