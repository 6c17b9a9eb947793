"""`viva data triplets` on Ray: two fractional-CPU actors share the videos; the manifest is the same as a local run."""

from __future__ import annotations

import json

import pytest

from tests.data.fake_vlm_server import FakeVLM, Status
from tests.data.conftest import CLIPS
from tests.data.test_triplets import _cfg, keys  # noqa: F401 -- module-scoped fixture
from viva.data.triplets import run_triplets

pytestmark = pytest.mark.integration


def test_triplets_on_two_actors(ray_cluster, videos, keys, tmp_path):
    manifest = tmp_path / "manifest.jsonl"
    lines = []
    with FakeVLM() as fake:
        fake.script(keys["bikes"], [Status(503), "garbage", '{"t_src": "b", "instruction": "Remove the bike.", '
                                                            '"t_edit": "an empty road"}'])
        cfg = _cfg(fake, "triplets.num_actors=2", "triplets.batch_size=1", "triplets.num_cpus=0.25",
                   "triplets.max_attempts=3", "cluster.log_to_driver=false")
        report = run_triplets(cfg, videos, manifest, local=False, progress=lines.append)
    assert (report.written, report.rejected) == (4, 0) and len(lines) == 4 and "4/4 videos" in lines[-1]
    rows = {json.loads(x)["id"]: json.loads(x) for x in manifest.read_text().splitlines()}
    assert sorted(rows) == sorted(CLIPS) and rows["bikes"]["instruction"] == "Remove the bike."
    assert fake.count(keys["bikes"]) == 3  # 503 (retried by the engine), malformed (retried by the worker), good
