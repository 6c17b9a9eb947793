"""Forward backends for a module: eager, ``torch.compile`` (inductor) or TensorRT (torch-tensorrt), and what each
must do after a weight sync.

The rollout workers and the inference pipeline share one entry point; every backend prepares the module IN PLACE
(same object, same parameter names, peft adapters intact), and ``after_weight_sync`` is called after new LoRA values
were copied into it::

    dit = apply_backend(editor.dit, "tensorrt")     # in place; the backend is attached to the module
    load_lora_state_dict(dit, verify_update(update))
    report = after_weight_sync(dit)                  # BackendSync: action + seconds, logged by the caller

What a sync means for each backend:

- ``eager``: nothing.
- ``compile`` (inductor): parameters are graph *inputs* (dynamo always lifts module parameters), so a value change
  reaches the compiled graph with no recompile. Two things would break that, and are checked: inductor's
  ``freezing`` (it folds parameters into the graph as constants) is refused, and a sync that *replaced* parameter
  objects instead of copying into them is reported (dynamo guards on them, so the next call recompiles).
- ``tensorrt``: a TensorRT engine holds its own copy of the weights, so a sync must refit every engine. The module is
  exported (``torch.export``) per input signature on first use and built with ``immutable_weights=False``; after a
  sync each engine is refitted from its exported program (``torch_tensorrt.dynamo.refit_module_weights``), whose
  state dict holds the module's live parameters. Calling the module after an in-place weight change without
  ``after_weight_sync`` raises ``StaleEngineError``: an engine never runs silently on old weights.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Protocol

import torch
from torch import nn

BACKENDS = ("eager", "compile", "tensorrt")
_ATTR = "_viva_forward_backend"  # where apply_backend attaches the backend object to the module

log = logging.getLogger(__name__)


class BackendUnavailable(RuntimeError):
    """The requested forward backend cannot run here; the message says what to install or change."""


class StaleEngineError(RuntimeError):
    """A compiled engine would run on weights older than the module's: call ``after_weight_sync`` first."""


@dataclass(frozen=True)
class BackendSync:
    """What a backend did after a weight sync (for logs and metrics)."""

    backend: str
    action: str  # none | checked | recompile-next-call | unchanged | not-built | refit[, N dropped ...]
    seconds: float
    engines: int = 0


class ForwardBackend(Protocol):
    """A forward backend: ``prepare`` a module in place once, then ``after_weight_sync`` after every weight sync."""

    name: str

    def prepare(self, module: nn.Module) -> nn.Module:
        """Make ``module``'s forward run on this backend, in place; returns ``module``."""
        ...

    def after_weight_sync(self) -> BackendSync:
        """Make the prepared module use the weights just loaded into it; report what it took."""
        ...


def tensorrt_problem() -> str | None:
    """Why the TensorRT backend cannot run here, or None when torch-tensorrt and a CUDA device are present."""
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


def make_backend(backend: str, allow_fallback: bool = False) -> ForwardBackend:
    """A fresh backend object for ``backend`` (after `resolve_backend`: unavailable TensorRT is an error or eager)."""
    chosen = resolve_backend(backend, allow_fallback)
    if chosen == "compile":
        return CompileBackend()
    if chosen == "tensorrt":
        return TensorRTBackend(TorchTensorRTCompiler())
    return EagerBackend()


def apply_backend(module: nn.Module, backend: str | ForwardBackend, allow_fallback: bool = False) -> nn.Module:
    """Prepare ``module``'s forward for ``backend`` (a name, or a backend object) in place, attach the backend for
    `after_weight_sync`, and return the module."""
    chosen = make_backend(backend, allow_fallback) if isinstance(backend, str) else backend
    chosen.prepare(module)
    object.__setattr__(module, _ATTR, chosen)  # a plain attribute: not a submodule, not in the state dict
    return module


def backend_of(module: nn.Module) -> ForwardBackend:
    """The backend `apply_backend` attached to ``module`` (eager when none was applied)."""
    return getattr(module, _ATTR, None) or EagerBackend()


