"""The VLM's answer for one video: a JSON object with ``t_src``, ``instruction`` and ``t_edit``, checked strictly.

>>> parse_triplet('{"t_src": "a dog runs", "instruction": "Make the dog red.", "t_edit": "a red dog runs"}').t_edit
'a red dog runs'
"""

from __future__ import annotations

from dataclasses import dataclass

from viva.data.vlm_chat import MalformedAnswer, first_json_object

FIELDS = ("t_src", "instruction", "t_edit")
MAX_CHARS = 1000  # per field: longer answers are rambling, not captions


@dataclass(frozen=True)
class Triplet:
    """Source caption, editing instruction, edited caption (VIVA's t_src, t_ins, t_edit)."""

    t_src: str
    instruction: str
    t_edit: str


def parse_triplet(text: str) -> Triplet:
    """The triplet in a VLM answer; raises :class:`MalformedAnswer` saying what is missing or wrong."""
    obj = first_json_object(text)
    values = {}
    for key in FIELDS:
        v = obj.get(key)
        if not isinstance(v, str):
            raise MalformedAnswer(f"key {key!r} is missing or not a string in {obj!r}"[:300])
        v = " ".join(v.split())
        if not v:
            raise MalformedAnswer(f"key {key!r} is empty")
        if len(v) > MAX_CHARS:
            raise MalformedAnswer(f"key {key!r} has {len(v)} characters (more than {MAX_CHARS})")
        values[key] = v
    if values["t_src"].lower() == values["t_edit"].lower():
        raise MalformedAnswer("t_edit repeats t_src: the caption of the edited video must differ")
    return Triplet(**values)
