"""SFT trainer: what trains and what stays frozen, masking path, determinism, atomic checkpoints and exact resume."""

import dataclasses
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from viva.config import ConfigError, load_config
from viva.sft.model import select_trainable
from viva.sft.trainer import SFTTrainer, lr_multiplier, run_sft
from viva.sft.train_state import latest_checkpoint, load_train_state


def _trainer(cfg):
    t = SFTTrainer(cfg)
    t.setup()
    return t


def test_a_step_changes_every_trainable_weight_and_no_frozen_one(sft_config):
    t = _trainer(sft_config("sft.trainable=full"))
    dit0 = {k: v.detach().clone() for k, v in t.editor.dit.named_parameters()}
    vlm0 = {k: v.detach().clone() for k, v in t.editor.vlm.named_parameters()}
    t.train_step(0)
    changed = {k for k, v in t.editor.dit.named_parameters() if not torch.equal(v, dit0[k])}
    assert changed == set(dit0)  # AdamW moves every parameter with a gradient
    assert all(torch.equal(v, vlm0[k]) for k, v in t.editor.vlm.named_parameters())
    assert not any(p.requires_grad for p in t.editor.vlm.parameters())


def test_projector_refiner_subset_trains_only_that_subset(sft_config):
    t = _trainer(sft_config("sft.trainable=projector_refiner"))
    names = set(t.params)
    assert any(n.startswith("transformer.x_embedder.") for n in names)  # the eq. 2 projector
    assert any(n.startswith("transformer.context_embedder.") for n in names)  # the token refiner
    assert not any(n.startswith("transformer.transformer_blocks.") for n in names)
    before = {k: v.detach().clone() for k, v in t.editor.dit.named_parameters()}
    t.train_step(0)
    for k, v in t.editor.dit.named_parameters():
        assert torch.equal(v, before[k]) != (k in names), k


def test_lora_mode_trains_adapters_and_exports_merged(sft_config, tmp_path):
    cfg = sft_config("sft.trainable=lora", "lora.rank=2", "lora.alpha=2", "lora.init=true")
    t = _trainer(cfg)
    assert any("lora_" in n for n in t.params) and not any("transformer_blocks.0.ff" in n for n in t.params)
    t.train_step(0)
    out = t.export_base(tmp_path / "lora_base")
    state = load_file(str(out / "dit.safetensors"))
    assert not any("lora" in k for k in state)


def test_select_trainable_rejects_unknown_mode(sft_config):
    t = _trainer(sft_config())
    with pytest.raises(ValueError, match="trainable"):
        select_trainable(t.editor.dit, "everything")
    with pytest.raises(ConfigError, match="trainable"):
        load_config(None, ["sft.trainable=everything"], recipe="sft")


def test_mask_weight_changes_the_loss_and_batches_are_deterministic(sft_config):
    t = _trainer(sft_config("sft.mask_weight=0.0", "sft.image_prob=0.0"))
    batch = t.sampler.batch(0)
    assert batch.mask.sum() > 0  # toy-world pairs carry their edit masks
    plain = t.compute_loss(batch, 0).item()
    assert t.compute_loss(batch, 0).item() == plain  # noise / sigma / dropout come from (seed, rank, step)
    t.cfg = dataclasses.replace(t.cfg, sft=dataclasses.replace(t.cfg.sft, mask_weight=4.0))
    masked = t.compute_loss(batch, 0).item()
    assert masked > plain  # (1 + w_m M) >= 1 everywhere, > 1 inside the edit


def test_lr_schedule_warmup_then_decay(sft_config):
    s = sft_config("sft.warmup_steps=10", "sft.steps=110", "sft.schedule=cosine").sft
    f = lr_multiplier(s)
    assert f(0) == pytest.approx(0.1) and f(9) == pytest.approx(1.0)
    assert f(60) == pytest.approx(0.5) and f(110) == pytest.approx(0.0, abs=1e-9)
    assert lr_multiplier(dataclasses.replace(s, schedule="linear"))(60) == pytest.approx(0.5)


