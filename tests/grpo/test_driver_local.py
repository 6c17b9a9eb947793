"""The plain (single-process) Edit-GRPO loop end to end, and resume equality: 2n steps == n + resume + n."""

import json

import pytest

from tests.rollout.grpo_fixtures import tiny_grpo_config
from viva.grpo.driver import run


def _rows(run_dir, kind="train"):
    rows = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [r for r in rows if r.get("kind") == kind]


def _core(rows):
    keys = ("step", "reward/weighted/mean", "loss", "kl", "ratio/mean", "policy_version")
    return [{k: r[k] for k in keys} for r in rows]


def test_local_loop_writes_lora_metrics_and_summary(tmp_path):
    cfg = tiny_grpo_config(tmp_path, "grpo.eval_every=2", "grpo.eval_prompts=2",
                           "eval_data={source: toyworld, seed: 5, split: hybrid}")
    run_dir = run(cfg, local=True, progress=False)
    rows = _rows(run_dir)
    assert [r["step"] for r in rows] == [0, 1] and rows[-1]["policy_version"] == 2
    assert rows[0]["ratio/first_step_max_dev"] == 0.0
    assert (run_dir / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert (run_dir / "reward_curve.png").stat().st_size > 0
    summary = (run_dir / "summary.md").read_text()
    assert "held-out weighted reward" in summary and "oracle" in summary
    assert len(_rows(run_dir, "eval")) == 2
    # each reward term beside the weighted sum and the oracle, in train and eval rows; summary.json
    name = cfg.rewards[0].name
    train, evals = _rows(run_dir), _rows(run_dir, "eval")
    assert all(r["oracle/mean"] is not None and f"reward/{name}/mean" in r for r in train)
    assert all(f"eval/reward/{name}" in r and r["eval/oracle_mean"] is not None for r in evals)
    report = json.loads((run_dir / "summary.json").read_text())
    first, last = report["eval"]["first"], report["eval"]["last"]
    assert (first["step"], last["step"]) == (0, 2) and first["reward"][name] == evals[0][f"eval/reward/{name}"]
    assert report["eval"]["delta"]["oracle_mean"] == pytest.approx(last["oracle_mean"] - first["oracle_mean"])
    assert report["reward_hacking"]["has_oracle"] and isinstance(report["reward_hacking"]["flagged"], bool)
    # per-prompt eval values (same prompts and seeds each eval): the change's paired s.e.m.
    a, b = evals[0]["eval/oracle_per_prompt"], evals[-1]["eval/oracle_per_prompt"]
    assert len(a) == 2 and sum(a) / 2 == pytest.approx(evals[0]["eval/oracle_mean"])
    d = [y - x for x, y in zip(a, b)]
    assert report["eval"]["delta"]["oracle_paired_sem"] == pytest.approx(abs(d[0] - d[1]) / 2, abs=1e-5)
    assert "paired s.e.m." in summary
    assert not list(run_dir.glob(".*.tmp-*")) and "reward hacking" in summary.lower()


def test_resume_equals_uninterrupted(tmp_path):
    common = ("grpo.checkpoint_every=1", "data.epoch_size=2")  # 2 prompts per step: every step is one epoch
    full = run(tiny_grpo_config(tmp_path / "a", "grpo.steps=2", *common), local=True, progress=False)
    run(tiny_grpo_config(tmp_path / "b", "grpo.steps=1", *common), local=True, progress=False)
    run(tiny_grpo_config(tmp_path / "b", "grpo.steps=2", "resume=true", *common), local=True, progress=False)
    a, b = _core(_rows(full)), _core(_rows(tmp_path / "b" / "run"))
    assert [r["step"] for r in b] == [0, 1]  # resumed at the epoch boundary after step 0
    for ra, rb in zip(a, b):
        for k in ra:
            assert ra[k] == pytest.approx(rb[k], abs=1e-6), (k, ra, rb)


def test_bad_manifest_samples_are_rejected_and_run_continues(tmp_path):
    from viva.data.manifest import write_manifest
    from viva.data.toyworld import ToyWorld

    world = ToyWorld(seed=3)
    manifest = write_manifest([world.sample(i, "recolor") for i in range(6)], tmp_path / "data")
    lines = [json.loads(x) for x in manifest.read_text().splitlines()]
    (manifest.parent / lines[0]["source"]).write_bytes(b"not an mp4")  # corrupt video
    (manifest.parent / lines[1]["source"]).unlink()  # missing file
    lines[2]["instruction"] = "  "  # empty instruction
    manifest.write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    bad = {lines[i]["id"] for i in range(3)}
    cfg = tiny_grpo_config(tmp_path, "data.source=manifest", f"data.manifest={manifest}", "grpo.steps=1",
                           "grpo.prompts_per_step=3", "grpo.group_size=2", "grpo.minibatch_size=2")
    run_dir = run(cfg, local=True, progress=False)
    rejects = [json.loads(x) for x in (run_dir / "rejects.jsonl").read_text().splitlines()]
    assert {r["sample_id"] for r in rejects} == bad  # seed 0 meets all 3 bad ones before the 3rd good one; each is named
    assert _rows(run_dir)[0]["rejects"] == 3


def test_rising_reward_falling_oracle_warns_and_is_in_both_summaries(tmp_path, capsys):
    from viva.grpo.driver import EditGRPO

    algo = EditGRPO(tiny_grpo_config(tmp_path), executor=None, dataset=[None] * 4)
    for s in range(8):
        algo.log.log(s, {"kind": "train", "reward/weighted/mean": 0.1 + 0.02 * s + 0.001 * (-1) ** s,
                         "oracle/mean": 0.4 - 0.01 * s + 0.001 * (-1) ** s})
        algo.check_hacking()
    assert algo.hacking_flags and "WARNING: REWARD HACKING" in capsys.readouterr().err
    assert any("REWARD HACKING" in line for line in algo._summary(tmp_path / "lora"))
    verdict = algo._summary_json(tmp_path / "lora")["reward_hacking"]
    assert verdict["flagged"] is True and verdict["checks"][0]["oracle_change"] == pytest.approx(-0.01, abs=1e-3)

    honest = EditGRPO(tiny_grpo_config(tmp_path / "b"), executor=None, dataset=[None] * 4)
    for s in range(8):
        honest.log.log(s, {"kind": "train", "reward/weighted/mean": 0.1 + 0.02 * s, "oracle/mean": 0.4 + 0.01 * s})
        honest.check_hacking()
    assert not honest.hacking_flags and "WARNING" not in capsys.readouterr().err
    assert honest._summary_json(tmp_path / "lora")["reward_hacking"]["flagged"] is False


def test_pooled_advantages_scale_the_step_not_each_group(tmp_path):
    """G=2: per-group std gives every sample advantage ±1; the pooled std lets the groups' spreads differ."""
    args = ("grpo.steps=1", "grpo.prompts_per_step=4")
    group = _rows(run(tiny_grpo_config(tmp_path / "g", *args), local=True, progress=False))[0]
    pooled = _rows(run(tiny_grpo_config(tmp_path / "p", *args, "grpo.adv_std=pooled"), local=True,
                       progress=False))[0]
    # (up to adv_eps = 1e-4 against the test reward's spread of a few 1e-3)
    assert group["advantage/abs_max"] == pytest.approx(1.0, abs=0.05)
    assert pooled["advantage/std"] == pytest.approx(1.0, abs=0.05)
    assert pooled["advantage/abs_max"] > group["advantage/abs_max"] + 0.1  # the wider groups weigh more
    assert pooled["reward/weighted/mean"] == group["reward/weighted/mean"]  # same rollouts, other advantages
