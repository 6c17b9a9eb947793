"""Config loading: every shipped file resolves; unknown keys and bad values fail with the key's name."""

import dataclasses
import typing
from pathlib import Path

import pytest

from viva.cli import main as cli_main
from viva.config import RECIPES, ConfigError, GRPOConfig, load_config

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").rglob("*.yaml"))


def test_configs_exist():
    assert CONFIGS, "configs/ holds no YAML files"


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.recipe == path.parent.name


def test_overrides_apply_and_types_are_checked():
    cfg = load_config(None, ["grpo.group_size=8", "sampler.kind=cps"], recipe="grpo")
    assert isinstance(cfg, GRPOConfig)
    assert cfg.grpo.group_size == 8 and cfg.sampler.kind == "cps"
    with pytest.raises(ConfigError, match="group_size"):
        load_config(None, ["grpo.group_size=many"], recipe="grpo")


def _sections(cls: type) -> set:
    """``cls`` and every config dataclass its fields hold (directly, in a list, or optional)."""
    found = {cls}
    for hint in typing.get_type_hints(cls).values():  # resolves the `from __future__ import annotations` strings
        for t in (hint, *typing.get_args(hint), *[a for h in typing.get_args(hint) for a in typing.get_args(h)]):
            if dataclasses.is_dataclass(t) and t not in found:
                found |= _sections(t)
    return found


@pytest.mark.parametrize("recipe", sorted(RECIPES))
def test_configs_are_frozen_they_cross_processes(recipe):
    sections = _sections(RECIPES[recipe])
    assert all(s.__dataclass_params__.frozen for s in sections), sorted(
        s.__name__ for s in sections if not s.__dataclass_params__.frozen)
    cfg = load_config(next(p for p in CONFIGS if p.parent.name == recipe))
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.recipe = recipe  # change a config with dataclasses.replace


def test_unknown_key_in_file_names_key_and_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("recipe: grpo\ngrpo:\n  group_sise: 4\n")
    with pytest.raises(ConfigError, match=r"bad\.yaml.*group_sise"):
        load_config(bad)


def test_unknown_override_and_bad_recipe(tmp_path):
    with pytest.raises(ConfigError, match="nope"):
        load_config(None, ["sampler.nope=1"], recipe="grpo")
    bad = tmp_path / "r.yaml"
    bad.write_text("recipe: dance\n")
    with pytest.raises(ConfigError, match="recipe"):
        load_config(bad)


def test_post_init_validation_runs():
    with pytest.raises(ConfigError, match="window"):
        load_config(None, ["sampler.num_steps=4", "sampler.window_size=5"], recipe="grpo")


def test_config_show_cli(capsys):
    assert cli_main(["config", "show", "--recipe", "grpo", "grpo.group_size=3"]) == 0
    assert "group_size: 3" in capsys.readouterr().out
    assert cli_main(["config", "show", "--recipe", "grpo", "grpo.bogus=3"]) == 2
    assert "bogus" in capsys.readouterr().err
