"""Every forward backend follows a LoRA weight sync: compiled / TensorRT outputs equal eager for successive versions.

- CPU, default suite: ``torch.compile`` on the tiny EditDiT of a real `RolloutWorker`, new LoRA values delivered by
  the real weight-sync path (`make_update` -> `RolloutWorker.load_adapter`); one compile (~25-45 s on 2 cores).
- CPU, default suite: the TensorRT backend's export / build-per-signature / refit-after-sync logic, with a stand-in
  engine that copies the weights at build time (as TensorRT does), through `RolloutWorker.load_adapter` and the
  serving `AdapterBank`, so a missed refit shows as stale outputs or `StaleEngineError`.
- GPU (``-m gpu``): real torch-tensorrt engines vs eager for two policy versions, refit time printed.
"""

from __future__ import annotations

import copy

import pytest
import torch

from viva.config import LoRAConfig
from viva.models.backends import (
    BackendUnavailable, StaleEngineError, TensorRTBackend, after_weight_sync, apply_backend, tensorrt_problem,
)
from viva.records import make_update, verify_update
from viva.models.dit import EditDiT
from viva.models.lora import add_lora, load_lora_state_dict, lora_state_dict
from viva.models.presets import dit_config

# Relative max error allowed between a compiled backend and eager, max|out - ref| / max|ref|: inductor on CPU fp32
# reorders reductions (~1e-6); TensorRT fp32 may use TF32 matmuls (10-bit mantissa, ~1e-3).
COMPILE_RTOL = 1e-4
TENSORRT_RTOL = 1e-2


def _tiny_dit(seed: int = 0) -> EditDiT:
    torch.manual_seed(seed)
    dit = EditDiT.from_config(dit_config("tiny")).eval()
    return add_lora(dit, LoRAConfig(rank=4, alpha=8.0))


def _inputs(dit: EditDiT, device: str = "cpu", seed: int = 1) -> tuple[torch.Tensor, ...]:
    """noisy, source [2, C, 8, 16, 16], sigma [2], text states [2, 10, D], right-padded mask [2, 10]."""
    g = torch.Generator().manual_seed(seed)
    c, d = dit.latent_channels, dit.transformer.config.text_embed_dim
    noisy = torch.randn(2, c, 8, 16, 16, generator=g)
    source = torch.randn(2, c, 8, 16, 16, generator=g)
    sigma = torch.tensor([0.9, 0.4])
    text = torch.randn(2, 10, d, generator=g)
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 7:] = 0
    return tuple(t.to(device) for t in (noisy, source, sigma, text, mask))


def _policy(dit: EditDiT, version: int, seed: int):
    """A LoRA update with random values (B != 0, so the output moves), packed by the real weight-sync code."""
    g = torch.Generator().manual_seed(seed)
    sd = {k: torch.randn(v.shape, generator=g) * 0.2 for k, v in lora_state_dict(dit).items()}
    return make_update(sd, policy_version=version)


def _rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.float() - ref.float()).abs().max() / ref.float().abs().max())


class BakedCopyEngine:
    """Stand-in for TensorRT: ``build`` copies the exported weights into a private module (an engine bakes them in);
    ``refit`` copies the program's current values into that copy."""

    def __init__(self) -> None:
        self.builds = 0
        self.refits = 0

    def build(self, program, inputs):
        """A private copy of the exported module: its weights are frozen at build time."""
        self.builds += 1
        return copy.deepcopy(program.module())

    def refit(self, engine, program, inputs):
        """Copy the program's (live) weights into the private copy."""
        self.refits += 1
        with torch.no_grad():
            engine.load_state_dict(program.module().state_dict())
        return engine


@torch.no_grad()
def test_tensorrt_backend_refits_after_every_sync(tmp_path) -> None:
    """A rollout worker's load_adapter (the real sync path) refits the engine; a load that skips the hook is caught."""
    from tests.rollout.grpo_fixtures import tiny_grpo_config
    from viva.rollout.worker import RolloutWorker

    worker = RolloutWorker(tiny_grpo_config(tmp_path))
    compiler = BakedCopyEngine()
    dit = apply_backend(worker.editor.dit, TensorRTBackend(compiler))
    x = _inputs(dit)
    eager = lambda: type(dit).forward(dit, *x)  # noqa: E731  (the class forward bypasses the installed engine)
    torch.testing.assert_close(dit(*x), eager())
    assert compiler.builds == 1 and after_weight_sync(dit).action == "unchanged"
    outputs = []
    for version in (1, 2):
        before = dit(*x)
        worker.load_adapter(_policy(dit, version, seed=version))
        assert (worker.backend_sync.action, worker.backend_sync.engines) == ("refit", 1)
        out = dit(*x)
        assert _rel_err(out, eager()) < 1e-6
        assert _rel_err(before, out) > 1e-3  # the new version does change the output
        outputs.append(out)
    assert compiler.builds == 1 and compiler.refits == 2
    assert _rel_err(outputs[0], outputs[1]) > 1e-3
    load_lora_state_dict(dit, verify_update(_policy(dit, 3, seed=3)))  # weights changed, hook not called
    with pytest.raises(StaleEngineError, match="after_weight_sync"):
        dit(*x)  # never silently on old weights


