"""kill -9 at random points of a GRPO checkpoint write loses nothing: the last acknowledged checkpoint (or a newer
one) loads whole, no temp dir stays behind, and a resumed run drops the metrics rows past the restored step."""

from __future__ import annotations

import json
import multiprocessing
import os
import random
import signal
import time
from pathlib import Path

import torch

from tests.rollout.grpo_fixtures import tiny_grpo_config
from viva.grpo.run_state import RunState, latest_checkpoint, load_checkpoint, save_checkpoint

TRIES = 20


def _acked(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [int(x) for x in path.read_text().split()]


def test_kill_9_at_random_points_of_checkpoint_writes(tmp_path):
    # forkserver: the writer imports torch once; each try forks a fresh process from it and kills it with SIGKILL.
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["tests.grpo._checkpoint_writer"])
    from tests.grpo._checkpoint_writer import save_forever

    rng = random.Random(0)
    for trial in range(TRIES):
        run_dir, acks = tmp_path / f"run{trial}", tmp_path / f"acks{trial}"
        proc = ctx.Process(target=save_forever, args=(str(run_dir), str(acks), 1 << 18), daemon=True)
        proc.start()
        deadline = time.monotonic() + 60
        while not _acked(acks) and time.monotonic() < deadline and proc.is_alive():
            time.sleep(0.002)
        assert _acked(acks), f"try {trial}: the writer saved nothing (exit code {proc.exitcode})"
        time.sleep(rng.uniform(0.0, 0.06))  # a random point of a later save
        os.kill(proc.pid, signal.SIGKILL)
        proc.join()
        last = _acked(acks)[-1]

        ckpt = latest_checkpoint(run_dir, recover=True)
        assert ckpt is not None, f"try {trial}: no checkpoint after the kill"
        state, learner = load_checkpoint(ckpt)
        assert state.step >= last, f"try {trial}: acknowledged step {last} lost, resumed at {state.step}"
        assert state == RunState(state.step, state.step, 2 * state.step, 0)
        assert torch.equal(learner["lora"]["layer.lora_A.weight"], torch.full((1 << 18,), float(state.step)))
        left = [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".")]
        assert left == [], f"try {trial}: stale temp files {left}"


class _StubExecutor:
    """Takes the restored learner state; nothing else is called by EditGRPO.setup."""

    def __init__(self) -> None:
        self.loaded = None

    def load_learner_state(self, state: dict) -> None:
        self.loaded = state


def test_resume_drops_metrics_rows_past_the_restored_step(tmp_path):
    from viva.data.dataset import build_dataset
    from viva.grpo.driver import EditGRPO

    cfg = tiny_grpo_config(tmp_path, "resume=true", "grpo.steps=8")
    run_dir = Path(cfg.output_dir)
    lora = {"layer.lora_A.weight": torch.ones(4)}
    save_checkpoint(run_dir, RunState(5, 5, 10, 0), {"lora": lora, "optimizer": {}})
    (run_dir / "checkpoints" / ".step_000002.tmp-half").mkdir()  # what a kill -9 during the next save leaves
    rows = [{"step": s, "kind": "train", "loss": 0.1 * s} for s in range(7)]
    rows += [{"step": 5, "kind": "eval", "eval/reward_mean": 0.5}, {"step": 6, "kind": "train", "loss": 9.0}]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows) + '{"step": 7, "ki')

    executor = _StubExecutor()
    algo = EditGRPO(cfg, executor, build_dataset(cfg.data, "train"))
    algo.setup()
    assert algo.step == 5 and algo.prompts.cursor == 10 and executor.loaded is not None
    kept = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [(r["kind"], r["step"]) for r in kept] == [("train", s) for s in range(5)] + [("eval", 5)]
    assert not (run_dir / "checkpoints" / ".step_000002.tmp-half").exists()