def after_weight_sync(module: nn.Module) -> BackendSync:
    """Call after new weights were copied into ``module``: its backend refits / checks (see the module docstring)."""
    return backend_of(module).after_weight_sync()


# -- eager ---------------------------------------------------------------------------------------------------------


class EagerBackend:
    """Plain PyTorch: nothing to prepare, nothing to do after a sync."""

    name = "eager"

    def prepare(self, module: nn.Module) -> nn.Module:
        """No-op."""
        return module

    def after_weight_sync(self) -> BackendSync:
        """No-op."""
        return BackendSync("eager", "none", 0.0)


# -- torch.compile -------------------------------------------------------------------------------------------------


def _parameter_ids(module: nn.Module) -> tuple[int, ...]:
    return tuple(id(t) for t in (*module.parameters(), *module.buffers()))


class CompileBackend:
    """``torch.compile`` (inductor) in place; parameters stay graph inputs, so a sync needs no recompile."""

    name = "compile"

    def __init__(self) -> None:
        self._module: nn.Module | None = None
        self._ids: tuple[int, ...] = ()

    def prepare(self, module: nn.Module) -> nn.Module:
        """``module.compile(dynamic=None)``: static shapes first, a dynamic graph after the first shape change."""
        _check_no_freezing()
        module.compile(dynamic=None)
        self._module, self._ids = module, _parameter_ids(module)
        return module

    def after_weight_sync(self) -> BackendSync:
        """Check the sync copied into the compiled parameters (no freezing, same objects); nothing to rebuild."""
        if self._module is None:
            raise RuntimeError("CompileBackend.after_weight_sync before prepare")
        t = time.perf_counter()
        _check_no_freezing()
        ids = _parameter_ids(self._module)
        action = "checked"
        if ids != self._ids:
            # Correct (dynamo's guards see new objects) but slow: the next call compiles again.
            log.warning("compile backend: the weight sync replaced parameter objects; the next call recompiles")
            action, self._ids = "recompile-next-call", ids
        return BackendSync("compile", action, time.perf_counter() - t)


def _check_no_freezing() -> None:
    import torch._inductor.config as inductor_config

    if inductor_config.freezing:
        raise BackendUnavailable("backend 'compile' with torch._inductor.config.freezing=True folds the weights into "
                                 "the compiled graph as constants, so a LoRA weight sync would not reach it; "
                                 "turn freezing off (or use backend 'tensorrt', which refits after each sync)")


# -- TensorRT ------------------------------------------------------------------------------------------------------


class EngineCompiler(Protocol):
    """Builds an engine from an exported program and refits it from the same program's (live) weights."""

    def build(self, program: torch.export.ExportedProgram, inputs: tuple[torch.Tensor, ...]) -> Callable:
        """A callable engine taking ``inputs``' tensors positionally; it may hold its own copy of the weights."""
        ...

    def refit(self, engine: Callable, program: torch.export.ExportedProgram,
              inputs: tuple[torch.Tensor, ...]) -> Callable:
        """``engine`` with the program's current weight values (in place where possible); returns the engine."""
        ...


class TorchTensorRTCompiler:
    """torch-tensorrt's dynamo path: ``compile(immutable_weights=False)`` then ``refit_module_weights`` per sync."""

    def __init__(self, options: dict[str, Any] | None = None, verify_refit: bool = False) -> None:
        self.options = dict(options or {})
        self.verify_refit = verify_refit  # refit_module_weights(verify_output=True): one extra forward per engine

    def build(self, program: torch.export.ExportedProgram, inputs: tuple[torch.Tensor, ...]) -> Callable:
        """``torch_tensorrt.dynamo.compile`` with refittable weights (precision follows the module's dtypes)."""
        import torch_tensorrt

        compile_fn = torch_tensorrt.dynamo.compile
        options = dict(self.options)
        if "use_explicit_typing" in inspect.signature(compile_fn).parameters:
            options.setdefault("use_explicit_typing", True)  # older releases: keep bf16 layers bf16
        return compile_fn(program, arg_inputs=list(inputs), immutable_weights=False, **options)

    def refit(self, engine: Callable, program: torch.export.ExportedProgram,
              inputs: tuple[torch.Tensor, ...]) -> Callable:
        """Copy the program's weights into the engine without rebuilding it."""
        from torch_tensorrt.dynamo import refit_module_weights

        return refit_module_weights(engine, program, arg_inputs=tuple(inputs), verify_output=self.verify_refit,
                                    in_place=True)


