"""Tiny inference fixtures: a random-weight base checkpoint and a LoRA saved to tmp dirs, and a live `viva serve`."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from viva.config import LoRAConfig, ModelConfig
from viva.models.tiny_vlm import TINY_VLM_DIR

SERVE_TOKEN = "test-token-123"


def _vlm() -> str:
    return "tiny" if (TINY_VLM_DIR / "model.safetensors").is_file() else ""


@pytest.fixture(scope="session")
def vlm_name(tmp_path_factory) -> str:
    """The shipped tiny VLM, or one built into a tmp dir when the asset is absent."""
    if _vlm():
        return "tiny"
    from viva.models.tiny_vlm import build_tiny_vlm

    return str(build_tiny_vlm(tmp_path_factory.mktemp("tiny_vlm")))


@pytest.fixture(scope="session")
def base_ckpt(tmp_path_factory, vlm_name: str) -> Path:
    """A tiny random-weight base checkpoint (the DiT's output layer randomised so edits are not trivial)."""
    from viva.models.checkpoint import save_base_checkpoint
    from viva.models.presets import build_editor

    torch.manual_seed(0)
    cfg = ModelConfig(vlm=vlm_name)
    editor = build_editor(cfg)
    with torch.no_grad():
        for p in editor.dit.transformer.proj_out.parameters():
            p.normal_(0, 0.02)
    return save_base_checkpoint(editor, tmp_path_factory.mktemp("ckpt") / "base", cfg)


def make_lora(base: Path, out: Path, seed: int, rank: int = 4) -> Path:
    """A random LoRA (B != 0, so it changes outputs) saved in diffusers' format with its metadata."""
    from viva.models.checkpoint import load_base_checkpoint
    from viva.models.lora import add_lora, save_lora

    torch.manual_seed(seed)
    dit = load_base_checkpoint(base)
    add_lora(dit, LoRAConfig(rank=rank, alpha=2.0 * rank))
    with torch.no_grad():
        for name, p in dit.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.05)
    save_lora(dit, out)
    return out


@pytest.fixture(scope="session")
def lora_dir(tmp_path_factory, base_ckpt: Path) -> Path:
    """A GRPO-like run dir: lora/ + config.yaml naming the base checkpoint; returns the LoRA dir."""
    run = tmp_path_factory.mktemp("run")
    make_lora(base_ckpt, run / "lora", seed=1)
    (run / "config.yaml").write_text(f"recipe: grpo\nmodel:\n  base_checkpoint: {base_ckpt}\n")
    return run / "lora"


def small_video(frames: int = 9, height: int = 30, width: int = 44, seed: int = 0) -> np.ndarray:
    """A smooth random uint8 video [F, H, W, 3] (smooth so lossy codecs keep it recognisable)."""
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, size=(1, height // 2, width // 2, 3)).repeat(2, 1).repeat(2, 2)
    drift = np.arange(frames)[:, None, None, None] * 3
    return ((base + drift) % 256).astype(np.uint8)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(tmp_path_factory, base_ckpt: Path, lora_dir: Path, vlm_name: str):
    """`viva serve` on 127.0.0.1 (Ray Serve, a fresh local Ray cluster), torn down after each test module.

    Module scope: a later module (e.g. the Ray driver tests) must find no Ray left running by this one.
    """
    import httpx
    import ray
    from ray import serve

    from viva.config import SamplerConfig, ServeConfig
    from viva.inference.server import run

    red = make_lora(base_ckpt, tmp_path_factory.mktemp("red") / "lora", seed=2)
    cfg = ServeConfig(
        port=_free_port(), auth_token=SERVE_TOKEN, job_dir=str(tmp_path_factory.mktemp("jobs")),
        model=ModelConfig(base_checkpoint=str(base_ckpt), vlm=vlm_name), sampler=SamplerConfig(num_steps=2),
        loras=[f"grpo={lora_dir}", f"red={red}"], max_upload_mb=1.0, max_duration_s=2.0,
        max_instruction_chars=64, max_queue=6, max_batch_size=4,
    )
    started_ray = not ray.is_initialized()
    if started_ray:
        ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run(cfg, blocking=False)
        url = f"http://127.0.0.1:{cfg.port}"
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        yield url, cfg
    finally:
        serve.shutdown()
        if started_ray:
            ray.shutdown()
