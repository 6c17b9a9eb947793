"""The shipped toy reward models through the registry: CLIP-IF ranks ground-truth edits above the source,
micro-batching does not change scores, float frames score like uint8, and `viva eval` runs on a toy manifest."""

from __future__ import annotations

import json

import numpy as np
import pytest

from viva.rewards import RewardBatch, get_reward


@pytest.fixture(scope="module")
def toy_batch():
    from viva.data.toyworld import ToyWorld

    world = ToyWorld(seed=0).split("heldout")
    samples = [world.sample(i) for i in range(12)]
    stack = lambda xs: np.stack(xs)  # noqa: E731
    target = RewardBatch([s.sample_id for s in samples], stack([s.target_video for s in samples]),
                         stack([s.source_video for s in samples]), [s.instruction for s in samples],
                         [s.source_caption for s in samples], [s.edit_caption for s in samples])
    unedited = RewardBatch(target.sample_ids, target.source_videos, target.source_videos, target.instructions,
                           target.source_captions, target.edit_captions)
    return target, unedited


def test_clip_if_prefers_ground_truth_edit(toy_batch):
    target, unedited = toy_batch
    reward = get_reward("clip_if", model="toy", micro_batch_size=5)
    reward.setup("cpu")
    won = reward.score(target).scores > reward.score(unedited).scores
    assert won.mean() >= 0.75, won


def test_micro_batching_and_float_frames_do_not_change_scores(toy_batch):
    target, _ = toy_batch
    one = get_reward("clip_sp", model="toy", micro_batch_size=1)
    many = get_reward("clip_sp", model="toy", micro_batch_size=64)
    np.testing.assert_allclose(one.score(target).scores, many.score(target).scores, atol=1e-5)
    as_float = RewardBatch(target.sample_ids, target.edited_videos.astype(np.float32) / 255.0,
                           target.source_videos.astype(np.float32) / 255.0, target.instructions,
                           target.source_captions, target.edit_captions)
    np.testing.assert_allclose(many.score(as_float).scores, many.score(target).scores, atol=1e-6)
    assert (one.score(target).scores < 1.0).any()  # edits change the video


def test_weighted_viva_reward_and_pickscore(toy_batch):
    target, _ = toy_batch
    viva = get_reward("viva", model="toy", w_if=1.0, w_sp=0.5, w_ps=0.01)
    out = viva.score(target)
    parts = out.sub_scores
    np.testing.assert_allclose(out.scores, parts["clip_if"] + 0.5 * parts["clip_sp"] + 0.01 * parts["pickscore"])
    assert np.isfinite(parts["pickscore/pickscore_raw"]).all()


def test_toy_model_loads_retrained_weights_from_pretrained(toy_batch, tmp_path):
    """``pretrained`` points a toy reward at weights from `viva rewards train-toy`: other weights, other scores."""
    import torch
    from safetensors.torch import load_file, save_file

    from viva.rewards.toy_models import weights_path

    target, _ = toy_batch
    sd = load_file(str(weights_path("clip")))
    save_file(sd, str(tmp_path / "same.safetensors"))
    gen = torch.Generator().manual_seed(0)
    save_file({k: v + 0.1 * torch.randn(v.shape, generator=gen) if v.is_floating_point() else v
               for k, v in sd.items()}, str(tmp_path / "other.safetensors"))
    shipped = get_reward("clip_if", model="toy").score(target).scores
    same = get_reward("clip_if", model="toy", pretrained=str(tmp_path / "same.safetensors")).score(target).scores
    other = get_reward("clip_if", model="toy", pretrained=str(tmp_path / "other.safetensors")).score(target).scores
    np.testing.assert_allclose(same, shipped, atol=1e-6)
    assert np.abs(other - shipped).max() > 1e-3
    pos = next(k for k in sd if k.endswith("visual.positional_embedding"))  # as if trained with other patches
    save_file({**sd, pos: torch.zeros(65, sd[pos].shape[1])}, str(tmp_path / "patch4.safetensors"))
    with pytest.raises(ValueError, match="patch4.safetensors: not toy clip weights for viva-toy-clip"):
        get_reward("clip_if", model="toy", pretrained=str(tmp_path / "patch4.safetensors")).score(target)
    with pytest.raises(FileNotFoundError, match="missing.safetensors"):
        get_reward("clip_if", model="toy", pretrained=str(tmp_path / "missing.safetensors")).score(target)


def test_unknown_option_is_an_error():
    with pytest.raises(ValueError, match="reward clip_if: unknown option"):
        get_reward("clip_if", model="toy", micro_batch=3)


def test_viva_eval_on_toy_manifest(tmp_path):
    from viva.data.manifest import write_manifest
    from viva.data.toyworld import ToyWorld
    from viva.rewards.evaluate import main

    world = ToyWorld(seed=1).split("heldout")
    samples = [world.sample(i, t) for i, t in enumerate(["add", "remove", "replace", "reference"] * 2)]
    samples += [world.split("hybrid").sample(i) for i in range(2)]
    manifest = write_manifest(samples, tmp_path / "data")
    reports = {}
    for edited in ("target", "source"):
        out = tmp_path / edited
        assert main([f"manifest={manifest}", f"output_dir={out}", f"edited={edited}", "micro_batch_size=4"]) == 0
        reports[edited] = json.loads((out / "metrics.json").read_text())
        assert "| Metric | Add | Replace | Remove | Hybrid | Reference | All |" in (out / "table.md").read_text()
    gt, ident = reports["target"]["per_task"]["all"], reports["source"]["per_task"]["all"]
    assert gt["n"] == 10 and gt["oracle"] > ident["oracle"]
    assert gt["clip_if"] > ident["clip_if"]
    assert ident["clip_sp"] == pytest.approx(1.0, abs=1e-5)
