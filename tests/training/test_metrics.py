"""The shared metrics sink: JSON rows with nulls for non-finite numbers, fresh vs resumed runs, torn last rows."""

import json

import numpy as np

from viva.config import LoggingConfig
from viva.training.metrics import MetricsSink

OFF = LoggingConfig(wandb=False)


def _rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_rows_are_json_with_nulls_for_non_finite_numbers(tmp_path):
    sink = MetricsSink(tmp_path, OFF, {}, "test")
    row = sink.log(3, {"loss": np.float32(0.5), "kl": float("nan"), "per_prompt": [1.0, float("inf")]})
    assert row == {"step": 3, "loss": 0.5, "kl": None, "per_prompt": [1.0, None]}
    assert _rows(sink.path) == [row]


def test_a_fresh_run_starts_empty_a_resumed_one_appends_and_rewinds(tmp_path):
    MetricsSink(tmp_path, OFF, {}, "test").log(1, {"loss": 1.0})
    resumed = MetricsSink(tmp_path, OFF, {}, "test", resume=True)
    resumed.log(2, {"loss": 2.0})
    with open(resumed.path, "a") as f:
        f.write('{"step": 3, "lo')  # a row cut short by a kill -9
    assert [r["step"] for r in resumed.read()] == [1, 2]
    resumed.rewrite(resumed.read()[:1])
    assert [r["step"] for r in _rows(resumed.path)] == [1]
    MetricsSink(tmp_path, OFF, {}, "test")
    assert not (tmp_path / "metrics.jsonl").exists()
