"""The `viva` command. Each subcommand lives in its owner module as ``main(argv) -> int`` and is imported lazily,
so `viva --help` stays fast and GPU-only extras are never imported unless used.

Run: ``viva --help``
"""

from __future__ import annotations

import importlib
import sys
from typing import List, Optional

# name -> (module:function, one-line help)
COMMANDS = {
    "config": ("viva.config_cli:main", "show the resolved config: viva config show --config X [key=value ...]"),
    "grpo": ("viva.grpo.driver:main", "Edit-GRPO on Ray (embedded local cluster by default)"),
    "sft": ("viva.sft.recipe:main", "supervised fine-tuning that writes the base checkpoint"),
    "edit": ("viva.inference.edit:main", "edit one video from the command line"),
    "export": ("viva.inference.export:main", "export a tuned LoRA (diffusers | peft | merged)"),
    "serve": ("viva.inference.server:main", "serve edits over HTTP (Ray Serve + FastAPI)"),
    "eval": ("viva.rewards.evaluate:main", "VIE-Bench-style metrics on a manifest"),
    "rewards": ("viva.rewards.cli:main", "list reward models, train the toy reward models"),
    "toyworld": ("viva.data.toyworld.cli:main", "write a toy-world dataset (JSONL manifest + mp4 files)"),
    "data": ("viva.data.cli:main", "real-video data: VLM triplets (prompts) and synthesised SFT pairs"),
}


def _usage() -> str:
    width = max(len(n) for n in COMMANDS)
    lines = ["usage: viva COMMAND [options]", "", "commands:"]
    lines += [f"  {name.ljust(width)}  {help_}" for name, (_, help_) in COMMANDS.items()]
    lines += ["", "`viva COMMAND --help` shows a command's options."]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of the `viva` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from viva import __version__

        print(__version__)
        return 0
    name, rest = argv[0], argv[1:]
    if name not in COMMANDS:
        print(f"viva: unknown command {name!r}\n\n{_usage()}", file=sys.stderr)
        return 2
    module_name, func_name = COMMANDS[name][0].split(":")
    func = getattr(importlib.import_module(module_name), func_name)
    return int(func(rest) or 0)


if __name__ == "__main__":
    sys.exit(main())
