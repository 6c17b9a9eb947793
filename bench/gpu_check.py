"""One-GPU check (≤ 8 min on one H100): the gpu-marked tests, a 13B-width DiT block stack on eager / torch.compile /
TensorRT with a weight sync in between, the r=64 LoRA sync of the 13B DiT, and one tiny Edit-GRPO step; one table.

Run: bash bench/gpu_check.sh     (or: .venv/bin/python bench/gpu_check.py [--skip-tests] [--budget-s 450])
     .venv/bin/python bench/gpu_check.py --smoke   (CPU, tiny sizes: exercises the code paths, measures nothing)

What each row is:
- tests: ``pytest -m gpu`` (TensorRT vs eager over two synced policy versions, and any other gpu test).
- stack: the EditDiT of ``hunyuan-13b`` cut to 2 dual + 2 single blocks at full width (3072 = 24 x 128; patch embed,
  token refiner and output layer included), LoRA r=64, bf16, one 480p sample: 33 frames of 480x848 -> VAE latent
  16 x 9 x 60 x 106 -> patch 2 -> 9 x 30 x 53 = 14310 video tokens, + 256 text tokens. Median forward time per backend
  and its ratio to eager; build time (compile / engine build, first call); then new LoRA values are loaded and
  ``after_weight_sync`` runs (TensorRT: refit of 4 of the 60 blocks: x15 for the full model is an extrapolation), and
  the output is compared with eager on the same weights.
- sync: ``viva.records`` (pack, verify) on every LoRA tensor of the full 13B DiT (LoRA on the GPU, base weights on meta):
  learner-side pack (GPU -> host fp32 + SHA-256), actor-side verify (SHA-256), load into the DiT (host -> GPU).
  The Ray transfer between them is not included (bench/bench_weight_sync.py measures it).
- grpo: ``viva grpo --config configs/grpo/toy.yaml --local`` for one step with ``model.device=cuda`` (tiny preset).
Sections run cheapest first and are skipped (said so in the table) once ``--budget-s`` is spent.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch

from viva.config import LoRAConfig
from viva.models.presets import dit_config

REPO = Path(__file__).resolve().parents[1]
BF16_RTOL = 5e-2  # max|out - eager| / max|eager| allowed for a bf16 compiled backend (bf16 has an 8-bit mantissa)


@dataclass(frozen=True)
class Row:
    """One line of the result table."""

    section: str
    what: str
    value: str
    note: str = ""


@dataclass(frozen=True)
class StackSpec:
    """Block-stack size: full 13B width on the GPU; tiny in --smoke."""

    config: dict
    latent: tuple[int, int, int, int]  # C, F', h, w
    text_tokens: int
    dtype: torch.dtype
    device: str


def gpu_spec() -> StackSpec:
    """2 dual + 2 single blocks of the 13B config at a 480p, 33-frame token count."""
    cfg = dict(dit_config("hunyuan-13b"), num_layers=2, num_single_layers=2)
    return StackSpec(cfg, (16, 9, 60, 106), 256, torch.bfloat16, "cuda")


def smoke_spec() -> StackSpec:
    """The same code path at tiny sizes on the CPU."""
    cfg = dict(dit_config("hunyuan-13b"), num_layers=2, num_single_layers=2, num_attention_heads=2,
               attention_head_dim=128, text_embed_dim=64, pooled_projection_dim=64)
    return StackSpec(cfg, (16, 3, 16, 16), 16, torch.float32, "cpu")


def require_gpu() -> None:
    """Exit with a clear message when no CUDA device is visible."""
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device is visible (torch.cuda.is_available() is False); run it on a GPU node, "
              "or pass --smoke to exercise the code paths on the CPU", file=sys.stderr)
        sys.exit(2)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Callable[[], object], device: str, iters: int) -> float:
    """Median seconds of ``fn`` over ``iters`` calls (after the caller's warm-up)."""
    times = []
    for _ in range(iters):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def run_gpu_tests(timeout_s: int) -> list[Row]:
    """``pytest -m gpu`` over the whole suite; the summary line is the result."""
    t = time.perf_counter()
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "-rs", "tests"]
    try:
        out = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return [Row("tests", "pytest -m gpu", "TIMEOUT", f"> {timeout_s} s")]
    lines = [ln for ln in out.stdout.splitlines() if ln.strip()]
    print("\n".join(lines[-15:]), flush=True)
    summary = lines[-1] if lines else out.stderr.strip()[-200:]
    status = "ok" if out.returncode in (0, 5) else f"FAIL (rc {out.returncode})"  # 5: nothing collected
    return [Row("tests", "pytest -m gpu", status, f"{summary} ({time.perf_counter() - t:.0f} s)")]


