"""`viva edit`: edit one video from the command line.

Run: ``viva edit --video in.mp4 --instruction "make the ball red" --base CKPT [--lora LORA ...] -o out.mp4``

Any video PyAV reads works. It is fitted to the model's aspect-ratio bucket (resize to cover, centre crop; see
``viva.inference.bucket``) and, by default, the edit is restored to the input size; ``--bucket-size`` keeps the
bucket-sized edit instead. The output keeps the input's frame count and fps. ``--side-by-side PATH`` also writes
source | edit next to each other.
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--steps", type=int, default=s.num_steps, help=f"denoising steps (default {s.num_steps})")
    p.add_argument("--guidance", type=float, default=s.guidance_scale, help="CFG scale on the instruction")
    p.add_argument("--shift", type=float, default=s.shift, help="sigma schedule shift")
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
    return p


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
    from viva.data.video_io import VideoReadError, read_image, read_video, write_video
    from viva.inference.loader import EditorSpec, load_editor, model_config_for
    from viva.inference.pipeline import EditPipeline, PipelineOptions

    try:
        video, fps = read_video(args.video)
        reference = read_image(args.reference) if args.reference else None
        spec = EditorSpec(args.base, tuple(args.lora), args.device, args.dtype, args.backend,
                          args.allow_backend_fallback, args.vlm)
        preset = model_config_for(spec).preset
        editor = load_editor(spec)
    except (VideoReadError, FileNotFoundError, ValueError) as e:
        print(f"viva edit: {e}", file=sys.stderr)
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
    write_video(args.output, edited, fps=fps, codec=args.codec)
    if args.side_by_side:
        write_video(args.side_by_side, side_by_side(video, edited), fps=fps, codec=args.codec)
    print(f"wrote {Path(args.output)}: {edited.shape[0]} frames {edited.shape[2]}x{edited.shape[1]} at {fps:g} fps")
    return 0


if __name__ == "__main__":
    sys.exit(main())
