"""Bad input to the `viva` CLI, table-driven: each case exits non-zero with one line naming the problem, no traceback,
and no file changed (inputs, existing outputs, checkpoints). Run in-process through `viva.cli.main`."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from tests.inference.conftest import small_video
from viva.cli import main as viva_main
from viva.data.video_io import write_image, write_video

ROOT = Path(__file__).resolve().parents[2]
TOY = str(ROOT / "configs" / "grpo" / "toy.yaml")
EDIT = ["edit", "--video", "{video}", "--instruction", "make it red", "--base", "{base}", "--no-progress",
        "--steps", "1"]
GRPO = ["grpo", "--config", TOY, "--local", "--no-progress", "output_dir={tmp}/run", "logging.wandb=false"]

# (id, argv with {placeholders}, text the single error line must contain)
CASES = [
    ("edit-steps-0", EDIT + ["-o", "{tmp}/new.mp4", "--steps", "0"], "--steps must be in [1, 1000], got 0"),
    ("edit-steps-negative", EDIT + ["-o", "{tmp}/new.mp4", "--steps", "-3"], "--steps must be in [1, 1000]"),
    ("edit-guidance-negative", EDIT + ["-o", "{tmp}/new.mp4", "--guidance", "-5"], "--guidance must be"),
    ("edit-guidance-nan", EDIT + ["-o", "{tmp}/new.mp4", "--guidance", "nan"], "--guidance must be"),
    ("edit-area-negative", EDIT + ["-o", "{tmp}/new.mp4", "--area", "-100"], "--area must be in"),
    ("edit-shift-0", EDIT + ["-o", "{tmp}/new.mp4", "--shift", "0"], "--shift must be a number > 0"),
    ("edit-seed-huge", EDIT + ["-o", "{tmp}/new.mp4", "--seed", str(10**20)], "--seed must be in"),
    ("edit-empty-instruction", EDIT + ["--instruction", "   ", "-o", "{tmp}/new.mp4"], "--instruction is empty"),
    ("edit-lora-random-bytes", EDIT + ["-o", "{tmp}/new.mp4", "--lora", "{tmp}/random.safetensors"],
     "not a diffusers LoRA safetensors file"),
    ("edit-unknown-codec", EDIT + ["-o", "{tmp}/new.mp4", "--codec", "h265"], "--codec 'h265' is not supported"),
    ("edit-output-is-directory", EDIT + ["-o", "{tmp}/outdir"], "is a directory"),
    ("edit-output-is-the-input", EDIT + ["-o", "{video}"], "refusing to write over an input"),
    ("edit-output-is-the-input-forced", EDIT + ["-o", "{video}", "--force"], "refusing to write over an input"),
    ("edit-output-exists", EDIT + ["-o", "{tmp}/existing.mp4"], "exists; pass --force"),
    ("edit-side-by-side-is-output", EDIT + ["-o", "{tmp}/new.mp4", "--side-by-side", "{tmp}/new.mp4"],
     "are the same file"),
    ("edit-side-by-side-is-reference", EDIT + ["-o", "{tmp}/new.mp4", "--reference", "{tmp}/ref.png",
                                               "--side-by-side", "{tmp}/ref.png", "--force"], "over an input"),
    ("edit-output-parent-is-a-file", EDIT + ["-o", "{tmp}/ref.png/out.mp4"], "is not a directory"),
    ("edit-missing-video", EDIT + ["-o", "{tmp}/new.mp4", "--video", "{tmp}/none.mp4"], "video file not found"),
    ("edit-corrupt-video", EDIT + ["-o", "{tmp}/new.mp4", "--video", "{tmp}/random.safetensors"],
     "cannot decode video"),
    ("edit-missing-base", EDIT + ["-o", "{tmp}/new.mp4", "--base", "{tmp}/nobase"],
     "base checkpoint directory not found"),
    ("export-merged-onto-a-file", ["export", "--checkpoint", "{run}", "--format", "merged", "-o", "{tmp}/existing.mp4"],
     "is an existing file"),
    ("export-merged-onto-the-base", ["export", "--checkpoint", "{run}", "--format", "merged", "-o", "{base}",
                                     "--force"], "refusing to write over an input"),
    ("export-merged-onto-a-parent-of-the-base", ["export", "--checkpoint", "{run}", "--format", "merged",
                                                 "-o", "{base_parent}", "--force"], "refusing to write over an input"),
    ("export-onto-a-non-empty-dir", ["export", "--checkpoint", "{run}", "--format", "diffusers", "-o", "{tmp}"],
     "is not empty; pass --force"),
    ("export-forced-onto-a-foreign-dir", ["export", "--checkpoint", "{run}", "--format", "merged", "-o", "{tmp}",
                                          "--force"], "not an earlier viva export"),
    ("grpo-config-top-level-list", ["grpo", "--config", "{tmp}/list.yaml"], "the top level must be a mapping"),
    ("grpo-reward-weight-abc", GRPO + ["rewards.0.weight=abc"], "'rewards.0.weight=abc'"),
    ("grpo-steps-negative", GRPO + ["grpo.steps=-1"], "grpo.steps must be >= 1, got -1"),
    ("grpo-group-size-negative", GRPO + ["grpo.group_size=-4"], "grpo.group_size must be >= 2"),
    ("grpo-lr-nan", GRPO + ["grpo.lr=nan"], "grpo.lr must be a finite number > 0, got nan"),
    ("grpo-dtype-int8", GRPO + ["model.dtype=int8"], "model.dtype must be one of"),
    ("grpo-missing-manifest", GRPO + ["data.source=manifest", "data.manifest={tmp}/none.jsonl"],
     "manifest not found"),
    ("serve-port-out-of-range", ["serve", "--base", "{base}", "port=99999"], "port must be in [1, 65535]"),
    ("serve-upload-limit-negative", ["serve", "--base", "{base}", "max_upload_mb=-1"], "max_upload_mb must be"),
    ("serve-lora-without-name", ["serve", "--base", "{base}", "--lora", "{tmp}/random.safetensors"],
     "expected name=path"),
    ("serve-missing-base", ["serve", "--base", "{tmp}/nobase"], "base checkpoint"),
    ("config-missing-file", ["config", "show", "--config", "{tmp}/none.yaml"], "config file not found"),
]


def _snapshot(*roots: Path) -> dict:
    """Every file under ``roots``: path -> (size, sha256); directories -> None."""
    out = {}
    for root in roots:
        for p in sorted([root, *root.rglob("*")]):
            out[str(p)] = None if p.is_dir() else (p.stat().st_size, hashlib.sha256(p.read_bytes()).hexdigest())
    return out


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory) -> Path:
    """Inputs and existing outputs the bad commands must leave alone."""
    tmp = tmp_path_factory.mktemp("bad_inputs")
    write_video(tmp / "in.mp4", small_video(frames=3, height=16, width=16), fps=8)
    write_image(tmp / "ref.png", np.full((8, 8, 3), 200, np.uint8))
    write_video(tmp / "existing.mp4", small_video(frames=2, height=16, width=16, seed=1), fps=8)
    (tmp / "random.safetensors").write_bytes(np.random.default_rng(0).bytes(3000))
    (tmp / "outdir").mkdir()
    (tmp / "list.yaml").write_text("- recipe: grpo\n- grpo: {steps: 2}\n")
    return tmp


@pytest.mark.parametrize("argv, message", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_fails_cleanly(argv, message, sandbox, base_ckpt, lora_dir, vlm_name, capsys):
    paths = {"tmp": sandbox, "video": sandbox / "in.mp4", "base": base_ckpt, "base_parent": base_ckpt.parent,
             "run": lora_dir.parent}
    args = [a.format(**paths) for a in argv]
    if args[0] == "edit" and vlm_name != "tiny":
        args += ["--vlm", vlm_name]
    before = _snapshot(sandbox, base_ckpt.parent, lora_dir.parent)
    code = viva_main(args)
    err = capsys.readouterr().err.strip()
    assert code != 0
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    assert message in err, err
    assert _snapshot(sandbox, base_ckpt.parent, lora_dir.parent) == before


def test_force_overwrites_an_output_but_keeps_the_input(tmp_path, base_ckpt, vlm_name, capsys):
    src, out = tmp_path / "in.mp4", tmp_path / "out.mp4"
    write_video(src, small_video(frames=3, height=16, width=16), fps=8)
    out.write_bytes(b"an earlier edit")
    source_bytes = src.read_bytes()
    args = [a.format(video=src, base=base_ckpt) for a in EDIT] + ["-o", str(out), "--force"]
    if vlm_name != "tiny":
        args += ["--vlm", vlm_name]
    assert viva_main(args) == 0, capsys.readouterr().err
    assert out.read_bytes() != b"an earlier edit" and src.read_bytes() == source_bytes


def test_export_force_replaces_an_earlier_export(tmp_path, lora_dir):
    out = tmp_path / "export"
    args = ["export", "--checkpoint", str(lora_dir.parent), "--format", "diffusers", "-o", str(out)]
    assert viva_main(args) == 0
    assert viva_main(args) == 2  # exists now
    assert viva_main(args + ["--force"]) == 0
    assert (out / "viva_export.json").is_file() and (out / "pytorch_lora_weights.safetensors").is_file()
