"""Forward backends for a module: eager, ``torch.compile`` (inductor) or TensorRT (torch-tensorrt).

The rollout workers and the inference pipeline share this one entry point::

    dit = apply_backend(editor.dit, "compile")          # compiled in place; parameters and names unchanged

Compilation is in place (``nn.Module.compile``), so the module keeps its identity, its ``state_dict`` keys and its
peft adapters: LoRA weights can still be swapped by name after compiling (a weight *value* change needs no
recompile; toggling adapters or grad mode may recompile, see shared/NOTES.md).
"""

from __future__ import annotations

import importlib.util
import logging

from torch import nn

BACKENDS = ("eager", "compile", "tensorrt")

log = logging.getLogger(__name__)


class BackendUnavailable(RuntimeError):
    """The requested forward backend cannot run here; the message says what to install or change."""


def tensorrt_problem() -> str | None:
    """Why the TensorRT backend cannot run here, or None when torch-tensorrt and a CUDA device are present."""
    import torch

    if importlib.util.find_spec("torch_tensorrt") is None:
        return "torch-tensorrt is not installed (install it on a CUDA machine with: pip install 'viva[tensorrt]')"
    if not torch.cuda.is_available():
        return "TensorRT needs a CUDA device; none is visible"
    return None


def resolve_backend(backend: str, allow_fallback: bool = False) -> str:
    """The backend that will actually run: ``backend`` itself, or "eager" when it is unavailable and fallback is on."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    problem = tensorrt_problem() if backend == "tensorrt" else None
    if problem is None:
        return backend
    if not allow_fallback:
        raise BackendUnavailable(f"backend 'tensorrt' unavailable: {problem}")
    log.warning("backend 'tensorrt' unavailable (%s); falling back to eager", problem)
    return "eager"


def apply_backend(module: nn.Module, backend: str, allow_fallback: bool = False) -> nn.Module:
    """Prepare ``module``'s forward for ``backend`` in place and return it (a callable with the same signature)."""
    chosen = resolve_backend(backend, allow_fallback)
    if chosen == "compile":
        # dynamic=None: static shapes first, a dynamic graph after the first shape change (batch / frame count).
        module.compile(dynamic=None)
    elif chosen == "tensorrt":
        import torch_tensorrt  # noqa: F401  (registers the "torch_tensorrt" dynamo backend)

        module.compile(backend="torch_tensorrt", dynamic=False)
    return module
