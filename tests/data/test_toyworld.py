"""Toy world: determinism, shapes, each edit op changes what it should and nothing else."""

from __future__ import annotations

import json

import numpy as np
import pytest

from viva.data.sample import EDIT_TYPES
from viva.data.toyworld import BACKGROUNDS, PALETTE, ToyWorld, caption, parse_scene_json, render
from viva.data.toyworld.scene import background_image

VIDEO_TYPES = [t for t in EDIT_TYPES if t != "style"]


def _same(a, b) -> bool:
    return (a.sample_id == b.sample_id and a.instruction == b.instruction and a.scene_json == b.scene_json
            and np.array_equal(a.source_video, b.source_video) and np.array_equal(a.target_video, b.target_video)
            and np.array_equal(a.mask, b.mask))


def test_palette_and_backgrounds_are_well_separated() -> None:
    cols = np.array(list(PALETTE.values()), dtype=np.float32)
    d = np.linalg.norm(cols[:, None] - cols[None], axis=-1) + np.eye(len(cols)) * 1e9
    assert d.min() >= 100
    for name in BACKGROUNDS:
        bg = background_image(name, 64, 1)[:, 0].astype(np.float32)  # [H, 3]
        assert np.linalg.norm(bg[:, None] - cols[None], axis=-1).min() >= 60, name


@pytest.mark.parametrize("edit_type", EDIT_TYPES)
def test_deterministic_and_seed_dependent(edit_type: str) -> None:
    a, b = ToyWorld(seed=3).sample(5, edit_type), ToyWorld(seed=3).sample(5, edit_type)
    assert _same(a, b)
    c = ToyWorld(seed=4).sample(5, edit_type)
    assert c.scene_json != a.scene_json


def test_draw_matches_explicit_type() -> None:
    w = ToyWorld(seed=1)
    for i in range(10):
        s = w.sample(i)
        assert s.edit_type in w.draw_types
        assert _same(s, w.sample(i, s.edit_type))


@pytest.mark.parametrize("edit_type", VIDEO_TYPES)
def test_shapes_and_mask_cover_every_change(edit_type: str) -> None:
    w = ToyWorld(seed=0, num_frames=8, height=32, width=40)
    for i in range(12):
        s = w.sample(i, edit_type)
        assert s.source_video.shape == (8, 32, 40, 3) and s.source_video.dtype == np.uint8
        assert s.mask.shape == (8, 32, 40) and s.mask.dtype == np.float32
        changed = (s.source_video != s.target_video).any(-1)
        assert changed.any(), s.sample_id
        assert not (changed & (s.mask == 0)).any(), f"{s.sample_id}: pixels change outside the mask"
        # the mask is the touched regions, not the whole frame (except background changes)
        if edit_type not in ("background", "hybrid"):
            assert s.mask.mean() < 0.6


def _scenes(s):
    src, tgt, style = parse_scene_json(s.scene_json)
    return src, tgt, style


def test_each_op_edits_the_scene_as_named() -> None:
    w = ToyWorld(seed=2)
    for i in range(8):
        src, tgt, _ = _scenes(w.sample(i, "add"))
        assert len(tgt.objects) == len(src.objects) + 1 and tgt.objects[:-1] == src.objects
        s = w.sample(i, "remove")
        src, tgt, _ = _scenes(s)
        assert len(tgt.objects) == len(src.objects) - 1
        gone = [o for o in src.objects if o not in tgt.objects]
        assert len(gone) == 1 and gone[0].name in s.instruction
        src, tgt, _ = _scenes(w.sample(i, "recolor"))
        diff = [(a, b) for a, b in zip(src.objects, tgt.objects) if a != b]
        assert len(diff) == 1 and diff[0][0].color != diff[0][1].color and diff[0][0].shape == diff[0][1].shape
        src, tgt, _ = _scenes(w.sample(i, "replace"))
        diff = [(a, b) for a, b in zip(src.objects, tgt.objects) if a != b]
        assert len(diff) == 1 and diff[0][0].shape != diff[0][1].shape and diff[0][0].start == diff[0][1].start
        src, tgt, _ = _scenes(w.sample(i, "background"))
        assert src.background != tgt.background and src.objects == tgt.objects


def test_hybrid_is_two_ops() -> None:
    w = ToyWorld(seed=0).split("hybrid")
    for i in range(10):
        s = w.sample(i)
        assert s.edit_type == "hybrid" and " and " in s.instruction
        src, tgt, _ = _scenes(s)
        obj_changes = len({o.oid for o in src.objects} ^ {o.oid for o in tgt.objects})
        obj_changes += sum(1 for o in src.objects if tgt.find(o.oid) not in (None, o))
        bg_change = int(src.background != tgt.background)
        assert obj_changes + bg_change >= 2  # a replace counts as one id out and one in