@dataclass
class _Engine:
    """One built engine: the exported program it came from, example inputs, and the weights version it holds."""

    program: torch.export.ExportedProgram
    engine: Callable
    inputs: tuple[torch.Tensor, ...]
    bound: nn.Module
    layout: dict  # `_layout` of the program as exported, before the compiler lowered it
    weights: tuple = field(default_factory=tuple)


class _BoundCall(nn.Module):
    """``module``'s class forward with the non-tensor arguments fixed: what gets exported (tensors only, positional).

    Calls the class's ``forward`` (not the instance attribute the TensorRT backend installs), so exporting never
    recurses into the engine.
    """

    def __init__(self, module: nn.Module, template: tuple, kw_names: tuple[str, ...]) -> None:
        super().__init__()
        self.module = module
        self.template = template  # per argument: None for a tensor slot, else ("const", value)
        self.kw_names = kw_names

    def forward(self, *tensors: torch.Tensor) -> Any:
        """Rebuild the original call from the tensor slots and the fixed constants."""
        it = iter(tensors)
        values = [next(it) if slot is None else slot[1] for slot in self.template]
        n_pos = len(values) - len(self.kw_names)
        return type(self.module).forward(self.module, *values[:n_pos], **dict(zip(self.kw_names, values[n_pos:])))


def _signature(args: tuple, kwargs: dict) -> tuple[tuple, tuple, tuple[str, ...], tuple[torch.Tensor, ...]]:
    """(cache key, template, keyword names, tensors) of a call; tensors by shape/dtype/device, others by value."""
    names = tuple(sorted(kwargs))
    values = (*args, *(kwargs[k] for k in names))
    template = tuple(None if isinstance(v, torch.Tensor) else ("const", v) for v in values)
    tensors = tuple(v for v in values if isinstance(v, torch.Tensor))
    key = (len(args), names, tuple(
        (tuple(v.shape), v.dtype, str(v.device)) if isinstance(v, torch.Tensor) else ("const", repr(v)) for v in values
    ))
    return key, template, names, tensors


def _weights_version(module: nn.Module) -> tuple:
    """Changes whenever a parameter/buffer is replaced or modified in place (autograd's version counters)."""
    ts = (*module.parameters(), *module.buffers())
    return tuple(id(t) for t in ts), sum(t._version for t in ts)


