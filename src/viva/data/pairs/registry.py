"""Which class implements each pairs stage: built-in names, runtime registrations, or a dotted path
``pkg.module:Class``. A name registered twice is an error; imports happen only when a stage is built.

>>> sorted(known_components()["qc"])
['accept_all', 'vlm']
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Union

from viva.dotted import MissingAttribute, import_dotted
from viva.config import DataPipelineConfig, StageSpec

STAGES = ("detect", "track", "inpaint", "qc")
BUILTIN: Dict[str, Dict[str, str]] = {
    "detect": {"grounding_dino": "viva.data.pairs.grounding_dino:GroundingDinoDetector"},
    "track": {"sam2_video": "viva.data.pairs.sam2_tracker:Sam2VideoTracker"},
    "inpaint": {"diffusers_inpaint": "viva.data.pairs.diffusers_inpaint:DiffusersInpainter"},
    "qc": {"vlm": "viva.data.pairs.vlm_qc:VLMQualityCheck", "accept_all": "viva.data.pairs.vlm_qc:AcceptAll"},
}
_RUNTIME: Dict[str, Dict[str, Union[str, Callable[..., Any]]]] = {s: {} for s in STAGES}


class ComponentError(LookupError):
    """Unknown stage or component name, or a name registered twice."""


def known_components() -> Dict[str, Dict[str, Union[str, Callable[..., Any]]]]:
    """stage -> name -> target, built-in and runtime registrations together."""
    return {s: {**BUILTIN[s], **_RUNTIME[s]} for s in STAGES}


def register_component(stage: str, name: str, target: Union[str, Callable[..., Any]]) -> None:
    """Add ``name`` for ``stage`` (this process only: on Ray, name a dotted path in the config instead)."""
    if stage not in STAGES:
        raise ComponentError(f"unknown pairs stage {stage!r}; stages: {list(STAGES)}")
    if name in known_components()[stage]:
        raise ComponentError(f"pairs.{stage} component {name!r} is already registered "
                             f"({known_components()[stage][name]})")
    _RUNTIME[stage][name] = target


def unregister_component(stage: str, name: str) -> None:
    """Remove a runtime registration (tests)."""
    if _RUNTIME.get(stage, {}).pop(name, None) is None:
        raise ComponentError(f"pairs.{stage} component {name!r} was not registered at runtime")


def resolve(stage: str, name: str) -> Callable[..., Any]:
    """The class behind a registered name or a ``pkg.module:Class`` path."""
    target = name if ":" in name else known_components().get(stage, {}).get(name)
    if target is None:
        raise ComponentError(f"unknown pairs.{stage} component {name!r}; known: "
                             f"{sorted(known_components().get(stage, {}))} (or a dotted path 'pkg.module:Class')")
    if not isinstance(target, str):
        return target
    try:
        return import_dotted(target)
    except ImportError as e:
        module_name = target.partition(":")[0]
        raise ComponentError(f"pairs.{stage} component {name!r}: cannot import {module_name!r}: {e}") from e
    except (MissingAttribute, ValueError) as e:  # a missing attribute, or an empty one ('pkg.mod:')
        module_name, _, attr = target.partition(":")
        raise ComponentError(f"pairs.{stage} component {name!r}: {module_name!r} has no attribute {attr!r}") from e


def build_component(stage: str, spec: StageSpec, cfg: DataPipelineConfig) -> Any:
    """Build the component ``spec`` names for ``stage`` (its weights load now)."""
    return resolve(stage, spec.component)(spec, cfg)
