"""Edit-GRPO driver: one training step reads as three phases, `sample` → `score` → `update_and_sync`, with up to
`max_staleness` steps of rollouts in flight while the learner trains.

Run: ``viva grpo --config configs/grpo/toy.yaml [key=value ...]``  (``--local`` runs every role in this process)
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path
from typing import Deque, List, NamedTuple, Optional, Sequence

import numpy as np

from viva.config import ConfigError, GRPOConfig, load_config, to_dict, to_yaml
from viva.grpo.executor import Executor, SyncStats
from viva.grpo.prompts import PromptStream
from viva.grpo.reward_hacking import HackingRule, detect, train_window_check
from viva.grpo.run_log import RunLog
from viva.grpo.run_state import RunState, latest_checkpoint, load_checkpoint, save_checkpoint
from viva.learner.advantages import group_advantages
from viva.records import GroupRequest, LearnerMetrics, RolloutGroup, ScoredGroup, group_seed
from viva.training.atomic import atomic_write_text


class _InFlight(NamedTuple):
    """One step's submitted rollouts: the step, the prompt cursor before its prompts were taken, the handle."""

    step: int
    cursor: int
    handle: object


class EditGRPO:
    """Owns the algorithm; the executor owns the processes (local or Ray)."""

    def __init__(self, cfg: GRPOConfig, executor: Executor, dataset, eval_dataset=None) -> None:
        self.cfg = cfg
        self.executor = executor
        self.run_dir = Path(cfg.output_dir)
        rejects = cfg.data.rejects_file or str(self.run_dir / "rejects.jsonl")
        self.prompts = PromptStream(dataset, cfg.seed, rejects_file=rejects)
        self.eval_prompts = eval_dataset
        self.step = 0
        self._next_step = 0  # the next step whose rollouts are submitted
        self._in_flight: Deque[_InFlight] = collections.deque()
        self.staleness: collections.Counter = collections.Counter()
        self.log = RunLog(self.run_dir, cfg.logging, to_dict(cfg), resume=cfg.resume)
        self.eval_rows: list[dict] = []
        self.hacking_rule = HackingRule()
        self.hacking_flags: list = []  # every train window flagged during the run (HackingCheck)

    # -- setup ----------------------------------------------------------------------------------------------------
    def setup(self) -> None:
        """Resume from the latest checkpoint when asked; save the resolved config beside the outputs."""
        self.run_dir.mkdir(parents=True, exist_ok=True)
        atomic_write_text(self.run_dir / "config.yaml", to_yaml(self.cfg))
        if self.cfg.resume:
            ckpt = latest_checkpoint(self.run_dir, recover=True)  # cleans up after a kill -9 mid-checkpoint
            if ckpt is not None:
                state, learner_state = load_checkpoint(ckpt)
                self.executor.load_learner_state(learner_state)
                self.step, self.prompts.cursor = state.step, state.cursor
            self.log.rewind(self.step)  # rows past the restored step are logged again

    # -- train: sample → score → update + sync ------------------------------------------------------------------
    def train(self, progress=None) -> None:
        """Run the remaining steps; rollouts for up to `max_staleness` future steps overlap each update."""
        g = self.cfg.grpo
        self._in_flight.clear()
        self._next_step = self.step
        if g.eval_every and self.step == 0:
            self.evaluate(step=0)
        while self.step < g.steps:
            step, groups, wait_s = self.sample()
            t = time.perf_counter()
            scored, reward_stats = self.score(groups)
            score_s = time.perf_counter() - t
            metrics, sync, update_s = self.update_and_sync(scored, step)
            self.step = step + 1
            self._log_step(step, groups, scored, reward_stats, metrics, sync, (wait_s, score_s, update_s))
            self._after_step(metrics, reward_stats, progress)

    def sample(self) -> tuple[int, List[RolloutGroup], float]:
        """1. Sample: keep k + 1 steps of rollouts submitted (k = max_staleness; 0 is synchronous), then collect the
        oldest; returns (its step, its groups, seconds spent waiting for them)."""
        g = self.cfg.grpo
        while self._next_step < g.steps and len(self._in_flight) <= g.max_staleness:
            cursor = self.prompts.cursor  # before this step's prompts are taken: a checkpoint resumes from it
            handle = self.executor.submit(self._requests(self._next_step))
            self._in_flight.append(_InFlight(self._next_step, cursor, handle))
            self._next_step += 1
        step, _, handle = self._in_flight.popleft()
        t = time.perf_counter()
        return step, self.executor.collect(handle), time.perf_counter() - t

    def update_and_sync(self, scored: Sequence[ScoredGroup], step: int) -> tuple[LearnerMetrics, SyncStats, float]:
        """3. Update the LoRA on the step's scored groups (eqs. 12–13), then sync it to the rollout actors; returns
        (learner metrics, sync receipt, update seconds)."""
        t = time.perf_counter()
        metrics = self.executor.update(scored, step)
        update_s = time.perf_counter() - t
        return metrics, self.executor.sync(), update_s

    def _requests(self, step: int) -> List[GroupRequest]:
        g = self.cfg.grpo
        prompts = self.prompts.take(g.prompts_per_step)
        return [GroupRequest(step=step, group_index=i, prompt=p, group_size=g.group_size,
                             seed=group_seed(self.cfg.seed, step, i)) for i, p in enumerate(prompts)]

    def _after_step(self, metrics: LearnerMetrics, reward_stats: dict, progress) -> None:
        """Checkpoint and evaluate when due (the checkpoint's cursor: the oldest step still in flight)."""
        g = self.cfg.grpo
        if g.checkpoint_every and self.step % g.checkpoint_every == 0:
            self.checkpoint(self._in_flight[0].cursor if self._in_flight else self.prompts.cursor)
        if g.eval_every and self.step % g.eval_every == 0:
            self.evaluate(step=self.step)
        if progress is not None:
            progress(self.step, metrics, reward_stats)

    def score(self, groups: Sequence[RolloutGroup]) -> tuple[List[ScoredGroup], dict]:
        """2. Score: every group by every reward pool, weighted sum (eq. 7), group advantages (eq. 11)."""
        from viva.rewards.worker import combine

        per_model = self.executor.score(groups)  # [num_models][num_groups]
        g = self.cfg.grpo
        combined = [combine(self.cfg.rewards, [per_model[m][gi] for m in range(len(self.cfg.rewards))])
                    for gi in range(len(groups))]
        for group, (total, _) in zip(groups, combined):  # every train request asks for grpo.group_size edits
            if len(total) != g.group_size:
                raise ValueError(f"group {group.request.group_index} of step {group.request.step}: "
                                 f"{len(total)} rewards, expected grpo.group_size = {g.group_size}")
        allr = np.concatenate([total for total, _ in combined])  # [groups * G]
        # One call over the step: per-group std (eq. 11) or one pooled std across the groups (grpo.adv_std).
        advs = group_advantages(allr, g.group_size, eps=g.adv_eps, clip=g.adv_clip_max,
                                std=g.adv_std).numpy().reshape(len(groups), g.group_size)
        scored, parts_all = [], collections.defaultdict(list)
        for group, (total, parts), adv in zip(groups, combined, advs):
            scored.append(ScoredGroup(group=group, rewards=total, sub_rewards=parts,
                                      advantages=np.asarray(adv, dtype=np.float32),
                                      oracle=_oracle(group)))
            for k, v in parts.items():
                parts_all[k].append(v)
        stats = {"reward/weighted/mean": float(allr.mean()), "reward/weighted/std": float(allr.std())}
        for k, v in parts_all.items():
            v = np.concatenate(v)
            stats[f"reward/{k}/mean"], stats[f"reward/{k}/std"] = float(v.mean()), float(v.std())
        stats.update({"advantage/mean": float(advs.mean()), "advantage/std": float(advs.std()),
                      "advantage/abs_max": float(np.abs(advs).max())})
        oracles = [s.oracle for s in scored if s.oracle is not None]
        if oracles:
            stats["oracle/mean"] = float(np.concatenate(oracles).mean())
        return scored, stats

    def _log_step(self, step, groups, scored, reward_stats, m, sync, times) -> None:
        stale = [m.policy_version - 1 - grp.policy_version for grp in groups]
        for s in stale:
            self.staleness[int(s)] += 1
        n = sum(grp.group_size for grp in groups)
        row = {"kind": "train", **reward_stats, "loss": m.loss, "policy_loss": m.policy_loss, "kl": m.kl,
               "kl/ode": m.kl_ode, "clip_fraction": m.clip_fraction, "ratio/mean": m.ratio_mean,
               "ratio/min": m.ratio_min, "ratio/max": m.ratio_max, "ratio/first_step_max_dev": m.first_ratio_max_dev,
               "grad_norm": m.grad_norm, "policy_version": m.policy_version,
               "time/sample_wait": times[0], "time/score": times[1], "time/update": times[2],
               "time/sync": sync.seconds, "sync/bytes": sync.num_bytes, "staleness/mean": float(np.mean(stale)),
               "samples_per_s": n / max(1e-9, sum(times) + sync.seconds), "rejects": len(self.prompts.rejects),
               **{f"busy/{k}": v for k, v in self.executor.busy_seconds().items()}}
        self.log.log(step, row)
        self.check_hacking()
        every = self.cfg.logging.sample_every
        if every and step % every == 0:
            grp = groups[0]
            self.log.write_sample(step, grp.request.prompt.source_video, grp.edited_videos[0])

    def check_hacking(self) -> None:
        """Warn (run log, stderr) when the last train window's reward rises while its oracle falls."""
        check = train_window_check(self.log.history, self.hacking_rule)  # None without an oracle
        if check is not None and check.flagged:
            self.hacking_flags.append(check)
            self.log.warn(check.message())

    # -- evaluation -----------------------------------------------------------------------------------------------
    def evaluate(self, step: int) -> dict:
        """Weighted reward and oracle on held-out prompts, sampled deterministically (ODE, fixed seeds)."""
        if self.eval_prompts is None:
            return {}
        n = min(self.cfg.grpo.eval_prompts, len(self.eval_prompts))
        reqs = [GroupRequest(step=-1, group_index=i, prompt=self.eval_prompts[i], group_size=1,
                             seed=group_seed(self.cfg.seed + 1, 0, i), evaluate=True) for i in range(n)]
        groups = self.executor.collect(self.executor.submit(reqs))
        per_model = self.executor.score(groups)
        from viva.rewards.worker import combine

        combined = [combine(self.cfg.rewards, [per_model[m][i] for m in range(len(self.cfg.rewards))])
                    for i in range(len(groups))]
        totals = np.concatenate([t for t, _ in combined])
        # sem: standard error of the mean over the held-out prompts, the eval noise a before/after change must beat
        row = {"kind": "eval", "eval/reward_mean": float(np.mean(totals)), "eval/reward_sem": _sem(totals),
               # per prompt (same prompts and seeds at every eval): the before/after change is a paired difference
               "eval/reward_per_prompt": [round(float(v), 6) for v in totals]}
        for spec in self.cfg.rewards:  # each term beside the weighted sum, so a hacked term shows
            row[f"eval/reward/{spec.name}"] = float(np.mean(np.concatenate([p[spec.name] for _, p in combined])))
        oracles = [o for o in (_oracle(g) for g in groups) if o is not None]
        if oracles:
            per_prompt = np.concatenate(oracles)
            row["eval/oracle_mean"] = float(np.mean(per_prompt))
            row["eval/oracle_sem"] = _sem(per_prompt)
            row["eval/oracle_per_prompt"] = [round(float(v), 6) for v in per_prompt]
        self.log.log(step, row)
        self.eval_rows.append(row | {"step": step})
        return row

    # -- checkpoint / cleanup -------------------------------------------------------------------------------------
    def checkpoint(self, cursor: Optional[int] = None) -> Path:
        """Atomically save LoRA, optimizer, RNG states, data cursor, policy_version and step."""
        state = RunState(step=self.step, policy_version=self.step,
                         cursor=self.prompts.cursor if cursor is None else cursor, rejects=len(self.prompts.rejects))
        return save_checkpoint(self.run_dir, state, self.executor.learner_state())

    def cleanup(self) -> Path:
        """Write the final LoRA (diffusers format), the plot and the summary; release the roles."""
        lora_dir = self.executor.save_lora(str(self.run_dir / "lora"))
        lines = self._summary(lora_dir)
        self.log.write_json("summary.json", self._summary_json(lora_dir))
        self.log.finish(lines)
        self.executor.shutdown()
        return lora_dir

    def _summary(self, lora_dir: Path) -> list[str]:
        lines = [f"- steps: {self.step}, prompts/step: {self.cfg.grpo.prompts_per_step}, "
                 f"group size: {self.cfg.grpo.group_size}, max_staleness: {self.cfg.grpo.max_staleness}",
                 f"- LoRA (diffusers format): `{lora_dir}`",
                 f"- staleness histogram: {dict(sorted(self.staleness.items()))}",
                 f"- rejected prompts: {len(self.prompts.rejects)}"]
        evals = [h for h in self.log.history if h.get("kind") == "eval"]  # history: complete after a resume
        if len(evals) >= 2:
            a, b = evals[0], evals[-1]
            lines.append(f"- held-out weighted reward: {a['eval/reward_mean']:.4f} (step {a['step']}) → "
                         f"{b['eval/reward_mean']:.4f} (step {b['step']}); eval noise (s.e.m. over prompts) "
                         f"±{a.get('eval/reward_sem', float('nan')):.4f}")
            if a.get("eval/oracle_mean") is not None:
                lines.append(f"- held-out oracle score: {a['eval/oracle_mean']:.4f} → {b['eval/oracle_mean']:.4f}; "
                             f"eval noise ±{a.get('eval/oracle_sem', float('nan')):.4f}")
            for what in ("reward", "oracle"):
                d = paired_change(a, b, what)
                if d is not None:
                    lines.append(f"- held-out {what} change {d[0]:+.4f} ± {d[1]:.4f} (paired s.e.m. over the "
                                 f"{d[2]} prompts: same prompts and sampling seeds at every eval)")
            for key in sorted(k for k in a if k.startswith("eval/reward/") and b.get(k) is not None):
                lines.append(f"- held-out {key[len('eval/reward/'):]}: {a[key]:.4f} → {b[key]:.4f}")
        lines += [f"- {c.message()}" for c in detect(self.log.history, self.hacking_rule)]
        if self.hacking_flags:
            lines.append(f"- flagged train windows during the run: {len(self.hacking_flags)}; first: "
                         f"{self.hacking_flags[0].message()}")
        return lines

    def _summary_json(self, lora_dir: Path) -> dict:
        """summary.json: first/last held-out evaluation, their change, and the reward-hacking verdict."""
        evals = [h for h in self.log.history if h.get("kind") == "eval"]

        def point(h: dict) -> dict:
            terms = {k[len("eval/reward/"):]: v for k, v in h.items() if k.startswith("eval/reward/")}
            return {"step": h["step"], "reward_mean": h.get("eval/reward_mean"),
                    "reward_sem": h.get("eval/reward_sem"), "oracle_mean": h.get("eval/oracle_mean"),
                    "oracle_sem": h.get("eval/oracle_sem"), "reward": terms}

        out: dict = {"steps": self.step, "lora_dir": str(lora_dir), "eval": None}
        if evals:
            first, last = point(evals[0]), point(evals[-1])
            delta = {k: (last[k] - first[k]) if None not in (first[k], last[k]) else None
                     for k in ("reward_mean", "oracle_mean")}
            delta["reward"] = {k: last["reward"][k] - v for k, v in first["reward"].items()
                               if v is not None and last["reward"].get(k) is not None}
            for what in ("reward", "oracle"):
                d = paired_change(evals[0], evals[-1], what)
                delta[f"{what}_paired_sem"] = d[1] if d is not None else None
            out["eval"] = {"first": first, "last": last, "delta": delta, "num_evals": len(evals)}
        checks = detect(self.log.history, self.hacking_rule)
        out["reward_hacking"] = {
            "flagged": any(c.flagged for c in checks) or bool(self.hacking_flags),
            "checks": [c.as_dict() for c in checks],
            "flagged_train_windows": [c.as_dict() for c in self.hacking_flags],
            "rule": dict(self.hacking_rule.__dict__),
            "has_oracle": any(h.get("oracle/mean") is not None or h.get("eval/oracle_mean") is not None
                              for h in self.log.history),
        }
        return out


