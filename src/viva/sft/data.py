"""SFT pair data: video pairs and image pairs (1-frame videos) mixed by probability, bucketed so batches stack.

A batch is a pure function of ``(seed, rank, step)``: resuming at step k replays exactly the batches a run that never
stopped would have seen, and data-parallel ranks draw disjoint random streams. Every batch comes from one modality
(video or image, VIVA §3.2: video 0.4 / image 0.6) and one bucket ``(F, H, W, has reference)``. A sample that fails to load is
reported with its id, counted, and skipped.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Protocol, Sequence, Tuple

import numpy as np

from viva.data.sample import EditSample

log = logging.getLogger(__name__)

MASK_DIFF_THRESHOLD = 8  # uint8 levels; a pair without a stored mask gets M = |target − source| > this
BucketKey = Tuple[int, int, int, bool]  # (F, H, W, has reference image)


class PairSource(Protocol):
    """Indexable paired edits (source, target, mask, instruction); raises on a bad sample."""

    name: str

    def __len__(self) -> int:
        """Number of addressable pairs."""
        ...

    def get(self, index: int) -> EditSample:
        """The pair at ``index``; raises (e.g. ``SampleError``) when it cannot be loaded."""
        ...


@dataclass(frozen=True)
class PairBatch:
    """A stacked batch of pairs of one modality and one shape bucket."""

    sample_ids: Tuple[str, ...]
    edit_types: Tuple[str, ...]
    instructions: Tuple[str, ...]
    source: np.ndarray  # [B, F, H, W, 3] uint8
    target: np.ndarray  # [B, F, H, W, 3] uint8
    mask: np.ndarray  # [B, F, H, W] float32 in [0, 1]
    references: Tuple[Optional[np.ndarray], ...]  # each [H, W, 3] uint8 or None
    modality: str  # video | image

    @property
    def batch_size(self) -> int:
        """Pairs in the batch."""
        return int(self.source.shape[0])


@dataclass
class SkipLog:
    """Counts and ids of samples that failed to load (each reported once)."""

    count: int = 0
    ids: List[str] = field(default_factory=list)
    max_ids: int = 100

    def record(self, source: str, index: int, error: Exception) -> None:
        """Report one bad sample with its id and the reason; keep a bounded list of ids."""
        sample_id = getattr(error, "sample_id", None) or f"{source}[{index}]"
        self.count += 1
        if len(self.ids) < self.max_ids:
            self.ids.append(str(sample_id))
        log.warning("skipping bad sample %s: %s", sample_id, error)


def edit_mask(sample: EditSample) -> np.ndarray:
    """The sample's edit mask ``[F, H, W]`` float32; derived from the pixel difference when none is stored."""
    if sample.mask is not None:
        return np.clip(sample.mask.astype(np.float32), 0.0, 1.0)
    if sample.target_video is None:
        raise ValueError(f"sample {sample.sample_id}: an SFT pair needs a target_video")
    diff = np.abs(sample.target_video.astype(np.int16) - sample.source_video.astype(np.int16)).max(axis=-1)
    return (diff > MASK_DIFF_THRESHOLD).astype(np.float32)


def bucket_key(sample: EditSample) -> BucketKey:
    """Pairs stack when frames, height, width and the presence of a reference image agree."""
    f, h, w = sample.source_video.shape[:3]
    return int(f), int(h), int(w), sample.reference_image is not None


def stack_pairs(samples: Sequence[EditSample], modality: str) -> PairBatch:
    """Stack same-shape pairs into a :class:`PairBatch`."""
    shapes = {bucket_key(s) for s in samples}
    if len(shapes) != 1:
        raise ValueError(f"cannot stack pairs of shapes {sorted(shapes)}; bucket them first")
    for s in samples:
        if s.target_video is None:
            raise ValueError(f"sample {s.sample_id}: an SFT pair needs a target_video")
    return PairBatch(
        sample_ids=tuple(s.sample_id for s in samples),
        edit_types=tuple(s.edit_type for s in samples),
        instructions=tuple(s.instruction for s in samples),
        source=np.stack([s.source_video for s in samples]),  # [B, F, H, W, 3]
        target=np.stack([s.target_video for s in samples]),  # [B, F, H, W, 3]
        mask=np.stack([edit_mask(s) for s in samples]),  # [B, F, H, W]
        references=tuple(s.reference_image for s in samples),
        modality=modality,
    )


