"""`viva serve`: edits over HTTP as a Ray Serve application (FastAPI ingress + multiplexed, batched editor).

Run: ``viva serve --base CKPT --lora red=runs/grpo/lora --lora blue=runs/grpo2/lora [--port 8000]``
     ``viva serve --config configs/serve/toy.yaml auth_token=secret``

Two deployments. ``Ingress`` (one replica) owns the HTTP API of ``viva.inference.app``: it validates uploads,
keeps the bounded job table and the job files, and streams each job from ``EditorDeployment``. The editor
replicas hold the base model once plus up to ``max_loras_per_replica`` LoRAs in host memory (Ray Serve model
multiplexing routes a request to a replica that has its LoRA), and batch requests (``@serve.batch``; Ray Serve
splits batches by LoRA, the worker groups them by shape). Binds 127.0.0.1 unless ``host`` says otherwise.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path
from typing import AsyncIterator, List, Optional

from ray import serve

from viva.config import ConfigError, ServeConfig, load_config
from viva.inference.app import EditEvent, build_app
from viva.inference.pipeline import EditRequest

__all__ = ["editor_deployment", "build_app", "build_application", "main", "RayRunner"]


class RayRunner:
    """EditRunner over the editor deployment's handle (streaming, multiplexed by LoRA name)."""

    def __init__(self, handle) -> None:
        self.handle = handle

    async def edit(self, request: EditRequest, lora: Optional[str]) -> AsyncIterator[EditEvent]:
        """Stream one edit's events from whichever editor replica serves ``lora``."""
        handle = self.handle.options(stream=True, multiplexed_model_id=lora or "")
        async for event in handle.edit.remote(request):
            yield event


def editor_deployment(cfg: ServeConfig):
    """The editor deployment class, its multiplexing and batching sizes taken from ``cfg``."""

    class EditorDeployment:
        """A replica with the base editor, multiplexed LoRAs and a streaming batch handler."""

        def __init__(self, cfg: ServeConfig, loras: dict) -> None:
            from viva.inference.adapters import AdapterBank
            from viva.inference.pipeline import EditPipeline
            from viva.inference.worker import EditWorker

            editor, options = load_for_serving(cfg)
            self.worker = EditWorker(EditPipeline(editor, options), AdapterBank(editor, loras))

        @serve.multiplexed(max_num_models_per_replica=cfg.max_loras_per_replica)
        async def get_adapter(self, name: str):
            """Load a named LoRA into host memory (Ray Serve keeps the most recently used ones)."""
            import asyncio

            return await asyncio.to_thread(self.worker.bank.load, name)

        async def edit(self, request: EditRequest) -> AsyncIterator[EditEvent]:
            """Stream one request's events (it joins a batch of requests for the same LoRA)."""
            async for event in self._edit_batch(request):
                yield event

        @serve.batch(max_batch_size=cfg.max_batch_size, batch_wait_timeout_s=cfg.batch_wait_s)
        async def _edit_batch(self, requests: List[EditRequest]) -> AsyncIterator[list]:
            name = serve.get_multiplexed_model_id()
            adapter = await self.get_adapter(name) if name else None
            async for events in self.worker.run_batch(requests, adapter):
                yield events

    return serve.deployment(EditorDeployment, name="EditorDeployment")


def load_for_serving(cfg: ServeConfig):
    """The editor (base checkpoint on the configured backend) and the pipeline options of ``cfg``."""
    from viva.inference.bucket import PRESET_AREA, PRESET_WINDOW
    from viva.inference.loader import EditorSpec, load_editor, model_config_for
    from viva.inference.pipeline import PipelineOptions

    m = cfg.model
    if not m.base_checkpoint:
        raise ConfigError("serve: model.base_checkpoint (--base) is required")
    spec = EditorSpec(m.base_checkpoint, (), m.device, m.dtype, m.backend, m.allow_backend_fallback,
                      None if m.vlm == "tiny" else m.vlm)
    preset = model_config_for(spec).preset
    options = PipelineOptions(area=cfg.bucket_area or PRESET_AREA.get(preset, PRESET_AREA["tiny"]),
                              window=cfg.window or PRESET_WINDOW.get(preset, PRESET_WINDOW["tiny"]),
                              shift=cfg.sampler.shift)
    return load_editor(spec), options


