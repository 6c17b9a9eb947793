"""build_dataset: toy world (deterministic, split rules) and manifest sources."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from viva.config import ConfigError, DataConfig
from viva.data.dataset import build_dataset
from viva.data.manifest import ManifestDataset, write_manifest
from viva.data.toyworld import ToyWorld


def test_toyworld_dataset_is_deterministic() -> None:
    cfg = DataConfig(epoch_size=10, seed=5)
    a, b = build_dataset(cfg), build_dataset(cfg)
    assert len(a) == 10
    types = set()
    for i in range(10):
        assert np.array_equal(a[i].target_video, b[i].target_video) and a[i].sample_id == b[i].sample_id
        types.add(a[i].edit_type)
    assert types <= set(cfg.edit_types) and len(types) > 1
    with pytest.raises(IndexError):
        a[10]


def test_splits() -> None:
    cfg = DataConfig(epoch_size=4)
    assert {build_dataset(cfg, "hybrid")[i].edit_type for i in range(4)} == {"hybrid"}
    assert build_dataset(cfg, "heldout")[0].sample_id.startswith("toy-heldout")
    with pytest.raises(ConfigError, match="hybrid"):
        build_dataset(DataConfig(edit_types=["add", "hybrid"]), "train")
    with pytest.raises(ConfigError, match="split"):
        build_dataset(cfg, "test")


def test_manifest_source(tmp_path: Path) -> None:
    path = write_manifest([ToyWorld().sample(i) for i in range(3)], tmp_path)
    ds = build_dataset(DataConfig(source="manifest", manifest=str(path)))
    assert isinstance(ds, ManifestDataset) and len(ds) == 3
    with pytest.raises(ConfigError, match="data.manifest"):
        build_dataset(DataConfig(source="manifest"))


def test_data_config_validation() -> None:
    with pytest.raises(ConfigError, match="sty1e"):
        DataConfig(edit_types=["add", "sty1e"])
    with pytest.raises(ConfigError, match="data.source"):
        DataConfig(source="s3")
