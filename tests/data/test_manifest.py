"""JSONL manifests: write/read round trip, validation, bad samples skipped into the rejects file, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from viva.data.manifest import ManifestDataset, ManifestError, SampleError, read_manifest, write_manifest
from viva.data.toyworld import ToyWorld, oracle_score
from viva.data.toyworld.cli import main as toyworld_main


def _samples() -> list:
    w = ToyWorld(seed=0)
    return [w.sample(0, "add"), w.sample(1, "reference"), w.sample(2, "style"), w.image_pair(3, "recolor"),
            w.split("hybrid").sample(0)]


def _assert_equal(a, b) -> None:
    assert (a.sample_id, a.instruction, a.source_caption, a.edit_caption, a.edit_type) == \
           (b.sample_id, b.instruction, b.source_caption, b.edit_caption, b.edit_type)
    assert np.array_equal(a.source_video, b.source_video) and np.array_equal(a.target_video, b.target_video)
    assert np.array_equal(a.mask, b.mask) and a.mask.dtype == b.mask.dtype
    assert (a.reference_image is None) == (b.reference_image is None)
    if a.reference_image is not None:
        assert np.array_equal(a.reference_image, b.reference_image)
    assert json.loads(a.scene_json) == json.loads(b.scene_json) and a.scene_json == b.scene_json


def test_round_trip_equals_in_memory_samples(tmp_path: Path) -> None:
    samples = _samples()
    path = write_manifest(samples, tmp_path)
    ds = ManifestDataset(path)
    assert len(ds) == len(samples)
    for i, s in enumerate(samples):
        _assert_equal(ds[i], s)
    assert oracle_score(ds[0].target_video, ds[0]).total > 0.99  # scene JSON survives for the oracle


def _rewrite(path: Path, i: int, **changes) -> None:
    lines = path.read_text().splitlines()
    rec = json.loads(lines[i])
    rec.update(changes)
    lines[i] = json.dumps(rec)
    path.write_text("\n".join(lines) + "\n")


def test_bad_samples_raise_and_are_skipped_into_rejects(tmp_path: Path) -> None:
    samples = _samples()
    path = write_manifest(samples, tmp_path)
    (tmp_path / json.loads(path.read_text().splitlines()[0])["target"]).write_bytes(b"garbage" * 20)
    (tmp_path / json.loads(path.read_text().splitlines()[1])["source"]).unlink()
    _rewrite(path, 2, instruction="   ")
    rejects = tmp_path / "rejects.jsonl"
    ds = ManifestDataset(path, rejects_file=rejects)
    for i in range(3):
        with pytest.raises(SampleError) as err:
            ds[i]
        assert err.value.sample_id == samples[i].sample_id and samples[i].sample_id in str(err.value)
    good = list(ds.iter_valid())
    assert [s.sample_id for s in good] == [s.sample_id for s in samples[3:]]
    assert ds.num_rejected == 3
    rows = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert [r["id"] for r in rows] == [s.sample_id for s in samples[:3]]
    assert "empty instruction" in rows[2]["reason"]


def test_manifest_validation_names_line_and_key(tmp_path: Path) -> None:
    path = write_manifest(_samples()[:2], tmp_path)
    lines = path.read_text().splitlines()
    rec = json.loads(lines[1])
    del rec["instruction"]
    cases = [(json.dumps(rec), r"line 2: missing key 'instruction'"), ("{oops", "line 2: not valid JSON"),
             (lines[0], "line 2: duplicate id")]
    for bad_line, message in cases:
        path.write_text(lines[0] + "\n" + bad_line + "\n")
        with pytest.raises(ManifestError, match=message):
            read_manifest(path)  # strict: the first bad line is an error
        ds = ManifestDataset(path)  # a dataset rejects the line when it is loaded instead
        with pytest.raises(SampleError, match=message):
            ds[1]
    with pytest.raises(ManifestError, match="not found"):
        ManifestDataset(tmp_path / "none.jsonl")
    path.write_text("{oops\n[1, 2]\n")
    with pytest.raises(ManifestError, match="no usable line.*line 1: not valid JSON"):
        ManifestDataset(path)


def test_corrupt_manifest_line_is_rejected_and_the_stream_continues(tmp_path: Path) -> None:
    from viva.config import DataConfig
    from viva.data.dataset import build_dataset
    from viva.grpo.prompts import PromptStream

    samples = _samples()
    path = write_manifest(samples, tmp_path)
    lines = path.read_text().splitlines()
    lines[1] = lines[1][: len(lines[1]) // 2]  # a line cut in half (e.g. a copy interrupted mid-write)
    path.write_text("\n".join(lines) + "\n")
    rejects = tmp_path / "rejects.jsonl"
    ds = build_dataset(DataConfig(source="manifest", manifest=str(path)))
    stream = PromptStream(ds, seed=0, rejects_file=str(rejects))
    got = stream.take(len(samples) - 1)  # every good sample of the epoch, the bad line skipped
    assert sorted(s.sample_id for s in got) == sorted(s.sample_id for i, s in enumerate(samples) if i != 1)
    rows = [json.loads(x) for x in rejects.read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["sample_id"] == "line:2" and "not valid JSON" in rows[0]["reason"]


def test_cli_writes_a_readable_dataset(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert toyworld_main(["--out", str(tmp_path), "--num", "4", "--split", "heldout", "--seed", "2"]) == 0
    ds = ManifestDataset(tmp_path / "manifest.jsonl")
    assert len(ds) == 4
    ref = ToyWorld(seed=2).split("heldout")
    for i in range(4):
        _assert_equal(ds[i], ref.sample(i))
    assert toyworld_main(["--out", str(tmp_path / "h"), "--num", "2", "--edit-types", "hybrid"]) == 2
    assert toyworld_main(["--out", str(tmp_path / "s"), "--num", "2", "--edit-types", "style"]) == 0
    assert ManifestDataset(tmp_path / "s" / "manifest.jsonl")[1].num_frames == 1
    with pytest.raises(SystemExit) as e:
        toyworld_main(["--help"])
    assert e.value.code == 0 and "--split" in capsys.readouterr().out
