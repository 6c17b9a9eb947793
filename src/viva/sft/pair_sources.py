"""Where SFT pairs come from: the procedural toy world (video pairs and 1-frame image pairs) or JSONL manifests.

Toy-world pairs cycle through the configured edit types by index, so every type is equally represented; ``hybrid``
is held out of SFT by design (it is the gap Edit-GRPO closes) and is rejected here.
"""

from __future__ import annotations

from typing import Optional, Sequence, Tuple

from viva.config import SFTConfig
from viva.data.sample import EditSample
from viva.sft.data import PairSource

HELD_OUT_TYPES = ("hybrid",)
TOY_INDEX_SPACE = 1 << 30  # toy-world pairs are procedural: any index is a new pair


class ToyVideoPairs:
    """Toy-world video pairs, cycling through ``edit_types`` by index."""

    def __init__(self, world, edit_types: Sequence[str], size: int = TOY_INDEX_SPACE, name: str = "toy-video"):
        _check_types(edit_types, name)
        self.world, self.edit_types, self.size, self.name = world, tuple(edit_types), int(size), name

    def __len__(self) -> int:
        """Addressable pairs."""
        return self.size

    def get(self, index: int) -> EditSample:
        """Video pair ``index`` with edit type ``edit_types[index % len]``."""
        return self.world.sample(index, edit_type=self.edit_types[index % len(self.edit_types)])


class ToyImagePairs:
    """Toy-world image pairs (1-frame videos), cycling through ``edit_types`` by index."""

    def __init__(self, world, edit_types: Sequence[str], size: int = TOY_INDEX_SPACE, name: str = "toy-image"):
        _check_types(edit_types, name)
        self.world, self.edit_types, self.size, self.name = world, tuple(edit_types), int(size), name

    def __len__(self) -> int:
        """Addressable pairs."""
        return self.size

    def get(self, index: int) -> EditSample:
        """Image pair ``index`` with edit type ``edit_types[index % len]``."""
        return self.world.image_pair(index, self.edit_types[index % len(self.edit_types)])


class ManifestPairs:
    """Pairs from a JSONL manifest + media files; a bad row raises ``SampleError`` naming its id."""

    def __init__(self, path: str, rejects_file: Optional[str] = None, name: Optional[str] = None) -> None:
        from viva.data.manifest import ManifestDataset

        self.dataset = ManifestDataset(path, rejects_file=rejects_file)
        self.name = name or f"manifest:{path}"

    def __len__(self) -> int:
        """Rows in the manifest."""
        return len(self.dataset)

    def get(self, index: int) -> EditSample:
        """Load row ``index`` (media decoded now)."""
        return self.dataset[index]


def _check_types(edit_types: Sequence[str], name: str) -> None:
    if not edit_types:
        raise ValueError(f"{name}: no edit types configured")
    held = sorted(set(edit_types) & set(HELD_OUT_TYPES))
    if held:
        raise ValueError(f"{name}: edit types {held} are held out of SFT (Edit-GRPO's generalisation target)")


def toy_world(cfg: SFTConfig, split: str = "train"):
    """The configured toy world on a split: ``train`` (SFT pairs) | ``heldout`` (eval prompts) | ``hybrid``."""
    from viva.data.toyworld import ToyWorld

    d = cfg.data
    return ToyWorld(seed=d.seed, num_frames=d.num_frames, height=d.height, width=d.width, split_name=split)


def build_curriculum_source(cfg: SFTConfig) -> Optional[PairSource]:
    """Image pairs of ``sft.curriculum_edit_types`` for the curriculum phase (None when the phase is off)."""
    d, s = cfg.data, cfg.sft
    if s.curriculum_steps <= 0:
        return None
    if d.source != "toyworld":
        raise ValueError("sft.curriculum_steps > 0 needs data.source=toyworld (a manifest has no edit-type split); "
                         f"got data.source={d.source!r}")
    return ToyImagePairs(toy_world(cfg), s.curriculum_edit_types, name="toy-image-curriculum")


def build_pair_sources(cfg: SFTConfig) -> Tuple[Optional[PairSource], Optional[PairSource]]:
    """(video pairs, image pairs) for the config; either may be None (image_prob 0 or no image manifest)."""
    d, s = cfg.data, cfg.sft
    if d.source == "toyworld":
        world = toy_world(cfg)
        video = ToyVideoPairs(world, d.edit_types) if s.image_prob < 1.0 else None
        image = ToyImagePairs(world, s.image_edit_types) if s.image_prob > 0.0 else None
        return video, image
    if d.source == "manifest":
        if not d.manifest:
            raise ValueError("data.source=manifest needs data.manifest (a JSONL path)")
        video = ManifestPairs(d.manifest, d.rejects_file) if s.image_prob < 1.0 else None
        image = None
        if s.image_prob > 0.0 and s.image_manifest:
            image = ManifestPairs(s.image_manifest, d.rejects_file)
        return video, image
    raise ValueError(f"data.source must be toyworld | manifest, got {d.source!r}")
