"""JSONL manifests of edit pairs with their media files, and a lazily loading dataset over them.

One line per sample: ``id, instruction, source_caption, edit_caption, source`` (required) and ``target, mask,
reference, edit_type, scene`` (optional). Media paths are relative to the manifest's folder: videos are mp4
(libx264rgb, lossless), 1-frame samples and reference images are png, masks are npz (key ``mask``, float32
``[F, H, W]``). ``scene`` is the toy world's scene JSON object.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator, List, Optional

import numpy as np

from viva.data.sample import EditSample
from viva.data.video_io import VideoReadError, read_image, read_video, write_image, write_video
from viva.training.atomic import atomic_path, atomic_write_text

REQUIRED_KEYS = ("id", "instruction", "source_caption", "edit_caption", "source")
OPTIONAL_KEYS = ("target", "mask", "reference", "edit_type", "scene")
MEDIA_DIR = "media"


class ManifestError(ValueError):
    """A manifest line is malformed; the message names the file, the line number and the key."""


class SampleError(ValueError):
    """One sample cannot be loaded (missing/corrupt media, empty instruction, inconsistent shapes)."""

    def __init__(self, sample_id: str, reason: str) -> None:
        super().__init__(f"sample {sample_id}: {reason}")
        self.sample_id = sample_id
        self.reason = reason


@dataclass(frozen=True)
class ManifestEntry:
    """One validated manifest line (media paths are absolute)."""

    line: int
    sample_id: str
    instruction: str
    source_caption: str
    edit_caption: str
    source: Path
    target: Optional[Path]
    mask: Optional[Path]
    reference: Optional[Path]
    edit_type: str
    scene: Optional[str]  # canonical JSON text


@dataclass(frozen=True)
class BadLine:
    """A manifest line that does not parse; loading it raises SampleError, so it is rejected like a bad sample."""

    line: int
    sample_id: str  # the line's id when it has one, else "line:N"
    reason: str


def _write_frames(path_no_ext: Path, frames: np.ndarray) -> str:
    """A 1-frame video becomes a png, longer ones an mp4; returns the file name."""
    if frames.shape[0] == 1:
        write_image(path_no_ext.with_suffix(".png"), frames[0])
        return path_no_ext.with_suffix(".png").name
    write_video(path_no_ext.with_suffix(".mp4"), frames)
    return path_no_ext.with_suffix(".mp4").name


def _write_mask(path: Path, mask: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        np.savez_compressed(tmp, mask=mask.astype(np.float32))


def _sample_record(s: EditSample, media: Path) -> dict:
    """Write one sample's media files under ``media`` and return its manifest line."""
    stem = "".join(c if c.isalnum() or c in "-_." else "_" for c in s.sample_id)
    rec: dict = {"id": s.sample_id, "instruction": s.instruction, "source_caption": s.source_caption,
                 "edit_caption": s.edit_caption, "edit_type": s.edit_type}
    rec["source"] = f"{MEDIA_DIR}/{_write_frames(media / f'{stem}_src', s.source_video)}"
    if s.target_video is not None:
        rec["target"] = f"{MEDIA_DIR}/{_write_frames(media / f'{stem}_tgt', s.target_video)}"
    if s.mask is not None:
        _write_mask(media / f"{stem}_mask.npz", s.mask)
        rec["mask"] = f"{MEDIA_DIR}/{stem}_mask.npz"
    if s.reference_image is not None:
        write_image(media / f"{stem}_ref.png", s.reference_image)
        rec["reference"] = f"{MEDIA_DIR}/{stem}_ref.png"
    if s.scene_json is not None:
        rec["scene"] = json.loads(s.scene_json)
    return rec


def write_manifest(samples: Iterable[EditSample], out_dir: str | Path, name: str = "manifest.jsonl") -> Path:
    """Write media files under ``out_dir/media`` and the JSONL manifest (atomically); returns the manifest path."""
    out_dir = Path(out_dir)
    media = out_dir / MEDIA_DIR
    media.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps(_sample_record(s, media), sort_keys=True) for s in samples]
    path = out_dir / name
    atomic_write_text(path, "".join(line + "\n" for line in lines))
    return path


def _entry(obj: object, line: int, where: str, root: Path) -> ManifestEntry:
    if not isinstance(obj, dict):
        raise ManifestError(f"{where}: line {line}: expected a JSON object, got {type(obj).__name__}")
    for key in REQUIRED_KEYS:
        if key not in obj:
            raise ManifestError(f"{where}: line {line}: missing key {key!r}")
    for key in obj:
        if key not in REQUIRED_KEYS + OPTIONAL_KEYS:
            raise ManifestError(f"{where}: line {line}: unknown key {key!r}")
    for key in REQUIRED_KEYS + ("target", "mask", "reference", "edit_type"):
        if key in obj and obj[key] is not None and not isinstance(obj[key], str):
            raise ManifestError(f"{where}: line {line}: key {key!r} must be a string")

    def media(key: str) -> Optional[Path]:
        return root / obj[key] if obj.get(key) else None

    scene = obj.get("scene")
    return ManifestEntry(
        line=line, sample_id=obj["id"], instruction=obj["instruction"], source_caption=obj["source_caption"],
        edit_caption=obj["edit_caption"], source=root / obj["source"], target=media("target"), mask=media("mask"),
        reference=media("reference"), edit_type=obj.get("edit_type") or "add",
        scene=None if scene is None else json.dumps(scene, sort_keys=True, separators=(",", ":")),
    )


