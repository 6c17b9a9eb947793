"""bench/memory_plan.py: meta-device counts equal the real modules', the activation formula matches a measured
forward, and the plan scales the way it must (tokens, FSDP, SP, checkpointing)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from viva.config import LoRAConfig
from viva.models.presets import dit_config

_PATH = Path(__file__).resolve().parents[2] / "bench" / "memory_plan.py"
_spec = importlib.util.spec_from_file_location("memory_plan", _PATH)
mp = importlib.util.module_from_spec(_spec)
sys.modules["memory_plan"] = mp  # dataclasses look their module up while the file executes
_spec.loader.exec_module(mp)


def test_meta_counts_equal_the_real_tiny_module() -> None:
    from viva.models.dit import EditDiT
    from viva.models.lora import add_lora

    lora = LoRAConfig(rank=4, alpha=8.0)
    counted = mp.count_model(dit_config("tiny"), lora)
    real = add_lora(EditDiT.from_config(dit_config("tiny")), lora)  # on CPU, real tensors
    n_lora = sum(p.numel() for n, p in real.named_parameters() if "lora_" in n)
    assert counted.lora == n_lora > 0
    assert counted.dit == sum(p.numel() for p in real.parameters()) - n_lora
    block = real.transformer.transformer_blocks[0]
    assert counted.largest_block == sum(p.numel() for n, p in block.named_parameters() if "lora_" not in n)


def test_saved_activation_formula_matches_a_measured_forward() -> None:
    for ckpt, measured, formula in mp.formula_check():
        assert abs(formula - measured) / measured < 0.03, (ckpt, measured, formula)


@pytest.fixture(scope="module")
def m13b():
    """Counts of the 13B EditDiT + r=64 LoRA (meta device)."""
    return mp.count_model(dit_config("hunyuan-13b"), LoRAConfig(rank=64, alpha=128.0))


def test_13b_counts_and_token_counts(m13b) -> None:
    assert 12.5e9 < m13b.dit < 13.2e9 and (m13b.n_dual, m13b.n_single, m13b.hidden) == (20, 40, 3072)
    assert mp.VideoShape("480p", 480, 848, 33).tokens() == 9 * 30 * 53  # 33 frames -> 9 latent frames, /8 /2
    assert mp.VideoShape("720p", 720, 1280, 61).tokens() == 16 * 45 * 80


def test_plan_scales_with_tokens_and_shards(m13b) -> None:
    t = 14566
    for ckpt in (False, True):
        assert mp.saved_elements(m13b, 2 * t, ckpt) == 2 * mp.saved_elements(m13b, t, ckpt)  # linear in tokens
    totals = [mp.plan(m13b, s.tokens() + 256, mp.Layout(8, 1, True), 0)["total"] for s in mp.SHAPES]
    assert totals == sorted(totals) and len(set(totals)) == 4  # more frames / pixels -> more memory
    by_fsdp = [mp.plan(m13b, t, mp.Layout(f, 1, True), 0) for f in (1, 2, 4, 8)]
    assert all(a["weights"] > b["weights"] and a["lora"] > b["lora"] for a, b in zip(by_fsdp, by_fsdp[1:]))
    by_sp = [mp.plan(m13b, t, mp.Layout(8, s, False), 0)["activations"] for s in (1, 2, 4, 8)]
    assert all(abs(a / b - 2) < 1e-3 for a, b in zip(by_sp, by_sp[1:]))  # Ulysses halves activations per doubling
    off, on = (mp.plan(m13b, t, mp.Layout(8, 1, c), 0)["activations"] for c in (False, True))
    assert on < off / 5
    with pytest.raises(ValueError, match="divide the 24 attention heads"):
        mp.plan(m13b, t, mp.Layout(8, 5, True), 0)


def test_main_prints_both_tables(capsys) -> None:
    mp.main(["--no-check", "--fsdp", "8", "--sp", "4"])
    out = capsys.readouterr().out
    assert "| 720p 61f | 57856 | 8 | 4 | on |" in out and "| 480p 33f | 14566 | 2 | tensorrt |" in out
