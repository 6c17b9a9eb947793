"""Scene-level edit operations of the toy world: each maps a source scene to a target scene and an instruction.

Ops never touch an object listed in ``frozen`` (the ids a previous op of a hybrid edit already changed), and keep
object names unique inside a scene so instructions such as "remove the red circle" are unambiguous.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable, Dict, FrozenSet

import numpy as np

from viva.data.toyworld.scene import BACKGROUNDS, PALETTE, SHAPES, Scene, ToyObject

MAX_OBJECTS = 3
# Added objects (add, reference, and the add half of a hybrid) are fully determined by the instruction: static, of
# size ADD_SIZE, centred on the named cell of a 3 x 3 grid (toy world version 2; version 1 drew them at random).
ADD_SIZE = 0.14
ADD_POSITIONS: Dict[str, tuple[float, float]] = {
    "at the top left": (0.25, 0.25), "at the top": (0.5, 0.25), "at the top right": (0.75, 0.25),
    "on the left": (0.25, 0.5), "in the center": (0.5, 0.5), "on the right": (0.75, 0.5),
    "at the bottom left": (0.25, 0.75), "at the bottom": (0.5, 0.75), "at the bottom right": (0.75, 0.75),
}
SCENE_OPS = ("add", "remove", "replace", "recolor", "background")  # the ops a hybrid edit combines

TEMPLATES: Dict[str, tuple[str, ...]] = {
    "add": ("add {new} {where}", "put {new} {where}", "insert {new} {where}"),
    "remove": ("remove the {old}", "delete the {old}", "take out the {old}"),
    "replace": ("replace the {old} with {new}", "swap the {old} for {new}", "turn the {old} into {new}"),
    "recolor": ("make the {old} {color}", "change the color of the {old} to {color}", "paint the {old} {color}"),
    "background": ("change the background to {bg}", "set the scene at {bg}", "make the background {bg}"),
    "reference": ("add this object {where}", "add the object from the reference image {where}",
                  "insert this object {where}"),
}


class EditNotApplicable(ValueError):
    """The op cannot apply to this scene (e.g. remove from an empty scene)."""


@dataclass(frozen=True)
class SceneEdit:
    """The result of one op: the target scene and its instruction."""

    target: Scene
    instruction: str


def _names(scene: Scene) -> set[str]:
    return {o.name for o in scene.objects}


def random_object(rng: np.random.Generator, oid: int, taken: set[str]) -> ToyObject:
    """A new object with a name not in ``taken``, whose whole trajectory stays inside the frame."""
    choices = [(s, c) for s in SHAPES for c in PALETTE if f"{c} {s}" not in taken]
    shape, color = choices[int(rng.integers(len(choices)))]
    size = float(np.round(rng.uniform(0.10, 0.18), 4))
    lo, hi = size + 0.02, 1.0 - size - 0.02
    start = rng.uniform(lo, hi, size=2).round(4)
    end = np.clip(start + rng.uniform(-0.4, 0.4, size=2), lo, hi).round(4)
    vel = (end - start).round(4)
    return ToyObject(shape, color, size, (float(start[0]), float(start[1])), (float(vel[0]), float(vel[1])), oid)


def placed_object(rng: np.random.Generator, oid: int, taken: set[str]) -> tuple[ToyObject, str]:
    """A new static object (name not in ``taken``) at a named grid position; returns it and the position phrase."""
    choices = [(s, c) for s in SHAPES for c in PALETTE if f"{c} {s}" not in taken]
    shape, color = choices[int(rng.integers(len(choices)))]
    where = list(ADD_POSITIONS)[int(rng.integers(len(ADD_POSITIONS)))]
    return ToyObject(shape, color, ADD_SIZE, ADD_POSITIONS[where], (0.0, 0.0), oid), where


def random_scene(rng: np.random.Generator, min_objects: int = 1, max_objects: int = MAX_OBJECTS) -> Scene:
    """A random background with ``min_objects..max_objects`` objects (ids 0..n-1)."""
    bg = sorted(BACKGROUNDS)[int(rng.integers(len(BACKGROUNDS)))]
    objs: list[ToyObject] = []
    for oid in range(int(rng.integers(min_objects, max_objects + 1))):
        objs.append(random_object(rng, oid, {o.name for o in objs}))
    return Scene(bg, tuple(objs))


def _pick(rng: np.random.Generator, scene: Scene, frozen: FrozenSet[int]) -> ToyObject:
    free = [o for o in scene.objects if o.oid not in frozen]
    if not free:
        raise EditNotApplicable("no object left to edit")
    return free[int(rng.integers(len(free)))]


def _template(rng: np.random.Generator, op: str, **kw: str) -> str:
    options = TEMPLATES[op]
    return options[int(rng.integers(len(options)))].format(**kw)


def _next_oid(scene: Scene) -> int:
    return max((o.oid for o in scene.objects), default=-1) + 1


def op_add(scene: Scene, rng: np.random.Generator, frozen: FrozenSet[int]) -> SceneEdit:
    """Add a new static object on top, at the grid position the instruction names."""
    if len(scene.objects) >= MAX_OBJECTS:
        raise EditNotApplicable("scene is full")
    new, where = placed_object(rng, _next_oid(scene), _names(scene))
    instruction = _template(rng, "add", new=new.a_name, where=where)
    return SceneEdit(replace(scene, objects=scene.objects + (new,)), instruction)


def op_remove(scene: Scene, rng: np.random.Generator, frozen: FrozenSet[int]) -> SceneEdit:
    """Remove one object."""
    old = _pick(rng, scene, frozen)
    objs = tuple(o for o in scene.objects if o.oid != old.oid)
    return SceneEdit(replace(scene, objects=objs), _template(rng, "remove", old=old.name))


def op_replace(scene: Scene, rng: np.random.Generator, frozen: FrozenSet[int]) -> SceneEdit:
    """Replace one object by one of another shape and colour, on the same trajectory and depth."""
    old = _pick(rng, scene, frozen)
    taken = _names(scene)
    choices = [(s, c) for s in SHAPES for c in PALETTE
               if s != old.shape and c != old.color and f"{c} {s}" not in taken]
    shape, color = choices[int(rng.integers(len(choices)))]
    new = replace(old, shape=shape, color=color, oid=_next_oid(scene))
    objs = tuple(new if o.oid == old.oid else o for o in scene.objects)
    return SceneEdit(replace(scene, objects=objs), _template(rng, "replace", old=old.name, new=new.a_name))


def op_recolor(scene: Scene, rng: np.random.Generator, frozen: FrozenSet[int]) -> SceneEdit:
    """Give one object another colour."""
    old = _pick(rng, scene, frozen)
    taken = _names(scene)
    colors = [c for c in PALETTE if c != old.color and f"{c} {old.shape}" not in taken]
    new = replace(old, color=colors[int(rng.integers(len(colors)))])
    objs = tuple(new if o.oid == old.oid else o for o in scene.objects)
    return SceneEdit(replace(scene, objects=objs), _template(rng, "recolor", old=old.name, color=new.color))


def op_background(scene: Scene, rng: np.random.Generator, frozen: FrozenSet[int]) -> SceneEdit:
    """Change the background."""
    if -1 in frozen:
        raise EditNotApplicable("background already changed")
    others = [b for b in sorted(BACKGROUNDS) if b != scene.background]
    bg = others[int(rng.integers(len(others)))]
    return SceneEdit(replace(scene, background=bg), _template(rng, "background", bg=bg))


OPS: Dict[str, Callable[[Scene, np.random.Generator, FrozenSet[int]], SceneEdit]] = {
    "add": op_add, "remove": op_remove, "replace": op_replace, "recolor": op_recolor, "background": op_background,
}


def touched_ids(source: Scene, target: Scene) -> FrozenSet[int]:
    """Ids that differ between the scenes (-1 stands for the background)."""
    ids = {o.oid for o in source.objects} | {o.oid for o in target.objects}
    out = {i for i in ids if source.find(i) != target.find(i)}
    if source.background != target.background:
        out.add(-1)
    return frozenset(out)
