"""Find reward models by name: a built-in table of lazy import paths, the ``viva.rewards`` entry-point group
(so another installed package can add one without touching viva), runtime registrations, or a dotted path
``pkg.module:Class``. A name defined twice is an error that names both sources.

>>> from viva.rewards.registry import list_rewards
>>> [e.name for e in list_rewards() if e.source == "builtin"]
['clip_if', 'clip_sp', 'pickscore', 'viva']
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata
from typing import Any, Callable, Dict, List, Union

from viva.dotted import MissingAttribute, import_dotted
from viva.rewards.base import RewardModel

ENTRY_POINT_GROUP = "viva.rewards"
BUILTIN: Dict[str, str] = {
    "clip_if": "viva.rewards.clip_rewards:ClipIF",
    "toy_oracle": "viva.rewards.ground_truth:ToyOracle",
    "edit_brightness": "viva.rewards.ground_truth:EditBrightness",
    "clip_sp": "viva.rewards.clip_rewards:ClipSP",
    "pickscore": "viva.rewards.pickscore:PickScore",
    "viva": "viva.rewards.weighted:WeightedReward",
}


class RegistryError(LookupError):
    """Unknown reward name, a name registered twice, or a target that is not a reward."""


@dataclass(frozen=True)
class RewardEntry:
    """One known reward: its name, what it points to, and where that came from."""

    name: str
    target: str  # "pkg.module:Class" (or a repr for a registered callable)
    source: str  # builtin | entry point (<distribution>) | runtime


_RUNTIME: Dict[str, Callable[..., Any]] = {}
_RUNTIME_ENTRIES: Dict[str, RewardEntry] = {}


def _entry_point_entries() -> List[RewardEntry]:
    out = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = getattr(getattr(ep, "dist", None), "name", None) or "unknown distribution"
        out.append(RewardEntry(ep.name, ep.value, f"entry point ({dist})"))
    return out


def _table() -> Dict[str, RewardEntry]:
    """Every known name -> entry; raises if any name is defined twice."""
    entries = [RewardEntry(n, t, "builtin") for n, t in BUILTIN.items()]
    entries += _entry_point_entries() + list(_RUNTIME_ENTRIES.values())
    table: Dict[str, RewardEntry] = {}
    for e in entries:
        if e.name in table and table[e.name] != e:
            first = table[e.name]
            raise RegistryError(f"reward {e.name!r} is defined twice: {first.target} [{first.source}] and "
                                f"{e.target} [{e.source}]")
        table[e.name] = e
    return table


def list_rewards() -> List[RewardEntry]:
    """All known rewards (built-in first, then entry points, then runtime registrations)."""
    return list(_table().values())


def register_reward(name: str, target: Union[str, Callable[..., Any]]) -> None:
    """Register ``name`` -> a ``pkg.module:Class`` string or a factory; an already known name is an error."""
    if not name or ":" in name or "." in name:
        raise RegistryError(f"reward name must be a plain identifier, got {name!r}")
    known = _table()
    if name in known:
        raise RegistryError(f"reward {name!r} is already registered: {known[name].target} [{known[name].source}]")
    text = target if isinstance(target, str) else f"{getattr(target, '__module__', '?')}:" \
                                                  f"{getattr(target, '__qualname__', repr(target))}"
    if not isinstance(target, str):
        _RUNTIME[name] = target
    _RUNTIME_ENTRIES[name] = RewardEntry(name, text, "runtime")


def unregister_reward(name: str) -> None:
    """Remove a runtime registration (tests); built-ins and entry points cannot be removed."""
    _RUNTIME.pop(name, None)
    if _RUNTIME_ENTRIES.pop(name, None) is None:
        raise RegistryError(f"reward {name!r} was not registered at runtime")


def import_target(target: str) -> Callable[..., Any]:
    """Import ``pkg.module:Attr`` (nested attributes allowed: ``pkg.mod:Outer.Inner``)."""
    try:
        return import_dotted(target)
    except ValueError:
        raise RegistryError(f"reward target must look like 'pkg.module:Class', got {target!r}") from None
    except ImportError as e:
        module_name = target.partition(":")[0]
        raise RegistryError(f"cannot import module {module_name!r} of reward target {target!r}: {e}") from e
    except MissingAttribute as e:
        raise RegistryError(f"{e} (reward target {target!r})") from None


def resolve(name_or_path: str) -> Callable[..., Any]:
    """The factory (usually a class) behind a registry name or a ``pkg.module:Class`` path."""
    if ":" in name_or_path:
        return import_target(name_or_path)
    table = _table()
    if name_or_path not in table:
        raise RegistryError(f"unknown reward {name_or_path!r}; known: {sorted(table)} "
                            "(or give a dotted path 'pkg.module:Class')")
    if name_or_path in _RUNTIME:
        return _RUNTIME[name_or_path]
    return import_target(table[name_or_path].target)


def get_reward(name_or_path: str, **options: Any) -> RewardModel:
    """Build the reward ``name_or_path`` with ``options`` (nothing is loaded until its ``setup``)."""
    reward = resolve(name_or_path)(**options)
    if not isinstance(reward, RewardModel):
        raise RegistryError(f"{name_or_path!r} built a {type(reward).__name__}, which lacks the RewardModel "
                            "protocol (name, setup(device), score(batch))")
    return reward
