"""The toy world: deterministic paired edits with exact ground truth (source, target, mask, captions, scenes).

Every sample is a pure function of (seed, split, index, edit_type, num_frames, height, width).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from viva.data.sample import EDIT_TYPES, EditSample
from viva.data.toyworld.edits import (
    ADD_POSITIONS, MAX_OBJECTS, OPS, SCENE_OPS, TEMPLATES, EditNotApplicable, SceneEdit, op_add, random_scene, touched_ids,
)
from viva.data.toyworld.oracle import oracle_score
from viva.data.toyworld.scene import (
    BACKGROUND_ID, PALETTE, Scene, ToyObject, caption, paint, render_ids, scene_pair_json,
)
from viva.data.toyworld.styles import STYLE_CAPTIONS, STYLE_INSTRUCTIONS, STYLES

SPLIT_CODES = {"train": 0, "heldout": 1, "hybrid": 2}
# What `sample(i)` draws from when no edit type is given. Hybrid edits never appear in train (SFT) pairs; style edits
# are image-only, so they are asked for explicitly (sample(i, "style") or image_pair).
SPLIT_EDIT_TYPES = {
    "train": ("add", "remove", "replace", "recolor", "background", "reference"),
    "heldout": ("add", "remove", "replace", "recolor", "background", "reference"),
    "hybrid": ("hybrid",),
}
REFERENCE_BACKGROUND = (128, 128, 128)
STYLE_MIN_CHANGE = 40.0  # RGB distance; at least half the pixels of a style pair move this far (oracle COLOR_TOL)
_MAX_TRIES = 32
_DRAW_STREAM = 1000  # rng stream of the edit-type draw, apart from the per-type streams 0..len(EDIT_TYPES)-1


@dataclass(frozen=True)
class ToyWorld:
    """Procedural paired-edit generator. Run ``viva toyworld --help`` to write one to disk."""

    seed: int = 0
    num_frames: int = 8
    height: int = 32
    width: int = 32
    split_name: str = "train"  # train | heldout | hybrid: separate random streams (see docs/toyworld.md)
    edit_types: Optional[Tuple[str, ...]] = None  # what sample(i) draws from; None = SPLIT_EDIT_TYPES[split_name]

    def __post_init__(self) -> None:
        if self.split_name not in SPLIT_CODES:
            raise ValueError(f"unknown toy-world split {self.split_name!r}; expected one of {sorted(SPLIT_CODES)}")
        if min(self.num_frames, self.height, self.width) < 1:
            raise ValueError(f"toy world needs positive sizes, got F={self.num_frames} H={self.height} W={self.width}")
        for t in self.edit_types or ():
            if t not in EDIT_TYPES:
                raise ValueError(f"unknown edit type {t!r}; expected one of {EDIT_TYPES}")

    def split(self, name: str) -> "ToyWorld":
        """The same world on another split: ``train`` | ``heldout`` | ``hybrid``."""
        return dataclasses.replace(self, split_name=name, edit_types=None)

    @property
    def draw_types(self) -> Tuple[str, ...]:
        """The edit types ``sample(i)`` draws from."""
        return tuple(self.edit_types or SPLIT_EDIT_TYPES[self.split_name])

    def _rng(self, index: int, stream: int) -> np.random.Generator:
        if index < 0:
            raise IndexError(f"toy-world index must be >= 0, got {index}")
        return np.random.default_rng([self.seed, SPLIT_CODES[self.split_name], index, stream])

    def sample(self, index: int, edit_type: str | None = None) -> EditSample:
        """The edit pair number ``index``; ``edit_type=None`` draws one of ``draw_types``."""
        if edit_type is None:
            types = self.draw_types
            edit_type = types[int(self._rng(index, _DRAW_STREAM).integers(len(types)))]
        if edit_type not in EDIT_TYPES:
            raise ValueError(f"unknown edit type {edit_type!r}; expected one of {EDIT_TYPES}")
        rng = self._rng(index, EDIT_TYPES.index(edit_type))
        sample_id = f"toy-{self.split_name}-s{self.seed}-{index:06d}-{edit_type}"
        for _ in range(_MAX_TRIES):  # a draw can be inapplicable or invisible; retry from the same stream
            try:
                if edit_type == "style":
                    return self._style_sample(rng, sample_id)
                out = self._edit_sample(rng, sample_id, edit_type)
                # Redraw invisible edits and ambiguous ones that the unedited source already satisfies (e.g. a red
                # square added over a red circle), so the oracle always separates source from target.
                if out.mask.any() and oracle_score(out.source_video, out).edit_accuracy < 1.0:
                    return out
            except EditNotApplicable:
                continue
        raise RuntimeError(f"{sample_id}: no applicable edit after {_MAX_TRIES} draws")  # unreachable in practice

    def image_pair(self, index: int, edit_type: str | None = None) -> EditSample:
        """Any edit as a 1-frame pair (SFT mixes images in as 1-frame videos)."""
        s = dataclasses.replace(self, num_frames=1).sample(index, edit_type)
        return s if edit_type == "style" else dataclasses.replace(s, sample_id=s.sample_id + "-img")

    def _edit_sample(self, rng: np.random.Generator, sample_id: str, edit_type: str) -> EditSample:
        reference = None
        if edit_type == "hybrid":
            source = random_scene(rng, 1, MAX_OBJECTS - 1)
            first, second = rng.choice(len(SCENE_OPS), size=2, replace=False)
            e1 = OPS[SCENE_OPS[first]](source, rng, frozenset())
            e2 = OPS[SCENE_OPS[second]](e1.target, rng, touched_ids(source, e1.target))
            edit = SceneEdit(e2.target, f"{e1.instruction} and {e2.instruction}")
        elif edit_type == "reference":
            source = random_scene(rng, 1, MAX_OBJECTS - 1)
            edit = op_add(source, rng, frozenset())
            where = next(w for w in ADD_POSITIONS if edit.instruction.endswith(w))
            options = TEMPLATES["reference"]
            edit = SceneEdit(edit.target, options[int(rng.integers(len(options)))].format(where=where))
            reference = reference_image(edit.target.objects[-1], self.height, self.width)
        else:
            hi = MAX_OBJECTS - 1 if edit_type == "add" else MAX_OBJECTS
            source = random_scene(rng, 1, hi)
            edit = OPS[edit_type](source, rng, frozenset())
        return self._pair(sample_id, edit_type, source, edit, reference)

    def _pair(self, sample_id: str, edit_type: str, source: Scene, edit: SceneEdit,
              reference: np.ndarray | None) -> EditSample:
        ids_src = render_ids(source, self.num_frames, self.height, self.width)  # [F, H, W]
        ids_tgt = render_ids(edit.target, self.num_frames, self.height, self.width)  # [F, H, W]
        touched = touched_ids(source, edit.target)
        mask = np.zeros(ids_src.shape, dtype=bool)  # [F, H, W]
        for oid in touched:  # BACKGROUND_ID (-1) stands for the background region
            mask |= (ids_src == oid) | (ids_tgt == oid)
        return EditSample(
            sample_id=sample_id,
            instruction=edit.instruction,
            source_caption=caption(source),
            edit_caption=caption(edit.target),
            source_video=paint(source, ids_src),
            target_video=paint(edit.target, ids_tgt),
            mask=mask.astype(np.float32),
            reference_image=reference,
            edit_type=edit_type,
            scene_json=scene_pair_json(source, edit.target),
        )

    def _style_sample(self, rng: np.random.Generator, sample_id: str) -> EditSample:
        source = random_scene(rng)
        style = sorted(STYLES)[int(rng.integers(len(STYLES)))]
        src = paint(source, render_ids(source, 1, self.height, self.width))  # [1, H, W, 3]
        tgt = STYLES[style](src)  # [1, H, W, 3]
        # A style that barely changes this image (grayscale of a night scene) makes an ambiguous pair: redraw.
        dist = np.linalg.norm(src.astype(np.float32) - tgt.astype(np.float32), axis=-1)  # [1, H, W]
        if (dist > STYLE_MIN_CHANGE).mean() < 0.5:
            raise EditNotApplicable(f"{style} barely changes this image")
        return EditSample(
            sample_id=sample_id,
            instruction=STYLE_INSTRUCTIONS[style],
            source_caption=caption(source),
            edit_caption=f"{caption(source)}, {STYLE_CAPTIONS[style]}",
            source_video=src,
            target_video=tgt,
            mask=np.ones(src.shape[:3], dtype=np.float32),
            edit_type="style",
            scene_json=scene_pair_json(source, source, style=style),
        )


def reference_image(obj: ToyObject, height: int, width: int) -> np.ndarray:
    """The object alone, centred, static and large, on a plain grey background: uint8 ``[H, W, 3]``."""
    shown = dataclasses.replace(obj, size=0.3, start=(0.5, 0.5), velocity=(0.0, 0.0))
    ids = render_ids(Scene("day", (shown,)), 1, height, width)[0]  # [H, W]
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = REFERENCE_BACKGROUND
    image[ids != BACKGROUND_ID] = PALETTE[obj.color]
    return image