@torch.no_grad()
def test_tensorrt_backend_new_signature_builds_and_replaced_parameters_reexport() -> None:
    torch.manual_seed(0)
    mlp = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.GELU(), torch.nn.Linear(16, 4)).eval()
    compiler = BakedCopyEngine()
    backend = TensorRTBackend(compiler, max_engines=2)
    backend.prepare(mlp)
    x = torch.randn(3, 8)
    mlp(x)
    mlp(x[:1])  # batch 1: a second engine
    assert compiler.builds == 2
    with pytest.raises(RuntimeError, match="at most 2 engines"):
        mlp(x[:2])
    # A load that replaces parameter objects (assign=True) still reaches every engine: the program is exported again.
    mlp.load_state_dict({"2.weight": torch.randn(4, 16)}, strict=False, assign=True)
    with pytest.raises(StaleEngineError):
        mlp(x)
    sync = backend.after_weight_sync()
    assert (sync.action, sync.engines) == ("refit", 2) and compiler.refits == 2
    assert _rel_err(mlp(x), type(mlp).forward(mlp, x)) < 1e-6
    # A different weight layout cannot be refitted: that engine is dropped and rebuilt on its next call.
    mlp[2] = torch.nn.Linear(16, 4, bias=False)
    assert backend.after_weight_sync().action == "refit, 2 dropped (rebuilt on next call)"
    assert _rel_err(mlp(x), type(mlp).forward(mlp, x)) < 1e-6 and compiler.builds == 3


@torch.no_grad()
def test_serving_adapter_swap_refits(base_ckpt, lora_dir, tmp_path) -> None:
    """`viva serve`'s AdapterBank swaps LoRA values in place; the engine follows each swap (no StaleEngineError)."""
    from tests.inference.conftest import make_lora
    from viva.inference.adapters import AdapterBank
    from viva.inference.loader import EditorSpec, load_editor

    editor = load_editor(EditorSpec(base=str(base_ckpt)))
    compiler = BakedCopyEngine()
    dit = apply_backend(editor.dit, TensorRTBackend(compiler))
    bank = AdapterBank(editor, {"a": str(lora_dir), "b": str(make_lora(base_ckpt, tmp_path / "b", seed=7))})
    x = _inputs(dit)
    outs = []
    for name in ("a", "b", "a"):
        with bank.use(bank.load(name)):
            out = dit(*x)
            assert _rel_err(out, type(dit).forward(dit, *x)) < 1e-6, name
            outs.append(out)
    assert compiler.builds == 1 and compiler.refits == 2
    assert _rel_err(outs[0], outs[1]) > 1e-3 and _rel_err(outs[0], outs[2]) < 1e-6


def test_compile_refuses_inductor_freezing() -> None:
    import torch._inductor.config as inductor_config

    with inductor_config.patch(freezing=True), pytest.raises(BackendUnavailable, match="freezing"):
        apply_backend(torch.nn.Linear(2, 2), "compile")
    assert not inductor_config.freezing


def test_eager_sync_is_a_noop() -> None:
    m = apply_backend(torch.nn.Linear(2, 2), "eager")
    sync = after_weight_sync(m)
    assert (sync.backend, sync.action, sync.seconds) == ("eager", "none", 0.0)


@torch.no_grad()
def test_compile_follows_weight_sync(tmp_path, monkeypatch) -> None:
    """One inductor compile of the tiny DiT in a real RolloutWorker; two synced versions equal eager, no recompile."""
    from torch._dynamo.utils import counters

    from tests.rollout.grpo_fixtures import tiny_grpo_config
    from viva.rollout.worker import RolloutWorker

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path / "inductor"))
    torch._dynamo.reset()
    worker = RolloutWorker(tiny_grpo_config(tmp_path, "model.backend=compile"))
    dit = worker.editor.dit
    x = _inputs(dit)
    for version in (1, 2):
        worker.load_adapter(_policy(dit, version, seed=10 + version))
        assert (worker.backend_sync.backend, worker.backend_sync.action) == ("compile", "checked")
        out = dit(*x)  # compiled (the first call compiles)
        ref = dit.forward(*x)  # nn.Module.compile wraps __call__ only: .forward is the eager path, same weights
        assert _rel_err(out, ref) < COMPILE_RTOL, f"policy v{version}"
        if version == 1:
            graphs, first = counters["stats"]["unique_graphs"], out
    assert graphs >= 1 and counters["stats"]["unique_graphs"] == graphs, "no compile, or a value-only sync recompiled"
    assert _rel_err(first, out) > 1e-3  # the two versions really differ


@pytest.mark.gpu
@torch.no_grad()
def test_tensorrt_matches_eager_across_syncs() -> None:
    problem = tensorrt_problem()
    if problem is not None:
        pytest.skip(problem)
    dit = _tiny_dit().cuda()
    reference = copy.deepcopy(dit)  # eager twin, loaded with the same versions
    apply_backend(dit, "tensorrt")
    x = _inputs(dit, "cuda")
    outputs = []
    for version in (1, 2):
        update = _policy(dit, version, seed=20 + version)
        load_lora_state_dict(dit, {k: v.cuda() for k, v in verify_update(update).items()})
        load_lora_state_dict(reference, {k: v.cuda() for k, v in verify_update(update).items()})
        sync = after_weight_sync(dit)
        print(f"policy v{version}: tensorrt {sync.action} of {sync.engines} engine(s) in {sync.seconds:.3f} s")
        out, ref = dit(*x), reference(*x)
        err = _rel_err(out, ref)
        print(f"policy v{version}: max |trt - eager| / max |eager| = {err:.2e} (tolerance {TENSORRT_RTOL})")
        assert err < TENSORRT_RTOL
        outputs.append(ref)
    assert _rel_err(outputs[0], outputs[1]) > 10 * TENSORRT_RTOL  # the versions differ far beyond the tolerance
