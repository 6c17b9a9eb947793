"""`viva data`: build training data from real videos.

Run:
  ``viva data triplets --videos DIR -o data/real/manifest.jsonl [--config configs/data/real.yaml] [key=value ...]``
  ``viva data pairs --videos DIR -o data/pairs [--config configs/data/real.yaml] [key=value ...]``

Both run on Ray (an embedded local cluster unless ``cluster.address`` is set; ``--local`` runs one worker in this
process) and resume where a previous run stopped. docs/data.md describes the manifests, the stages and their costs.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import List, Optional

from viva.config import ConfigError, DataPipelineConfig, load_config

REAL_CONFIG = "configs/data/real.yaml"


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--videos", required=True, help="folder of source videos (searched recursively)")
    p.add_argument("--config", default=None, help=f"YAML with recipe: data (default: the defaults of "
                                                  f"viva.config.DataPipelineConfig; {REAL_CONFIG} sets up the "
                                                  f"real models on GPUs)")
    p.add_argument("--prompts", default=None, help="folder of the VLM prompt files (overrides prompt_dir)")
    p.add_argument("--local", action="store_true", help="one worker in this process, no Ray")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. vlm.base_url=http://host:8000/v1")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="viva data", description="Build training data from real videos.")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("triplets", help="VLM-written (t_src, instruction, t_edit) per video -> prompt manifest")
    _common(t)
    t.add_argument("-o", "--output", required=True, help="manifest JSONL to append to (created if missing)")
    t.add_argument("--rejects", default=None, help="rejects JSONL (default: <manifest>.rejects.jsonl)")
    pr = sub.add_parser("pairs", help="detect -> track -> inpaint -> QC -> SFT pair manifest")
    _common(pr)
    pr.add_argument("-o", "--output", required=True, help="output folder (manifest.jsonl, media/, report.json)")
    pr.add_argument("--work", default=None, help="per-stage outputs (default: <output>/work); reruns skip done work")
    return p


def _config(args: argparse.Namespace) -> DataPipelineConfig:
    overrides = list(args.overrides)
    if args.prompts:
        overrides.append(f"prompt_dir={args.prompts}")
    cfg = load_config(args.config, overrides, recipe="data")
    if not isinstance(cfg, DataPipelineConfig):
        raise ConfigError(f"{args.config}: a '{cfg.recipe}' config, not 'data'")
    return cfg


def _triplets(cfg: DataPipelineConfig, args: argparse.Namespace) -> int:
    from viva.data.triplets import run_triplets

    r = run_triplets(cfg, args.videos, args.output, rejects=args.rejects, local=args.local)
    print(f"viva data triplets: {r.videos} videos, {r.already_done} already in the manifest, {r.written} written, "
          f"{r.rejected} rejected ({r.seconds_per_video:.2f} s/video); manifest {r.manifest}, rejects {r.rejects}")
    return 0


def _pairs(cfg: DataPipelineConfig, args: argparse.Namespace) -> int:
    from viva.data.pairs import run_pairs

    r = run_pairs(cfg, args.videos, args.output, work_dir=args.work, local=args.local)
    print(f"viva data pairs: {r.videos} videos -> {r.kept} kept -> {r.pairs} pairs; manifest {r.manifest}")
    return 0


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `viva data`."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from viva.cluster.errors import ClusterError
    from viva.data.manifest import ManifestError
    from viva.data.pairs.components import StageOptionsError
    from viva.data.pairs.registry import ComponentError
    from viva.data.video_io import VideoReadError
    from viva.data.vlm_chat import ChatEngineError, PromptFileError

    try:
        cfg = _config(args)
        return (_triplets if args.command == "triplets" else _pairs)(cfg, args)
    except (ConfigError, PromptFileError, ChatEngineError, VideoReadError, ManifestError, StageOptionsError,
            ComponentError, ClusterError) as e:
        print(f"viva data {args.command}: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
