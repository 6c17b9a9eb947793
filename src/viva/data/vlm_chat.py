"""Chat VLM engines behind one call, ``complete(conversations) -> replies``: any OpenAI-compatible endpoint
(``POST {base_url}/chat/completions``, frames as base64 ``image_url`` parts) or vLLM's offline engine (``LLM.chat``,
batched, on a GPU node). A reply carries the answer text or the reason there is none; nothing is raised per request,
so a caller can retry just the failed conversations.

>>> reply = ChatReply(text=None, error="HTTP 500")
>>> reply.ok
False
"""

from __future__ import annotations

import base64
import io
import json
import os
import string
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Protocol, Sequence

import numpy as np

from viva.config import VLMEngineConfig

Message = Dict[str, Any]  # OpenAI chat message: {"role": ..., "content": str | [parts]}
Conversation = List[Message]


class ChatEngineError(RuntimeError):
    """An engine cannot be built (missing package, missing API key variable); the message says which."""


class PromptFileError(ValueError):
    """A prompt file is missing or uses a placeholder the caller does not fill; the message names the file."""


class MalformedAnswer(ValueError):
    """A VLM answer is not what the prompt asked for; the message says what is wrong (it goes to the rejects)."""


@dataclass(frozen=True)
class PromptFile:
    """A user-editable prompt: a text file with ``$name`` placeholders (``string.Template``; ``$$`` is a dollar)."""

    path: Path
    text: str

    @classmethod
    def load(cls, path: str | Path, fields: Sequence[str]) -> "PromptFile":
        """Read ``path`` and check it uses only ``fields`` as placeholders (checked now, not mid-run)."""
        path = Path(path)
        if not path.is_file():
            raise PromptFileError(f"{path}: prompt file not found")
        prompt = cls(path, path.read_text(encoding="utf-8"))
        prompt.render(**{f: f"<{f}>" for f in fields})
        if not prompt.text.strip():
            raise PromptFileError(f"{path}: prompt file is empty")
        return prompt

    def render(self, **values: Any) -> str:
        """The text with every placeholder filled; an unknown or malformed one is an error naming the file."""
        try:
            return string.Template(self.text).substitute({k: str(v) for k, v in values.items()})
        except KeyError as e:
            raise PromptFileError(f"{self.path}: unknown placeholder ${e.args[0]}; this prompt can use "
                                  f"{', '.join('$' + k for k in sorted(values))} (write $$ for a dollar sign)") from e
        except ValueError as e:
            raise PromptFileError(f"{self.path}: {e} (write $$ for a dollar sign)") from e


def first_json_object(text: str) -> Dict[str, Any]:
    """The first JSON object in a VLM answer (code fences and chatter around it are ignored).

    >>> first_json_object('Sure! ```json {"a": 1} ``` Hope this helps.')
    {'a': 1}
    """
    decoder = json.JSONDecoder()
    start = text.find("{")
    while start != -1:
        try:
            obj, _ = decoder.raw_decode(text, start)
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        if isinstance(obj, dict):
            return obj
        start = text.find("{", start + 1)
    raise MalformedAnswer(f"no JSON object in the answer: {text[:200]!r}")


@dataclass(frozen=True)
class ChatReply:
    """The answer text of one conversation, or why there is none (after the engine's own retries)."""

    text: Optional[str]
    error: Optional[str] = None
    http_attempts: int = 1  # requests sent for this conversation (openai engine)

    @property
    def ok(self) -> bool:
        """True when there is answer text."""
        return self.text is not None


class ChatEngine(Protocol):
    """Answers a batch of conversations; one reply per conversation, in order."""

    def complete(self, conversations: Sequence[Conversation]) -> List[ChatReply]:
        """Send every conversation; never raises for one failed request."""
        ...


