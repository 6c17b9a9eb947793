"""Held-out evaluation: deterministic ODE + CFG edits, oracle per edit type, the sample grid mp4, the recipe CLI."""

import dataclasses
import json

import numpy as np
import pytest

from viva.models.presets import build_editor
from viva.sft.evaluate import (
    heldout_samples, oracle_per_type, oracle_scores_per_type, sample_edits, summarize, write_sample_grid,
)


def test_sample_edits_are_deterministic_uint8_videos(sft_config):
    cfg = sft_config()
    editor = build_editor(cfg.model)
    samples = heldout_samples(cfg, "recolor", 2)
    a = sample_edits(editor, samples, cfg.sampler, seed=1)
    b = sample_edits(editor, samples, cfg.sampler, seed=1)
    assert a.dtype == np.uint8 and a.shape == (2, 2, 16, 16, 3)
    assert np.array_equal(a, b)
    refs = heldout_samples(cfg, "reference", 2)
    assert all(s.reference_image is not None for s in refs)
    assert sample_edits(editor, refs, cfg.sampler, seed=1).shape == (2, 2, 16, 16, 3)


def test_heldout_and_hybrid_prompts_are_not_training_pairs(sft_config):
    from viva.sft.pair_sources import ToyVideoPairs, toy_world

    cfg = sft_config()
    train = ToyVideoPairs(toy_world(cfg, "train"), ["recolor"])
    held = heldout_samples(cfg, "recolor", 3)
    assert {s.sample_id for s in held}.isdisjoint({train.get(i).sample_id for i in range(3)})
    assert all(s.edit_type == "hybrid" for s in heldout_samples(cfg, "hybrid", 2))
    with pytest.raises(ValueError, match="held out"):
        ToyVideoPairs(toy_world(cfg), ["add", "hybrid"])


def test_oracle_per_type_and_sample_grid(sft_config, tmp_path):
    from viva.data.video_io import read_video

    cfg = sft_config()
    editor = build_editor(cfg.model)
    scores = oracle_per_type(editor, cfg, ["add", "background"], count=2)
    assert set(scores) == {"add", "background", "mean"} and all(0.0 <= v <= 1.0 for v in scores.values())
    cfg = dataclasses.replace(cfg, sft=dataclasses.replace(cfg.sft, num_sample_edits=2))
    path = write_sample_grid(editor, cfg, tmp_path / "grid.mp4")
    frames, _ = read_video(path)
    assert frames.shape == (2, 2 * 16, 3 * 16, 3)  # rows: edit types; columns: source | edit | target


def test_copy_source_baseline_preserves_everything_and_edits_nothing(sft_config):
    from viva.data.toyworld import oracle_score

    cfg = sft_config()
    scores = oracle_per_type(None, cfg, ["add", "remove"], count=3)
    for t in ("add", "remove"):
        each = [oracle_score(s.source_video, s) for s in heldout_samples(cfg, t, 3)]
        assert scores[t] == pytest.approx(np.mean([o.total for o in each]))
        assert all(o.preserve_accuracy == 1.0 and o.edit_accuracy < 1.0 for o in each)
    assert 0.0 < scores["mean"] < 1.0


def test_summarize_reports_spread_and_edit_accuracy(sft_config):
    cfg = sft_config()
    per_type = oracle_scores_per_type(None, cfg, ["add", "remove", "hybrid"], count=3)
    row = summarize(per_type)
    totals = [o.total for o in per_type["add"]]
    assert row["add"] == pytest.approx(np.mean(totals))
    assert row["add/sem"] == pytest.approx(np.std(totals, ddof=1) / np.sqrt(3))
    assert row["add/edit_accuracy"] == 0.0  # copying the source never makes the added object
    assert row["single_mean"] == pytest.approx((row["add"] + row["remove"]) / 2)  # hybrid is not a single edit
    assert row["mean"] == pytest.approx((row["add"] + row["remove"] + row["hybrid"]) / 3)
    assert 0.0 <= row["single_edit_accuracy"] < 1.0


def test_recipe_cli_rejects_bad_config(tmp_path, capsys):
    from viva.cli import main

    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe: sft\nsft:\n  timestep_sampling: cosine\n")
    assert main(["sft", "--config", str(bad)]) == 2
    assert "timestep_sampling" in capsys.readouterr().err
    grpo = tmp_path / "g.yaml"
    grpo.write_text("recipe: grpo\n")
    assert main(["sft", "--config", str(grpo)]) == 2


def test_recipe_cli_runs_a_short_sft(tmp_path, capsys):
    from viva.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("recipe: sft\n")
    args = ["sft", "--config", str(cfg), f"output_dir={tmp_path / 'run'}", "sft.steps=2", "sft.batch_size=2",
            "sft.log_every=1", "data.num_frames=2", "data.height=16", "data.width=16", "logging.wandb=false",
            "logging.progress=false", "sft.sample_every=2", "sampler.num_steps=2", "sft.num_sample_edits=1"]
    assert main(args) == 0
    assert "base checkpoint" in capsys.readouterr().out
    assert (tmp_path / "run" / "base" / "dit.safetensors").is_file()
    assert (tmp_path / "run" / "samples" / "step_00000002.mp4").is_file()
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["steps"] == 2