def _adapter_state(module: nn.Module) -> tuple:
    """Which peft adapters are enabled/active: a different state is a different graph, so a different engine."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    return tuple((m.disable_adapters, tuple(m.active_adapters)) for m in module.modules()
                 if isinstance(m, BaseTunerLayer))


class TensorRTBackend:
    """TensorRT engines built per input signature on first use, refitted after every weight sync.

    ``prepare`` installs ``forward`` on the instance (so ``module(...)`` runs the engine) and leaves everything else
    as is: parameters, names and adapters stay, a sync copies into them, ``after_weight_sync`` refits. At most
    ``max_engines`` signatures are built (each engine holds a copy of the weights); one more is an error.
    """

    name = "tensorrt"

    def __init__(self, compiler: EngineCompiler, max_engines: int = 4) -> None:
        self.compiler = compiler
        self.max_engines = max_engines
        self.engines: dict[tuple, _Engine] = {}
        self._module: nn.Module | None = None

    def prepare(self, module: nn.Module) -> nn.Module:
        """Route ``module``'s calls through `_forward` (engines are built lazily, on the first call per shape)."""
        if self._module is not None:
            raise RuntimeError("TensorRTBackend.prepare: this backend already serves a module")
        self._module = module
        object.__setattr__(module, "forward", self._forward)
        return module

    def _forward(self, *args: Any, **kwargs: Any) -> Any:
        module = self._module
        key, template, names, tensors = _signature(args, kwargs)
        key = (key, _adapter_state(module), module.training)
        entry = self.engines.get(key)
        if entry is None:
            entry = self._build(key, template, names, tensors)
        elif entry.weights != _weights_version(module):
            raise StaleEngineError("TensorRT engine: the module's weights changed since it was built or refitted; "
                                   "call viva.models.backends.after_weight_sync(module) after loading weights")
        return entry.engine(*tensors)

    def _build(self, key: tuple, template: tuple, names: tuple[str, ...], tensors: tuple) -> _Engine:
        if len(self.engines) >= self.max_engines:
            raise RuntimeError(f"TensorRT backend: a {len(self.engines) + 1}th input signature "
                               f"(shapes {[tuple(t.shape) for t in tensors]}); at most {self.max_engines} engines are "
                               "built, each holding a copy of the weights: keep batch and video shapes fixed")
        t = time.perf_counter()
        bound = _BoundCall(self._module, template, names)
        program = torch.export.export(bound, tensors, strict=False)
        layout = _layout(program)
        engine = self.compiler.build(program, tensors)
        entry = _Engine(program, engine, tuple(x.detach().clone() for x in tensors), bound, layout,
                        _weights_version(self._module))
        self.engines[key] = entry
        log.info("TensorRT engine %d built in %.1f s for shapes %s", len(self.engines), time.perf_counter() - t,
                 [tuple(x.shape) for x in tensors])
        return entry

    def after_weight_sync(self) -> BackendSync:
        """Refit every built engine from the module's current weights; an engine whose parameters changed shape or
        names (a different adapter structure) is dropped and rebuilt on its next call."""
        if self._module is None:
            raise RuntimeError("TensorRTBackend.after_weight_sync before prepare")
        if not self.engines:
            return BackendSync("tensorrt", "not-built", 0.0)  # the first call builds with the current weights
        version = _weights_version(self._module)
        if all(e.weights == version for e in self.engines.values()):
            return BackendSync("tensorrt", "unchanged", 0.0, len(self.engines))
        t = time.perf_counter()
        dropped = 0
        for key, entry in list(self.engines.items()):
            if not _program_is_live(entry):  # parameters were replaced: export again to see the new values
                program = torch.export.export(entry.bound, entry.inputs, strict=False)
                if _layout(program) != entry.layout:
                    del self.engines[key]
                    dropped += 1
                    continue
                entry.program = program
            entry.engine = self.compiler.refit(entry.engine, entry.program, entry.inputs)
            entry.weights = version
        seconds = time.perf_counter() - t
        action = "refit" if not dropped else f"refit, {dropped} dropped (rebuilt on next call)"
        log.info("TensorRT: %s: %d engine(s) in %.3f s", action, len(self.engines), seconds)
        return BackendSync("tensorrt", action, seconds, len(self.engines))


def _layout(program: torch.export.ExportedProgram) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Names, shapes and dtypes of an exported program's weights: an engine can be refitted only within one layout."""
    return {k: (tuple(v.shape), v.dtype) for k, v in program.state_dict.items()}


def _program_is_live(entry: _Engine) -> bool:
    """Whether the exported program's state dict still holds the module's own parameter objects (so its values are
    the current ones); False after a load that replaced parameters (then the program is exported again)."""
    live = dict(entry.bound.named_parameters())
    live.update(dict(entry.bound.named_buffers()))
    return all(live.get(name) is tensor for name, tensor in entry.program.state_dict.items())
