"""Forward backends: eager is a no-op, compile matches eager, TensorRT's absence is a clear error."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from viva.models.backends import BackendUnavailable, apply_backend, resolve_backend, tensorrt_problem


def test_eager_is_identity() -> None:
    m = nn.Linear(4, 4)
    assert apply_backend(m, "eager") is m


def test_unknown_backend() -> None:
    with pytest.raises(ValueError, match="unknown backend 'onnx'"):
        apply_backend(nn.Linear(2, 2), "onnx")


@pytest.mark.skipif(tensorrt_problem() is None, reason="TensorRT is usable here")
def test_tensorrt_missing_is_clear() -> None:
    with pytest.raises(BackendUnavailable, match=r"tensorrt"):
        apply_backend(nn.Linear(2, 2), "tensorrt")
    assert resolve_backend("tensorrt", allow_fallback=True) == "eager"


@pytest.mark.slow  # inductor compiles for 10-40 s on a loaded 2-core CPU; bench/bench_inference.py runs it too
def test_compile_matches_eager(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    torch.manual_seed(0)
    m = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 4))
    x = torch.randn(3, 8)
    ref = m(x)
    compiled = apply_backend(m, "compile")
    assert compiled is m and set(m.state_dict()) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    torch.testing.assert_close(compiled(x), ref, rtol=1e-5, atol=1e-6)