def image_part(frame: np.ndarray, fmt: str = "JPEG") -> Dict[str, Any]:
    """An ``image_url`` content part holding a uint8 ``[H, W, 3]`` frame as a base64 data URL."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(frame)).save(buf, format=fmt, quality=90)
    mime = "image/jpeg" if fmt.upper() == "JPEG" else f"image/{fmt.lower()}"
    url = f"data:{mime};base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    return {"type": "image_url", "image_url": {"url": url}}


def user_turn(text: str, frames: Sequence[np.ndarray]) -> Message:
    """A user message: the frames first (as image parts), then the text."""
    return {"role": "user", "content": [image_part(f) for f in frames] + [{"type": "text", "text": text}]}


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


class OpenAIChat:
    """Client of an OpenAI-compatible ``/chat/completions`` endpoint (httpx), ``cfg.concurrency`` requests at once.

    Timeouts, connection errors, HTTP 429 and 5xx are retried ``cfg.http_retries`` times with exponential backoff;
    other HTTP errors and bodies without ``choices[0].message.content`` are returned as failed replies.
    """

    def __init__(self, cfg: VLMEngineConfig) -> None:
        self.cfg = cfg
        self.endpoint = cfg.base_url.rstrip("/") + "/chat/completions"
        self.headers: Dict[str, str] = {}
        if cfg.api_key_env:
            key = os.environ.get(cfg.api_key_env)
            if not key:
                raise ChatEngineError(f"vlm.api_key_env names {cfg.api_key_env!r}, which is not set in the "
                                      "environment (export it, or set vlm.api_key_env=null for an open endpoint)")
            self.headers["Authorization"] = f"Bearer {key}"

    def complete(self, conversations: Sequence[Conversation]) -> List[ChatReply]:
        """One request per conversation, ``cfg.concurrency`` in flight."""
        import httpx

        with httpx.Client(timeout=self.cfg.timeout_s, headers=self.headers) as client:
            if len(conversations) <= 1 or self.cfg.concurrency == 1:
                return [self._one(client, c) for c in conversations]
            with ThreadPoolExecutor(max_workers=min(self.cfg.concurrency, len(conversations))) as pool:
                return list(pool.map(lambda c: self._one(client, c), conversations))

    def _one(self, client: Any, conversation: Conversation) -> ChatReply:
        import httpx

        body = {"model": self.cfg.model, "messages": conversation, "temperature": self.cfg.temperature,
                "max_tokens": self.cfg.max_tokens}
        error, tries = "", 1 + self.cfg.http_retries
        for attempt in range(tries):
            if attempt:
                time.sleep(self.cfg.retry_backoff_s * 2 ** (attempt - 1))
            try:
                resp = client.post(self.endpoint, json=body)
            except httpx.TimeoutException:
                error = f"{self.endpoint}: no answer within {self.cfg.timeout_s:g} s"
                continue
            except httpx.TransportError as e:
                error = f"{self.endpoint}: {type(e).__name__}: {e}"
                continue
            if resp.status_code != 200:
                error = f"{self.endpoint}: HTTP {resp.status_code}: {resp.text[:200]}"
                if _retryable(resp.status_code):
                    continue
                return ChatReply(None, error, attempt + 1)
            return _content(resp, self.endpoint, attempt + 1)
        return ChatReply(None, f"{error} (after {tries} tries)", tries)


def _content(resp: Any, endpoint: str, attempts: int) -> ChatReply:
    """``choices[0].message.content`` of a 200 response, or a failed reply saying what the body lacked."""
    try:
        text = resp.json()["choices"][0]["message"]["content"]
    except (ValueError, KeyError, IndexError, TypeError) as e:
        return ChatReply(None, f"{endpoint}: response body has no choices[0].message.content ({type(e).__name__}: "
                               f"{e}): {resp.text[:200]!r}", attempts)
    if not isinstance(text, str):
        return ChatReply(None, f"{endpoint}: choices[0].message.content is {type(text).__name__}, not text", attempts)
    return ChatReply(text, None, attempts)


class VLLMChat:
    """vLLM's offline engine (``vllm.LLM.chat``): one batched generate per call. Needs CUDA and the vllm package."""

    def __init__(self, cfg: VLMEngineConfig, max_images: int = 1, seed: int = 0) -> None:
        try:
            import vllm
        except ImportError as e:
            raise ChatEngineError("vlm.engine=vllm needs the vllm package on the node running the actor "
                                  "(pip install 'viva[vllm]' there, or give vlm.runtime_env its pins); "
                                  "or use vlm.engine=openai with a served endpoint") from e
        self.llm = vllm.LLM(model=cfg.model, tensor_parallel_size=cfg.tensor_parallel_size,
                            max_model_len=cfg.max_model_len, limit_mm_per_prompt={"image": max_images}, seed=seed)
        # No per-request seed: a retried conversation must be able to get a different answer.
        self.params = vllm.SamplingParams(temperature=cfg.temperature, max_tokens=cfg.max_tokens)

    def complete(self, conversations: Sequence[Conversation]) -> List[ChatReply]:
        """Generate every answer in one batch; an empty generation is a failed reply."""
        outputs = self.llm.chat(list(conversations), self.params, use_tqdm=False)
        replies = []
        for out in outputs:
            text = out.outputs[0].text if out.outputs else ""
            replies.append(ChatReply(text, None) if text.strip() else ChatReply(None, "vllm: empty generation"))
        return replies


def build_engine(cfg: VLMEngineConfig, max_images: int = 1, seed: int = 0) -> ChatEngine:
    """The engine ``cfg.engine`` names (built where it runs: in the actor that owns it)."""
    if cfg.engine == "vllm":
        return VLLMChat(cfg, max_images=max_images, seed=seed)
    return OpenAIChat(cfg)
