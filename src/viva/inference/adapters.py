"""Several named LoRAs served over one base model: one peft adapter slot whose weights are swapped per batch.

The server's Ray Serve multiplexing keeps up to N ``LoadedAdapter`` (weights in host memory) per replica and
routes each request to a replica that has its adapter; a batch always holds one adapter's requests, and
``AdapterBank.use(adapter)`` puts those weights into the DiT for the batch (``None``: the base model, adapters off).
Swapping copies r x (d_in + d_out) numbers per targeted layer, far cheaper than a denoising step.
"""

from __future__ import annotations

import contextlib
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional


@dataclass(frozen=True)
class LoadedAdapter:
    """One LoRA read into host memory: peft-named weights and its adapter config (diffusers metadata)."""

    name: str
    path: str
    weights: dict  # str -> Tensor
    config: str  # JSON of the adapter config; equal configs share the slot's structure


def parse_lora_specs(specs: list[str]) -> dict[str, str]:
    """``["name=path", ...]`` -> {name: path}; names are [A-Za-z0-9_.-]+ and unique, paths must exist."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise ValueError(f"--lora {spec!r}: expected name=path")
        if not all(c.isalnum() or c in "_.-" for c in name):
            raise ValueError(f"--lora {spec!r}: the name may use letters, digits, '_', '.', '-' only")
        if name in out:
            raise ValueError(f"--lora {spec!r}: the name {name!r} is given twice")
        if not Path(path).exists():
            raise FileNotFoundError(f"--lora {spec!r}: {path} not found")
        out[name] = str(path)
    return out


class AdapterBank:
    """Named LoRA paths over one editor; ``use`` activates one adapter's weights (or none) for a block of code."""

    def __init__(self, editor, paths: dict[str, str]) -> None:
        self.editor = editor
        self.paths = dict(paths)
        self._active: Optional[str] = None  # name whose weights are in the slot
        self._slot_config: Optional[str] = None
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """The adapters this bank can serve."""
        return sorted(self.paths)

    def load(self, name: str) -> LoadedAdapter:
        """Read a named LoRA from disk (safetensors only) into host memory."""
        from viva.models.lora import read_lora

        if name not in self.paths:
            raise KeyError(f"unknown LoRA {name!r}; loaded: {self.names()}")
        weights, meta = read_lora(self.paths[name])
        if meta is None:
            raise ValueError(f"LoRA {name!r} ({self.paths[name]}) has no adapter metadata (alpha unknown)")
        return LoadedAdapter(name, self.paths[name], weights, json.dumps(meta, sort_keys=True))

    @contextlib.contextmanager
    def use(self, adapter: Optional[LoadedAdapter]) -> Iterator[None]:
        """Run the block with ``adapter``'s weights in the DiT (None: the base model with adapters disabled)."""
        from viva.models.lora import adapters_disabled

        with self._lock:
            if adapter is None:
                with adapters_disabled(self.editor.dit):
                    yield
                return
            self._install(adapter)
            yield

    def _install(self, adapter: LoadedAdapter) -> None:
        from viva.models.backends import after_weight_sync
        from viva.models.lora import ADAPTER_NAME, has_lora, load_lora, load_lora_state_dict

        dit = self.editor.dit
        if self._active == adapter.name:
            return
        if has_lora(dit) and self._slot_config == adapter.config:
            load_lora_state_dict(dit, adapter.weights)  # same structure: copy the values only
        else:
            if has_lora(dit):
                dit.transformer.delete_adapters(ADAPTER_NAME)
            load_lora(dit, adapter.path)  # builds the slot from the file's metadata
            load_lora_state_dict(dit, adapter.weights)  # the weights read at load time, whatever the file is now
            self._slot_config = adapter.config
        self._active = adapter.name
        dit.requires_grad_(False)
        after_weight_sync(dit)  # a TensorRT engine refits to the new values (backends.py); eager: nothing
