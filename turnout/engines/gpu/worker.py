"""The GPU engine core shared by `exllamav2` and `exllamav3`: one generator per model, many callers.

GPU libraries want one owning thread, and a dynamic generator batches only the jobs it holds
at the same time. So each (model dir, settings) gets one `GenerationWorker` per process: a
daemon thread that builds the backend (model + cache + generator) on first use, takes every
concurrent call as a job and advances all of them together, one `step()` at a time. Parallel
sub-agents then share forward passes instead of queueing behind each other.

An engine implements the small `GenerationBackend` protocol; the worker knows nothing of
torch, so its behaviour is tested on CPU with a scripted backend. An engine's `stream()`:

    worker = get_worker((str(model_dir), settings), lambda: MyBackend(model_dir, settings))  # workers.py
    job = GenerationJob(prompt=template.render(request.messages), max_tokens=...)
    async for chunk in to_engine_chunks(worker.submit(job, cancel=request.cancel)):
        yield chunk
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
import uuid
from collections.abc import AsyncGenerator, Callable, Iterable
from dataclasses import dataclass
from typing import Any, NamedTuple, Protocol

from pydantic import BaseModel, Field

from turnout.errors import EngineUnavailable

THREAD_PREFIX = "turnout-gpu-worker"
_STOP = object()
logger = logging.getLogger(__name__)


class GenerationJob(BaseModel):
    """One generation as a backend sees it: the rendered prompt and its sampling settings."""

    id: str = Field(default_factory=lambda: uuid.uuid4().hex)
    prompt: str
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop_strings: list[str] = Field(default_factory=list)
    stop_token_ids: list[int] = Field(default_factory=list)
    json_schema: dict[str, Any] | None = None


class JobEvent(BaseModel):
    """What one `step()` produced for one job. Token counts are totals so far; None = unknown."""

    job_id: str
    text: str = ""
    done: bool = False
    finish_reason: str | None = None
    prompt_tokens: int | None = None
    cached_tokens: int | None = Field(
        default=None, description="Prompt tokens reused from the cache."
    )
    generated_tokens: int | None = None
    prefill_s: float | None = None
    ttft_s: float | None = Field(
        default=None, description="First token, from the job's backend start."
    )


class JobStats(BaseModel):
    """What one job's caller may want beyond text and usage: for spans and benchmarks."""

    job_id: str
    queue_wait_s: float | None = Field(
        default=None, description="From submit to the job's first event."
    )
    ttft_s: float | None = Field(default=None, description="From submit to the job's first text.")
    batched: bool = Field(default=False, description="Shared a step with another job, batching.")
    prompt_tokens: int | None = None
    cached_tokens: int | None = None
    generated_tokens: int | None = None
    prefill_s: float | None = None
    finish_reason: str | None = None

    def extras(self) -> dict[str, Any]:
        """The facts `EngineChunk` has no field for."""
        return self.model_dump(
            include={"batched", "queue_wait_s", "ttft_s", "cached_tokens", "prefill_s"}
        )


class GenerationBackend(Protocol):
    """A model + cache + generator, built and driven by exactly one thread (the worker's).

    A backend may also have `close()`; the worker calls it when it stops.
    """

    def enqueue(self, job: GenerationJob) -> object:
        """Start `job`; return the handle `cancel` takes."""
        ...

    def step(self) -> list[JobEvent]:
        """Advance every active job one iteration. Raise `JobsFailed` for errors of known jobs."""
        ...

    def cancel(self, handle: object) -> None:
        """Drop the job `enqueue` returned `handle` for; it need not report it again."""
        ...

    def active(self) -> int:
        """How many jobs the backend holds (running or waiting for cache pages)."""
        ...

    @property
    def batched(self) -> bool:
        """True when jobs really share forward passes (paged attention)."""
        ...


class JobsFailed(Exception):
    """Raised by `step()` when an error concerns only some jobs: those fail, the rest go on.

    Raise it before the other jobs advanced in that step: a raising step reports no events.
    """

    def __init__(self, job_ids: Iterable[str], error: BaseException) -> None:
        super().__init__(f"jobs {sorted(job_ids)} failed: {error}")
        self.job_ids = frozenset(job_ids)
        self.error = error


