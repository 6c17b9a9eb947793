"""Data-parallel SFT on Ray Train: ``TorchTrainer`` runs :func:`viva.sft.trainer.run_sft` on every worker.

Ray Train starts the workers and the ``torch.distributed`` process group (gloo on CPU, NCCL on GPU); the trainer
averages gradients with one all-reduce per step and rank 0 writes checkpoints into ``cfg.output_dir`` (a path every
worker can reach: the local disk on one machine, a shared filesystem across nodes).

Run: ``viva sft --config configs/sft/toy.yaml sft.num_workers=2``
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

import torch

from viva.cluster.local import LocalCluster
from viva.config import SFTConfig
from viva.sft.trainer import RESULT_FILE, SFTResult, read_result


def _train_loop(loop_config: Dict[str, Any]) -> None:
    """Body of one Ray Train worker: one SFT rank (the frozen config dataclass arrives as-is)."""
    import ray.train

    from viva.sft.trainer import run_sft

    cfg: SFTConfig = loop_config["cfg"]
    torch.set_num_threads(loop_config["threads"])
    ctx = ray.train.get_context()
    result = run_sft(cfg, rank=ctx.get_world_rank(), world_size=ctx.get_world_size())
    ray.train.report({"final_loss": result.final_loss, "samples_per_s": result.samples_per_s})


def run_sft_ray(cfg: SFTConfig) -> SFTResult:
    """Run SFT on ``sft.num_workers`` Ray Train workers; returns rank 0's :class:`SFTResult`."""
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    use_gpu = cfg.model.device.startswith("cuda")
    threads = max(1, int(round(cfg.sft.worker_num_cpus))) if not use_gpu else 1
    with LocalCluster(cfg.cluster):
        trainer = TorchTrainer(
            _train_loop,
            train_loop_config={"cfg": cfg, "threads": threads},
            torch_config=TorchConfig(backend="nccl" if use_gpu else "gloo"),
            scaling_config=ScalingConfig(
                num_workers=cfg.sft.num_workers,
                use_gpu=use_gpu,
                resources_per_worker={"CPU": cfg.sft.worker_num_cpus, **({"GPU": 1} if use_gpu else {})},
            ),
            run_config=RunConfig(name="sft", storage_path=str((Path(cfg.output_dir) / "ray").resolve())),
        )
        result = trainer.fit()
    if result.error is not None:
        raise RuntimeError(f"SFT on Ray Train failed: {result.error}") from result.error
    return read_result(Path(cfg.output_dir) / RESULT_FILE)  # rank 0 wrote it
