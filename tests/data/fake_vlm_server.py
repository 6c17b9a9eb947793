"""A local OpenAI-compatible ``/v1/chat/completions`` server in a thread, scripted per request image (tests only).

Each conversation is keyed by a digest of its first ``image_url``; ``script(key, [...])`` gives the answers that key
gets, in order (the last one repeats). An answer is answer text, ``Status(code)``, ``Sleep(seconds, then)`` or
``RawBody(bytes)``. Unscripted keys get ``default(key)``.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Dict, List, Union

import numpy as np

from viva.data.clips import read_keyframes
from viva.data.vlm_chat import image_part


@dataclass(frozen=True)
class Status:
    """Answer with this HTTP status and an error body."""

    code: int


@dataclass(frozen=True)
class Sleep:
    """Wait ``seconds`` (past the client's timeout), then answer ``then``."""

    seconds: float
    then: Any


@dataclass(frozen=True)
class RawBody:
    """Answer 200 with this body (e.g. not JSON, or JSON without choices)."""

    body: bytes


Answer = Union[str, Status, Sleep, RawBody]


def image_key(url: str) -> str:
    """Digest of an image data URL."""
    return hashlib.sha1(url.encode("ascii")).hexdigest()[:16]


def video_key(path, num_frames: int = 1, max_side: int = 512) -> str:
    """The key of the conversation the triplet worker sends for this video (same keyframes, same encoding)."""
    frames = read_keyframes(path, num_frames, max_side)
    return image_key(image_part(frames[0])["image_url"]["url"])


def frames_key(frames: np.ndarray) -> str:
    """The key of a conversation whose first image is ``frames[0]``."""
    return image_key(image_part(frames[0])["image_url"]["url"])


def triplet_text(name: str) -> str:
    """A well-formed triplet answer mentioning ``name``."""
    return json.dumps({"t_src": f"a video of {name}", "instruction": f"Add a red balloon next to the {name}.",
                       "t_edit": f"a video of {name} with a red balloon"})


class FakeVLM:
    """The server; use as a context manager. ``requests`` records (key, body) of every request received."""

    def __init__(self, default: Callable[[str], Answer] = lambda key: triplet_text(key)) -> None:
        self.default = default
        self.scripts: Dict[str, List[Answer]] = {}
        self.requests: List[tuple] = []
        self.headers: List[dict] = []
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>/v1``."""
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def script(self, key: str, answers: List[Answer]) -> None:
        """Answers for conversations with this key, in order (the last repeats)."""
        self.scripts[key] = list(answers)

    def count(self, key: str) -> int:
        """Requests received for ``key``."""
        return sum(1 for k, _ in self.requests if k == key)

    def __enter__(self) -> "FakeVLM":
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _next(self, key: str) -> Answer:
        with self.lock:
            n = self.count(key)
            answers = self.scripts.get(key)
        if not answers:
            return self.default(key)
        return answers[min(n - 1, len(answers) - 1)]

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def do_POST(self) -> None:  # noqa: N802 -- http.server's name
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                key = _first_image_key(body)
                with fake.lock:
                    fake.requests.append((key, body))
                    fake.headers.append(dict(self.headers))
                self._answer(fake._next(key))

            def _answer(self, answer: Answer) -> None:
                if isinstance(answer, Sleep):
                    time.sleep(answer.seconds)
                    answer = answer.then
                if isinstance(answer, Status):
                    return self._send(answer.code, json.dumps({"error": {"message": "scripted"}}).encode())
                if isinstance(answer, RawBody):
                    return self._send(200, answer.body)
                reply = {"id": "x", "object": "chat.completion", "choices": [
                    {"index": 0, "message": {"role": "assistant", "content": answer}, "finish_reason": "stop"}]}
                self._send(200, json.dumps(reply).encode())

            def _send(self, code: int, data: bytes) -> None:
                try:
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):  # the client gave up (timeout tests)
                    pass

        return Handler


def _first_image_key(body: dict) -> str:
    for message in body.get("messages", []):
        content = message.get("content")
        if isinstance(content, list):
            for part in content:
                if part.get("type") == "image_url":
                    return image_key(part["image_url"]["url"])
    return "no-image"