class _Delivery(NamedTuple):
    event: JobEvent
    at: float | None  # perf_counter when routed; None for events the worker made itself
    batched: bool


@dataclass(eq=False)
class _Job:
    spec: GenerationJob
    loop: asyncio.AbstractEventLoop
    inbox: asyncio.Queue[_Delivery | BaseException]
    cancel: threading.Event
    handle: object = None

    def deliver(self, item: _Delivery | BaseException) -> None:
        try:
            self.loop.call_soon_threadsafe(self.inbox.put_nowait, item)
        except RuntimeError:  # the caller's loop is closed: nobody is listening any more
            self.cancel.set()

    def end(self, reason: str) -> None:
        self.deliver(
            _Delivery(JobEvent(job_id=self.spec.id, done=True, finish_reason=reason), None, False)
        )


class JobStream:
    """The events of one job, with its `stats` filled in as they arrive.

    The job reaches the worker on the first `__anext__`. Leaving early (`aclose`, a timeout,
    cancellation of the consumer) or setting `cancel` cancels it in the backend; after an
    external `cancel` the stream ends with finish_reason "cancelled".
    """

    def __init__(
        self, worker: GenerationWorker, job: GenerationJob, cancel: threading.Event
    ) -> None:
        self.job = job
        self.cancel = cancel
        self.stats = JobStats(job_id=job.id)
        self._events = self._run(worker)

    def __aiter__(self) -> JobStream:
        return self

    async def __anext__(self) -> JobEvent:
        return await self._events.__anext__()

    async def aclose(self) -> None:
        await self._events.aclose()

    async def _run(self, worker: GenerationWorker) -> AsyncGenerator[JobEvent, None]:
        job = _Job(self.job, asyncio.get_running_loop(), asyncio.Queue(), self.cancel)
        submitted = time.perf_counter()
        worker._accept(job)
        done = False
        try:
            while not done:
                item = await job.inbox.get()
                if isinstance(item, BaseException):
                    done = True
                    raise item
                self._record(item, submitted)
                done = item.event.done
                yield item.event
        finally:
            if not done:
                self.cancel.set()

    def _record(self, delivery: _Delivery, submitted: float) -> None:
        stats, event = self.stats, delivery.event
        if delivery.at is not None:
            if stats.queue_wait_s is None:
                stats.queue_wait_s = delivery.at - submitted
            if event.text and stats.ttft_s is None:
                stats.ttft_s = delivery.at - submitted
        stats.batched = stats.batched or delivery.batched
        for name in (
            "prompt_tokens",
            "cached_tokens",
            "generated_tokens",
            "prefill_s",
            "finish_reason",
        ):
            value = getattr(event, name)
            if value is not None:
                setattr(stats, name, value)


