"""Behaviour pin for refactors: a fixed tiny ``--local`` Edit-GRPO run reproduces the recorded metrics.

The golden file was written by this test before the grpo/ package move (issue 12) and must still match after it:
every logged number except wall-clock timings. A deliberate algorithm change regenerates it with
``VIVA_REGEN_GOLDEN=1 python -m pytest tests/grpo/test_golden_metrics.py`` and says so in its commit.
"""

import json
import math
import os
from pathlib import Path

import pytest

from tests.rollout.grpo_fixtures import tiny_grpo_config
from viva.grpo.driver import run

GOLDEN = Path(__file__).parent / "golden_local_metrics.json"
TIMING = ("time/", "busy/", "samples_per_s")


def _pinned(rows: list) -> list:
    return [{k: v for k, v in r.items() if not k.startswith(TIMING)} for r in rows]


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        if a is None or b is None:
            return a is b
        return (math.isnan(a) and math.isnan(b)) or math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def test_local_grpo_run_reproduces_the_golden_metrics(tmp_path):
    cfg = tiny_grpo_config(tmp_path, "grpo.eval_every=2", "grpo.eval_prompts=2",
                           "eval_data={source: toyworld, seed: 5, split: hybrid}")
    run_dir = run(cfg, local=True, progress=False)
    rows = _pinned([json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()])
    if os.environ.get("VIVA_REGEN_GOLDEN") == "1":
        GOLDEN.write_text(json.dumps(rows, indent=1) + "\n")
        pytest.skip(f"regenerated {GOLDEN.name}")
    golden = json.loads(GOLDEN.read_text())
    assert len(rows) == len(golden)
    for got, want in zip(rows, golden):
        assert set(got) == set(want), f"metric keys changed at {want.get('kind')} step {want.get('step')}"
        diff = {k: (got[k], want[k]) for k in want if not _same(got[k], want[k])}
        assert not diff, f"{want.get('kind')} step {want.get('step')}: {diff}"
