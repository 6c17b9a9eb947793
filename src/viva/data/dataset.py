"""Sequence-like datasets of EditSamples built from a DataConfig: the toy world or a JSONL manifest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from viva.config import ConfigError, DataConfig
from viva.data.clips import ClipManifestDataset
from viva.data.manifest import ManifestDataset
from viva.data.sample import EditSample
from viva.data.toyworld.world import SPLIT_CODES, ToyWorld


class EditDataset(Protocol):
    """What recipes consume: a length and random access."""

    def __len__(self) -> int: ...

    def __getitem__(self, i: int) -> EditSample: ...


@dataclass(frozen=True)
class ToyWorldDataset:
    """``size`` toy-world samples; item i is ``world.sample(i)`` (its edit type drawn from ``world.draw_types``)."""

    world: ToyWorld
    size: int

    def __len__(self) -> int:
        return self.size

    def __getitem__(self, i: int) -> EditSample:
        if not -self.size <= i < self.size:
            raise IndexError(f"index {i} out of range for a toy-world dataset of {self.size}")
        return self.world.sample(i % self.size)


def build_dataset(cfg: DataConfig, split: str = "train") -> EditDataset:
    """The dataset a recipe trains or evaluates on. For a manifest the file is the split; ``split`` is ignored."""
    if cfg.source == "manifest":
        if not cfg.manifest:
            raise ConfigError("data.manifest must be set when data.source=manifest")
        if cfg.fit_clip:  # real videos: every source cut and resized to the configured clip
            return ClipManifestDataset(cfg.manifest, cfg.num_frames, cfg.frame_stride, cfg.height, cfg.width)
        return ManifestDataset(cfg.manifest, rejects_file=cfg.rejects_file)
    if cfg.source != "toyworld":
        raise ConfigError(f"data.source must be toyworld | manifest, got {cfg.source!r}")
    if split not in SPLIT_CODES:
        raise ConfigError(f"toy-world split must be one of {sorted(SPLIT_CODES)}, got {split!r}")
    types = ("hybrid",) if split == "hybrid" else tuple(cfg.edit_types)
    if split == "train" and "hybrid" in types:
        raise ConfigError("data.edit_types: hybrid edits are held out of the train split (use split='hybrid')")
    if not types:
        raise ConfigError("data.edit_types is empty")
    world = ToyWorld(cfg.seed, cfg.num_frames, cfg.height, cfg.width, split_name=split, edit_types=types)
    return ToyWorldDataset(world, cfg.epoch_size)