def _sem(values: np.ndarray) -> float:
    """Standard error of the mean (0 for a single value)."""
    return float(np.std(values, ddof=1) / np.sqrt(len(values))) if len(values) > 1 else 0.0


def paired_change(first: dict, last: dict, what: str) -> Optional[tuple[float, float, int]]:
    """(mean change, s.e.m. of the per-prompt changes, prompts) of ``eval/<what>_per_prompt`` between two eval rows;
    None when a row lacks them (older runs) or the prompts differ in number."""
    a, b = first.get(f"eval/{what}_per_prompt"), last.get(f"eval/{what}_per_prompt")
    if not a or not b or len(a) != len(b):
        return None
    d = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    return float(d.mean()), _sem(d), len(d)


def _oracle(group: RolloutGroup) -> Optional[np.ndarray]:
    p = group.request.prompt
    if p.target_video is None or p.scene_json is None:
        return None
    from viva.data.toyworld import oracle_score

    return np.array([oracle_score(v, p).total for v in group.edited_videos], dtype=np.float64)


def build_executor(cfg: GRPOConfig, local: bool) -> Executor:
    """The plain in-process executor, or the Ray one."""
    if local:
        from viva.grpo.local_executor import LocalExecutor

        return LocalExecutor(cfg)
    from viva.grpo.ray_executor import RayExecutor

    return RayExecutor(cfg)


