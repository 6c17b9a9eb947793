"""Frozen LLaVA instructor (VIVA eq. 1): system prompt + instruction + first source frame (+ reference image)
-> the VLM's last hidden states and attention mask, cached per (instruction, frame, reference).

The G samples of a group share one prompt, so the cache makes a group encode once. The empty instruction ""
is the unconditional branch of CFG (the frames stay in it).
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch import nn

LLAVA_LLAMA3_8B_ID = "xtuner/llava-llama-3-8b-v1_1-transformers"
SYSTEM_PROMPT = (
    "You are a video editing assistant. The first image is the first frame of the source video; a second image, "
    "if present, is a reference. Describe the edited video that follows the user's instruction."
)


@dataclass(frozen=True)
class TextCondition:
    """VLM tokens for a batch: ``hidden_states`` [B, L, D] float, ``mask`` [B, L] long (right-padded)."""

    hidden_states: torch.Tensor
    mask: torch.Tensor

    def __post_init__(self) -> None:
        if self.hidden_states.shape[:2] != self.mask.shape:
            raise ValueError(
                f"TextCondition: hidden_states {tuple(self.hidden_states.shape)} vs mask {tuple(self.mask.shape)}"
            )

    @property
    def batch_size(self) -> int:
        """B."""
        return int(self.mask.shape[0])

    @property
    def length(self) -> int:
        """L (padded token count)."""
        return int(self.mask.shape[1])

    def pad_to(self, length: int) -> "TextCondition":
        """Right-pad (zeros, mask 0) to ``length`` tokens."""
        extra = length - self.length
        if extra < 0:
            raise ValueError(f"TextCondition.pad_to({length}) is shorter than its length {self.length}")
        if extra == 0:
            return self
        h = torch.nn.functional.pad(self.hidden_states, (0, 0, 0, extra))  # [B, length, D]
        m = torch.nn.functional.pad(self.mask, (0, extra))  # [B, length]
        return TextCondition(h, m)

    @staticmethod
    def cat(conds: Sequence["TextCondition"]) -> "TextCondition":
        """Concatenate on the batch axis, padding to the longest."""
        n = max(c.length for c in conds)
        padded = [c.pad_to(n) for c in conds]
        return TextCondition(
            torch.cat([c.hidden_states for c in padded]), torch.cat([c.mask for c in padded])
        )

    def index(self, idx: int | slice | torch.Tensor | Sequence[int]) -> "TextCondition":
        """Select samples on the batch axis (an int keeps the batch axis)."""
        if isinstance(idx, int):
            idx = slice(idx, idx + 1)
        return TextCondition(self.hidden_states[idx], self.mask[idx])

    def repeat(self, n: int) -> "TextCondition":
        """Each sample repeated ``n`` times consecutively (a group of G edits of one prompt)."""
        return TextCondition(
            self.hidden_states.repeat_interleave(n, 0), self.mask.repeat_interleave(n, 0)
        )

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> "TextCondition":
        """Move (and optionally cast the hidden states)."""
        return dataclasses.replace(
            self, hidden_states=self.hidden_states.to(device, dtype), mask=self.mask.to(device)
        )


def _check_image(img: np.ndarray, what: str) -> None:
    if not isinstance(img, np.ndarray) or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
        desc = f"{getattr(img, 'dtype', type(img))} {getattr(img, 'shape', '')}"
        raise ValueError(f"VLMInstructor: {what} must be a uint8 [H, W, 3] array, got {desc}")


def _cache_key(instruction: str, frame: np.ndarray, reference: np.ndarray | None) -> str:
    h = hashlib.sha256()
    h.update(instruction.encode("utf-8") + b"\0")
    for img in (frame, reference):
        if img is None:
            h.update(b"none")
            continue
        h.update(repr(img.shape).encode())
        h.update(np.ascontiguousarray(img).tobytes())
    return h.hexdigest()


class VLMInstructor(nn.Module):
    """Frozen ``LlavaForConditionalGeneration`` + processor; ``encode`` returns cached last hidden states."""

    def __init__(self, model: nn.Module, processor, cache_size: int = 4096, crop_system: bool = False) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.processor = processor
        self.cache_size = int(cache_size)
        # Keep the user turn only (first image token on): the system prompt is the same for every sample and would
        # outnumber the instruction tokens (HunyuanVideo crops its prompt template the same way).
        self.crop_system = bool(crop_system)
        self._cache: OrderedDict[str, torch.Tensor] = OrderedDict()
        self.forward_calls = 0  # model forwards run (a cache test counts them)
        self.cache_hits = 0

    @classmethod
    def from_pretrained(
        cls, path: str | Path, dtype: torch.dtype = torch.float32, device: str = "cpu", cache_size: int = 4096,
        crop_system: bool = False,
    ) -> "VLMInstructor":
        """Load a LLaVA model + processor from a hub id / local dir (``"tiny"`` = the shipped asset)."""
        from transformers import AutoProcessor, LlavaForConditionalGeneration

        from viva.models.tiny_vlm import CHAT_TEMPLATE, TINY_VLM_DIR

        path = {"tiny": str(TINY_VLM_DIR), "llava-llama3-8b": LLAVA_LLAMA3_8B_ID}.get(str(path), str(path))
        if path == str(TINY_VLM_DIR) and not (TINY_VLM_DIR / "model.safetensors").is_file():
            raise FileNotFoundError(f"tiny VLM asset missing: {TINY_VLM_DIR / 'model.safetensors'}")
        processor = AutoProcessor.from_pretrained(path)
        if getattr(processor, "chat_template", None) is None:
            processor.chat_template = CHAT_TEMPLATE
        processor.tokenizer.padding_side = "right"  # the DiT mask expects valid tokens first
        model = LlavaForConditionalGeneration.from_pretrained(path, torch_dtype=dtype, use_safetensors=True)
        return cls(model.to(device), processor, cache_size, crop_system)

    @property
    def hidden_size(self) -> int:
        """D of the returned hidden states."""
        return int(self.model.config.text_config.hidden_size)

    def _prompt(self, instruction: str, has_reference: bool) -> str:
        content = [{"type": "image"}] * (2 if has_reference else 1) + [{"type": "text", "text": instruction}]
        messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": content}]
        return self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=False)

    @torch.no_grad()
    def _run(self, instructions: list[str], frames: list[np.ndarray], refs: list[np.ndarray | None]) -> list:
        texts = [self._prompt(t, r is not None) for t, r in zip(instructions, refs)]
        images = [img for f, r in zip(frames, refs) for img in ((f,) if r is None else (f, r))]
        device = next(self.model.parameters()).device
        inputs = self.processor(text=texts, images=images, padding=True, return_tensors="pt").to(device)
        inputs["pixel_values"] = inputs["pixel_values"].to(self.model.dtype)
        self.forward_calls += 1
        out = self.model(**inputs, output_hidden_states=True)
        last = out.hidden_states[-1]  # [n, L, D]  (eq. 1: the last hidden states)
        lengths = inputs["attention_mask"].sum(1).tolist()
        starts = [0] * len(lengths)
        if self.crop_system:
            is_image = inputs["input_ids"] == self.model.config.image_token_index  # [n, L]
            starts = [int(row.nonzero()[0, 0]) if bool(row.any()) else 0 for row in is_image]
        # right padding: valid tokens first; clone so a cache entry does not pin the whole batch tensor
        return [last[i, a: int(n)].clone() for i, (a, n) in enumerate(zip(starts, lengths))]

    def encode(
        self,
        instructions: list[str],
        first_frames: Sequence[np.ndarray],
        references: Sequence[np.ndarray | None] | None = None,
    ) -> TextCondition:
        """Encode a batch; only cache misses run the VLM (one batched forward)."""
        references = list(references) if references is not None else [None] * len(instructions)
        if not (len(instructions) == len(first_frames) == len(references)):
            raise ValueError(
                f"VLMInstructor.encode: {len(instructions)} instructions, {len(first_frames)} frames, "
                f"{len(references)} references"
            )
        keys = []
        for i, (t, f, r) in enumerate(zip(instructions, first_frames, references)):
            if not isinstance(t, str):
                raise ValueError(f"VLMInstructor: instruction {i} must be a str, got {type(t).__name__}")
            _check_image(f, f"first_frames[{i}]")
            if r is not None:
                _check_image(r, f"references[{i}]")
            keys.append(_cache_key(t, f, r))
        missing = list(dict.fromkeys(k for k in keys if k not in self._cache))
        fresh: dict[str, torch.Tensor] = {}
        if missing:
            first = {k: i for i, k in reversed(list(enumerate(keys)))}
            idx = [first[k] for k in missing]
            states = self._run([instructions[i] for i in idx], [first_frames[i] for i in idx],
                               [references[i] for i in idx])
            fresh = dict(zip(missing, states))
            for k, s in fresh.items():
                self._put(k, s)
        self.cache_hits += len(keys) - len(missing)
        return self._assemble([fresh[k] if k in fresh else self._get(k) for k in keys])

    def _put(self, key: str, states: torch.Tensor) -> None:
        self._cache[key] = states
        self._cache.move_to_end(key)
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)

    def _get(self, key: str) -> torch.Tensor:
        self._cache.move_to_end(key)
        return self._cache[key]

    @staticmethod
    def _assemble(states: list[torch.Tensor]) -> TextCondition:
        conds = [
            TextCondition(s.unsqueeze(0), torch.ones(1, s.shape[0], dtype=torch.long, device=s.device))
            for s in states
        ]
        return TextCondition.cat(conds)

    def clear_cache(self) -> None:
        """Drop every cached entry."""
        self._cache.clear()