class GenerationWorker:
    """One backend on one daemon thread, serving every job submitted from any event loop.

    The thread and the backend start on the first job. If the backend cannot be built (no
    CUDA device, out of memory), every job waiting for it gets that error and the next job
    tries again on a fresh thread. An error in `step()` fails the jobs it concerns (all the
    active ones unless the backend raised `JobsFailed`); the worker goes on serving.
    """

    def __init__(self, backend_factory: Callable[[], GenerationBackend], *, name: str) -> None:
        self.name = name
        self._factory = backend_factory
        self._intake: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._retired: threading.Thread | None = None  # a thread that failed and is ending
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def running(self) -> bool:
        thread = self._thread
        return thread is not None and thread.is_alive()

    def submit(self, job: GenerationJob, *, cancel: threading.Event | None = None) -> JobStream:
        """The events of `job` as it runs; `cancel` (e.g. `EngineRequest.cancel`) stops it."""
        return JobStream(self, job, cancel if cancel is not None else threading.Event())

    def shutdown(self, timeout: float | None = 10.0) -> None:
        """Stop the thread (jobs still running fail with EngineUnavailable) and wait for it."""
        with self._lock:
            self._closed = True
            threads = [t for t in (self._thread, self._retired) if t is not None]
            if self._thread is not None:
                self._intake.put(_STOP)
        for thread in threads:
            if thread is not threading.current_thread():
                thread.join(timeout)

    def _accept(self, job: _Job) -> None:
        with self._lock:
            if self._closed:
                raise EngineUnavailable(f"the {self.name} generation worker is shut down")
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._serve, name=f"{THREAD_PREFIX}:{self.name}", daemon=True
                )
                self._thread.start()
            self._intake.put(job)

    # Everything below runs on the worker thread.

    def _serve(self) -> None:
        jobs: dict[str, _Job] = {}
        backend: GenerationBackend | None = None
        error: BaseException
        try:
            backend = self._factory()
            self._loop(backend, jobs)
            error = EngineUnavailable(f"the {self.name} generation worker was shut down")
        except BaseException as exc:  # handed to every caller still waiting
            error = exc
        close = getattr(backend, "close", None)
        if close is not None:
            try:
                close()
            except Exception:
                logger.warning("%s: closing the backend failed", self.name, exc_info=True)
        with self._lock:
            self._thread, self._retired = None, threading.current_thread()
            while True:
                try:
                    item = self._intake.get_nowait()
                except queue.Empty:
                    break
                if isinstance(item, _Job):
                    jobs[item.spec.id] = item
        for job in jobs.values():
            job.deliver(error)

    def _loop(self, backend: GenerationBackend, jobs: dict[str, _Job]) -> None:
        while True:
            idle = not jobs and backend.active() == 0
            stop = False
            for item in self._take(block=idle):
                if item is _STOP:
                    stop = True
                else:
                    self._start(backend, item, jobs)
            if stop:
                return
            for job in [job for job in jobs.values() if job.cancel.is_set()]:
                del jobs[job.spec.id]
                self._cancel(backend, job)
                job.end("cancelled")
            if jobs or backend.active():
                self._step(backend, jobs)

    def _take(self, *, block: bool) -> list[Any]:
        items = [self._intake.get()] if block else []
        while True:
            try:
                items.append(self._intake.get_nowait())
            except queue.Empty:
                return items

    def _start(self, backend: GenerationBackend, job: _Job, jobs: dict[str, _Job]) -> None:
        if job.cancel.is_set():
            job.end("cancelled")
        elif job.spec.id in jobs:
            job.deliver(ValueError(f"a job with id {job.spec.id!r} is already running"))
        else:
            try:
                job.handle = backend.enqueue(job.spec)
            except Exception as exc:
                job.deliver(exc)
            else:
                jobs[job.spec.id] = job

    def _step(self, backend: GenerationBackend, jobs: dict[str, _Job]) -> None:
        try:
            events = backend.step()
        except JobsFailed as failure:
            self._fail(backend, jobs, failure.job_ids, failure.error)
            return
        except Exception as exc:
            self._fail(backend, jobs, list(jobs), exc)
            return
        now = time.perf_counter()
        advanced = {event.job_id for event in events if event.job_id in jobs}
        batched = len(advanced) > 1 and backend.batched
        for event in events:
            job = jobs.get(event.job_id)
            if job is None:  # cancelled or failed earlier: the backend may still report it
                continue
            job.deliver(_Delivery(event, now, batched))
            if event.done:
                del jobs[event.job_id]

    def _fail(
        self,
        backend: GenerationBackend,
        jobs: dict[str, _Job],
        job_ids: Iterable[str],
        error: BaseException,
    ) -> None:
        for job_id in job_ids:
            job = jobs.pop(job_id, None)
            if job is not None:
                self._cancel(backend, job)
                job.deliver(error)

    def _cancel(self, backend: GenerationBackend, job: _Job) -> None:
        try:
            backend.cancel(job.handle)
        except Exception:
            logger.warning("%s: cancelling job %s failed", self.name, job.spec.id, exc_info=True)
