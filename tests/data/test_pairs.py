"""`viva data pairs` in one process: the registry, each real component (transformers Grounding DINO / SAM 2,
a diffusers inpainting pipeline, the VLM judge) with tiny random weights on a real clip, and the pipeline end to end
with resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.data.fake_vlm_server import FakeVLM, frames_key
from viva.config import ConfigError, StageSpec, load_config
from viva.data.clips import read_clip
from viva.data.manifest import ManifestDataset
from viva.data.pairs import run_pairs
from viva.data.pairs.components import PairCandidate, StageOptionsError
from viva.data.pairs.diffusers_inpaint import dilate
from viva.data.pairs.registry import ComponentError, build_component, register_component, unregister_component

ROOT = Path(__file__).resolve().parents[2]
SHAPE = (4, 4, 32, 32)  # frames, stride, height, width
KEEP = '{"keep": true, "score": 9, "reason": "clean"}'


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """Random-weight Grounding DINO, SAM 2 video and SD inpainting folders (read by the real loaders)."""
    from viva.data.pairs.tiny import write_tiny_models

    return write_tiny_models(tmp_path_factory.mktemp("tiny_models"))


def pairs_config(tiny, fake_url: str, *overrides: str):
    """configs/data/real.yaml pointed at the tiny models, 4 x 32 x 32 clips, the fake VLM judge, CPU."""
    f, s, h, w = SHAPE
    return load_config(str(ROOT / "configs/data/real.yaml"), [
        "device=cpu", "dtype=float32", f"prompt_dir={ROOT}/configs/data/prompts", f"vlm.base_url={fake_url}",
        "vlm.timeout_s=5", "vlm.http_retries=0", f"pairs.num_frames={f}", f"pairs.frame_stride={s}",
        f"pairs.height={h}", f"pairs.width={w}", f"pairs.detect.model={tiny.detect}",
        f"pairs.track.model={tiny.track}", f"pairs.inpaint.model={tiny.inpaint}",
        "pairs.inpaint.options.num_inference_steps=2", "pairs.inpaint.options.batch_size=4",
        "pairs.max_mask_area=0.99", "pairs.min_mask_area=0.0001", "pairs.qc.options.max_attempts=2",
        "pairs.detect.num_gpus=0", "pairs.track.num_gpus=0", "pairs.inpaint.num_gpus=0", *overrides])


def qc_key(video: Path) -> str:
    """The fake judge's key for a video's QC conversation (its first image is the clip's first frame)."""
    f, s, h, w = SHAPE
    return frames_key(read_clip(video, f, s, h, w))


def test_registry_names_what_is_known_and_refuses_doubles():
    cfg = load_config(None, [], recipe="data")
    with pytest.raises(ComponentError, match=r"unknown pairs.detect component 'yolo'.*grounding_dino"):
        build_component("detect", StageSpec("yolo"), cfg)
    with pytest.raises(ComponentError, match="already registered"):
        register_component("qc", "vlm", "x:y")
    register_component("qc", "always", lambda spec, cfg: ("built", spec.options))
    try:
        assert build_component("qc", StageSpec("always", options={"a": 1}), cfg) == ("built", {"a": 1})
        assert type(build_component("qc", StageSpec("viva.data.pairs.vlm_qc:AcceptAll"), cfg)).__name__ == "AcceptAll"
    finally:
        unregister_component("qc", "always")
    with pytest.raises(StageOptionsError, match=r"pairs.qc.options: unknown key\(s\) \['min_score'\]"):
        build_component("qc", StageSpec("accept_all", options={"min_score": 3}), cfg)
    with pytest.raises(StageOptionsError, match="pairs.detect.model must name the weights"):
        build_component("detect", StageSpec("grounding_dino", None), cfg)


def test_each_component_on_a_real_clip(tiny, videos):
    cfg = pairs_config(tiny, "http://127.0.0.1:9/v1")
    frames = read_clip(videos / "bikes.mp4", 4, 4, 32, 32)
    det = build_component("detect", cfg.pairs.detect, cfg).detect(frames, cfg.pairs.queries)
    assert det is not None and det.label in cfg.pairs.queries and 0 <= det.score <= 1
    x0, y0, x1, y1 = det.box
    assert 0 <= x0 < x1 <= 32 and 0 <= y0 < y1 <= 32
    masks = build_component("track", cfg.pairs.track, cfg).track(frames, det)
    assert masks.shape == (4, 32, 32) and masks.dtype == np.float32 and set(np.unique(masks)) <= {0.0, 1.0}
    edited = build_component("inpaint", cfg.pairs.inpaint, cfg).inpaint(frames, masks, seed=3)
    outside = dilate(masks, 4) < 0.5
    assert edited.shape == frames.shape and np.array_equal(edited[outside], frames[outside])
    assert dilate(np.pad(np.ones((1, 1, 1), np.float32), ((0, 0), (3, 3), (3, 3))), 1).sum() == 9


def test_vlm_quality_check_retries_and_drops(tiny, videos):
    frames = read_clip(videos / "bikes.mp4", 4, 4, 32, 32)
    pair = PairCandidate("bikes", "bicycle", frames, frames[::-1].copy(), np.zeros((4, 32, 32), np.float32))
    with FakeVLM() as fake:
        qc = build_component("qc", pairs_config(tiny, fake.base_url).pairs.qc, pairs_config(tiny, fake.base_url))
        key = frames_key(frames)
        fake.script(key, ["I think it is fine", KEEP])
        assert qc.check(pair).keep and fake.count(key) == 2
        user = fake.requests[-1][1]["messages"][1]["content"]
        assert len([p for p in user if p["type"] == "image_url"]) == 4 and "bicycle" in user[-1]["text"]
        fake.script(key, ['{"keep": true, "score": 5, "reason": "smear"}'])  # below min_score 7
        verdict = qc.check(pair)
        assert not verdict.keep and verdict.score == 5
        fake.script(key, ['{"keep": "yes"}'])
        verdict = qc.check(pair)
        assert not verdict.keep and "'keep' must be true or false" in verdict.reason and "2 tries" in verdict.reason


def test_pipeline_end_to_end_and_resume(tiny, videos, tmp_path):
    out, lines = tmp_path / "pairs", []
    with FakeVLM(default=lambda key: KEEP) as fake:
        fake.script(qc_key(videos / "bikes.mp4"), ['{"keep": false, "score": 2, "reason": "ghost of a bike"}'])
        report = run_pairs(pairs_config(tiny, fake.base_url), videos, out, local=True, progress=lines.append)
        assert (report.videos, report.kept, report.pairs) == (4, 3, 6)
        qc = report.stages[-1]
        assert qc.stage == "qc" and qc.drop_reasons == {"quality control: ghost of a bike": 1}
        samples = list(ManifestDataset(report.manifest).iter_valid())
        assert len(samples) == 6 and {s.edit_type for s in samples} == {"remove", "add"}
        remove = next(s for s in samples if s.sample_id == "bigbuckbunny-remove")
        assert remove.source_video.shape == (4, 32, 32, 3) and remove.mask.shape == (4, 32, 32)
        assert remove.instruction.startswith("Remove the ") and remove.edit_caption.startswith("a video without")
        add = next(s for s in samples if s.sample_id == "bigbuckbunny-add")
        assert np.array_equal(add.target_video, remove.source_video)  # the reverse pair
        assert json.loads((out / "report.json").read_text())["pairs"] == 6
        # rerun: every stage is done for every video; nothing runs, the manifest is the same
        before, requests = report.manifest.read_text(), len(fake.requests)
        lines.clear()
        again = run_pairs(pairs_config(tiny, fake.base_url), videos, out, local=True, progress=lines.append)
        assert all(r.ran == 0 for r in again.stages) and len(fake.requests) == requests
        assert report.manifest.read_text() == before and len(lines) == 5  # one summary line per stage
        # a lost QC status (as after a crash mid-stage) reruns QC for that video only
        (out / "work" / "qc" / "bikes.json").unlink()
        fake.script(qc_key(videos / "bikes.mp4"), [KEEP])
        third = run_pairs(pairs_config(tiny, fake.base_url), videos, out, local=True, progress=None)
        assert [r.ran for r in third.stages] == [0, 0, 0, 0, 1] and third.pairs == 8
    # the work folder belongs to its settings: other ones are refused, naming what changed
    with pytest.raises(ConfigError, match=r"other settings \(pairs.height: 32 -> 64"):
        run_pairs(pairs_config(tiny, "http://127.0.0.1:9/v1", "pairs.height=64"), videos, out, local=True)
