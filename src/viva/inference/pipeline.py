"""EditPipeline: one instruction-based video edit with the final model (ODE sampling, CFG on the instruction).

    pipe = EditPipeline(editor, PipelineOptions(area=32 * 32, window=8))
    edited = pipe(video, "make the ball red", num_steps=50, guidance_scale=2.0, seed=0)  # uint8 [F, H, W, 3]

Any input size works: the video is fitted to the model's aspect-ratio bucket and the result restored to the input
size (see ``viva.inference.bucket``). Several requests of the same shape and options denoise as one batch
(``pipe.run([...])``), which is what the server's batching uses.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
import torch

from viva.inference import bucket as bk
from viva.samplers import denoise, sigma_schedule

Progress = Callable[[int, int], None]  # (steps done, total steps)
MAX_SEED = 2**32 - 1  # the noise seed is seed * 1_000_003 + window index, which must fit torch's 64-bit seed


@dataclass(frozen=True)
class PipelineOptions:
    """How inputs are fitted to the model (area / window of the preset) and the flow schedule's shift."""

    area: int = bk.PRESET_AREA["tiny"]  # pixels of the model's buckets
    window: int = bk.PRESET_WINDOW["tiny"]  # frames denoised together; longer videos are cut into windows
    shift: float = 7.0  # HunyuanVideo's timestep shift (SamplerConfig.shift)
    max_windows_per_batch: int = 16  # windows (over all requests) in one DiT batch; bounds memory


@dataclass(frozen=True)
class EditRequest:
    """One edit: uint8 video ``[F, H, W, 3]``, the instruction, an optional uint8 reference image ``[H, W, 3]``."""

    video: np.ndarray
    instruction: str
    reference: Optional[np.ndarray] = None
    num_steps: int = 50
    guidance_scale: float = 2.0
    seed: int = 0
    restore_size: bool = True  # False: return the bucket-sized edit

    def batch_key(self) -> tuple:
        """Requests with equal keys can be denoised in one batch (same size, frame count, steps, guidance)."""
        return (self.video.shape, self.num_steps, float(self.guidance_scale), self.reference is not None)


def check_request(req: EditRequest, max_instruction_chars: int = 0) -> None:
    """Raise ValueError naming the field if a request is malformed."""
    v = req.video
    if not isinstance(v, np.ndarray) or v.dtype != np.uint8 or v.ndim != 4 or v.shape[-1] != 3 or 0 in v.shape:
        raise ValueError(f"video must be a non-empty uint8 [F, H, W, 3] array, got "
                         f"{getattr(v, 'dtype', type(v))} {getattr(v, 'shape', '')}")
    if not isinstance(req.instruction, str) or not req.instruction.strip():
        raise ValueError("instruction must be a non-empty string")
    if max_instruction_chars and len(req.instruction) > max_instruction_chars:
        raise ValueError(f"instruction has {len(req.instruction)} characters; the limit is {max_instruction_chars}")
    r = req.reference
    if r is not None and (not isinstance(r, np.ndarray) or r.dtype != np.uint8 or r.ndim != 3 or r.shape[-1] != 3):
        raise ValueError(f"reference must be a uint8 [H, W, 3] image, got {getattr(r, 'dtype', type(r))} "
                         f"{getattr(r, 'shape', '')}")
    if req.num_steps < 1 or req.num_steps > 1000:
        raise ValueError(f"num_steps must be in [1, 1000], got {req.num_steps}")
    if not 0.0 <= req.guidance_scale <= 50.0:
        raise ValueError(f"guidance_scale must be in [0, 50], got {req.guidance_scale}")
    if not isinstance(req.seed, (int, np.integer)) or not 0 <= req.seed <= MAX_SEED:
        raise ValueError(f"seed must be an integer in [0, {MAX_SEED}], got {req.seed}")


