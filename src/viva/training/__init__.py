"""viva.training: what the recipes (SFT, Edit-GRPO) and the writers under them share — atomic files and checkpoint
directories (`atomic`), the metrics sink (`metrics`: JSONL + wandb) and the flat gradient all-reduce
(`distributed`). A low layer: it imports nothing from viva but `viva.config`."""
