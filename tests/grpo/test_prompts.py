"""Prompt stream: deterministic epochs, resumable cursor, bad samples reported and skipped."""

import json

import numpy as np
import pytest

from viva.data.sample import EditSample
from viva.grpo.prompts import PromptStream


class _DS:
    def __init__(self, n, bad=()):
        self.n, self.bad = n, set(bad)

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        if i in self.bad:
            err = ValueError(f"sample s{i}: corrupt video")
            err.sample_id = f"s{i}"
            raise err
        return EditSample(sample_id=f"s{i}", instruction="add a red circle", source_caption="a", edit_caption="b",
                          source_video=np.zeros((1, 4, 4, 3), np.uint8))


def test_epochs_are_permutations_and_cursor_resumes():
    s = PromptStream(_DS(5), seed=3)
    first = [p.sample_id for p in s.take(5)]
    assert sorted(first) == [f"s{i}" for i in range(5)] and s.epoch == 1
    second = [p.sample_id for p in s.take(5)]
    assert sorted(second) == sorted(first) and second != first  # a new permutation each epoch
    t = PromptStream(_DS(5), seed=3)
    t.cursor = 5
    assert [p.sample_id for p in t.take(5)] == second


def test_bad_samples_are_skipped_into_rejects(tmp_path):
    rej = tmp_path / "rejects.jsonl"
    s = PromptStream(_DS(6, bad={2, 4}), seed=0, rejects_file=str(rej))
    got = [p.sample_id for p in s.take(4)]
    assert len(got) == 4 and not {"s2", "s4"} & set(got)
    rows = [json.loads(line) for line in rej.read_text().splitlines()]
    assert len(rows) == s.cursor - 4 >= 1  # every skipped index is reported exactly once
    assert {r["sample_id"] for r in rows} <= {"s2", "s4"} and all("corrupt" in r["reason"] for r in rows)


def test_all_bad_stops_with_error():
    s = PromptStream(_DS(3, bad={0, 1, 2}), seed=0, max_consecutive_rejects=5)
    with pytest.raises(RuntimeError, match="consecutive unusable"):
        s.take(1)