def read_manifest(path: str | Path, strict: bool = True) -> List[ManifestEntry | BadLine]:
    """Parse and validate every line of a JSONL manifest (blank lines are skipped).

    ``strict``: a bad line raises ManifestError; otherwise it becomes a ``BadLine`` (rejected when loaded).
    """
    path = Path(path)
    if not path.is_file():
        raise ManifestError(f"{path}: manifest not found")
    entries: List[ManifestEntry | BadLine] = []
    seen: set = set()
    with path.open(encoding="utf-8", errors="replace") as f:
        for n, text in enumerate(f, start=1):
            if not text.strip():
                continue
            try:
                entries.append(_parse_line(text, n, path, seen))
            except ManifestError as e:
                if strict:
                    raise
                entries.append(BadLine(n, getattr(e, "sample_id", None) or f"line:{n}", str(e)))
    return entries


def _parse_line(text: str, n: int, path: Path, seen: set) -> ManifestEntry:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise ManifestError(f"{path}: line {n}: not valid JSON: {e}") from e
    try:
        entry = _entry(obj, n, str(path), path.parent)
    except ManifestError as e:
        if isinstance(obj, dict) and isinstance(obj.get("id"), str):
            e.sample_id = obj["id"]
        raise
    if entry.sample_id in seen:
        raise ManifestError(f"{path}: line {n}: duplicate id {entry.sample_id!r}")
    seen.add(entry.sample_id)
    return entry


def _load_frames(path: Path) -> np.ndarray:
    if path.suffix.lower() in (".png", ".jpg", ".jpeg", ".webp"):
        return read_image(path)[None]  # [1, H, W, 3]
    return read_video(path)[0]  # [F, H, W, 3]


def _load_mask(path: Path) -> np.ndarray:
    try:
        with np.load(path, allow_pickle=False) as z:
            return np.asarray(z["mask"], dtype=np.float32)
    except FileNotFoundError as e:
        raise VideoReadError(f"{path}: mask file not found") from e
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
        raise VideoReadError(f"{path}: cannot read mask: {e}") from e


def load_entry(e: ManifestEntry | BadLine) -> EditSample:
    """Load one entry's media into an EditSample; any problem raises SampleError naming the sample."""
    if isinstance(e, BadLine):
        raise SampleError(e.sample_id, e.reason)
    if not e.instruction.strip():
        raise SampleError(e.sample_id, "empty instruction")
    try:
        return EditSample(
            sample_id=e.sample_id, instruction=e.instruction, source_caption=e.source_caption,
            edit_caption=e.edit_caption, source_video=_load_frames(e.source),
            target_video=_load_frames(e.target) if e.target else None,
            mask=_load_mask(e.mask) if e.mask else None,
            reference_image=read_image(e.reference) if e.reference else None,
            edit_type=e.edit_type, scene_json=e.scene,
        )
    except SampleError:
        raise
    except ValueError as err:  # VideoReadError and EditSample's shape checks
        raise SampleError(e.sample_id, str(err)) from err


class RejectsLog:
    """Appends (id, reason) of skipped samples to a JSONL file and counts them."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.count = 0

    def record(self, err: SampleError) -> None:
        """Count one rejected sample and append it to the file, if any."""
        self.count += 1
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as f:
                f.write(json.dumps({"id": err.sample_id, "reason": err.reason}) + "\n")


class ManifestDataset:
    """Sequence of EditSamples over a JSONL manifest; media load lazily in ``__getitem__``.

    A malformed line does not stop the run: loading it raises SampleError, so it is rejected like a bad sample.
    A manifest without any well-formed line is a ManifestError.
    """

    def __init__(self, path: str | Path, rejects_file: str | Path | None = None) -> None:
        self.path = Path(path)
        self.entries = read_manifest(self.path, strict=False)
        bad = [e for e in self.entries if isinstance(e, BadLine)]
        if len(bad) == len(self.entries):
            first = f"; line {bad[0].line}: {bad[0].reason}" if bad else ""
            raise ManifestError(f"{self.path}: no usable line in the manifest{first}")
        self.rejects = RejectsLog(rejects_file)

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> EditSample:
        return load_entry(self.entries[i])

    def iter_valid(self) -> Iterator[EditSample]:
        """All loadable samples in order; bad ones are skipped and recorded in ``self.rejects``."""
        for entry in self.entries:
            try:
                yield load_entry(entry)
            except SampleError as err:
                self.rejects.record(err)

    @property
    def num_rejected(self) -> int:
        """Samples skipped so far by ``iter_valid``."""
        return self.rejects.count