class EditPipeline:
    """Source video + instruction (+ reference) -> edited video, with the editor's DiT (+ active LoRA)."""

    def __init__(self, editor, options: PipelineOptions = PipelineOptions()) -> None:
        self.editor = editor
        self.options = options
        self.spatial_multiple = int(editor.codec.spatial_factor) * _patch_size(editor)
        self.temporal_factor = int(getattr(editor.codec, "temporal_factor", 1))

    def __call__(
        self,
        video: np.ndarray,
        instruction: str,
        reference: Optional[np.ndarray] = None,
        *,
        num_steps: int = 50,
        guidance_scale: float = 2.0,
        seed: int = 0,
        progress: Optional[Progress] = None,
    ) -> np.ndarray:
        """Edit one video; returns uint8 ``[F, H, W, 3]`` of the input's size."""
        req = EditRequest(video, instruction, reference, num_steps, guidance_scale, seed)
        return self.run([req], progress)[0]

    def bucket_for(self, video: np.ndarray) -> bk.Bucket:
        """The model bucket a video of this size is fitted to."""
        return bk.choose_bucket(video.shape[1], video.shape[2], self.options.area, self.spatial_multiple)

    @torch.no_grad()
    def run(self, requests: Sequence[EditRequest], progress: Optional[Progress] = None) -> list[np.ndarray]:
        """Edit a batch of requests that share ``batch_key()``; one uint8 video per request."""
        # 1. Check inputs
        if not requests:
            return []
        for req in requests:
            check_request(req)
        if len({r.batch_key() for r in requests}) != 1:
            raise ValueError("EditPipeline.run: requests differ in size, frames, steps, guidance or reference use")
        first = requests[0]
        # 2. Fit every video to the model's bucket and cut it into windows
        bucket = self.bucket_for(first.video)
        frames = first.video.shape[0]
        window = bk.window_length(frames, self.options.window, self.temporal_factor)
        per_request = [bk.to_windows(bk.fit_to_bucket(r.video, bucket), window) for r in requests]  # [n, T, h, w, 3]
        windows = [_Window(w, r, j) for r, ws in zip(requests, per_request) for j, w in enumerate(ws)]
        # 3.-6. Denoise the windows of all requests in chunks of at most max_windows_per_batch
        size = self.options.max_windows_per_batch
        chunks = [windows[s: s + size] for s in range(0, len(windows), size)]
        counter = _StepCounter(first.num_steps * len(chunks), progress)
        out = np.concatenate([self._denoise(chunk, bucket, first, counter) for chunk in chunks])  # [N, T, h, w, 3]
        # 7. Split per request, drop the padding frames, restore the input size
        results, start = [], 0
        for req, ws in zip(requests, per_request):
            video = bk.from_windows(out[start: start + len(ws)], frames)  # [F, h, w, 3]
            start += len(ws)
            results.append(bk.restore(video, req.video, bucket) if req.restore_size else video)
        return results

    def _denoise(self, chunk: list["_Window"], bucket: bk.Bucket, first: EditRequest, counter) -> np.ndarray:
        editor = self.editor
        # 3. Encode the conditions: instruction + the video's first frame (+ reference) (eq. 1), and CFG's null branch
        instructions = [w.request.instruction for w in chunk]
        first_frames = np.stack([bk.fit_to_bucket(w.request.video[:1], bucket)[0] for w in chunk])  # [B, h, w, 3]
        refs = [_fit_image(w.request.reference, bucket) for w in chunk]
        cond = editor.encode_condition(instructions, first_frames, refs)
        null_cond = editor.null_condition(first_frames, refs)
        reference = editor.encode_reference(refs) if first.reference is not None else None  # [B, C, 1, h, w]
        # 4. Prepare latents: the source latent and noise seeded per (request seed, window index), so a result does
        # not depend on which other requests share its batch
        source = editor.encode_videos(np.stack([w.frames for w in chunk]))  # [B, C, F', h, w]
        noise = torch.stack([w.noise(source.shape[1:]) for w in chunk]).to(source)  # [B, C, F', h, w]
        # 5. Schedule: sigma 1 (noise) -> 0 (data), shifted like HunyuanVideo
        sigmas = sigma_schedule(first.num_steps, self.options.shift)  # [T+1]

        def velocity(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            return editor.guided_velocity(x, source, sigma, cond, null_cond, first.guidance_scale, reference=reference)

        # 6. Denoising loop (deterministic ODE steps; the seed only draws the initial noise)
        traj = denoise(velocity, noise, sigmas, kind="ode", eta=0.0, record=False, progress=counter)
        return editor.decode_latents(traj.final)  # [B, F, h, w, 3] uint8


@dataclass(frozen=True)
class _Window:
    frames: np.ndarray  # [T, h, w, 3] uint8, fitted to the bucket
    request: EditRequest
    index: int  # position of the window inside its request's video

    def noise(self, shape: torch.Size) -> torch.Tensor:
        gen = torch.Generator().manual_seed(int(self.request.seed) * 1_000_003 + self.index)
        return torch.randn(tuple(shape), generator=gen)


class _StepCounter:
    """Turns per-chunk denoise progress into one running count over all chunks."""

    def __init__(self, total: int, progress: Optional[Progress]) -> None:
        self.total, self.done, self.progress = total, 0, progress

    def __call__(self, _step: int, _num_steps: int) -> None:
        self.done += 1
        if self.progress is not None:
            self.progress(self.done, self.total)


def _fit_image(image: Optional[np.ndarray], bucket: bk.Bucket) -> Optional[np.ndarray]:
    """A reference image resized/cropped to the bucket's size (aspect kept, centre crop)."""
    if image is None:
        return None
    target = bk.cover(image.shape[0], image.shape[1], bucket.height, bucket.width)
    return bk.fit_to_bucket(image[None], target)[0]


def _patch_size(editor) -> int:
    cfg = editor.dit.transformer.config
    return int(cfg.patch_size)