def build_stack(spec: StackSpec) -> torch.nn.Module:
    """The block-stack EditDiT with a r=64 LoRA, random weights, on ``spec.device`` in ``spec.dtype``."""
    from viva.models.dit import EditDiT
    from viva.models.lora import add_lora

    torch.manual_seed(0)
    with torch.device(spec.device):
        dit = EditDiT.from_config(spec.config)
    dit = dit.to(spec.dtype).eval()
    return add_lora(dit, LoRAConfig(rank=64, alpha=128.0))


def stack_inputs(spec: StackSpec) -> tuple[torch.Tensor, ...]:
    """noisy, source [1, C, F', h, w], sigma [1], text states [1, L, D_text], text mask [1, L]."""
    g = torch.Generator().manual_seed(1)
    c, f, h, w = spec.latent

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=g).to(spec.device, spec.dtype)

    mask = torch.ones(1, spec.text_tokens, dtype=torch.long, device=spec.device)
    return (randn(1, c, f, h, w), randn(1, c, f, h, w), torch.tensor([0.7], device=spec.device),
            randn(1, spec.text_tokens, spec.config["text_embed_dim"]), mask)


def load_policy(dit: torch.nn.Module, version: int) -> None:
    """New LoRA values through the real sync path: make_update -> verify_update -> load_lora_state_dict."""
    from viva.records import make_update, verify_update
    from viva.models.lora import load_lora_state_dict, lora_state_dict

    g = torch.Generator().manual_seed(version)
    new = {}
    for k, v in lora_state_dict(dit).items():  # A ~ N(0, 1/in) like kaiming, B ~ N(0, 0.2): a visible change
        std = v.shape[1] ** -0.5 if "lora_A" in k else 0.2
        new[k] = torch.randn(v.shape, generator=g) * std
    load_lora_state_dict(dit, verify_update(make_update(new, version)))


def _rel_err(out: torch.Tensor, ref: torch.Tensor) -> float:
    return float((out.float() - ref.float()).abs().max() / ref.float().abs().max())


@torch.no_grad()
def bench_backend(backend: str, spec: StackSpec, iters: int, eager_s: float | None) -> tuple[list[Row], float]:
    """Forward time of the stack on ``backend``, then a LoRA sync: after_weight_sync time and agreement with eager."""
    from viva.models.backends import after_weight_sync, apply_backend, tensorrt_problem

    if backend == "tensorrt" and tensorrt_problem():
        return [Row("stack", "tensorrt", "unavailable", tensorrt_problem())], 0.0
    dit, x = build_stack(spec), stack_inputs(spec)
    load_policy(dit, 1)
    apply_backend(dit, backend)
    t = time.perf_counter()
    out1 = dit(*x)
    _sync(spec.device)
    first_s = time.perf_counter() - t
    dit(*x)
    sec = timed(lambda: dit(*x), spec.device, iters)
    load_policy(dit, 2)
    sync = after_weight_sync(dit)
    out2, ref2 = dit(*x), type(dit).forward(dit, *x)  # the class forward is eager on every backend
    err, moved = _rel_err(out2, ref2), _rel_err(out1, ref2)
    # Following the sync: close to eager on the new weights, and much closer than the old weights would be.
    ok = "ok" if err < BF16_RTOL and err < 0.25 * moved else "FAIL"
    ratio = f"x{eager_s / sec:.2f} vs eager" if eager_s else "reference"
    scale = "; 60 blocks: ~x15 (extrapolated)" if backend == "tensorrt" else ""
    rows = [Row("stack", f"{backend} forward", f"{sec * 1e3:.1f} ms", f"{ratio}; first call {first_s:.1f} s"),
            Row("stack", f"{backend} after sync", f"{sync.action}, {sync.seconds:.3f} s",
                f"{ok}: |out - eager| {err:.1e} (< {BF16_RTOL} and < v1->v2 change {moved:.1e} / 4){scale}")]
    del dit
    torch._dynamo.reset()
    if spec.device == "cuda":
        torch.cuda.empty_cache()
    return rows, sec