def test_refine_phase_switches_shift_and_lr_from_refine_from_step(sft_config):
    t = _trainer(sft_config("sft.steps=10", "sft.warmup_steps=0", "sft.schedule=constant", "sft.lr=2e-3",
                            "sft.timestep_sampling=shifted", "sft.timestep_shift=8.0", "sft.refine_from_step=6",
                            "sft.refine_timestep_shift=1.0", "sft.refine_lr=5e-4", "sft.image_prob=1.0"))
    f = lr_multiplier(t.cfg.sft)
    assert [f(k) for k in (0, 5, 6, 9)] == [1.0, 1.0, pytest.approx(0.25), pytest.approx(0.25)]
    # In the refinement phase compute_loss draws its sigmas with the refine shift: it equals a run whose main shift
    # is that value, and differs from the main phase's shift at the same step (same noise, batch, dropout).
    plain = dataclasses.replace(t.cfg.sft, refine_from_step=None, refine_timestep_shift=None, refine_lr=None)
    batch = t.sampler.batch(7)
    refined = t.compute_loss(batch, 7).item()
    main_phase = t.compute_loss(batch, 5).item()  # step 5 is before the phase: shift 8 (other noise, same model)
    cfg = t.cfg
    t.cfg = dataclasses.replace(cfg, sft=dataclasses.replace(plain, timestep_shift=1.0))
    assert t.compute_loss(batch, 7).item() == refined
    t.cfg = dataclasses.replace(cfg, sft=plain)
    assert t.compute_loss(batch, 7).item() != refined and np.isfinite(main_phase)


@pytest.mark.parametrize("override, field", [
    (["sft.refine_from_step=-1"], "sft.refine_from_step"),
    (["sft.refine_from_step=2", "sft.refine_timestep_shift=2.0", "sft.timestep_sampling=uniform"],
     "sft.refine_timestep_shift"),
    (["sft.refine_from_step=2", "sft.timestep_sampling=shifted", "sft.refine_timestep_shift=0"],
     "sft.refine_timestep_shift"),
    (["sft.refine_from_step=2", "sft.refine_lr=-1"], "sft.refine_lr"),
])
def test_refine_phase_config_is_validated(override, field):
    with pytest.raises(ConfigError, match=field):
        load_config(None, ["sft.steps=10", *override], recipe="sft")


def test_curriculum_phase_trains_on_its_edit_types_then_the_full_mix(sft_config):
    t = _trainer(sft_config("sft.steps=10", "sft.curriculum_steps=4", "sft.curriculum_edit_types=[recolor]",
                            "sft.image_prob=0.5"))
    assert [set(t.sampler.batch(k).edit_types) for k in range(4)] == [{"recolor"}] * 4
    assert all(t.sampler.batch(k).modality == "image" for k in range(4))
    later = {e for k in range(4, 10) for e in t.sampler.batch(k).edit_types}
    assert len(later) > 1  # the configured mix again


@pytest.mark.parametrize("override, match", [
    (["sft.curriculum_steps=-1"], "sft.curriculum_steps"),
    (["sft.curriculum_steps=5", "sft.curriculum_edit_types=[]"], "sft.curriculum_edit_types"),
    (["sft.curriculum_steps=5", "sft.curriculum_edit_types=[hybrid]"], "held out"),
])
def test_curriculum_config_is_validated(override, match, sft_config):
    with pytest.raises((ConfigError, ValueError), match=match):
        _trainer(sft_config("sft.steps=10", *override))


def test_curriculum_needs_the_toy_world():
    from viva.sft.pair_sources import build_curriculum_source

    cfg = load_config(None, ["data.source=manifest", "data.manifest=pairs.jsonl", "sft.curriculum_steps=5"],
                      recipe="sft")
    with pytest.raises(ValueError, match="data.source=toyworld"):
        build_curriculum_source(cfg)


