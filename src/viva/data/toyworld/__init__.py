"""Procedural toy world: paired video edits with exact ground truth and an oracle score (docs/toyworld.md)."""

from viva.data.toyworld.oracle import OracleScore, oracle_score, oracle_scores
from viva.data.toyworld.scene import (
    BACKGROUNDS, PALETTE, SHAPES, Scene, ToyObject, caption, parse_scene_json, render, render_ids, scene_pair_json,
)
from viva.data.toyworld.world import SPLIT_EDIT_TYPES, ToyWorld, reference_image

__all__ = [
    "BACKGROUNDS", "PALETTE", "SHAPES", "SPLIT_EDIT_TYPES", "OracleScore", "Scene", "ToyObject", "ToyWorld",
    "caption", "oracle_score", "oracle_scores", "parse_scene_json", "reference_image", "render", "render_ids",
    "scene_pair_json",
]
