"""`viva export`: export a tuned LoRA as diffusers / peft files, or merged into the base weights.

Run: ``viva export --checkpoint RUN_DIR --format diffusers|peft|merged -o OUT``

``--checkpoint`` is a GRPO run directory (``lora/`` + ``config.yaml`` naming ``model.base_checkpoint``) or a LoRA
directory / ``pytorch_lora_weights.safetensors`` file together with ``--base CKPT``.

- ``diffusers``: ``OUT/pytorch_lora_weights.safetensors`` (keys ``transformer.*``) with the adapter config as
  ``lora_adapter_metadata``, so diffusers' ``load_lora_weights`` / ``load_lora_adapter`` rebuilds the same alpha.
- ``peft``: ``OUT/adapter_model.safetensors`` + ``adapter_config.json`` for ``PeftModel.from_pretrained`` on the
  HunyuanVideo transformer.
- ``merged``: a viva base checkpoint (``dit.safetensors`` + ``config.json``) with the LoRA fused into the weights;
  usable as ``--base`` anywhere.
Every export also writes ``viva_export.json`` (source paths, format, viva version).

``OUT`` must be a directory that does not exist yet, or ``--force`` to replace an earlier export there; an existing
file, an input (the run, the LoRA, the base) or a directory holding an input is never written over.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import List, Optional

from viva.training.atomic import atomic_path, atomic_write_text

FORMATS = ("diffusers", "peft", "merged")
PEFT_WEIGHTS = "adapter_model.safetensors"
PEFT_CONFIG = "adapter_config.json"


@dataclass(frozen=True)
class ExportSource:
    """Where the LoRA and its base checkpoint are."""

    lora: Path
    base: Path


def resolve_source(checkpoint: str, base: Optional[str]) -> ExportSource:
    """A run dir (``lora/`` + ``config.yaml``) or a LoRA path + ``--base``; clear errors naming what is missing."""
    ckpt = Path(checkpoint)
    if not ckpt.exists():
        raise FileNotFoundError(f"--checkpoint {ckpt} does not exist")
    lora = ckpt / "lora" if (ckpt / "lora").is_dir() else ckpt
    if base is None:
        cfg_file = ckpt / "config.yaml"
        if not cfg_file.is_file():
            raise FileNotFoundError(f"{ckpt}: no config.yaml to find the base checkpoint in; pass --base CKPT")
        from omegaconf import OmegaConf

        try:
            base = OmegaConf.select(OmegaConf.load(cfg_file), "model.base_checkpoint")
        except Exception as e:  # noqa: BLE001 - yaml and OmegaConf errors alike
            raise ValueError(f"{cfg_file}: cannot read model.base_checkpoint: {str(e).splitlines()[0]}") from e
        if not base:
            raise ValueError(f"{cfg_file}: model.base_checkpoint is not set; pass --base CKPT")
    if not Path(base).is_dir():
        raise FileNotFoundError(f"base checkpoint directory not found: {base}")
    return ExportSource(lora, Path(base))


def _load_dit_with_lora(src: ExportSource):
    from viva.models.checkpoint import load_base_checkpoint
    from viva.models.lora import load_lora

    return load_lora(load_base_checkpoint(src.base), src.lora)


def export_diffusers(src: ExportSource, out: Path) -> Path:
    """Re-save the LoRA in diffusers' format with its metadata (validated by loading it into the base DiT)."""
    from viva.models.lora import save_lora

    return save_lora(_load_dit_with_lora(src), out)


def export_peft(src: ExportSource, out: Path) -> Path:
    """peft's own layout: ``adapter_model.safetensors`` (``base_model.model.*`` keys) + ``adapter_config.json``."""
    from safetensors.torch import save_file

    from viva.models.lora import ADAPTER_NAME, lora_state_dict

    dit = _load_dit_with_lora(src)
    config = dit.transformer.peft_config[ADAPTER_NAME]
    out.mkdir(parents=True, exist_ok=True)
    state = {f"base_model.model.{k}": v.contiguous() for k, v in lora_state_dict(dit).items()}
    with atomic_path(out / PEFT_WEIGHTS) as tmp:
        save_file(state, str(tmp), metadata={"format": "pt"})
    config.save_pretrained(str(out))  # adapter_config.json
    return out / PEFT_WEIGHTS


def export_merged(src: ExportSource, out: Path) -> Path:
    """Fuse the LoRA into the base DiT and write a viva base checkpoint (safetensors)."""
    from viva.config import ModelConfig
    from viva.models.checkpoint import read_checkpoint_config, save_base_checkpoint
    from viva.models.lora import merge_lora

    dit = merge_lora(_load_dit_with_lora(src))
    meta = read_checkpoint_config(src.base)
    cfg = ModelConfig(preset=meta.get("preset", "tiny"), vlm=meta.get("vlm", "tiny"), codec=meta.get("codec", "pixel"),
                      codec_pretrained=meta.get("codec_pretrained"))

    # save_base_checkpoint reads only `.dit` of the editor it is given
    return save_base_checkpoint(SimpleNamespace(dit=dit), out, cfg)


def _inside(path: Path, folder: Path) -> bool:
    path, folder = path.resolve(), folder.resolve()
    return path == folder or folder in path.parents


def check_output(src: ExportSource, out: Path, force: bool, inputs: tuple = ()) -> None:
    """Refuse an output that would overwrite a file, an input, or a directory that is not an earlier export."""
    if out.exists() and not out.is_dir():
        raise ValueError(f"-o {out} is an existing file; export writes a directory")
    for i in (src.lora, src.base, *inputs):
        if _inside(Path(i), out):
            raise ValueError(f"-o {out} holds the input {i}; refusing to write over an input")
    if out.is_dir() and any(out.iterdir()):
        if not force:
            raise ValueError(f"-o {out} exists and is not empty; pass --force to replace an earlier export")
        if not (out / "viva_export.json").is_file():
            raise ValueError(f"-o {out} is not an earlier viva export (no viva_export.json); refusing to replace it")


def export(src: ExportSource, fmt: str, out: str | Path, force: bool = False) -> Path:
    """Export ``src`` as ``fmt`` into the directory ``out``; returns the main file written."""
    import viva

    if fmt not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")
    out = Path(out)
    check_output(src, out, force)
    path = {"diffusers": export_diffusers, "peft": export_peft, "merged": export_merged}[fmt](src, out)
    info = {"format": fmt, "lora": str(src.lora), "base": str(src.base), "viva_version": viva.__version__}
    atomic_write_text(out / "viva_export.json", json.dumps(info, indent=2))
    return path


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `viva export`."""
    p = argparse.ArgumentParser(prog="viva export", description=__doc__.split("\n\n")[0])
    p.add_argument("--checkpoint", required=True, help="GRPO run dir (lora/ + config.yaml) or a LoRA dir / file")
    p.add_argument("--base", help="base checkpoint dir (default: model.base_checkpoint of RUN_DIR/config.yaml)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("-o", "--output", required=True, help="output directory")
    p.add_argument("--force", action="store_true", help="replace an earlier export in the output directory")
    args = p.parse_args(argv)
    from safetensors import SafetensorError

    try:
        src = resolve_source(args.checkpoint, args.base)
        check_output(src, Path(args.output), args.force, inputs=(args.checkpoint,))
        path = export(src, args.format, args.output, force=args.force)
    except (FileNotFoundError, ValueError, SafetensorError) as e:
        print(f"viva export: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