def run(cfg: GRPOConfig, local: bool = False, progress: bool = True) -> Path:
    """setup → train → cleanup; returns the run directory."""
    from viva.data.dataset import build_dataset

    if not cfg.rewards:
        raise ConfigError("grpo: no reward models configured (rewards: [{name: clip_if, weight: 1.0}, ...])")
    dataset = build_dataset(cfg.data, split=cfg.data.split or "train")
    eval_dataset = None
    if cfg.eval_data is not None:
        eval_dataset = build_dataset(cfg.eval_data, split=cfg.eval_data.split or "heldout")
    executor = build_executor(cfg, local)
    algo = EditGRPO(cfg, executor, dataset, eval_dataset)
    try:
        algo.setup()
        with _progress(cfg.grpo.steps, algo.step, enabled=progress and cfg.logging.progress) as bar:
            algo.train(progress=bar)
        if cfg.grpo.checkpoint_every:
            algo.checkpoint()
        algo.cleanup()
    except BaseException:
        executor.shutdown()
        raise
    return Path(cfg.output_dir)


class _progress:
    """A rich progress bar over training steps (reward and KL in the description)."""

    def __init__(self, total: int, done: int, enabled: bool) -> None:
        self.total, self.done, self.enabled = total, done, enabled

    def __enter__(self):
        if not self.enabled:
            return None
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.p = Progress(TextColumn("[bold]Edit-GRPO"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                          TextColumn("{task.description}"), TimeElapsedColumn())
        self.p.start()
        self.task = self.p.add_task("", total=self.total, completed=self.done)
        return self

    def __call__(self, step: int, metrics, reward_stats: dict) -> None:
        desc = f"reward {reward_stats['reward/weighted/mean']:.3f}  kl {metrics.kl:.2e}"
        self.p.update(self.task, completed=step, description=desc)

    def __exit__(self, *exc) -> None:
        if self.enabled:
            self.p.stop()


def main(argv: List[str]) -> int:
    """`viva grpo` entry point."""
    parser = argparse.ArgumentParser(prog="viva grpo", description="Edit-GRPO: RL post-training of the editing DiT "
                                     "(Ray services; an embedded local cluster unless cluster.address is set).")
    parser.add_argument("--config", required=True, help="YAML config (recipe: grpo), e.g. configs/grpo/toy.yaml")
    parser.add_argument("--local", action="store_true", help="run every role in this process, without Ray")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. grpo.steps=5")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.overrides)
    except ConfigError as e:
        print(f"viva grpo: {e}", file=sys.stderr)
        return 2
    if cfg.recipe != "grpo":
        print(f"viva grpo: {args.config} is a '{cfg.recipe}' config", file=sys.stderr)
        return 2
    from viva.data.manifest import ManifestError

    try:
        run_dir = run(cfg, local=args.local, progress=not args.no_progress)
    except (ConfigError, ManifestError) as e:  # found before anything is written
        print(f"viva grpo: {e}", file=sys.stderr)
        return 2
    summary = run_dir / "summary.md"
    if summary.exists():
        print(summary.read_text())
    return 0
