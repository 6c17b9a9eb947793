"""Pair mixing by probability, bucketing so batches stack, skip + report of bad samples, stateless resume."""

import numpy as np
import pytest

from viva.data.sample import EditSample
from viva.sft.data import MixedPairSampler, edit_mask, stack_pairs


class SampleError(ValueError):
    """Stand-in for viva.data.manifest.SampleError: carries the sample id."""

    def __init__(self, sample_id, msg):
        super().__init__(f"sample {sample_id}: {msg}")
        self.sample_id = sample_id


def pair(sid, frames, h=8, w=8, ref=False, value=0):
    src = np.full((frames, h, w, 3), value, np.uint8)
    tgt = src.copy()
    tgt[:, :2, :2] = 255  # the edit
    return EditSample(sid, "make it white", "a", "b", src, tgt,
                      reference_image=np.zeros((h, w, 3), np.uint8) if ref else None)


class FakeSource:
    def __init__(self, name, n, frames, bad=(), shapes=None, refs=()):
        self.name, self.n, self.frames, self.bad, self.shapes, self.refs = name, n, frames, set(bad), shapes, set(refs)
        self.loads = 0

    def __len__(self):
        return self.n

    def get(self, i):
        self.loads += 1
        if i in self.bad:
            raise SampleError(f"{self.name}-{i}", "video file missing")
        h = self.shapes(i) if self.shapes else 8
        return pair(f"{self.name}-{i}", self.frames, h, h, ref=i in self.refs, value=i % 250)


def test_mixing_probability_is_respected():
    s = MixedPairSampler(FakeSource("v", 50, 4), FakeSource("i", 50, 1), 0.6, 2, seed=0)
    kinds = [s.modality(k) for k in range(2000)]
    assert abs(kinds.count("image") / 2000 - 0.6) < 0.04
    b = next(s.batch(k) for k in range(20) if s.modality(k) == "image")
    assert b.source.shape == (2, 1, 8, 8, 3) and b.modality == "image"
    b = next(s.batch(k) for k in range(20) if s.modality(k) == "video")
    assert b.source.shape == (2, 4, 8, 8, 3) and b.mask.shape == (2, 4, 8, 8)


def test_no_image_source_means_video_only_and_vice_versa():
    s = MixedPairSampler(FakeSource("v", 10, 4), None, 0.6, 2, seed=0)
    assert {s.modality(k) for k in range(100)} == {"video"}
    s = MixedPairSampler(None, FakeSource("i", 10, 1), 0.0, 2, seed=0)
    assert {s.modality(k) for k in range(100)} == {"image"}
    with pytest.raises(ValueError):
        MixedPairSampler(None, None, 0.5, 2, seed=0)


def test_curriculum_steps_draw_image_pairs_from_the_curriculum_source_only():
    video, image, focus = FakeSource("v", 50, 4), FakeSource("i", 50, 1), FakeSource("c", 50, 1)
    s = MixedPairSampler(video, image, 0.5, 2, seed=0, curriculum=focus, curriculum_steps=30)
    early = [s.batch(k) for k in range(30)]
    assert all(b.modality == "image" and all(i.startswith("c-") for i in b.sample_ids) for b in early)
    late = [s.batch(k) for k in range(30, 90)]
    assert not any(i.startswith("c-") for b in late for i in b.sample_ids)
    assert {b.modality for b in late} == {"image", "video"}  # the mix resumes after the phase
    with pytest.raises(ValueError, match="curriculum"):
        MixedPairSampler(video, image, 0.5, 2, seed=0, curriculum_steps=3)


def test_batches_are_a_pure_function_of_seed_rank_step():
    a = MixedPairSampler(FakeSource("v", 100, 2), FakeSource("i", 100, 1), 0.5, 3, seed=1)
    b = MixedPairSampler(FakeSource("v", 100, 2), FakeSource("i", 100, 1), 0.5, 3, seed=1)
    for k in [5, 0, 3]:  # any order: a resumed run replays the same batches
        assert a.batch(k).sample_ids == b.batch(k).sample_ids
    other_rank = MixedPairSampler(FakeSource("v", 100, 2), FakeSource("i", 100, 1), 0.5, 3, seed=1, rank=1)
    assert [other_rank.batch(k).sample_ids for k in range(4)] != [a.batch(k).sample_ids for k in range(4)]


def test_bucketing_stacks_only_same_shapes():
    # Mixed resolutions and reference / no reference in one manifest: each batch is one bucket.
    src = FakeSource("v", 40, 2, shapes=lambda i: 8 if i % 2 else 16, refs=range(0, 40, 3))
    s = MixedPairSampler(src, None, 0.0, 4, seed=0)
    for k in range(10):
        b = s.batch(k)
        assert b.source.shape[0] == 4
        assert len({r is None for r in b.references}) == 1
    assert s.bucket_misses > 0


def test_bad_samples_are_reported_with_id_counted_and_skipped(caplog):
    src = FakeSource("v", 10, 2, bad={1, 3, 5, 7})
    s = MixedPairSampler(src, None, 0.0, 4, seed=0)
    with caplog.at_level("WARNING"):
        batches = [s.batch(k) for k in range(6)]
    assert all(b.batch_size == 4 for b in batches)
    ids = {i for b in batches for i in b.sample_ids}
    assert not ids & {"v-1", "v-3", "v-5", "v-7"}
    assert s.skipped.count == len(set(s.skipped.ids)) <= 4  # each bad sample reported once
    assert s.skipped.count >= 1 and any("video file missing" in r.message for r in caplog.records)
    assert all(i.startswith("v-") for i in s.skipped.ids)


def test_all_bad_fails_with_a_clear_message():
    s = MixedPairSampler(FakeSource("v", 3, 2, bad={0, 1, 2}), None, 0.0, 2, seed=0)
    with pytest.raises(RuntimeError, match="3 bad samples"):
        s.batch(0)


def test_edit_mask_from_sample_or_pixel_difference():
    p = pair("x", 2)
    m = edit_mask(p)
    assert m.shape == (2, 8, 8) and m[:, :2, :2].all() and m.sum() == 2 * 4
    stored = np.zeros((2, 8, 8), np.float32)
    stored[0, 5, 5] = 1
    q = EditSample("y", "do", "a", "b", p.source_video, p.target_video, mask=stored)
    assert np.array_equal(edit_mask(q), stored)
    no_target = EditSample("z", "do", "a", "b", p.source_video)
    with pytest.raises(ValueError, match="z.*target_video"):
        edit_mask(no_target)
    with pytest.raises(ValueError, match="bucket"):
        stack_pairs([pair("a", 2), pair("b", 1)], "video")
