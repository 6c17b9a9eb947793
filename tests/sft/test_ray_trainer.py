"""2-worker data-parallel SFT on Ray Train (gloo on CPU) writes one base checkpoint that loads."""

import json

import numpy as np
import pytest

pytestmark = pytest.mark.integration


def test_two_worker_ray_train_run(sft_config, tmp_path):
    from viva.models.checkpoint import load_base_checkpoint
    from viva.sft.recipe import run

    cfg = sft_config("sft.num_workers=2", "sft.worker_num_cpus=0.5", "sft.steps=3", "cluster.num_cpus=2")
    result = run(cfg)
    assert result.steps == 3 and np.isfinite(result.final_loss)
    assert result.base_checkpoint == str(tmp_path / "base")
    dit = load_base_checkpoint(result.base_checkpoint)
    assert dit.num_parameters() > 0
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]  # only rank 0 logs
    assert (tmp_path / "checkpoints" / "latest").read_text() == "step_00000003"
