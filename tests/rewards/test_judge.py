"""The VLM judge client against a real OpenAI-compatible HTTP server on 127.0.0.1 (started by the test)."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import numpy as np
import pytest

from viva.rewards.judge import JudgeError, JudgeScores, VLMJudge


class _Handler(BaseHTTPRequestHandler):
    requests: list = []
    answer: str = ""
    status: int = 200

    def do_POST(self):  # noqa: N802 (http.server API)
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        type(self).requests.append({"path": self.path, "auth": self.headers.get("Authorization"), "body": body})
        payload = json.dumps({"choices": [{"message": {"role": "assistant", "content": type(self).answer}}]})
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(payload.encode())

    def log_message(self, *args):
        pass


@pytest.fixture
def server():
    _Handler.requests, _Handler.status = [], 200
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{srv.server_address[1]}"
    srv.shutdown()
    srv.server_close()


def _video(value):
    return np.full((6, 16, 16, 3), value, dtype=np.uint8)


def test_judge_round_trip(server):
    _Handler.answer = 'Sure. {"instruction_following": 7, "source_preservation": 9.5, "editing_quality": 8, ' \
                      '"subject_similarity": 6}'
    judge = VLMJudge(server + "/v1", "qwen-vl", api_key="k123", max_frames=3)
    ref = np.zeros((16, 16, 3), dtype=np.uint8)
    scores = judge.judge("s7", "make it red", _video(10), _video(200), ref)
    assert scores == JudgeScores(7.0, 9.5, 8.0, 6.0)
    req = _Handler.requests[-1]
    assert req["path"] == "/v1/chat/completions" and req["auth"] == "Bearer k123"
    assert req["body"]["model"] == "qwen-vl" and req["body"]["temperature"] == 0.0
    content = req["body"]["messages"][1]["content"]
    images = [c for c in content if c["type"] == "image_url"]
    assert len(images) == 3 + 3 + 1  # source frames, edited frames, reference
    assert images[0]["image_url"]["url"].startswith("data:image/png;base64,")
    assert "instruction_following" in req["body"]["messages"][0]["content"]


def test_no_reference_means_no_subject_score(server):
    _Handler.answer = '{"instruction_following": 3, "source_preservation": 4, "editing_quality": 5}'
    scores = VLMJudge(server, "m").judge("s1", "remove the cat", _video(0), _video(1))
    assert scores.subject_similarity is None and scores.editing_quality == 5.0


@pytest.mark.parametrize("answer,match", [("I cannot judge this.", "not a JSON object"),
                                          ('{"instruction_following": 11, "source_preservation": 4, '
                                           '"editing_quality": 5}', "instruction_following=11")])
def test_bad_answers_name_the_sample(server, answer, match):
    _Handler.answer = answer
    with pytest.raises(JudgeError, match=f"sample s9: .*{match}"):
        VLMJudge(server, "m").judge("s9", "x", _video(0), _video(1))


def test_http_error_names_the_sample(server):
    _Handler.status = 500
    _Handler.answer = "{}"
    with pytest.raises(JudgeError, match="sample s2: judge request"):
        VLMJudge(server, "m").judge("s2", "x", _video(0), _video(1))
