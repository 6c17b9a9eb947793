"""`viva edit`: edit one video from the command line.

Run: ``viva edit --video in.mp4 --instruction "make the ball red" --base CKPT [--lora LORA ...] -o out.mp4``

Any video PyAV reads works. It is fitted to the model's aspect-ratio bucket (resize to cover, centre crop; see
``viva.inference.bucket``) and, by default, the edit is restored to the input size; ``--bucket-size`` keeps the
bucket-sized edit instead. The output keeps the input's frame count and fps. ``--side-by-side PATH`` also writes
source | edit next to each other.

Inputs are checked before any model is loaded; a bad one gives one line naming it and exit code 2. An existing
output is refused unless ``--force``, and an input file is never written over.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path
from typing import List, Optional

import numpy as np

from viva.config import SamplerConfig
from viva.inference.bucket import PRESET_AREA, PRESET_WINDOW


def build_parser() -> argparse.ArgumentParser:
    """Command-line options of `viva edit` (defaults from SamplerConfig)."""
    s = SamplerConfig()
    p = argparse.ArgumentParser(prog="viva edit", description=__doc__.split("\n\n")[0])
    p.add_argument("--video", required=True, help="source video (any format PyAV decodes)")
    p.add_argument("--instruction", required=True, help="the editing instruction")
    p.add_argument("--reference", help="optional reference image (png / jpg)")
    p.add_argument("--base", required=True, help="viva base checkpoint directory (written by `viva sft`)")
    p.add_argument("--lora", action="append", default=[], help="LoRA dir or file, fused into the base; repeatable")
    p.add_argument("-o", "--output", required=True, help="output mp4")
    p.add_argument("--side-by-side", help="also write source | edit side by side to this mp4")
    p.add_argument("--steps", type=int, help=f"denoising steps (default: the base checkpoint's recorded sampler, "
                   f"else {s.num_steps})")
    p.add_argument("--guidance", type=float, help=f"CFG scale on the instruction (default: the checkpoint's, else "
                   f"{s.guidance_scale})")
    p.add_argument("--shift", type=float, help=f"sigma schedule shift (default: the checkpoint's, else {s.shift})")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bucket-size", action="store_true", help="write the bucket-sized edit (no restore)")
    p.add_argument("--area", type=int, help="bucket area in pixels (default: the preset's training area)")
    p.add_argument("--window", type=int, help="frames per temporal window (default: the preset's)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    p.add_argument("--backend", default="eager", choices=["eager", "compile", "tensorrt"])
    p.add_argument("--allow-backend-fallback", action="store_true", help="use eager if the backend is unavailable")
    p.add_argument("--vlm", help="override the checkpoint's VLM (hub id or local dir)")
    p.add_argument("--codec", default="libx264rgb", help="output codec: libx264rgb (lossless) | libx264")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--force", action="store_true", help="overwrite existing output files")
    return p


MAX_STEPS = 1000  # the server's limit too (viva.inference.pipeline.check_request)
MAX_GUIDANCE = 50.0
MAX_SEED = 2**32 - 1
MAX_AREA = 3840 * 2160  # 4K frames; a larger bucket would not fit in memory anyway


def fill_sampler_defaults(args: argparse.Namespace) -> None:
    """Unset --steps/--guidance/--shift: the sampler the base checkpoint records (`viva sft` writes its eval sampler),
    else SamplerConfig's defaults."""
    from viva.models.checkpoint import read_checkpoint_config

    recorded: dict = {}
    try:
        recorded = read_checkpoint_config(args.base).get("sampler") or {}
    except (OSError, ValueError):
        pass  # a missing / bad base is reported by the loader with its own message
    s = SamplerConfig()
    for arg, key, default in (("steps", "num_steps", s.num_steps), ("guidance", "guidance_scale", s.guidance_scale),
                              ("shift", "shift", s.shift)):
        if getattr(args, arg) is None:
            setattr(args, arg, type(default)(recorded.get(key, default)))


def check_args(args: argparse.Namespace) -> None:
    """Raise ValueError naming the first bad option (ranges, instruction, codec, LoRA files, output paths)."""
    from viva.data.video_io import CODECS

    fill_sampler_defaults(args)
    if not 1 <= args.steps <= MAX_STEPS:
        raise ValueError(f"--steps must be in [1, {MAX_STEPS}], got {args.steps}")
    if not (math.isfinite(args.guidance) and 0.0 <= args.guidance <= MAX_GUIDANCE):
        raise ValueError(f"--guidance must be a number in [0, {MAX_GUIDANCE:g}], got {args.guidance}")
    if not (math.isfinite(args.shift) and args.shift > 0):
        raise ValueError(f"--shift must be a number > 0, got {args.shift}")
    if not 0 <= args.seed <= MAX_SEED:
        raise ValueError(f"--seed must be in [0, {MAX_SEED}], got {args.seed}")
    if args.area is not None and not 0 < args.area <= MAX_AREA:
        raise ValueError(f"--area must be in [1, {MAX_AREA}] pixels, got {args.area}")
    if args.window is not None and args.window <= 0:
        raise ValueError(f"--window must be > 0 frames, got {args.window}")
    if not args.instruction.strip():
        raise ValueError("--instruction is empty")
    if args.codec not in CODECS:
        raise ValueError(f"--codec {args.codec!r} is not supported; choose one of {', '.join(sorted(CODECS))}")
    for lora in args.lora:
        _check_lora(lora)
    _check_outputs(args)


