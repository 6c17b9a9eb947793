"""`viva config show`: print the resolved config (file + overrides), or the error naming the bad key.

Run: ``viva config show --config configs/grpo/toy.yaml grpo.group_size=8``
"""

from __future__ import annotations

import argparse
import sys
from typing import List

from viva.config import RECIPES, ConfigError, load_config, to_yaml


def main(argv: List[str]) -> int:
    """Parse `viva config show` arguments and print the resolved YAML."""
    parser = argparse.ArgumentParser(prog="viva config", description="Inspect configs.")
    sub = parser.add_subparsers(dest="action", required=True)
    show = sub.add_parser("show", help="print the resolved config")
    show.add_argument("--config", help="YAML file (its 'recipe' key picks the schema)")
    show.add_argument("--recipe", choices=sorted(RECIPES), help="schema to use when no --config is given")
    show.add_argument("overrides", nargs="*", help="key=value overrides, e.g. grpo.group_size=8")
    args = parser.parse_args(argv)
    if args.config is None and args.recipe is None:
        parser.error("give --config FILE or --recipe NAME")
    try:
        cfg = load_config(args.config, args.overrides, recipe=args.recipe)
    except ConfigError as e:
        print(f"viva config: {e}", file=sys.stderr)
        return 2
    print(to_yaml(cfg), end="")
    return 0
