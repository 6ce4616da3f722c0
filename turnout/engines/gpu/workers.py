"""What engines use the worker through: one worker per model per process, and the mapping
from a job's events to turnout's `EngineChunk`s."""

from __future__ import annotations

import threading
from collections.abc import AsyncIterator, Callable, Hashable

from turnout.engines._base import EngineChunk
from turnout.engines.gpu.worker import GenerationBackend, GenerationWorker, JobEvent


async def to_engine_chunks(events: AsyncIterator[JobEvent]) -> AsyncIterator[EngineChunk]:
    """A job's events as turnout's `EngineChunk`s: text deltas, then one chunk with
    finish_reason, usage and the job's stats as `extras` (batched, queue wait, cache reuse)."""
    prompt_tokens = generated_tokens = 0
    try:
        async for event in events:
            if event.prompt_tokens is not None:
                prompt_tokens = event.prompt_tokens
            if event.generated_tokens is not None:
                generated_tokens = event.generated_tokens
            if event.text:
                yield EngineChunk(text=event.text)
            if event.done:
                stats = getattr(events, "stats", None)
                yield EngineChunk(
                    finish_reason=event.finish_reason or "stop",
                    input_tokens=prompt_tokens,
                    output_tokens=generated_tokens,
                    extras=stats.extras() if stats is not None else {},
                )
                return
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()


class WorkerRegistry:
    """One `GenerationWorker` per key (model dir + settings), shared by every caller."""

    def __init__(self) -> None:
        self._workers: dict[Hashable, GenerationWorker] = {}
        self._lock = threading.Lock()

    def get(
        self, key: Hashable, factory: Callable[[], GenerationBackend], *, name: str | None = None
    ) -> GenerationWorker:
        """The worker for `key`, made with `factory` the first time (later factories are unused)."""
        with self._lock:
            worker = self._workers.get(key)
            if worker is None or worker.closed:
                worker = self._workers[key] = GenerationWorker(factory, name=name or str(key))
            return worker

    def __len__(self) -> int:
        return len(self._workers)

    def shutdown(self) -> None:
        """Shut every worker down and forget them."""
        with self._lock:
            workers = list(self._workers.values())
            self._workers.clear()
        for worker in workers:
            worker.shutdown()


_registry = WorkerRegistry()


def get_worker(
    key: Hashable, factory: Callable[[], GenerationBackend], *, name: str | None = None
) -> GenerationWorker:
    """This process's worker for `key`: one model, cache and generator per model dir + settings."""
    return _registry.get(key, factory, name=name)


def shutdown_workers() -> None:
    """Stop every worker `get_worker` made (tests, or releasing GPU memory)."""
    _registry.shutdown()
