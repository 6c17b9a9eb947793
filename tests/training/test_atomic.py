"""Atomic files and directories: a failed or killed write leaves the old content whole and no temp file behind."""

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from viva.training.atomic import atomic_dir, atomic_path, atomic_write_bytes, atomic_write_text, recover


def _hidden(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_replaces_and_leaves_no_temp_file(tmp_path):
    target = tmp_path / "sub" / "summary.md"
    atomic_write_text(target, "old")
    assert atomic_write_text(target, "néw") == target
    assert target.read_text(encoding="utf-8") == "néw" and _hidden(target.parent) == []


def test_files_and_directories_get_the_permissions_of_a_plain_write(tmp_path):
    umask = os.umask(0o022)
    try:
        file = atomic_write_text(tmp_path / "a.json", "{}")
        with atomic_dir(tmp_path / "ckpt") as tmp:
            (tmp / "x").write_text("1")
    finally:
        os.umask(umask)
    assert file.stat().st_mode & 0o777 == 0o644 and (tmp_path / "ckpt").stat().st_mode & 0o777 == 0o755


def test_safetensors_written_through_atomic_writes_are_readable_by_others(tmp_path):
    """safetensors' save_file leaves an owner-only (0600) file; a checkpoint another user serves must be 0644."""
    import torch
    from safetensors.torch import save_file

    umask = os.umask(0o022)
    try:
        with atomic_path(tmp_path / "w.safetensors") as tmp:
            save_file({"a": torch.zeros(2)}, str(tmp))
        with atomic_dir(tmp_path / "base") as tmp:
            (tmp / "sub").mkdir()
            save_file({"a": torch.zeros(2)}, str(tmp / "sub" / "dit.safetensors"))
    finally:
        os.umask(umask)
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "base" / "sub" / "dit.safetensors").stat().st_mode & 0o777 == 0o644


def test_error_mid_write_keeps_the_old_file_and_removes_the_temp_file(tmp_path):
    target = tmp_path / "state.json"
    atomic_write_bytes(target, b"old")
    with pytest.raises(RuntimeError, match="crash"):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half of the n")
            raise RuntimeError("crash")
    assert target.read_bytes() == b"old" and _hidden(tmp_path) == []


def test_atomic_path_keeps_the_suffix_writers_look_at(tmp_path):
    target = tmp_path / "mask.npz"
    with atomic_path(target) as tmp:
        assert tmp.suffix == ".npz" and tmp.parent == tmp_path
        np.savez_compressed(tmp, mask=np.ones(3))  # np.savez appends .npz unless the name already ends with it
    with np.load(target) as z:
        assert z["mask"].tolist() == [1.0, 1.0, 1.0]
    assert _hidden(tmp_path) == []


def test_atomic_dir_replaces_a_whole_directory_or_nothing(tmp_path):
    target = tmp_path / "step_1"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
        (tmp / "b").write_text("1")
    with pytest.raises(ValueError):
        with atomic_dir(target) as tmp:
            (tmp / "a").write_text("2")
            raise ValueError("bad tensor")
    assert {p.name: p.read_text() for p in target.iterdir()} == {"a": "1", "b": "1"}
    with atomic_dir(target) as tmp:
        (tmp / "c").write_text("3")
    assert [p.name for p in target.iterdir()] == ["c"] and _hidden(tmp_path) == []


def test_recover_restores_a_directory_moved_aside_and_drops_temp_files(tmp_path):
    (tmp_path / ".step_2.old").mkdir()  # killed after moving step_2 aside, before renaming its new copy in
    (tmp_path / ".step_2.old" / "state.json").write_text("2")
    (tmp_path / ".step_3.tmp-abc").mkdir()  # a half-written directory
    (tmp_path / ".latest.tmp-xyz").write_text("step_3")  # a half-written file
    (tmp_path / "step_1").mkdir()
    (tmp_path / ".step_1.old").mkdir()  # killed after the new step_1 was in, before the old copy was deleted
    recover(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_1", "step_2"]
    assert (tmp_path / "step_2" / "state.json").read_text() == "2"


_WRITER = """
import sys
from viva.training.atomic import atomic_write_bytes
path, size = sys.argv[1], int(sys.argv[2])
n = 0
while True:
    n += 1
    atomic_write_bytes(path, bytes([n % 251]) * size)
    print(n, flush=True)
"""


def test_kill_9_mid_write_leaves_a_whole_file(tmp_path):
    target, size, rng = tmp_path / "blob.bin", 1 << 20, random.Random(0)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2] / "src")}
    for _ in range(8):
        proc = subprocess.Popen([sys.executable, "-c", _WRITER, str(target), str(size)], stdout=subprocess.PIPE,
                                env=env)
        assert proc.stdout.readline()  # one write completed
        time.sleep(rng.uniform(0.0, 0.02))
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        data = target.read_bytes()
        assert len(data) == size and data == data[:1] * size  # one whole version, never a mix
        recover(tmp_path)
        assert _hidden(tmp_path) == []