class MixedPairSampler:
    """Draws bucketed batches of video or image pairs; ``batch(step)`` depends only on (seed, rank, step)."""

    def __init__(self, video: Optional[PairSource], image: Optional[PairSource], image_prob: float,
                 batch_size: int, seed: int, rank: int = 0, curriculum: Optional[PairSource] = None,
                 curriculum_steps: int = 0) -> None:
        if video is None and image is None:
            raise ValueError("MixedPairSampler needs a video or an image pair source")
        if not 0.0 <= image_prob <= 1.0:
            raise ValueError(f"image_prob must be in [0, 1], got {image_prob}")
        self.video, self.image = video, image
        self.image_prob = image_prob if image is not None else 0.0
        if video is None:
            self.image_prob = 1.0
        if curriculum_steps > 0 and curriculum is None:
            raise ValueError(f"curriculum_steps={curriculum_steps} needs a curriculum pair source")
        # Steps < curriculum_steps draw image pairs from ``curriculum`` only (a curriculum phase).
        self.curriculum, self.curriculum_steps = curriculum, int(curriculum_steps)
        self.batch_size, self.seed, self.rank = batch_size, seed, rank
        self.skipped = SkipLog()
        self.bucket_misses = 0
        self._keys: Dict[Tuple[str, int], Optional[BucketKey]] = {}  # (source, index) -> bucket; None = bad

    def modality(self, step: int) -> str:
        """Which modality step ``step`` draws (video or image), by the mixing probability (image in the curriculum)."""
        if step < self.curriculum_steps:
            return "image"
        u = np.random.default_rng([self.seed, self.rank, step, 0]).random()
        return "image" if u < self.image_prob else "video"

    def batch(self, step: int) -> PairBatch:
        """The batch for ``step``: one modality, one shape bucket, bad samples skipped and counted."""
        modality = self.modality(step)
        if step < self.curriculum_steps:
            source = self.curriculum
        else:
            source = self.image if modality == "image" else self.video
        assert source is not None
        rng = np.random.default_rng([self.seed, self.rank, step, 1])
        picked: List[EditSample] = []
        key: Optional[BucketKey] = None
        max_draws = 20 * self.batch_size + 20
        for _ in range(max_draws):
            sample = self._load(source, int(rng.integers(len(source))), key)
            if sample is None:
                continue
            key = key or bucket_key(sample)  # the first good sample fixes the bucket
            picked.append(sample)
            if len(picked) == self.batch_size:
                return stack_pairs(picked, modality)
        raise RuntimeError(
            f"step {step}: could not fill a batch of {self.batch_size} {modality} pairs from {source.name} in "
            f"{max_draws} draws ({self.skipped.count} bad samples so far, e.g. {self.skipped.ids[:5]}; "
            f"{self.bucket_misses} bucket misses)"
        )

    def _load(self, source: PairSource, index: int, key: Optional[BucketKey]) -> Optional[EditSample]:
        """Load one pair, or None when it is bad (reported once) or outside the batch's bucket."""
        cache_key = (source.name, index)
        if cache_key in self._keys:
            known = self._keys[cache_key]
            if known is None or (key is not None and known != key):
                self.bucket_misses += known is not None
                return None
        try:
            sample = source.get(index)
            edit_mask(sample)  # a pair without target fails here, not at stacking time
        except Exception as e:  # noqa: BLE001 -- any loader error marks the sample bad; it is reported with its id
            if cache_key not in self._keys:
                self.skipped.record(source.name, index, e)
            self._keys[cache_key] = None
            return None
        shape = bucket_key(sample)
        self._keys[cache_key] = shape
        if key is not None and shape != key:
            self.bucket_misses += 1
            return None
        return sample
