"""EditWorker: runs batches of edit requests on one editor and streams their progress (plain asyncio, no Ray).

`viva serve` places it inside a Ray Serve deployment (``viva.inference.server``); ``LocalRunner`` runs it in this
process (tests, single-process use). A batch may mix shapes: requests sharing ``EditRequest.batch_key()`` denoise
together, the groups one after the other. Each ``yield`` is a list with one item per request of the batch (Ray
Serve's streaming-batch convention): an ``EditEvent``, or ``StopIteration`` once that request has finished.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, Optional, Sequence

from viva.inference.adapters import AdapterBank, LoadedAdapter
from viva.inference.app import EditEvent
from viva.inference.pipeline import EditPipeline, EditRequest


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
        for i, r in enumerate(requests):
            groups.setdefault(r.batch_key(), []).append(i)
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
            yield {i: EditEvent("error", error=f"{type(e).__name__}: {e}") for i in members}
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
