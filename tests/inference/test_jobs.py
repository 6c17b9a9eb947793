"""The bounded job table and its server-owned directories."""

from __future__ import annotations

from pathlib import Path

import pytest

from viva.inference.jobs import JobStore, QueueFull


def test_queue_bound_and_generated_names(tmp_path: Path) -> None:
    store = JobStore(tmp_path / "jobs", max_active=2, max_finished=1)
    a, b = store.create(), store.create()
    assert a.id != b.id and len(a.id) == 32 and all(c in "0123456789abcdef" for c in a.id)
    assert store.dir(a.id).parent == (tmp_path / "jobs").resolve()
    with pytest.raises(QueueFull):
        store.create()
    store.update(a.id, state="done")
    c = store.create()  # a finished job frees its slot
    assert store.get(c.id).state == "queued"
    store.update(b.id, state="failed", error="boom")
    store.update(c.id, state="done")
    assert store.get(a.id) is None and not store.dir(a.id).exists()  # only max_finished are kept
    with pytest.raises(KeyError):
        store.dir("../etc")
    with pytest.raises(ValueError):
        store.write_file(c.id, "../../x", b"")


def test_progress_fraction(tmp_path: Path) -> None:
    store = JobStore(tmp_path, max_active=1)
    job = store.update(store.create().id, state="running", step=3, total_steps=4)
    assert job.progress == 0.75 and job.to_json()["progress"] == 0.75
    assert store.update(job.id, state="done").progress == 1.0