def test_resume_continues_exactly(sft_config, tmp_path):
    straight = run_sft(sft_config("sft.steps=4", f"output_dir={tmp_path / 'a'}", "sft.ema_decay=0.9"))
    # The interrupted run: same schedule (steps=4), checkpoint at step 2; pretend it died there.
    run_sft(sft_config("sft.steps=4", f"output_dir={tmp_path / 'c'}", "sft.ema_decay=0.9",
                       "sft.checkpoint_every=2", "sft.keep_checkpoints=5"))
    import shutil

    ckpts = tmp_path / "c" / "checkpoints"
    shutil.rmtree(ckpts / "step_00000004")
    (ckpts / "latest").write_text("step_00000002")
    resumed = run_sft(sft_config("sft.steps=4", f"output_dir={tmp_path / 'c'}", "sft.ema_decay=0.9", "resume=true"))
    a = load_file(str(tmp_path / "a" / "base" / "dit.safetensors"))
    c = load_file(str(tmp_path / "c" / "base" / "dit.safetensors"))
    assert a.keys() == c.keys() and all(torch.equal(a[k], c[k]) for k in a)  # EMA weights, bit for bit
    assert resumed.final_loss == pytest.approx(straight.final_loss, abs=0, rel=0)
    rows = [json.loads(line) for line in (tmp_path / "c" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 3, 4]  # the resumed run logged steps 3 and 4 again


def test_prefetch_thread_gives_the_same_run(sft_config, tmp_path):
    """sft.prefetch prepares step n+1 in a worker thread; every input is a function of the step, so the weights
    and losses equal the run without it, bit for bit (video and image batches, instruction dropout on)."""
    runs = {}
    for on in (True, False):
        out = tmp_path / str(on)
        res = run_sft(sft_config("sft.steps=5", f"output_dir={out}", "sft.image_prob=0.5", "sft.cond_dropout=0.5",
                                 "sft.log_every=1", f"sft.prefetch={str(on).lower()}"))
        rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
        runs[on] = (load_file(str(out / "base" / "dit.safetensors")), [r["loss"] for r in rows], res)
    (a, la, ra), (b, lb, rb) = runs[True], runs[False]
    assert la == lb and len(la) == 5 and ra.final_loss == rb.final_loss
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_checkpoints_are_atomic_and_pruned(sft_config, tmp_path):
    run_sft(sft_config("sft.steps=4", "sft.checkpoint_every=1", "sft.keep_checkpoints=2"))
    ckpts = tmp_path / "checkpoints"
    assert sorted(p.name for p in ckpts.iterdir() if p.is_dir()) == ["step_00000003", "step_00000004"]
    assert not list(ckpts.glob(".*"))  # no temp directories left behind
    state = load_train_state(latest_checkpoint(ckpts))
    assert state.meta.step == 4 and "state" in state.optimizer["optimizer"]
    (ckpts / "latest").write_text("step_00000099")
    with pytest.raises(FileNotFoundError, match="step_00000099"):
        latest_checkpoint(ckpts)


def test_bad_manifest_samples_are_skipped_and_counted(sft_config, tmp_path):
    from viva.data.manifest import write_manifest
    from viva.data.toyworld import ToyWorld

    world = ToyWorld(seed=3, num_frames=2, height=16, width=16)
    path = write_manifest([world.sample(i, "recolor") for i in range(6)], tmp_path / "ds")
    lines = path.read_text().splitlines()
    broken = json.loads(lines[1])
    (path.parent / broken["source"]).unlink()  # a missing media file
    result = run_sft(sft_config("data.source=manifest", f"data.manifest={path}", "sft.image_prob=0.0",
                                "sft.steps=3"))
    assert result.skipped_samples == 1 and np.isfinite(result.final_loss)


def test_x0_loss_space_is_the_sigma_squared_weighted_velocity_loss(sft_config):
    """sft.loss_space=x0 scores ||x0_hat - x0||^2, i.e. sigma^2 ||v - v*||^2 per sample: finite for source_x0."""
    from viva.sft.loss import add_noise
    from viva.sft.timesteps import sample_sigmas
    from viva.sft.trainer import step_generator

    t = _trainer(sft_config("model.prediction=source_x0", "sft.loss_space=x0", "sft.mask_weight=0.0",
                            "sft.image_prob=0.0", "sft.cond_dropout=0.0"))
    batch = t.sampler.batch(0)
    x0_loss = t.compute_loss(batch, 0).item()
    # Recompute by hand: same step generator -> same sigma and noise.
    g = step_generator(t.cfg.seed, 0, 0)
    ed = t.editor
    x0, src = ed.encode_videos(batch.target), ed.encode_videos(batch.source)
    sigma = sample_sigmas(x0.shape[0], t.cfg.sft.timestep_sampling, t.cfg.sft.timestep_shift, g)
    noise = torch.randn(x0.shape, generator=g)
    torch.rand(x0.shape[0], generator=g)  # the dropout draw
    cond = ed.encode_condition(list(batch.instructions), batch.source[:, 0])
    with torch.no_grad():
        v = ed.velocity(add_noise(x0, noise, sigma), src, sigma, cond)
    s2 = sigma.view(-1, 1, 1, 1, 1) ** 2
    assert x0_loss == pytest.approx(float((s2 * (v - (noise - x0)) ** 2).mean()), rel=1e-4)
    # The untrained source_x0 editor is the copy-source editor: its x0 loss is the source-target distance.
    assert x0_loss == pytest.approx(float(((src - x0) ** 2).mean()), rel=1e-4)