def build_application(cfg: ServeConfig):
    """The bound Ray Serve application (ingress + editor) for ``serve.run``."""
    from viva.inference.adapters import parse_lora_specs

    loras = parse_lora_specs(list(cfg.loras))
    actor = {"num_cpus": cfg.replica_num_cpus, "num_gpus": cfg.replica_num_gpus}
    editor = editor_deployment(cfg).options(
        num_replicas=cfg.num_replicas,
        ray_actor_options=actor,
        max_ongoing_requests=max(8, 2 * cfg.max_batch_size),
        max_queued_requests=-1,  # the ingress bounds the queue (503 from the job table)
    ).bind(cfg, loras)
    names = sorted(loras)

    @serve.ingress()
    class Ingress:
        """HTTP front: the FastAPI app of viva.inference.app over a RayRunner."""

        def __init__(self, editor_handle) -> None:
            self.http_app = build_app(cfg, RayRunner(editor_handle), names)

        def __serve_build_asgi_app__(self):
            return self.http_app

    ingress = serve.deployment(Ingress, name="Ingress", ray_actor_options={"num_cpus": cfg.replica_num_cpus},
                               max_ongoing_requests=4 * cfg.max_queue + 16)
    return ingress.bind(editor)


def run(cfg: ServeConfig, blocking: bool = True):
    """Start Ray Serve on ``cfg.host:cfg.port`` and deploy; returns the ingress handle when not blocking."""
    import ray

    # Absolute paths: the replicas may run in another working directory.
    base = cfg.model.base_checkpoint
    model = dataclasses.replace(cfg.model, base_checkpoint=str(Path(base).resolve())) if base else cfg.model
    cfg = dataclasses.replace(cfg, job_dir=str(Path(cfg.job_dir).resolve()), model=model)
    if not ray.is_initialized():
        # A fresh local cluster unless RAY_ADDRESS names one (never attach to a stray cluster on this machine).
        ray.init(address=os.environ.get("RAY_ADDRESS") or "local", include_dashboard=False)
    serve.start(http_options={"host": cfg.host, "port": cfg.port})
    return serve.run(build_application(cfg), name="viva", route_prefix="/", blocking=blocking)


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of `viva serve` (anything else: ``key=value`` overrides of ServeConfig)."""
    p = argparse.ArgumentParser(prog="viva serve", description=__doc__.split("\n\n")[0])
    p.add_argument("--config", help="a configs/serve/*.yaml file")
    p.add_argument("--base", help="viva base checkpoint (model.base_checkpoint)")
    p.add_argument("--lora", action="append", default=[], help="name=path of a LoRA to serve; repeatable")
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int)
    p.add_argument("overrides", nargs="*", help="key=value config overrides")
    return p


def config_from_args(argv: Optional[List[str]]) -> ServeConfig:
    """ServeConfig from a YAML file, flags and overrides; the token may also come from $VIVA_SERVE_TOKEN."""
    args = build_parser().parse_args(argv)
    cfg: ServeConfig = load_config(args.config, args.overrides, recipe="serve")
    model = dataclasses.replace(cfg.model, base_checkpoint=args.base) if args.base else cfg.model
    return dataclasses.replace(cfg, model=model, loras=list(cfg.loras) + list(args.lora), host=args.host or cfg.host,
                               port=args.port or cfg.port,
                               auth_token=cfg.auth_token or os.environ.get("VIVA_SERVE_TOKEN") or None)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `viva serve` (blocks until interrupted)."""
    from viva.inference.adapters import parse_lora_specs
    from viva.inference.loader import EditorSpec, model_config_for

    try:
        cfg = config_from_args(argv)
        if not cfg.model.base_checkpoint:
            raise ConfigError("--base CKPT (or model.base_checkpoint) is required")
        model_config_for(EditorSpec(cfg.model.base_checkpoint))  # the checkpoint's config.json reads
        parse_lora_specs(list(cfg.loras))  # name=path, names unique, files present
    except (ConfigError, FileNotFoundError, ValueError) as e:
        print(f"viva serve: {e}", file=sys.stderr)
        return 2
    print(f"viva serve: http://{cfg.host}:{cfg.port}/ (auth {'on' if cfg.auth_token else 'off'})")
    run(cfg, blocking=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
