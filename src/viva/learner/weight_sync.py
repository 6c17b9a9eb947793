"""LoRA-only weight sync: a versioned, checksummed adapter that every rollout actor verifies and acknowledges."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Dict, Mapping

import numpy as np
import torch


class WeightSyncError(RuntimeError):
    """An adapter failed its checksum or arrived out of order."""


@dataclass(frozen=True)
class AdapterUpdate:
    """LoRA tensors (numpy, fp32, stable key order) stamped with the policy_version and a SHA-256 over all bytes."""

    policy_version: int
    tensors: Dict[str, np.ndarray]
    checksum: str

    @property
    def num_bytes(self) -> int:
        """Payload size."""
        return int(sum(a.nbytes for a in self.tensors.values()))


@dataclass(frozen=True)
class AdapterAck:
    """A rollout actor's receipt: which version it now samples with and the checksum it verified."""

    actor_index: int
    policy_version: int
    checksum: str


def _digest(tensors: Mapping[str, np.ndarray]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        a = np.ascontiguousarray(tensors[name])
        h.update(name.encode())
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()


def make_update(state_dict: Mapping[str, torch.Tensor], policy_version: int) -> AdapterUpdate:
    """Pack a LoRA state dict for broadcast (``ray.put`` it once and pass the ref)."""
    tensors = {k: state_dict[k].detach().to("cpu", torch.float32).contiguous().numpy().copy() for k in sorted(state_dict)}
    return AdapterUpdate(policy_version=policy_version, tensors=tensors, checksum=_digest(tensors))


def verify_update(update: AdapterUpdate) -> Dict[str, torch.Tensor]:
    """Check the checksum and return torch tensors; raise `WeightSyncError` on mismatch."""
    got = _digest(update.tensors)
    if got != update.checksum:
        raise WeightSyncError(
            f"adapter v{update.policy_version}: checksum mismatch (expected {update.checksum[:12]}, got {got[:12]})"
        )
    return {k: torch.from_numpy(np.array(v)) for k, v in update.tensors.items()}
