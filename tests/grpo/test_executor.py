"""Both executors satisfy the `Executor` protocol the driver calls: every method, with the protocol's parameters."""

import inspect

import pytest

from viva.grpo.executor import Executor
from viva.grpo.local_executor import LocalExecutor
from viva.grpo.ray_executor import RayExecutor

METHODS = [name for name, fn in vars(Executor).items() if inspect.isfunction(fn) and not name.startswith("_")]


def _params(fn) -> list[str]:
    return list(inspect.signature(fn).parameters)


def test_protocol_lists_the_driver_calls():
    assert {"submit", "collect", "score", "update", "sync", "learner_state", "load_learner_state", "save_lora",
            "busy_seconds", "shutdown"} == set(METHODS)


@pytest.mark.parametrize("cls", [LocalExecutor, RayExecutor])
@pytest.mark.parametrize("name", METHODS)
def test_executor_implements_the_protocol(cls, name):
    assert callable(getattr(cls, name, None)), f"{cls.__name__} lacks {name}"
    assert _params(getattr(cls, name)) == _params(getattr(Executor, name)), f"{cls.__name__}.{name}"
