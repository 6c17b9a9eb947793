"""`viva data pairs` on Ray with the tiny random-weight models on the real clips, end to end: every stage on its own
fractional-CPU actors, then the pair manifest loads in `viva sft` and one SFT step runs on it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.data.fake_vlm_server import FakeVLM
from tests.data.test_pairs import KEEP, ROOT, pairs_config, tiny  # noqa: F401 -- module-scoped fixture
from viva.data.pairs import run_pairs

pytestmark = pytest.mark.integration


def test_pairs_on_ray_then_one_sft_step(ray_cluster, tiny, videos, tmp_path, capsys):
    from viva.sft.recipe import main as sft_main

    lines = []
    with FakeVLM(default=lambda key: KEEP) as fake:
        cfg = pairs_config(tiny, fake.base_url, "pairs.add_pairs=false", "pairs.detect.num_actors=2")
        report = run_pairs(cfg, videos, tmp_path / "pairs", local=False, progress=lines.append)
    assert (report.kept, report.pairs) == (4, 4) and [r.ran for r in report.stages] == [4] * 5
    assert any(line.startswith("pairs/inpaint: 4/4 kept") for line in lines)
    rc = sft_main(["--config", str(ROOT / "configs/sft/toy.yaml"), f"output_dir={tmp_path}/sft",
                   "data.source=manifest", f"data.manifest={report.manifest}", "sft.image_prob=0", "sft.steps=1",
                   "sft.batch_size=2", "data.num_frames=4", "data.height=32", "data.width=32", "sft.warmup_steps=0",
                   "sft.checkpoint_every=0", "sft.log_every=1", "logging.wandb=false", "logging.progress=false"])
    assert rc == 0 and "viva sft: 1 steps" in capsys.readouterr().out
    result = json.loads((tmp_path / "sft" / "result.json").read_text())
    assert np.isfinite(result["final_loss"]) and result["skipped_samples"] == 0
    assert (Path(result["base_checkpoint"]) / "config.json").is_file()
