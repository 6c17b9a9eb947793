"""`viva data pairs`: paired-data synthesis for SFT from real videos, as pluggable stages on Ray —
detect (Grounding DINO) -> track masks (SAM 2) -> inpaint (diffusers) -> quality control (a VLM) -> SFT manifest.

Each stage is a component behind a small protocol (``viva.data.pairs.components``) found by name in
``viva.data.pairs.registry``; ``viva.data.pairs.tiny`` writes random-weight versions of the real models for tests.
"""

from viva.data.pairs.pipeline import PairsReport, StageReport, run_pairs

__all__ = ["PairsReport", "StageReport", "run_pairs"]