def lora_sync_13b(device: str, dtype: torch.dtype, repeats: int = 3) -> list[Row]:
    """The real weight-sync code on every r=64 LoRA tensor of the full 13B DiT (base weights stay on meta)."""
    from viva.records import make_update, verify_update
    from viva.models.dit import EditDiT
    from viva.models.lora import add_lora, load_lora_state_dict, lora_state_dict

    with torch.device("meta"):
        dit = EditDiT.from_config(dit_config("hunyuan-13b"))
        add_lora(dit, LoRAConfig(rank=64, alpha=128.0))
    for name, module in dit.named_modules():
        if name.endswith((".lora_A.default", ".lora_B.default")):
            module.to_empty(device=device).to(dtype)
            torch.nn.init.normal_(module.weight, std=0.01)
    times: dict[str, list[float]] = {"pack": [], "verify": [], "load": []}
    for version in range(1, repeats + 1):
        t0 = time.perf_counter()
        update = make_update(lora_state_dict(dit), version)  # learner: device -> host fp32 numpy + SHA-256
        t1 = time.perf_counter()
        tensors = verify_update(update)  # rollout actor: SHA-256 check
        t2 = time.perf_counter()
        load_lora_state_dict(dit, tensors)  # rollout actor: host -> device copy into the adapter
        _sync(device)
        for k, a, b in (("pack", t0, t1), ("verify", t1, t2), ("load", t2, time.perf_counter())):
            times[k].append(b - a)
    n = sum(a.size for a in update.tensors.values())
    note = f"{len(update.tensors)} tensors, {n / 1e6:.1f} M params, {update.num_bytes / 2**20:.0f} MiB fp32"
    rows = [Row("sync", f"LoRA r=64 13B {k}", f"{statistics.median(v):.3f} s", note if k == "pack" else "")
            for k, v in times.items()]
    rows.append(Row("sync", "LoRA r=64 13B total", f"{sum(statistics.median(v) for v in times.values()):.3f} s",
                    "excludes the Ray transfer (bench/bench_weight_sync.py)"))
    return rows


