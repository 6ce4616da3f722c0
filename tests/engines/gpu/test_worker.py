"""The GPU engine core on CPU: a scripted backend stands in for a model + dynamic generator."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from turnout.engines import EngineChunk
from turnout.engines.gpu.worker import (
    THREAD_PREFIX,
    GenerationBackend,
    GenerationJob,
    GenerationWorker,
    JobEvent,
    JobsFailed,
    JobStream,
)
from turnout.engines.gpu.workers import (
    WorkerRegistry,
    get_worker,
    shutdown_workers,
    to_engine_chunks,
)
from turnout.errors import EngineUnavailable

ENDLESS = 10**9


@dataclass
class _Running:
    job: GenerationJob
    words: list[str]
    emitted: int = 0


class WordBackend:
    """Each job emits its prompt's words, one per step (cycling up to max_tokens words when
    set). Prompts "stall" never advance, "boom" breaks step(), "pinned" fails its own job."""

    def __init__(self, *, batched: bool = True) -> None:
        self.batched = batched
        self.running: dict[str, _Running] = {}
        self.steps: list[frozenset[str]] = []  # the jobs active together in each step
        self.cancelled: list[str] = []
        self.threads = {threading.current_thread().name}
        self.closed = False

    def enqueue(self, job: GenerationJob) -> object:
        self.running[job.id] = _Running(job, job.prompt.split())
        return job.id

    def step(self) -> list[JobEvent]:
        time.sleep(0.0002)  # a forward pass
        self.threads.add(threading.current_thread().name)
        self.steps.append(frozenset(self.running))
        events = []
        for run in list(self.running.values()):
            if run.job.prompt == "boom":
                raise RuntimeError("CUDA error: device-side assert triggered")
            if run.job.prompt == "pinned":
                raise JobsFailed([run.job.id], RuntimeError("this job's schema cannot be compiled"))
            if run.job.prompt == "stall":
                continue
            word = run.words[run.emitted % len(run.words)]
            run.emitted += 1
            done = run.emitted >= (run.job.max_tokens or len(run.words))
            events.append(
                JobEvent(
                    job_id=run.job.id,
                    text=word if run.emitted == 1 else f" {word}",
                    done=done,
                    finish_reason=("length" if run.job.max_tokens else "stop") if done else None,
                    prompt_tokens=len(run.words),
                    cached_tokens=0,
                    generated_tokens=run.emitted,
                    prefill_s=0.001,
                )
            )
            if done:
                del self.running[run.job.id]
        return events

    def cancel(self, handle: object) -> None:
        assert isinstance(handle, str)
        self.cancelled.append(handle)
        self.running.pop(handle, None)

    def active(self) -> int:
        return len(self.running)

    def close(self) -> None:
        self.closed = True


def _worker_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX)]


@pytest.fixture
def workers() -> Iterator[Callable[[Callable[[], GenerationBackend]], GenerationWorker]]:
    """Make workers; all are shut down after the test, and none may leave a thread behind."""
    made: list[GenerationWorker] = []

    def make(factory: Callable[[], GenerationBackend]) -> GenerationWorker:
        made.append(GenerationWorker(factory, name=f"test-{len(made)}"))
        return made[-1]

    yield make
    for worker in made:
        worker.shutdown()
    assert not _worker_threads()


async def until(predicate: Callable[[], object]) -> None:
    deadline = time.monotonic() + 2
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached within 2 s"
        await asyncio.sleep(0.001)


async def text_of(stream: JobStream) -> str:
    return "".join([event.text async for event in stream])


async def run_together(
    worker: GenerationWorker, loaded: threading.Event, prompts: list[str]
) -> tuple[list[JobStream], list[object]]:
    """Submit every prompt while the backend is still loading, so all start in one step."""
    streams = [worker.submit(GenerationJob(prompt=prompt)) for prompt in prompts]
    tasks = [asyncio.create_task(text_of(stream)) for stream in streams]
    await asyncio.sleep(0)  # every task has now handed its job to the worker
    loaded.set()
    return streams, list(await asyncio.gather(*tasks, return_exceptions=True))


def gated(backend: WordBackend, loaded: threading.Event) -> Callable[[], WordBackend]:
    def factory() -> WordBackend:
        loaded.wait(2)
        return backend

    return factory


async def test_one_job_streams_all_its_text_and_usage(workers) -> None:
    worker = workers(WordBackend)
    stream = worker.submit(GenerationJob(prompt="the quick brown fox"))
    events = [event async for event in stream]

    assert "".join(e.text for e in events) == "the quick brown fox"
    assert [e.done for e in events] == [False, False, False, True]
    assert (events[-1].finish_reason, events[-1].prompt_tokens, events[-1].generated_tokens) == (
        "stop",
        4,
        4,
    )
    stats = stream.stats
    assert (stats.prompt_tokens, stats.generated_tokens, stats.finish_reason, stats.batched) == (
        4,
        4,
        "stop",
        False,
    )
    assert stats.queue_wait_s is not None and stats.ttft_s is not None
    assert 0 <= stats.queue_wait_s <= stats.ttft_s


async def test_the_backend_is_built_and_driven_on_the_worker_thread(workers) -> None:
    built: list[WordBackend] = []

    def factory() -> WordBackend:
        built.append(WordBackend())
        return built[-1]

    await text_of(workers(factory).submit(GenerationJob(prompt="hello")))

    assert len(built[0].threads) == 1
    assert next(iter(built[0].threads)).startswith(THREAD_PREFIX)


async def test_to_engine_chunks_gives_text_then_one_usage_chunk(workers) -> None:
    worker = workers(WordBackend)
    stream = worker.submit(GenerationJob(prompt="red green blue"))
    chunks = [chunk async for chunk in to_engine_chunks(stream)]

    assert [c.text for c in chunks] == ["red", " green", " blue", ""]
    assert chunks[-1] == EngineChunk(
        finish_reason="stop", input_tokens=3, output_tokens=3, extras=stream.stats.extras()
    )
    assert set(chunks[-1].extras) == {"batched", "queue_wait_s", "ttft_s", "cached_tokens", "prefill_s"}
    assert chunks[-1].extras["queue_wait_s"] is not None
    assert stream.stats.cached_tokens == 0


async def test_sixteen_concurrent_jobs_all_complete_batched_together(workers) -> None:
    loaded, backend = threading.Event(), WordBackend()
    worker = workers(gated(backend, loaded))
    prompts = [f"job {i} says hello" for i in range(16)]
    streams, texts = await run_together(worker, loaded, prompts)

    assert texts == prompts
    assert len(backend.steps[0]) == 16
    assert all(stream.stats.batched for stream in streams)


async def test_a_backend_that_does_not_batch_never_reports_batched(workers) -> None:
    loaded, backend = threading.Event(), WordBackend(batched=False)
    worker = workers(gated(backend, loaded))
    streams, texts = await run_together(worker, loaded, ["one two", "three four"])

    assert texts == ["one two", "three four"]
    assert len(backend.steps[0]) == 2
    assert not any(stream.stats.batched for stream in streams)


async def test_a_consumer_that_stops_early_cancels_the_job(workers) -> None:
    backend = WordBackend()
    worker = workers(lambda: backend)
    stream = worker.submit(GenerationJob(prompt="on and on", max_tokens=ENDLESS))
    first = [(await anext(stream)).text for _ in range(3)]
    await stream.aclose()

    assert first == ["on", " and", " on"]
    await until(lambda: stream.job.id in backend.cancelled)
    assert stream.job.id not in backend.running


async def test_a_timed_out_caller_cancels_its_job_and_the_worker_serves_the_next(workers) -> None:
    backend = WordBackend()
    worker = workers(lambda: backend)
    stalled = worker.submit(GenerationJob(prompt="stall"))
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            async for _ in stalled:
                pass

    await until(lambda: stalled.job.id in backend.cancelled)
    assert await text_of(worker.submit(GenerationJob(prompt="next one"))) == "next one"


async def test_setting_the_cancel_event_ends_the_stream_as_cancelled(workers) -> None:
    backend = WordBackend()
    worker = workers(lambda: backend)
    cancel = threading.Event()  # what an engine passes: EngineRequest.cancel
    stream = worker.submit(GenerationJob(prompt="stall"), cancel=cancel)
    consumer = asyncio.create_task(anext(stream))
    await until(lambda: backend.running)
    cancel.set()

    last = await consumer
    assert (last.done, last.finish_reason) == (True, "cancelled")
    assert backend.cancelled == [stream.job.id]


async def test_a_step_error_fails_its_caller_and_the_next_job_works(workers) -> None:
    worker = workers(WordBackend)
    with pytest.raises(RuntimeError, match="device-side assert"):
        await text_of(worker.submit(GenerationJob(prompt="boom")))

    assert await text_of(worker.submit(GenerationJob(prompt="still serving"))) == "still serving"


async def test_an_error_pinned_on_one_job_leaves_the_others_running(workers) -> None:
    loaded, backend = threading.Event(), WordBackend()
    worker = workers(gated(backend, loaded))
    streams, results = await run_together(worker, loaded, ["pinned", "a b c"])

    assert isinstance(results[0], RuntimeError) and "cannot be compiled" in str(results[0])
    assert results[1] == "a b c"
    assert backend.cancelled == [streams[0].job.id]


async def test_a_failing_backend_factory_reaches_every_waiting_caller(workers) -> None:
    loaded = threading.Event()

    def no_gpu() -> GenerationBackend:
        loaded.wait(2)
        raise RuntimeError("no CUDA device")

    _, results = await run_together(workers(no_gpu), loaded, ["a", "b", "c"])

    assert [type(r) for r in results] == [RuntimeError] * 3
    assert all("no CUDA device" in str(r) for r in results)


async def test_after_a_failed_load_the_next_job_loads_again(workers) -> None:
    attempts: list[int] = []

    def flaky() -> GenerationBackend:
        attempts.append(1)
        if len(attempts) == 1:
            raise MemoryError("CUDA out of memory")
        return WordBackend()

    worker = workers(flaky)
    with pytest.raises(MemoryError):
        await text_of(worker.submit(GenerationJob(prompt="first")))
    assert await text_of(worker.submit(GenerationJob(prompt="second"))) == "second"
    assert len(attempts) == 2


async def test_shutdown_stops_the_thread_and_closes_the_backend() -> None:
    backend = WordBackend()
    worker = GenerationWorker(lambda: backend, name="shutdown")
    await text_of(worker.submit(GenerationJob(prompt="hello")))
    assert worker.running

    worker.shutdown()
    assert not worker.running and not _worker_threads()
    assert backend.closed
    with pytest.raises(EngineUnavailable, match="shut down"):
        await text_of(worker.submit(GenerationJob(prompt="too late")))


async def test_shutdown_fails_a_job_still_running(workers) -> None:
    backend = WordBackend()
    worker = workers(lambda: backend)
    consumer = asyncio.create_task(text_of(worker.submit(GenerationJob(prompt="stall"))))
    await until(lambda: backend.running)
    worker.shutdown()

    with pytest.raises(EngineUnavailable, match="shut down"):
        await consumer


def test_the_registry_gives_one_worker_per_key() -> None:
    registry = WorkerRegistry()
    with ThreadPoolExecutor(8) as pool:
        got = list(pool.map(lambda _: registry.get(("/models/a", 4096), WordBackend), range(32)))

    assert all(worker is got[0] for worker in got)
    assert registry.get(("/models/a", 8192), WordBackend) is not got[0]
    assert len(registry) == 2
    registry.shutdown()
    assert len(registry) == 0
    assert get_worker("/models/b", WordBackend) is get_worker("/models/b", lambda: WordBackend())
    shutdown_workers()

