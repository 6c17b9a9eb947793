"""Weight sync cost: a r=64 LoRA of the 13B HunyuanVideo DiT vs the full DiT, delivered to 8 rollout actors.

The LoRA size is counted, not guessed: the real HunyuanVideo transformer config is built on the ``meta`` device
and every LoRA target (LoRAConfig.target_modules: to_q/k/v/to_out.0/add_q/k/v_proj/to_add_out in the dual-stream
blocks, to_q/k/v in the single-stream blocks) contributes r * (in + out) parameters.
Delivery = ``ray.put`` once + the ref broadcast to every actor (numpy, fp32 like viva.records.make_update), and
each actor copies the arrays into its own buffers (what loading into the model costs). Compared with passing the
arrays by value to each actor (one serialisation per actor). The full 13B DiT (bf16) does not fit this machine 8
times over: a --standin-gb stand-in is delivered instead (touching every page, no copy) and the time is
extrapolated linearly in bytes. One node: the object store is shared memory; across nodes each node pulls the
object once over the network, which this machine cannot measure.

Run: .venv/bin/python bench/bench_weight_sync.py [--actors 8 --rank 64 --standin-gb 1.5]
"""

from __future__ import annotations

import argparse
import hashlib
import re
import time

import numpy as np
import ray
import torch
from diffusers import HunyuanVideoTransformer3DModel

from viva.cluster import ActorGroup, LocalCluster
from viva.config import ClusterConfig, LoRAConfig

# transformer/config.json of hunyuanvideo-community/HunyuanVideo (the 13B T2V DiT).
HUNYUAN_VIDEO_13B = dict(
    in_channels=16, out_channels=16, num_attention_heads=24, attention_head_dim=128, num_layers=20,
    num_single_layers=40, num_refiner_layers=2, mlp_ratio=4.0, patch_size=2, patch_size_t=1, qk_norm="rms_norm",
    guidance_embeds=True, text_embed_dim=4096, pooled_projection_dim=768, rope_theta=256.0, rope_axes_dim=(16, 56, 56),
)


class WeightReceiver:
    """Stand-in rollout actor: receives a {name: array} state dict."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def load(self, tensors: dict[str, np.ndarray]) -> int:
        """Copy every array into this actor's own buffers (as load_state_dict would); returns bytes loaded."""
        for name, array in tensors.items():
            if name not in self.buffers:
                self.buffers[name] = np.empty_like(array)
            np.copyto(self.buffers[name], array)
        return int(sum(a.nbytes for a in tensors.values()))

    def touch(self, tensors: dict[str, np.ndarray]) -> int:
        """Read one word per 4 KiB page of every array (maps it all in) without keeping a copy."""
        for array in tensors.values():
            int(array.reshape(-1).view(np.uint8)[::4096].sum())  # one byte per page: faults every page in
        return int(sum(a.nbytes for a in tensors.values()))

    def clear(self) -> None:
        """Drop the buffers."""
        self.buffers = {}


def lora_shapes(rank: int) -> tuple[dict[str, tuple[int, int]], int]:
    """LoRA A/B shapes per target of the real 13B DiT, and the DiT's parameter count."""
    with torch.device("meta"):
        model = HunyuanVideoTransformer3DModel(**HUNYUAN_VIDEO_13B)
    pattern = re.compile(LoRAConfig().target_modules)
    shapes = {}
    for name, module in model.named_modules():
        if pattern.fullmatch(name) and isinstance(module, torch.nn.Linear):
            shapes[f"{name}.lora_A.weight"] = (rank, module.in_features)
            shapes[f"{name}.lora_B.weight"] = (module.out_features, rank)
    return shapes, sum(p.numel() for p in model.parameters())


