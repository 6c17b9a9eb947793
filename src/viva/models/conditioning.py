"""Everything the DiT is conditioned on for one prompt, repeated for its G samples (rollout and learner share it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from viva.data.sample import EditSample


@dataclass(frozen=True)
class PromptCondition:
    """Source latent, instruction condition, null (unconditional) condition and reference latent of one prompt."""

    source: torch.Tensor  # [G, C, F', h, w]
    cond: object  # TextCondition with batch G
    null_cond: object  # TextCondition with batch G (empty instruction: CFG on the instruction only)
    reference: Optional[torch.Tensor]  # [G, C, 1, h, w] or None


def _repeat_condition(cond: object, n: int) -> object:
    """Repeat a batch-1 TextCondition n times along the batch axis."""
    return type(cond)(hidden_states=cond.hidden_states.expand(n, -1, -1).contiguous(),  # [n, L, D]
                      mask=cond.mask.expand(n, -1).contiguous())  # [n, L]


@torch.no_grad()
def prepare_condition(editor, prompt: EditSample, repeat: int) -> PromptCondition:
    """Encode a prompt once (the VLM cache makes repeats free) and repeat it for a group of ``repeat`` samples."""
    first = prompt.source_video[0]  # [H, W, 3] uint8
    refs = [prompt.reference_image]
    source = editor.encode_videos(prompt.source_video[None])  # [1, C, F', h, w]
    cond = editor.encode_condition([prompt.instruction], [first], refs)
    null = editor.null_condition([first], refs)
    reference = editor.encode_reference(refs) if prompt.reference_image is not None else None
    return PromptCondition(
        source=source.expand(repeat, *source.shape[1:]).contiguous(),
        cond=_repeat_condition(cond, repeat),
        null_cond=_repeat_condition(null, repeat),
        reference=None if reference is None else reference.expand(repeat, *reference.shape[1:]).contiguous(),
    )
