"""Config loading: every shipped file resolves; unknown keys and bad values fail with the key's name."""

from pathlib import Path

import pytest

from viva.cli import main as cli_main
from viva.config import ConfigError, GRPOConfig, load_config

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
