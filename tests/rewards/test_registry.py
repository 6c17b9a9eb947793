"""The reward registry: built-ins, dotted paths, double registration, and an out-of-tree package found through
the ``viva.rewards`` entry-point group (installed into a temp dir, so the venv is never touched)."""

from __future__ import annotations

import importlib
import shutil
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest

from viva.rewards import RewardBatch, RewardModel, get_reward, list_rewards, register_reward
from viva.rewards.cli import main as rewards_cli
from viva.rewards.registry import RegistryError, unregister_reward

FIXTURE = Path(__file__).resolve().parent.parent / "fixtures" / "viva_extra_reward"


def _install_into(site: Path) -> None:
    """What `pip install --target site` leaves behind: the package plus a .dist-info with entry_points.txt,
    generated from the fixture's own pyproject.toml."""
    project = tomllib.loads((FIXTURE / "pyproject.toml").read_text())["project"]
    shutil.copytree(FIXTURE / "viva_extra_reward", site / "viva_extra_reward")
    info = site / f"{project['name'].replace('-', '_')}-{project['version']}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {project['name']}\nVersion: {project['version']}\n")
    lines = []
    for group, eps in project["entry-points"].items():
        lines.append(f"[{group}]")
        lines += [f"{name} = {target}" for name, target in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def extra_package(tmp_path, monkeypatch):
    site = tmp_path / "site"
    site.mkdir()
    _install_into(site)
    monkeypatch.syspath_prepend(str(site))
    importlib.invalidate_caches()
    yield site
    sys.modules.pop("viva_extra_reward", None)


def _batch(value: int) -> RewardBatch:
    v = np.full((2, 3, 8, 8, 3), value, dtype=np.uint8)
    return RewardBatch(["a", "b"], v, v, ["do it"] * 2, ["src"] * 2, ["edit"] * 2)


def test_builtins_listed_with_source():
    entries = {e.name: e for e in list_rewards()}
    assert entries["clip_if"].target == "viva.rewards.clip_rewards:ClipIF"
    assert entries["pickscore"].source == "builtin"


def test_out_of_tree_package_is_found_by_name(extra_package, capsys):
    entries = {e.name: e for e in list_rewards()}
    assert entries["brightness"].source == "entry point (viva-extra-reward)"
    reward = get_reward("brightness", gain=2.0)
    assert isinstance(reward, RewardModel)
    reward.setup("cpu")
    out = reward.score(_batch(51))
    np.testing.assert_allclose(out.scores, [0.4, 0.4])
    assert rewards_cli(["list"]) == 0
    line = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("brightness")]
    assert line and "viva_extra_reward:BrightnessReward" in line[0] and "viva-extra-reward" in line[0]


def test_package_not_installed_means_unknown_name():
    with pytest.raises(RegistryError, match="unknown reward 'brightness'"):
        get_reward("brightness")


def test_dotted_path_and_runtime_registration(extra_package):
    reward = get_reward("viva_extra_reward:BrightnessReward")
    assert reward.score(_batch(255)).scores.tolist() == [1.0, 1.0]
    register_reward("bright2", "viva_extra_reward:BrightnessReward")
    try:
        assert get_reward("bright2").name == "brightness"
        with pytest.raises(RegistryError, match="already registered"):
            register_reward("bright2", "viva_extra_reward:BrightnessReward")
    finally:
        unregister_reward("bright2")


def test_registering_a_known_name_twice_is_an_error(extra_package):
    with pytest.raises(RegistryError, match="already registered.*builtin"):
        register_reward("clip_if", "viva_extra_reward:BrightnessReward")
    with pytest.raises(RegistryError, match="already registered.*entry point"):
        register_reward("brightness", lambda **kw: None)


def test_entry_point_clashing_with_builtin_is_an_error(extra_package):
    ep = next(extra_package.glob("*.dist-info")) / "entry_points.txt"
    ep.write_text(ep.read_text() + "clip_if = viva_extra_reward:BrightnessReward\n")
    with pytest.raises(RegistryError, match="'clip_if' is defined twice"):
        get_reward("clip_if")


def test_bad_targets_are_clear_errors():
    with pytest.raises(RegistryError, match="cannot import module"):
        get_reward("no_such_pkg.mod:Thing")
    with pytest.raises(RegistryError, match="has no attribute"):
        get_reward("viva.rewards.base:NoSuchReward")
    with pytest.raises(RegistryError, match="lacks the RewardModel protocol"):
        get_reward("collections:OrderedDict")
