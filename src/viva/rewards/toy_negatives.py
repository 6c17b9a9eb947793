"""Hard negatives of toy-world edits, each with its exact oracle score: what the toy reward models learn to rank.

For one edit (an ``EditSample`` with ``scene_json``) :func:`candidates` renders ``K`` candidate edited videos:
the target, the unedited source, a partly applied edit (a subset of the touched elements taken from the target:
for a hybrid, e.g. only one of its two ops), the edit's op applied to the wrong object, and graded corruptions that
look like a weak editor's samples (blends of source and target, blur, washed-out colours, per-pixel or blocky
Gaussian noise, pixel noise around grey) or PickScore's classic degradations (``toy_degrade``). Every candidate gets
``oracle_score(video, sample, soft).total`` (``soft=True``: the oracle without its flat regions, so blends that
are still short of the edit are ranked by how far they got) and, where it is a clean render of a scene, that
scene's caption (a hard-negative caption for the contrastive loss). Deterministic given ``rng``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np
import torch

from viva.data.sample import EditSample
from viva.rewards.toy_degrade import KINDS, degrade

NUM_CANDIDATES = 12


@dataclass(frozen=True)
class Candidates:
    """``K`` candidate edits of one sample: videos ``[K, F, H, W, 3]`` uint8, oracle ``[K]``, captions."""

    videos: np.ndarray  # [K, F, H, W, 3]
    oracle: np.ndarray  # [K] float64
    captions: List[Optional[str]]  # scene caption of a clean render, else None
    kinds: List[str]


def _blur(video: np.ndarray, passes: int) -> np.ndarray:
    x = video.astype(np.float32)  # [F, H, W, 3]
    for _ in range(passes):  # separable [1, 2, 1] / 4, edges replicated
        x = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
        x = 0.25 * x[:, :-2] + 0.5 * x[:, 1:-1] + 0.25 * x[:, 2:]
        x = 0.25 * x[:, :, :-2] + 0.5 * x[:, :, 1:-1] + 0.25 * x[:, :, 2:]
    return x


def _u8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x), 0, 255).astype(np.uint8)


def weak_edit(source: np.ndarray, target: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A weak editor's sample: a blend α·target + (1−α)·source (α often 0 or 1), blurred 0–3 passes, washed out
    towards its mean, plus Gaussian noise of σ up to 100 drawn per pixel or per 2x2 / 4x4 block (SDE rollouts of a
    weak base end as pixel noise over a faint edit; patch-2 DiTs leave blocky artefacts)."""
    alpha = float(np.clip(rng.uniform(-0.3, 1.3), 0.0, 1.0))
    x = _blur(alpha * target.astype(np.float32) + (1 - alpha) * source.astype(np.float32), int(rng.integers(4)))
    mean = x.mean(axis=(1, 2), keepdims=True)  # [F, 1, 1, 3]
    x = mean + rng.uniform(0.6, 1.0) * (x - mean)
    f, h, w, c = x.shape
    cell = int(rng.choice([1, 2, 4]))
    noise = rng.normal(0.0, 100.0 * rng.uniform() ** 2, size=(f, -(-h // cell), -(-w // cell), c))
    noise = np.repeat(np.repeat(noise, cell, axis=1), cell, axis=2)[:, :h, :w]  # [F, H, W, 3]
    return _u8(x + noise)


def _mixed_scene(sample: EditSample, rng: np.random.Generator):
    """A scene with a random non-empty proper subset of the touched elements edited (None if only one is)."""
    from viva.data.toyworld.edits import touched_ids
    from viva.data.toyworld.scene import Scene, parse_scene_json

    src, tgt, _ = parse_scene_json(sample.scene_json)
    touched = sorted(touched_ids(src, tgt))
    if len(touched) < 2:
        return None
    keep = set(t for t in touched if rng.random() < 0.5)
    if not keep or len(keep) == len(touched):
        keep = {touched[int(rng.integers(len(touched)))]}
    objects = []
    order = [o.oid for o in tgt.objects] + [o.oid for o in src.objects if tgt.find(o.oid) is None]
    for oid in order:
        obj = tgt.find(oid) if oid in keep or oid not in touched else src.find(oid)
        if obj is not None:
            objects.append(obj)
    background = tgt.background if -1 in keep else src.background
    return Scene(background, tuple(objects))


def _wrong_object_scene(sample: EditSample, rng: np.random.Generator):
    """The source with an edit of one of the edit's op kinds applied to an element the edit does not touch."""
    from viva.data.toyworld.edits import OPS, SCENE_OPS, EditNotApplicable, touched_ids
    from viva.data.toyworld.scene import parse_scene_json

    src, tgt, _ = parse_scene_json(sample.scene_json)
    kinds = [sample.edit_type] if sample.edit_type in OPS else list(SCENE_OPS)
    for op in rng.permutation(kinds + list(SCENE_OPS)):
        try:
            return OPS[str(op)](src, rng, touched_ids(src, tgt)).target
        except EditNotApplicable:
            continue
    return None


def candidates(sample: EditSample, rng: np.random.Generator, soft: bool = False) -> Candidates:
    """The ``NUM_CANDIDATES`` candidates of one edit (see the module docstring)."""
    from viva.data.toyworld import oracle_score
    from viva.data.toyworld.scene import caption, render

    src, tgt = sample.source_video, sample.target_video  # [F, H, W, 3] each
    f, h, w = src.shape[:3]
    videos: List[np.ndarray] = [tgt, src]
    caps: List[Optional[str]] = [sample.edit_caption, sample.source_caption]
    kinds = ["target", "source"]
    for name, make in (("partial", _mixed_scene), ("wrong_object", _wrong_object_scene)):
        scene = make(sample, rng) if sample.scene_json is not None and sample.edit_type != "style" else None
        if scene is None:
            videos.append(weak_edit(src, tgt, rng))
            caps.append(None)
            kinds.append("weak")
        else:
            videos.append(render(scene, f, h, w))
            caps.append(caption(scene))
            kinds.append(name)
    rendered = [v for v, c in zip(videos[2:], caps[2:]) if c is not None]  # partial / wrong-object renders
    noisy = _u8(tgt.astype(np.float32) + rng.normal(0.0, rng.uniform(5.0, 60.0), size=tgt.shape))
    grey = _u8(rng.uniform(60, 200) + rng.normal(0.0, rng.uniform(10.0, 60.0), size=tgt.shape))
    kind = int(rng.integers(len(KINDS)))  # PickScore's classic degradations: blur / noise / block / banding
    degraded = degrade(torch.from_numpy(tgt), rng, kind=kind).numpy()  # [F, H, W, 3], one kind for all frames
    videos += [noisy, _u8(_blur(tgt, int(rng.integers(1, 4)))), grey, degraded]
    caps += [None] * 4
    kinds += ["noise", "blur", "grey_noise", KINDS[kind]]
    while len(videos) < NUM_CANDIDATES:  # weak versions of the target, or of a partial / wrong-object edit
        towards = tgt if not rendered or rng.random() < 0.5 else rendered[int(rng.integers(len(rendered)))]
        videos.append(weak_edit(src, towards, rng))
        caps.append(None)
        kinds.append("weak")
    oracle = np.array([oracle_score(v, sample, soft=soft).total for v in videos], dtype=np.float64)
    return Candidates(np.stack(videos), oracle, caps, kinds)
