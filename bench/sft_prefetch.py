"""Throughput of the SFT recipe with and without ``sft.prefetch`` (step n+1's data, codec and frozen-VLM inputs made
in a worker thread while step n trains), measured side by side in one process: on / off / on / off.

Run: ``python bench/sft_prefetch.py [--steps 120] [--config configs/sft/toy.yaml] [key=value ...]``
Prints samples/s of each run (first step excluded, as `viva sft` reports it) and the on / off ratio.
"""

from __future__ import annotations

import argparse
import sys
import tempfile

import torch


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", default="configs/sft/toy.yaml")
    p.add_argument("--steps", type=int, default=120)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("overrides", nargs="*")
    args = p.parse_args(argv)

    from viva.config import load_config
    from viva.sft.trainer import run_sft

    rates: dict[bool, list[float]] = {True: [], False: []}
    for _ in range(args.repeats):
        for on in (True, False):
            with tempfile.TemporaryDirectory() as out:
                cfg = load_config(args.config, [*args.overrides, f"output_dir={out}", f"sft.steps={args.steps}",
                                                f"sft.prefetch={str(on).lower()}", "logging.progress=false",
                                                "sft.checkpoint_every=0"])
                rate = run_sft(cfg).samples_per_s
            rates[on].append(rate)
            print(f"prefetch={'on ' if on else 'off'}  {rate:6.1f} samples/s", flush=True)
    on, off = sum(rates[True]) / len(rates[True]), sum(rates[False]) / len(rates[False])
    print(f"mean: on {on:.1f}, off {off:.1f} samples/s; on / off = {on / off:.2f}x "
          f"({args.steps} steps x {args.repeats} repeats, torch threads {torch.get_num_threads()})")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