def test_reference_edit_has_the_added_object_image() -> None:
    w = ToyWorld(seed=0)
    s = w.sample(4, "reference")
    assert s.reference_image is not None and s.reference_image.shape == (32, 32, 3)
    assert s.reference_image.dtype == np.uint8
    _, tgt, _ = _scenes(s)
    added = tgt.objects[-1]
    colours = {tuple(c) for c in s.reference_image.reshape(-1, 3)}
    assert tuple(PALETTE[added.color]) in colours
    assert "object" in s.instruction and added.name in s.edit_caption
    assert w.sample(4, "add").reference_image is None


def test_style_is_image_only_and_image_pairs() -> None:
    w = ToyWorld(seed=0)
    s = w.sample(0, "style")
    assert s.num_frames == 1 and s.mask.shape == (1, 32, 32) and s.mask.min() == 1.0
    assert not np.array_equal(s.source_video, s.target_video)
    assert _scenes(s)[2] is not None
    for t in VIDEO_TYPES:
        p = w.image_pair(3, t)
        assert p.num_frames == 1 and p.edit_type == t and p.sample_id.endswith("-img")
        # the 1-frame pair is frame 0 of the video pair when both draws pick the same scene
        v = w.sample(3, t)
        if v.scene_json == p.scene_json:
            assert np.array_equal(p.source_video[0], v.source_video[0])


def test_captions_and_instructions_mention_objects() -> None:
    w = ToyWorld(seed=0)
    for t in EDIT_TYPES:
        for i in range(5):
            s = w.sample(i, t)
            src, tgt, _ = _scenes(s)
            assert s.instruction.strip() and s.source_caption.strip() and s.edit_caption.strip()
            for o in src.objects:
                assert o.name in s.source_caption
            for o in tgt.objects:
                assert o.name in s.edit_caption or t == "style"
    assert caption(parse_scene_json(w.sample(0, "add").scene_json)[0]).count(" on ") == 1


def test_splits_are_disjoint_streams_and_train_has_no_hybrid() -> None:
    w = ToyWorld(seed=0)
    assert "hybrid" not in w.draw_types and "hybrid" not in w.split("heldout").draw_types
    train = {w.sample(i).scene_json for i in range(30)}
    held = {w.split("heldout").sample(i).scene_json for i in range(30)}
    assert not train & held
    assert json.loads(w.split("hybrid").sample(0).scene_json)["source"]
    with pytest.raises(ValueError, match="split"):
        w.split("nope")


def test_render_is_frame_consistent() -> None:
    src, _, _ = parse_scene_json(ToyWorld(seed=0).sample(0, "add").scene_json)
    v8 = render(src, 8, 32, 32)
    assert np.array_equal(render(src, 1, 32, 32)[0], v8[0])
    assert not np.array_equal(v8[0], v8[-1])  # objects move


@pytest.mark.parametrize("edit_type", ["add", "reference", "hybrid"])
def test_added_objects_are_fully_stated_by_the_instruction(edit_type: str) -> None:
    """Version 2: an added object sits, static and of size ADD_SIZE, at the grid cell its instruction names."""
    from viva.data.toyworld.edits import ADD_POSITIONS, ADD_SIZE
    from viva.data.toyworld.scene import parse_scene_json

    world = ToyWorld(seed=3)
    checked = 0
    for i in range(40):
        s = world.sample(i, edit_type)
        src, tgt, _ = parse_scene_json(s.scene_json)
        added = [o for o in tgt.objects if src.find(o.oid) is None and not any(
            p.start == o.start and p.velocity == o.velocity for p in src.objects)]  # replace keeps the trajectory
        if not added:
            continue
        (new,) = added
        named = [w for w in ADD_POSITIONS if w in s.instruction]  # "at the top" is inside "at the top left"
        assert named, s.instruction
        assert new.start == ADD_POSITIONS[max(named, key=len)] and new.velocity == (0.0, 0.0) and new.size == ADD_SIZE
        checked += 1
    assert checked >= 10


def test_scene_json_versions() -> None:
    """Version-1 scene JSON (no version key) still parses; a newer version is refused, naming it."""
    import json

    from viva.data.toyworld.scene import TOYWORLD_VERSION, parse_scene_json

    d = json.loads(ToyWorld(seed=0).sample(0, "recolor").scene_json)
    assert d["version"] == TOYWORLD_VERSION
    del d["version"]
    src, tgt, _ = parse_scene_json(json.dumps(d))
    assert src.objects and tgt.objects
    d["version"] = TOYWORLD_VERSION + 1
    with pytest.raises(ValueError, match=f"version {TOYWORLD_VERSION + 1}"):
        parse_scene_json(json.dumps(d))