def timed(fn) -> float:
    """Wall time of one call."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def deliver(group: ActorGroup, tensors: dict, method: str, by_value: bool) -> tuple[float, float]:
    """(put seconds, total seconds until every actor acknowledged)."""
    start = time.perf_counter()
    if by_value:  # one serialisation per actor: Ray puts the large arguments of each call separately
        refs = [group.call(i, method, tensors) for i in range(len(group))]
        put_s = 0.0
    else:
        ref = ray.put(tensors)
        put_s = time.perf_counter() - start
        refs = group.call_all(method, ref)
    assert sum(group.get(refs, timeout=600)) == len(group) * sum(a.nbytes for a in tensors.values())
    return put_s, time.perf_counter() - start


def main() -> None:
    """Count the LoRA, then measure deliveries side by side."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--actors", type=int, default=8)
    p.add_argument("--rank", type=int, default=64)
    p.add_argument("--standin-gb", type=float, default=1.5)
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    # 1. Sizes from the real config.
    shapes, dit_params = lora_shapes(args.rank)
    lora_params = sum(a * b for a, b in shapes.values())
    full_bytes = dit_params * 2  # bf16
    rng = np.random.default_rng(0)
    lora = {k: rng.standard_normal(s, dtype=np.float32) for k, s in shapes.items()}  # fp32, as weight_sync packs
    lora_bytes = sum(a.nbytes for a in lora.values())
    print(f"HunyuanVideo DiT: {dit_params / 1e9:.2f} B params = {full_bytes / 1e9:.1f} GB in bf16")
    print(f"LoRA r={args.rank}: {len(shapes) // 2} targets, {lora_params / 1e6:.1f} M params = "
          f"{lora_bytes / 1e9:.3f} GB fp32 ({lora_bytes / 2e9:.3f} GB bf16); "
          f"{full_bytes / lora_bytes:.0f}x smaller than the bf16 DiT")
    sha_s = timed(lambda: [hashlib.sha256(a).digest() for a in lora.values()])
    print(f"SHA-256 of the fp32 LoRA on one core: {sha_s:.2f} s ({lora_bytes / sha_s / 1e9:.2f} GB/s)")
    # 2. Deliveries (embedded cluster, logical CPUs so the receivers fit).
    cfg = ClusterConfig(num_cpus=args.actors, log_to_driver=False, object_store_memory=int(6e9))
    with LocalCluster(cfg):
        group = ActorGroup(WeightReceiver, args.actors, role="rollout", num_cpus=0.5)
        group.wait_ready(120)
        rows = []
        for label, method, by_value in [("put once + ref", "load", False), ("by value per actor", "load", True)]:
            best = min(deliver(group, lora, method, by_value) for _ in range(args.repeats))
            rows.append((f"LoRA fp32, {label}, copy in actor", lora_bytes, best))
        group.get(group.call_all("clear"))
        del lora
        standin = {f"w{i}": np.ones(int(args.standin_gb * 1e9) // 4 // 8, dtype=np.float32) for i in range(8)}
        standin_bytes = sum(a.nbytes for a in standin.values())
        best = min(deliver(group, standin, "touch", False) for _ in range(args.repeats))
        rows.append((f"{standin_bytes / 1e9:.1f} GB stand-in, put once + ref, touch", standin_bytes, best))
        _report(rows, args.actors, full_bytes, standin_bytes)
        group.shutdown()


def _report(rows: list, actors: int, full_bytes: int, standin_bytes: int) -> None:
    print(f"\nDelivery to {actors} actors on one node (best of repeats):")
    print(f"{'payload / method':<52} {'put s':>7} {'total s':>8} {'GB/s per actor':>15} {'aggregate GB/s':>15}")
    for label, nbytes, (put_s, total_s) in rows:
        print(f"{label:<52} {put_s:>7.3f} {total_s:>8.3f} {nbytes / total_s / 1e9:>15.2f} "
              f"{actors * nbytes / total_s / 1e9:>15.2f}")
    lora_s = rows[0][2][1]
    standin_s = rows[-1][2][1]
    full_s = standin_s * full_bytes / standin_bytes
    print(f"\nFull 13B DiT (bf16, {full_bytes / 1e9:.1f} GB): EXTRAPOLATED linearly from the stand-in = {full_s:.1f} s "
          f"(put + map only, no copy); LoRA put once + copy: {lora_s:.3f} s -> {full_s / lora_s:.0f}x faster sync")
    print(f"put-once broadcast vs by-value: {rows[1][2][1] / rows[0][2][1]:.2f}x faster")


if __name__ == "__main__":
    main()
