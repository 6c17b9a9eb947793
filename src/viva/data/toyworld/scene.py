"""Toy-world scenes: frozen specs of moving flat shapes on a background, a vectorised renderer and captions.

Coordinates are resolution-free: positions are fractions of the frame (x right, y down), sizes are fractions of
min(H, W), and ``velocity`` is the displacement over the whole clip, so frame t of F sits at
``start + velocity * t / max(F - 1, 1)``. A 1-frame render is therefore frame 0 of any longer render.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from typing import Tuple

import numpy as np

# Well separated in RGB: every pair of palette colours is >= 100 apart, every colour >= 60 from every background
# pixel (tests/data/test_toyworld.py checks both), so the oracle's colour tolerance cannot confuse them.
PALETTE = {
    "red": (230, 30, 30),
    "green": (30, 200, 60),
    "blue": (30, 60, 230),
    "yellow": (240, 230, 30),
    "purple": (160, 40, 220),
    "orange": (255, 130, 0),
    "white": (250, 250, 250),
    "cyan": (30, 220, 230),
}
SHAPES = ("circle", "square", "triangle", "diamond")
# Vertical gradients: (top colour, bottom colour).
BACKGROUNDS = {
    "day": ((120, 170, 230), (190, 215, 245)),
    "night": ((10, 10, 40), (35, 30, 70)),
    "sunset": ((250, 150, 80), (120, 60, 110)),
    "grass": ((70, 120, 40), (35, 80, 25)),
}
BACKGROUND_PHRASES = {"day": "a daytime sky", "night": "a night sky", "sunset": "a sunset sky", "grass": "grass"}
# 1: add / reference put the new object at a random place the instruction did not state; 2: the instruction names
# its grid position (data/toyworld/edits.py ADD_POSITIONS). Both are readable: a scene pair records its version.
TOYWORLD_VERSION = 2
BACKGROUND_ID = -1  # value of the id map where no object is visible


@dataclass(frozen=True)
class ToyObject:
    """One flat shape moving on a straight line; ``oid`` identifies it across the source and target scenes."""

    shape: str  # one of SHAPES
    color: str  # a PALETTE name
    size: float  # radius as a fraction of min(H, W)
    start: Tuple[float, float]  # (x, y) at frame 0, fractions of the frame
    velocity: Tuple[float, float]  # (dx, dy) over the whole clip
    oid: int = 0

    @property
    def name(self) -> str:
        """What captions and instructions call it, e.g. ``red circle``."""
        return f"{self.color} {self.shape}"

    @property
    def a_name(self) -> str:
        """The name with its indefinite article, e.g. ``an orange circle``."""
        return f"{'an' if self.color[0] in 'aeiou' else 'a'} {self.name}"


@dataclass(frozen=True)
class Scene:
    """A background and objects in drawing order (later objects are drawn on top)."""

    background: str  # a BACKGROUNDS name
    objects: Tuple[ToyObject, ...] = ()

    def to_dict(self) -> dict:
        """Plain JSON-able dict."""
        return {"background": self.background, "objects": [asdict(o) for o in self.objects]}

    @staticmethod
    def from_dict(d: dict) -> "Scene":
        """Inverse of ``to_dict``."""
        objs = tuple(
            ToyObject(o["shape"], o["color"], float(o["size"]), tuple(o["start"]), tuple(o["velocity"]),
                      int(o["oid"]))
            for o in d["objects"]
        )
        return Scene(d["background"], objs)

    def find(self, oid: int) -> ToyObject | None:
        """The object with this id, or None."""
        return next((o for o in self.objects if o.oid == oid), None)


def scene_pair_json(source: Scene, target: Scene, style: str | None = None) -> str:
    """Canonical JSON of a (source, target[, style]) pair: what ``EditSample.scene_json`` holds."""
    d = {"source": source.to_dict(), "target": target.to_dict(), "style": style, "version": TOYWORLD_VERSION}
    return json.dumps(d, sort_keys=True, separators=(",", ":"))


def parse_scene_json(text: str) -> tuple[Scene, Scene, str | None]:
    """Inverse of ``scene_pair_json``; reads every version up to ``TOYWORLD_VERSION`` (no key = version 1)."""
    d = json.loads(text)
    version = d.get("version", 1)
    if not isinstance(version, int) or not 1 <= version <= TOYWORLD_VERSION:
        raise ValueError(f"scene JSON of toy world version {version!r}; this viva reads versions 1..{TOYWORLD_VERSION}"
                         " (upgrade viva, or regenerate the data with `viva toyworld`)")
    return Scene.from_dict(d["source"]), Scene.from_dict(d["target"]), d.get("style")


def _shape_masks(obj: ToyObject, num_frames: int, h: int, w: int) -> np.ndarray:
    """Boolean footprint of one object in every frame."""
    t = np.arange(num_frames, dtype=np.float32) / max(num_frames - 1, 1)  # [F]
    cx = (obj.start[0] + obj.velocity[0] * t) * w  # [F] pixels
    cy = (obj.start[1] + obj.velocity[1] * t) * h
    r = obj.size * min(h, w)
    dx = (np.arange(w, dtype=np.float32) + 0.5)[None, None, :] - cx[:, None, None]  # [F, 1, W]
    dy = (np.arange(h, dtype=np.float32) + 0.5)[None, :, None] - cy[:, None, None]  # [F, H, 1]
    if obj.shape == "circle":
        m = dx * dx + dy * dy <= r * r
    elif obj.shape == "square":
        m = (np.abs(dx) <= 0.85 * r) & (np.abs(dy) <= 0.85 * r)
    elif obj.shape == "triangle":  # apex up, base at cy + r, half-width r at the base
        m = (dy >= -r) & (dy <= r) & (np.abs(dx) <= 0.5 * (dy + r))
    elif obj.shape == "diamond":
        m = np.abs(dx) + np.abs(dy) <= r
    else:
        raise ValueError(f"unknown shape {obj.shape!r}; expected one of {SHAPES}")
    return m  # [F, H, W]


def render_ids(scene: Scene, num_frames: int, h: int, w: int) -> np.ndarray:
    """Which object is visible at each pixel: int32 ``[F, H, W]``, ``oid`` or BACKGROUND_ID."""
    ids = np.full((num_frames, h, w), BACKGROUND_ID, dtype=np.int32)  # [F, H, W]
    for obj in scene.objects:  # drawing order: later on top
        ids[_shape_masks(obj, num_frames, h, w)] = obj.oid
    return ids


def background_image(name: str, h: int, w: int) -> np.ndarray:
    """The background gradient, uint8 ``[H, W, 3]``."""
    if name not in BACKGROUNDS:
        raise ValueError(f"unknown background {name!r}; expected one of {sorted(BACKGROUNDS)}")
    top, bottom = (np.asarray(c, dtype=np.float32) for c in BACKGROUNDS[name])
    a = np.linspace(0.0, 1.0, h, dtype=np.float32)[:, None]  # [H, 1]
    col = np.rint(top * (1 - a) + bottom * a).astype(np.uint8)  # [H, 3]
    return np.broadcast_to(col[:, None, :], (h, w, 3))


def paint(scene: Scene, ids: np.ndarray) -> np.ndarray:
    """Colour an id map (from ``render_ids``) with the scene's palette and background: uint8 ``[F, H, W, 3]``."""
    f, h, w = ids.shape
    video = np.empty((f, h, w, 3), dtype=np.uint8)  # [F, H, W, 3]
    video[:] = background_image(scene.background, h, w)
    for obj in scene.objects:
        video[ids == obj.oid] = PALETTE[obj.color]
    return video


def render(scene: Scene, num_frames: int, h: int, w: int) -> np.ndarray:
    """Render a scene: uint8 ``[F, H, W, 3]``."""
    return paint(scene, render_ids(scene, num_frames, h, w))


def caption(scene: Scene) -> str:
    """E.g. ``a red circle and a blue square on grass``."""
    names = [o.a_name for o in scene.objects]
    where = BACKGROUND_PHRASES[scene.background]
    if not names:
        return f"an empty scene of {where}"
    objs = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"{objs} on {where}"
