"""LoRA: init leaves outputs unchanged, reference policy == base, diffusers-format save -> diffusers' loader."""

from __future__ import annotations

import copy
import json

import pytest
import torch
from diffusers import HunyuanVideoPipeline
from safetensors import safe_open

from viva.config import LoRAConfig
from viva.models.dit import EditDiT
from viva.models.lora import (
    LORA_WEIGHTS_NAME,
    add_lora,
    adapters_disabled,
    load_lora,
    lora_state_dict,
    load_lora_state_dict,
    merge_lora,
    read_lora,
    reference_policy,
    save_lora,
)

CFG = LoRAConfig(rank=4, alpha=8.0)


def _inputs():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(2, 12, 2, 16, 16, generator=g)
    return x, torch.randn_like(x), torch.tensor([0.5, 0.8]), torch.randn(2, 6, 64, generator=g), torch.ones(2, 6)


def _perturb(dit: EditDiT) -> None:
    with torch.no_grad():
        for n, p in dit.named_parameters():
            if "lora_B" in n:
                p.normal_(std=0.05)


@torch.no_grad()
def test_gaussian_init_keeps_output_and_targets(dit: EditDiT) -> None:
    args = _inputs()
    base = dit(*args)
    add_lora(dit, CFG)
    assert torch.equal(dit(*args), base)  # B = 0 at init
    names = [n for n, _ in dit.transformer.named_modules() if n.endswith(".lora_A")]
    assert any("transformer_blocks.0.attn.add_q_proj" in n for n in names)
    assert any("single_transformer_blocks.0.attn.to_q" in n for n in names)
    assert any("attn.to_out.0" in n for n in names)
    assert not any("token_refiner" in n for n in names)


def test_only_lora_trainable(dit: EditDiT) -> None:
    add_lora(dit, CFG)
    trainable = [n for n, p in dit.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    assert not dit.pooled_proj.weight.requires_grad


@torch.no_grad()
def test_reference_policy_is_base_and_restores(dit: EditDiT) -> None:
    args = _inputs()
    base = dit(*args)
    add_lora(dit, CFG)
    _perturb(dit)
    adapted = dit(*args)
    assert not torch.allclose(adapted, base)
    with reference_policy(dit):
        assert torch.equal(dit(*args), base)
    assert torch.equal(dit(*args), adapted)
    with pytest.raises(RuntimeError):
        with adapters_disabled(dit):
            raise RuntimeError("boom")
    assert torch.equal(dit(*args), adapted)  # re-enabled after an exception


@torch.no_grad()
def test_state_dict_round_trip(dit: EditDiT) -> None:
    other = copy.deepcopy(dit)
    add_lora(dit, CFG)
    add_lora(other, CFG)
    _perturb(dit)
    sd = lora_state_dict(dit)
    assert list(sd) == sorted(sd) and all("lora_" in k for k in sd)
    load_lora_state_dict(other, sd)
    args = _inputs()
    assert torch.equal(other(*args), dit(*args))
    with pytest.raises(ValueError, match="missing"):
        load_lora_state_dict(other, dict(list(sd.items())[1:]))


@torch.no_grad()
def test_diffusers_format_loads_with_diffusers_pipeline(dit: EditDiT, tmp_path) -> None:
    base = copy.deepcopy(dit)
    add_lora(dit, CFG)
    _perturb(dit)
    args = _inputs()
    expected = dit(*args)
    path = save_lora(dit, tmp_path, CFG)
    assert path.name == LORA_WEIGHTS_NAME
    with safe_open(str(path), framework="pt") as f:
        assert all(k.startswith("transformer.") for k in f.keys())
        meta = json.loads(f.metadata()["lora_adapter_metadata"])
    assert meta["transformer.r"] == 4 and meta["transformer.lora_alpha"] == 8.0
    assert read_lora(tmp_path)[1]["lora_alpha"] == 8.0

    # diffusers' own public loader (the pipeline's LoRA mixin) on the inner transformer
    pipe = HunyuanVideoPipeline(
        text_encoder=None, tokenizer=None, transformer=base.transformer, vae=None, scheduler=None,
        text_encoder_2=None, tokenizer_2=None,
    )
    pipe.load_lora_weights(str(tmp_path), adapter_name="default")
    assert torch.equal(base(*args), expected)

    # and our own loader into a fresh DiT (adapter rebuilt from the metadata)
    fresh = copy.deepcopy(base)
    fresh.transformer.unload_lora()
    load_lora(fresh, tmp_path)
    assert torch.equal(fresh(*args), expected)


@torch.no_grad()
def test_merge_lora_matches_adapter(dit: EditDiT) -> None:
    add_lora(dit, CFG)
    _perturb(dit)
    args = _inputs()
    expected = dit(*args)
    merge_lora(dit)
    assert not any("lora_" in n for n, _ in dit.named_parameters())
    assert torch.allclose(dit(*args), expected, atol=1e-5)
