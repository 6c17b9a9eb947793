"""`viva export`: diffusers round trip (exact), peft round trip, merged = base + LoRA within 1e-5."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from viva.inference.export import main as export_main
from viva.models.checkpoint import load_base_checkpoint
from viva.models.lora import load_lora


def _inputs():
    g = torch.Generator().manual_seed(0)
    noisy = torch.randn(1, 12, 2, 16, 16, generator=g)  # [B, C, F, h, w]
    source = torch.randn(1, 12, 2, 16, 16, generator=g)
    text = torch.randn(1, 5, 64, generator=g)  # [B, L, D]
    return noisy, source, torch.tensor([0.6]), text, torch.ones(1, 5, dtype=torch.long)


@pytest.fixture(scope="module")
def reference_out(base_ckpt: Path, lora_dir: Path) -> torch.Tensor:
    """base + LoRA through viva's own loader."""
    with torch.no_grad():
        return load_lora(load_base_checkpoint(base_ckpt), lora_dir)(*_inputs())


def test_diffusers_export_loads_with_diffusers(tmp_path: Path, lora_dir: Path, base_ckpt: Path,
                                               reference_out: torch.Tensor) -> None:
    from diffusers import DiffusionPipeline
    from diffusers.loaders import HunyuanVideoLoraLoaderMixin

    class TransformerOnlyPipeline(DiffusionPipeline, HunyuanVideoLoraLoaderMixin):
        def __init__(self, transformer) -> None:
            super().__init__()
            self.register_modules(transformer=transformer)

    assert export_main(["--checkpoint", str(lora_dir.parent), "--format", "diffusers", "-o", str(tmp_path)]) == 0
    dit = load_base_checkpoint(base_ckpt)
    with torch.no_grad():
        base_out = dit(*_inputs())
    TransformerOnlyPipeline(dit.transformer).load_lora_weights(str(tmp_path))  # diffusers' own loader
    with torch.no_grad():
        out = dit(*_inputs())
    assert not torch.equal(base_out, reference_out)  # the LoRA matters ...
    torch.testing.assert_close(out, reference_out, rtol=0, atol=0)  # ... and diffusers reproduces it exactly


def test_peft_export_loads_with_peft(tmp_path: Path, lora_dir: Path, base_ckpt: Path,
                                     reference_out: torch.Tensor) -> None:
    from peft import PeftModel

    args = ["--checkpoint", str(lora_dir), "--base", str(base_ckpt), "--format", "peft", "-o", str(tmp_path)]
    assert export_main(args) == 0
    dit = load_base_checkpoint(base_ckpt)
    dit.transformer = PeftModel.from_pretrained(dit.transformer, str(tmp_path))
    with torch.no_grad():
        torch.testing.assert_close(dit(*_inputs()), reference_out, rtol=0, atol=0)


def test_merged_export_matches_base_plus_lora(tmp_path: Path, lora_dir: Path, reference_out: torch.Tensor) -> None:
    out_dir = tmp_path / "merged"
    assert export_main(["--checkpoint", str(lora_dir.parent), "--format", "merged", "-o", str(out_dir)]) == 0
    merged = load_base_checkpoint(out_dir)  # a plain base checkpoint: no adapter left
    assert not any("lora" in k for k in merged.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(merged(*_inputs()), reference_out, rtol=0, atol=1e-5)


def test_export_errors_name_the_problem(tmp_path: Path, lora_dir: Path, capsys) -> None:
    assert export_main(["--checkpoint", str(lora_dir), "--format", "merged", "-o", str(tmp_path)]) == 2
    assert "config.yaml" in capsys.readouterr().err  # a bare LoRA dir needs --base
    assert export_main(["--checkpoint", str(tmp_path / "nope"), "--format", "peft", "-o", str(tmp_path)]) == 2
    assert "does not exist" in capsys.readouterr().err