def _check_lora(path: str) -> None:
    from safetensors import SafetensorError

    from viva.models.lora import read_lora

    if not Path(path).exists():
        raise ValueError(f"--lora {path}: not found")
    try:
        _, meta = read_lora(path)
    except (SafetensorError, OSError, ValueError) as e:
        raise ValueError(f"--lora {path}: not a diffusers LoRA safetensors file ({str(e).splitlines()[0]})") from e
    if meta is None:
        raise ValueError(f"--lora {path}: no lora_adapter_metadata (alpha unknown); re-export it with viva export")


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.exists() and b.exists() and os.path.samefile(a, b)
    except OSError:
        return False


def _check_outputs(args: argparse.Namespace) -> None:
    """Outputs must be new files (or --force), never an input, never a directory, and distinct."""
    inputs = [Path(p) for p in (args.video, args.reference) if p]
    outputs = [("-o", Path(args.output))] + ([("--side-by-side", Path(args.side_by_side))] if args.side_by_side else [])
    if len(outputs) == 2 and outputs[0][1].resolve() == outputs[1][1].resolve():
        raise ValueError(f"-o and --side-by-side are the same file: {args.output}")
    for flag, out in outputs:
        if out.is_dir():
            raise ValueError(f"{flag} {out} is a directory; give a file path such as {out / 'edit.mp4'}")
        if any(_same_file(out, i) or out.resolve() == i.resolve() for i in inputs):
            raise ValueError(f"{flag} {out} is an input file; refusing to write over an input")
        if out.exists() and not args.force:
            raise ValueError(f"{flag} {out} exists; pass --force to overwrite it")
        parent = out.resolve().parent
        while not parent.exists():
            parent = parent.parent
        if not parent.is_dir():
            raise ValueError(f"{flag} {out}: {parent} is not a directory")


def _progress_bar(enabled: bool):
    """A rich progress bar over denoising steps: returns (context manager, callback)."""
    from contextlib import nullcontext

    if not enabled:
        return nullcontext(), None
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    bar = Progress("denoising", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), transient=False)
    task = bar.add_task("denoise", total=None)
    return bar, lambda done, total: bar.update(task, completed=done, total=total)


def side_by_side(source: np.ndarray, edited: np.ndarray) -> np.ndarray:
    """``[F, H, W, 3]`` source | edit, the edit resized to the source height if needed."""
    if edited.shape[1:3] != source.shape[1:3]:
        from viva.inference.bucket import cover, fit_to_bucket

        w = max(1, round(edited.shape[2] * source.shape[1] / edited.shape[1]))
        edited = fit_to_bucket(edited, cover(*edited.shape[1:3], source.shape[1], w))
    out = np.concatenate([source, edited], axis=2)  # [F, H, W + W', 3]
    return out[:, : out.shape[1] // 2 * 2, : out.shape[2] // 2 * 2]  # even sizes for any codec


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of `viva edit`."""
    args = build_parser().parse_args(argv)
    from safetensors import SafetensorError

    from viva.data.video_io import VideoReadError, VideoWriteError, read_image, read_video, write_video
    from viva.models.backends import BackendUnavailable
    from viva.inference.loader import EditorSpec, load_editor, model_config_for
    from viva.inference.pipeline import EditPipeline, PipelineOptions

    try:
        check_args(args)
        video, fps = read_video(args.video)
        reference = read_image(args.reference) if args.reference else None
        spec = EditorSpec(args.base, tuple(args.lora), args.device, args.dtype, args.backend,
                          args.allow_backend_fallback, args.vlm)
        preset = model_config_for(spec).preset
        editor = load_editor(spec)
    except (VideoReadError, FileNotFoundError, ValueError, SafetensorError, BackendUnavailable) as e:
        print(f"viva edit: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    options = PipelineOptions(area=args.area or PRESET_AREA.get(preset, PRESET_AREA["tiny"]),
                              window=args.window or PRESET_WINDOW.get(preset, PRESET_WINDOW["tiny"]),
                              shift=args.shift)
    pipe = EditPipeline(editor, options)
    from viva.inference.pipeline import EditRequest

    req = EditRequest(video, args.instruction, reference, args.steps, args.guidance, args.seed,
                      restore_size=not args.bucket_size)
    bar, callback = _progress_bar(not args.no_progress)
    with bar:
        edited = pipe.run([req], callback)[0]  # [F, H, W, 3]
    fps = fps or 8.0
    try:  # atomic writes: on an error the old file (if any) is untouched
        write_video(args.output, edited, fps=fps, codec=args.codec)
        if args.side_by_side:
            write_video(args.side_by_side, side_by_side(video, edited), fps=fps, codec=args.codec)
    except (VideoWriteError, OSError) as e:
        print(f"viva edit: cannot write the output: {str(e).splitlines()[0]}", file=sys.stderr)
        return 2
    print(f"wrote {Path(args.output)}: {edited.shape[0]} frames {edited.shape[2]}x{edited.shape[1]} at {fps:g} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