def grpo_step(device: str, timeout_s: int) -> list[Row]:
    """One tiny-preset Edit-GRPO step through the CLI, every role in one process (--local), on ``device``."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_grpo_") as out:
        cmd = [sys.executable, "-m", "viva.cli", "grpo", "--config", "configs/grpo/toy.yaml", "--local",
               "--no-progress", f"output_dir={out}", "grpo.steps=1", "grpo.eval_every=0", "grpo.checkpoint_every=0",
               "logging.wandb=false", "logging.sample_every=0", "eval_data=null", f"model.device={device}"]
        t = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            return [Row("grpo", "toy step (--local)", "TIMEOUT", f"> {timeout_s} s")]
        wall = time.perf_counter() - t
        metrics = Path(out) / "metrics.jsonl"
        if proc.returncode != 0 or not metrics.is_file():
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return [Row("grpo", "toy step (--local)", f"FAIL (rc {proc.returncode})", " | ".join(tail)[:300])]
        train = [r for r in map(json.loads, metrics.read_text().splitlines()) if r.get("kind") == "train"]
    m = train[-1]
    note = (f"rollout {m['busy/rollout']:.2f} s, reward {m['busy/reward']:.2f} s, update {m['time/update']:.2f} s, "
            f"sync {m['time/sync']:.3f} s; process wall {wall:.0f} s")
    return [Row("grpo", f"toy step on {device} (--local)", "ok", note)]


def print_table(rows: list[Row]) -> None:
    """The result table (section | what | value | note)."""
    fields = ("section", "what", "value")
    w = [max(len(getattr(r, f)) for r in rows + [Row(*fields)]) for f in fields]
    print(f"\n{'section'.ljust(w[0])}  {'what'.ljust(w[1])}  {'value'.ljust(w[2])}  note")
    for r in rows:
        print(f"{r.section.ljust(w[0])}  {r.what.ljust(w[1])}  {r.value.ljust(w[2])}  {r.note}")


class Runner:
    """Runs sections in order within a time budget; a failing section becomes an ERROR row, never a silent skip."""

    def __init__(self, budget_s: float) -> None:
        self.deadline = time.perf_counter() + budget_s
        self.rows: list[Row] = []

    def run(self, section: str, what: str, fn: Callable[[], list[Row]], needs_s: float) -> list[Row]:
        """Run ``fn`` if ``needs_s`` seconds remain; record its rows (or why it did not run)."""
        left = self.deadline - time.perf_counter()
        if left < needs_s:
            rows = [Row(section, what, "skipped", f"time budget: {left:.0f} s left, needs ~{needs_s:.0f} s")]
        else:
            try:
                rows = fn()
            except Exception as e:  # noqa: BLE001 - reported in the table and the exit code
                rows = [Row(section, what, "ERROR", f"{type(e).__name__}: {str(e).splitlines()[0][:200]}")]
        for r in rows:
            print(f"[{r.section}] {r.what}: {r.value}  {r.note}", flush=True)
        self.rows += rows
        return rows

    @property
    def failed(self) -> bool:
        """Whether any row failed, errored or timed out."""
        return any(r.value.split(" ")[0] in ("FAIL", "ERROR", "TIMEOUT") or r.note.startswith("FAIL")
                   for r in self.rows)


def main(argv: list[str] | None = None) -> int:
    """Run every section, print the table; exit 1 when something failed, 2 without a GPU."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--smoke", action="store_true", help="CPU, tiny sizes: exercise the code paths, measure nothing")
    ap.add_argument("--skip-tests", action="store_true")
    ap.add_argument("--budget-s", type=float, default=450.0, help="stop starting sections after this many seconds")
    ap.add_argument("--iters", type=int, default=5)
    args = ap.parse_args(argv)
    if not args.smoke:
        require_gpu()
        print(f"device: {torch.cuda.get_device_name(0)}; torch {torch.__version__}", flush=True)
    spec = smoke_spec() if args.smoke else gpu_spec()
    r = Runner(args.budget_s)
    if not (args.skip_tests or args.smoke):
        r.run("tests", "pytest -m gpu", lambda: run_gpu_tests(timeout_s=150), needs_s=60)
    r.run("sync", "LoRA r=64 13B", lambda: lora_sync_13b(spec.device, spec.dtype), needs_s=20)
    r.run("grpo", "toy step", lambda: grpo_step(spec.device, timeout_s=180), needs_s=60)
    eager_s = None
    for backend, needs in (("eager", 15), ("compile", 90), ("tensorrt", 120)):
        out: list[float] = []

        def one(b: str = backend) -> list[Row]:
            rows, sec = bench_backend(b, spec, args.iters, eager_s)
            out.append(sec)
            return rows

        r.run("stack", backend, one, needs_s=needs)
        if backend == "eager" and out:
            eager_s = out[0]
    if args.smoke:
        print("\nSMOKE RUN on the CPU at tiny sizes: the numbers below are not measurements.")
    print_table(r.rows)
    return 1 if r.failed else 0


if __name__ == "__main__":
    sys.exit(main())
