"""EditWorker: runs batches of edit requests on one editor and streams their progress (plain asyncio, no Ray).

`viva serve` places it inside a Ray Serve deployment (``viva.inference.server``); ``LocalRunner`` runs it in this
process (tests, single-process use). A batch may mix shapes: requests sharing ``EditRequest.batch_key()`` denoise
together, the groups one after the other. Each ``yield`` is a list with one item per request of the batch (Ray
Serve's streaming-batch convention): an ``EditEvent``, or ``StopIteration`` once that request has finished.
"""

from __future__ import annotations

import asyncio
import logging
from typing import AsyncIterator, Optional, Sequence

from viva.inference.adapters import AdapterBank, LoadedAdapter
from viva.inference.app import EditEvent
from viva.inference.pipeline import EditPipeline, EditRequest, check_request

log = logging.getLogger(__name__)


def public_error(err: Exception) -> str:
    """What a client may read about a failed edit: a request problem (ValueError) says what; the rest is internal."""
    if isinstance(err, ValueError):
        return str(err).splitlines()[0][:300] if str(err) else "invalid request"
    return f"internal error ({type(err).__name__}); the server log has the details"


class EditWorker:
    """One editor + its named LoRAs; ``run_batch`` streams events for a batch that shares one adapter."""

    def __init__(self, pipeline: EditPipeline, bank: AdapterBank) -> None:
        self.pipeline = pipeline
        self.bank = bank
        self._lock = asyncio.Lock()  # one batch on the model at a time

    def _run_group(self, group: Sequence[EditRequest], adapter: Optional[LoadedAdapter], progress) -> list:
        with self.bank.use(adapter):
            return self.pipeline.run(group, progress)

    async def run_batch(
        self, requests: Sequence[EditRequest], adapter: Optional[LoadedAdapter]
    ) -> AsyncIterator[list]:
        """Stream ``[event-or-StopIteration per request]`` until every request has its result or error."""
        state: list = [EditEvent("progress", 0, r.num_steps) for r in requests]
        groups: dict[tuple, list[int]] = {}
        invalid: dict[int, EditEvent] = {}
        for i, r in enumerate(requests):
            try:  # each request on its own: a bad one must not fail the others batched with it
                check_request(r)
                groups.setdefault(r.batch_key(), []).append(i)
            except ValueError as e:
                invalid[i] = EditEvent("error", error=public_error(e))
        if invalid:
            state = [invalid.get(i, s) for i, s in enumerate(state)]
            yield list(state)
            state = [StopIteration if i in invalid else s for i, s in enumerate(state)]
        async with self._lock:
            for members in groups.values():
                async for update in self._stream_group(requests, members, adapter):
                    for i, event in update.items():
                        state[i] = event
                    yield list(state)
                    for i, event in update.items():  # a finished request gets StopIteration from now on
                        if event.kind in ("result", "error"):
                            state[i] = StopIteration

    async def _stream_group(self, requests, members: list[int], adapter) -> AsyncIterator[dict]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue = asyncio.Queue()

        def progress(done: int, total: int) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, (done, total))

        group = [requests[i] for i in members]
        work = asyncio.ensure_future(asyncio.to_thread(self._run_group, group, adapter, progress))
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, work}, return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                done, total = getter.result()
                yield {i: EditEvent("progress", done, total) for i in members}
                continue
            getter.cancel()
            if queue.empty():
                break
        try:
            videos = work.result()
        except Exception as e:  # noqa: BLE001 - reported per request, the worker keeps serving
            if len(members) > 1:  # find the request that fails: run each alone, the others still get results
                log.warning("a batch of %d edits failed (%s: %s); running them one by one", len(members),
                            type(e).__name__, e)
                for i in members:
                    async for update in self._stream_group(requests, [i], adapter):
                        yield update
                return
            log.error("edit failed", exc_info=e)
            yield {i: EditEvent("error", error=public_error(e)) for i in members}
            return
        yield {i: EditEvent("result", video=v) for i, v in zip(members, videos)}


class LocalRunner:
    """EditRunner in this process: one request per batch, events straight from an EditWorker."""

    def __init__(self, worker: EditWorker) -> None:
        self.worker = worker
        self._adapters: dict[str, LoadedAdapter] = {}

    async def edit(self, request: EditRequest, lora: Optional[str]) -> AsyncIterator[EditEvent]:
        """Run one edit; yields progress events then the result (or an error)."""
        adapter = None
        if lora is not None:
            if lora not in self._adapters:
                self._adapters[lora] = await asyncio.to_thread(self.worker.bank.load, lora)
            adapter = self._adapters[lora]
        async for events in self.worker.run_batch([request], adapter):
            if events[0] is StopIteration:
                return
            yield events[0]
