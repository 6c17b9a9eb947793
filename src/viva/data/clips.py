"""Fixed-size clips and keyframes from real videos (any size, any length), and a manifest dataset that loads them.

A clip is ``num_frames`` frames taken every ``stride``-th frame from the first, centre-cropped to the target aspect
ratio and resized to ``height x width``: what a model trained at one resolution needs from arbitrary footage.
Keyframes are frames spread evenly over the whole video, downscaled for a VLM. Decoding stops as soon as the last
needed frame is read, so a long 4K video costs only the frames it gives.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence

import av
import numpy as np
from PIL import Image

from viva.data.manifest import BadLine, ManifestEntry, ManifestError, SampleError, read_manifest
from viva.data.sample import EditSample
from viva.data.video_io import VideoReadError, read_image


def list_videos(folder: str | Path, extensions: Sequence[str]) -> List[Path]:
    """Video files under ``folder`` (recursive, sorted); an empty or missing folder is an error naming it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise VideoReadError(f"{folder}: videos folder not found")
    exts = {e.lower() for e in extensions}
    videos = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in exts)
    if not videos:
        raise VideoReadError(f"{folder}: no video files with extensions {sorted(exts)}")
    return videos


def video_id(path: Path, root: Path) -> str:
    """A stable sample id: the path under ``root`` without its extension, '/' replaced by '__'."""
    rel = path.relative_to(root).with_suffix("")
    return "__".join(rel.parts)


def fit_frame(frame: np.ndarray, height: int, width: int) -> np.ndarray:
    """Centre-crop ``[H, W, 3]`` uint8 to the aspect ratio of ``height x width``, then resize (bicubic)."""
    h, w = frame.shape[:2]
    if h * width > w * height:  # too tall: crop rows
        ch = max(1, round(w * height / width))
        top = (h - ch) // 2
        frame = frame[top:top + ch]
    else:  # too wide: crop columns
        cw = max(1, round(h * width / height))
        left = (w - cw) // 2
        frame = frame[:, left:left + cw]
    if frame.shape[:2] == (height, width):
        return np.ascontiguousarray(frame)
    return np.asarray(Image.fromarray(frame).resize((width, height), Image.BICUBIC), dtype=np.uint8)


def _decode(path: Path, wanted: Sequence[int]) -> tuple[dict[int, np.ndarray], int]:
    """(frames at the indices ``wanted``, frames decoded); decoding stops after the last wanted one."""
    if not path.is_file():
        raise VideoReadError(f"{path}: video file not found")
    keep, last, got, i = set(wanted), max(wanted), {}, -1
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            for i, frame in enumerate(container.decode(container.streams.video[0])):
                if i in keep:
                    got[i] = frame.to_ndarray(format="rgb24")  # [H, W, 3]
                if i >= last:
                    break
    except VideoReadError:
        raise
    except (av.FFmpegError, ValueError, OSError) as e:
        raise VideoReadError(f"{path}: cannot decode video: {e}") from e
    return got, i + 1


def read_clip(path: str | Path, num_frames: int, stride: int, height: int, width: int) -> np.ndarray:
    """``num_frames`` frames every ``stride``-th from the first, fitted to ``height x width``: uint8 ``[F, H, W, 3]``.

    A video with fewer than ``(num_frames - 1) * stride + 1`` frames is an error (no padding, no looping).
    """
    path = Path(path)
    wanted = [i * stride for i in range(num_frames)]
    got, decoded = _decode(path, wanted)
    if len(got) < num_frames:
        raise VideoReadError(f"{path}: needs {wanted[-1] + 1} frames for {num_frames} frames at stride {stride}, "
                             f"the video has {decoded}")
    return np.stack([fit_frame(got[i], height, width) for i in wanted])


def count_frames(path: str | Path) -> int:
    """Frames in the first video stream: the container's count, else the packets counted by demuxing (no decode)."""
    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoReadError(f"{path}: no video stream")
            stream = container.streams.video[0]
            if stream.frames:
                return int(stream.frames)
            return sum(1 for packet in container.demux(stream) if packet.size)
    except VideoReadError:
        raise
    except (av.FFmpegError, ValueError, OSError) as e:
        raise VideoReadError(f"{path}: cannot open video: {e}") from e


def read_keyframes(path: str | Path, count: int, max_side: int) -> np.ndarray:
    """``count`` frames spread evenly over the video (first and last included), longer side <= ``max_side``."""
    path = Path(path)
    if not path.is_file():
        raise VideoReadError(f"{path}: video file not found")
    total = count_frames(path)
    wanted = sorted({int(round(x)) for x in np.linspace(0, max(total - 1, 0), count)})
    got, _ = _decode(path, wanted)
    if not got:
        raise VideoReadError(f"{path}: video has no frames")
    frames = [got[i] for i in sorted(got)]
    h, w = frames[0].shape[:2]
    scale = min(1.0, max_side / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        frames = [np.asarray(Image.fromarray(f).resize(size, Image.BICUBIC), dtype=np.uint8) for f in frames]
    return np.stack(frames)  # [count, h, w, 3]


class ClipManifestDataset:
    """A manifest of real videos read as fixed-size clips (``data.fit_clip``): sources fitted to F x H x W.

    Prompts only: target, mask and scene are not loaded (Edit-GRPO samples its own edits); a reference image is
    fitted to H x W. A video that cannot give the clip raises ``SampleError`` naming it, so the prompt stream rejects
    it like any bad sample.
    """

    def __init__(self, path: str | Path, num_frames: int, stride: int, height: int, width: int) -> None:
        self.path = Path(path)
        self.entries: List[ManifestEntry | BadLine] = read_manifest(self.path, strict=False)
        if all(isinstance(e, BadLine) for e in self.entries):
            raise ManifestError(f"{self.path}: no usable line in the manifest")
        self.num_frames, self.stride, self.height, self.width = num_frames, stride, height, width

    def __len__(self) -> int:
        return len(self.entries)

    def __getitem__(self, i: int) -> EditSample:
        entry = self.entries[i]
        if isinstance(entry, BadLine):
            raise SampleError(entry.sample_id, entry.reason)
        if not entry.instruction.strip():
            raise SampleError(entry.sample_id, "empty instruction")
        try:
            clip = read_clip(entry.source, self.num_frames, self.stride, self.height, self.width)
            ref = self._reference(entry.reference)
        except VideoReadError as e:
            raise SampleError(entry.sample_id, str(e)) from e
        return EditSample(sample_id=entry.sample_id, instruction=entry.instruction,
                          source_caption=entry.source_caption, edit_caption=entry.edit_caption, source_video=clip,
                          reference_image=ref, edit_type=entry.edit_type)

    def _reference(self, path: Optional[Path]) -> Optional[np.ndarray]:
        return None if path is None else fit_frame(read_image(path), self.height, self.width)
