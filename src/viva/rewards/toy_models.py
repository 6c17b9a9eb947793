"""The toy world's CLIP and PickScore: one tiny open_clip architecture (``viva-toy-clip``, 32x32 images, the real
CLIP BPE tokenizer with a 32-token context), two weight files shipped under ``viva/assets/rewards``.

The token-embedding table has 49408 rows but the toy captions use ~60 tokens, so the files keep only the rows of
tokens seen in training (``token_ids`` + ``token_rows``); every other token embeds to zero. That keeps each file
well under 1 MB. ``viva rewards train-toy`` rewrites them (docs/rewards.md).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import torch

ASSETS = Path(__file__).resolve().parent.parent / "assets" / "rewards"
MODEL_NAME = "viva-toy-clip"
CONFIG_PATH = ASSETS / f"{MODEL_NAME}.json"
WEIGHT_FILES = {"clip": "toy_clip.safetensors", "pickscore": "toy_pickscore.safetensors"}
EMBED_KEY = "token_embedding.weight"


def register_config() -> None:
    """Make ``viva-toy-clip`` known to open_clip (idempotent)."""
    import open_clip

    if MODEL_NAME not in open_clip.list_models():
        open_clip.add_model_config(CONFIG_PATH)


def build_toy_clip(weights_follow: bool = False) -> Tuple[Any, Any]:
    """A randomly initialised toy CLIP and its tokenizer.

    ``weights_follow``: the caller loads weights next, so open_clip's "initialized randomly" warning (true only
    for this call) is dropped instead of misleading the log.
    """
    import open_clip

    register_config()
    with _without_random_init_warning() if weights_follow else contextlib.nullcontext():
        model = open_clip.create_model(MODEL_NAME, pretrained=None)
    return model, open_clip.get_tokenizer(MODEL_NAME)


@contextlib.contextmanager
def _without_random_init_warning():
    """open_clip logs the warning on the root logger; filter exactly that message for the duration."""
    text = f"No pretrained weights loaded for model '{MODEL_NAME}'"

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(text)

    root = logging.getLogger()
    root.addFilter(keep)
    try:
        yield
    finally:
        root.removeFilter(keep)


def weights_path(kind: str) -> Path:
    """The shipped weight file of ``kind`` (clip | pickscore)."""
    if kind not in WEIGHT_FILES:
        raise ValueError(f"unknown toy reward model {kind!r}; expected one of {sorted(WEIGHT_FILES)}")
    return ASSETS / WEIGHT_FILES[kind]


def compact_state_dict(model: Any, token_ids: torch.Tensor) -> Dict[str, torch.Tensor]:
    """The model's weights with the token table cut to ``token_ids`` (a sorted int64 vector)."""
    sd = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    table = sd.pop(EMBED_KEY)  # [vocab, width]
    sd["token_ids"] = token_ids.to(torch.int64).cpu()
    sd["token_rows"] = table[token_ids].contiguous()  # [n_tokens, width]
    return sd


def expand_state_dict(sd: Dict[str, torch.Tensor], vocab_size: int) -> Dict[str, torch.Tensor]:
    """Inverse of :func:`compact_state_dict`: unseen tokens get zero embeddings."""
    sd = dict(sd)
    ids, rows = sd.pop("token_ids"), sd.pop("token_rows")
    table = torch.zeros(vocab_size, rows.shape[1], dtype=rows.dtype)
    table[ids] = rows
    sd[EMBED_KEY] = table
    return sd


def save_toy_clip(state_dict: Dict[str, torch.Tensor], path: Path, metadata: Optional[Dict[str, str]] = None) -> None:
    """Write a compact state dict (see :func:`compact_state_dict`) atomically as safetensors."""
    from safetensors.torch import save_file

    from viva.training.atomic import atomic_path

    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in state_dict.items()}, str(tmp), metadata=metadata or {})


def load_toy_clip(kind: str = "clip", path: Optional[Path] = None) -> Tuple[Any, Any]:
    """The trained toy model (``clip`` | ``pickscore``) in eval mode and its tokenizer."""
    from safetensors.torch import load_file

    path = Path(path) if path is not None else weights_path(kind)
    if not path.is_file():
        raise FileNotFoundError(f"toy reward weights not found: {path}; run `viva rewards train-toy` to make them")
    model, tokenizer = build_toy_clip(weights_follow=True)
    sd = expand_state_dict(load_file(str(path)), model.vocab_size)
    try:
        model.load_state_dict(sd, strict=True)
    except RuntimeError as e:  # another architecture's weights, e.g. trained with a different viva-toy-clip.json
        raise ValueError(f"{path}: not toy {kind} weights for {MODEL_NAME} "
                         f"(viva/assets/rewards/{MODEL_NAME}.json): {str(e).splitlines()[0]}") from e
    return model.eval(), tokenizer
