"""`viva data triplets`: a VLM captions each source video (t_src), writes an instruction that mixes edit types, and
captions the intended result (t_edit) — the (t_src, instruction, t_edit) triplets Edit-GRPO's CLIP-IF reward and the
instructor train on (VIVA Appendix C.2). Output: a JSONL manifest of prompts (`viva.data.manifest` format).
"""

from viva.data.triplets.answer import Triplet, parse_triplet
from viva.data.triplets.runner import TripletsReport, run_triplets

__all__ = ["Triplet", "TripletsReport", "parse_triplet", "run_triplets"]
