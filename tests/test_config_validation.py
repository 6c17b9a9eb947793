"""Config values that make no sense are refused where the config is built, naming the key, the value and the range;
malformed files and overrides give one clear ConfigError instead of an OmegaConf traceback."""

from __future__ import annotations

import pytest

from viva.config import ConfigError, load_config

GRPO = "configs/grpo/toy.yaml"

# (recipe file or schema, override, text the message must contain: the key and the allowed range)
BAD_VALUES = [
    (GRPO, "grpo.steps=-1", "grpo.steps must be >= 1, got -1"),
    (GRPO, "grpo.group_size=-4", "grpo.group_size must be >= 2"),
    (GRPO, "grpo.lr=-1", "grpo.lr must be a finite number > 0, got -1.0"),
    (GRPO, "grpo.lr=nan", "grpo.lr must be a finite number > 0, got nan"),
    (GRPO, "grpo.clip_range=-0.1", "grpo.clip_range must be a finite number > 0, got -0.1"),
    (GRPO, "grpo.timestep_fraction=5", "grpo.timestep_fraction must be in (0, 1], got 5.0"),
    (GRPO, "grpo.max_staleness=-1", "grpo.max_staleness must be >= 0, got -1"),
    (GRPO, "grpo.betas=[0.9]", "grpo.betas must be two numbers in [0, 1)"),
    (GRPO, "grpo.adv_std=batch", "grpo.adv_std must be group | pooled, got 'batch'"),
    (GRPO, "grpo.kl_steps=ode", "grpo.kl_steps must be window | all, got 'ode'"),
    (GRPO, "model.dtype=int8", "model.dtype must be one of float32 | bfloat16 | float16, got 'int8'"),
    (GRPO, "model.backend=jit", "model.backend must be one of eager | compile | tensorrt"),
    (GRPO, "lora.dropout=1.5", "lora.dropout must be in [0, 1), got 1.5"),
    (GRPO, "sampler.kind=euler", "key 'sampler.kind': Invalid value 'euler', expected one of ['sde', 'cps', 'ode']"),
    (GRPO, "cluster.call_timeout_s=0", "cluster.call_timeout_s must be > 0 seconds, got 0.0"),
    (GRPO, "cluster.num_rollout_actors=0", "cluster.num_rollout_actors must be >= 1, got 0"),
    (GRPO, "rewards.0.weight=nan", "weight must be a finite number, got nan"),
    ("serve", "port=99999", "port must be in [1, 65535], got 99999"),
    ("serve", "max_upload_mb=-1", "max_upload_mb must be a finite number > 0, got -1.0"),
    ("serve", "max_duration_s=0", "max_duration_s must be a finite number > 0, got 0.0"),
]


def _load(where: str, *overrides: str):
    if where.endswith(".yaml"):
        return load_config(where, list(overrides))
    return load_config(None, list(overrides), recipe=where)


@pytest.mark.parametrize("where, override, message", BAD_VALUES, ids=[c[1] for c in BAD_VALUES])
def test_nonsense_values_are_refused_naming_key_value_and_range(where, override, message):
    with pytest.raises(ConfigError) as err:
        _load(where, override)
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_boundary_values_are_accepted():
    cfg = _load(GRPO, "grpo.steps=1", "grpo.group_size=2", "grpo.timestep_fraction=1.0", "grpo.max_staleness=0",
                "model.dtype=bfloat16")
    assert (cfg.grpo.steps, cfg.grpo.group_size, cfg.model.dtype) == (1, 2, "bfloat16")
    assert _load("serve", "port=65535", "max_upload_mb=0.5").port == 65535


def test_list_index_overrides_are_typed():
    cfg = _load(GRPO, "rewards.0.weight=2.5")
    assert cfg.rewards[0].weight == 2.5
    with pytest.raises(ConfigError, match=r"override 'rewards.0.weight=abc': key 'rewards\[0\].weight'.*'abc'"):
        _load(GRPO, "rewards.0.weight=abc")


def test_top_level_list_is_one_clear_error(tmp_path):
    path = tmp_path / "list.yaml"
    path.write_text("- recipe: grpo\n- grpo: {steps: 2}\n")
    with pytest.raises(ConfigError, match=r"list.yaml: the top level must be a mapping.*got a list"):
        load_config(path)


def test_override_without_equals_is_refused():
    with pytest.raises(ConfigError, match="override 'grpo.steps': expected key=value"):
        _load(GRPO, "grpo.steps")


def test_kl_on_all_steps_needs_a_noisy_gaussian():
    with pytest.raises(ConfigError, match=r"sampler.eta must be > 0 when grpo.kl_steps = all, got 0.0"):
        load_config(GRPO, ["grpo.kl_steps=all", "sampler.eta=0"])
    assert load_config(GRPO, ["grpo.kl_steps=all", "sampler.eta=0", "grpo.kl_coef=0"]).grpo.kl_steps == "all"
