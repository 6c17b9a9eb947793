"""The reward-hacking detector on synthetic series: reward up + oracle down is flagged, both up is not, noise alone
is not, and a run's metrics rows give both the train-window and the eval verdicts."""

from __future__ import annotations

import math

import numpy as np
import pytest

from viva.grpo.reward_hacking import HackingRule, check_eval, check_train, detect, fit_slope


def _noisy(slope: float, n: int = 8, seed: int = 0, sd: float = 0.01, start: float = 0.3) -> list[float]:
    rng = np.random.default_rng(seed)
    return list(start + slope * np.arange(n) + rng.normal(0, sd, n))


def test_fit_slope_matches_numpy_polyfit():
    x, y = np.arange(10.0), np.array(_noisy(0.05, 10, seed=3))
    slope, t = fit_slope(x, y)
    assert slope == pytest.approx(np.polyfit(x, y, 1)[0], rel=1e-12)
    assert t > 10
    assert fit_slope([0, 1, 2], [1.0, 1.0, 1.0]) == (0.0, 0.0)
    assert fit_slope([0, 1, 2], [0.0, 1.0, 2.0])[1] == math.inf
    with pytest.raises(ValueError):
        fit_slope([0, 1], [0.0, 1.0])


def test_rising_reward_and_falling_oracle_is_flagged():
    steps = list(range(20, 28))
    c = check_train(steps, _noisy(0.02, seed=1), _noisy(-0.01, seed=2))
    assert c.flagged and c.reward_change > 0 and c.oracle_change < 0
    assert (c.first_step, c.last_step) == (20, 27)
    assert "REWARD HACKING" in c.message() and f"oracle slope {c.oracle_change:+.4g}/step" in c.message()


@pytest.mark.parametrize("oracle_slope", [0.01, 0.0])
def test_oracle_rising_or_flat_is_not_flagged(oracle_slope):
    sd = 0.0 if oracle_slope == 0 else 0.01
    c = check_train(list(range(8)), _noisy(0.02, seed=1), _noisy(oracle_slope, seed=2, sd=sd))
    assert not c.flagged and "no reward hacking" in c.message()


def test_noise_alone_is_rarely_flagged():
    flags = [check_train(list(range(8)), _noisy(0.0, seed=s, sd=0.2), _noisy(0.0, seed=1000 + s, sd=0.05)).flagged
             for s in range(200)]
    assert np.mean(flags) < 0.02  # both slopes must be significant (t beyond 2), not merely of opposite sign


def test_window_uses_only_the_last_rows():
    # Oracle rose for 10 steps, then fell while the reward kept rising: the last 8 rows are what count.
    steps = list(range(18))
    reward = _noisy(0.02, 18, seed=4)
    oracle = [0.1 + 0.02 * s for s in range(10)] + [0.3 - 0.02 * s for s in range(8)]
    assert check_train(steps, reward, oracle).flagged
    assert not check_train(steps, reward, oracle, HackingRule(window=18)).flagged


def test_eval_check_needs_both_deltas():
    rule = HackingRule(eval_min_delta=0.005)
    assert check_eval([0, 8, 16], [0.10, 0.12, 0.15], [0.30, 0.29, 0.28], rule).flagged
    assert not check_eval([0, 16], [0.10, 0.15], [0.30, 0.31], rule).flagged
    assert not check_eval([0, 16], [0.10, 0.15], [0.30, 0.298], rule).flagged  # oracle change below the tolerance


def test_detect_on_metrics_rows():
    rows = [{"step": s, "kind": "train", "reward/weighted/mean": r, "oracle/mean": o}
            for s, r, o in zip(range(8), _noisy(0.02, seed=5), _noisy(-0.01, seed=6))]
    rows += [{"step": 0, "kind": "eval", "eval/reward_mean": 0.1, "eval/oracle_mean": 0.3},
             {"step": 8, "kind": "eval", "eval/reward_mean": 0.2, "eval/oracle_mean": 0.2}]
    kinds = {c.kind: c for c in detect(rows)}
    assert kinds["train"].flagged and kinds["eval"].flagged
    no_oracle = [{k: v for k, v in r.items() if "oracle" not in k} for r in rows]
    assert detect(no_oracle) == []  # no oracle in the world: nothing to compare against
    assert detect(rows[:3]) == []  # too few train rows
