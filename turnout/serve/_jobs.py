"""Each request's generation runs as its own task: it holds the request's admission slot
until it really ends, runs under the caller's trace context and the server's usage meter,
and is cancelled (and with it the engine's generation) when the client goes away."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from opentelemetry import context as otel_context
from starlette.requests import Request

from turnout.engines import Completion, CompletionStream, UsageMeter, usage_meter
from turnout.serve._admission import Lease

T = TypeVar("T")


class ClientGone(Exception):
    """The client closed its connection before its answer was ready."""


class Disconnect:
    """Resolves when the client disconnects. Start it only once the request body is read:
    from then on the only message the server can receive is `http.disconnect`."""

    def __init__(self, request: Request) -> None:
        self._watch = asyncio.ensure_future(self._watch_for_disconnect(request.receive))

    @staticmethod
    async def _watch_for_disconnect(receive: Callable[[], Awaitable[dict[str, Any]]]) -> None:
        while (await receive())["type"] != "http.disconnect":
            pass

    async def race(self, work: asyncio.Future[T]) -> T:
        """`work`'s result, or ClientGone (with `work` cancelled) if the client leaves first."""
        try:
            done, _ = await asyncio.wait({work, self._watch}, return_when=asyncio.FIRST_COMPLETED)
        except BaseException:  # this request's own task was cancelled
            work.cancel()
            raise
        if work in done:
            return work.result()
        work.cancel()
        raise ClientGone

    def close(self) -> None:
        self._watch.cancel()


@dataclass(frozen=True)
class Job:
    """How an admitted request's generation runs: holding `lease` until it ends, however it
    ends; metered into the server's `meter`; under the caller's trace context (its span, when
    it sent `traceparent`), so the `chat` span joins the caller's trace."""

    lease: Lease
    meter: UsageMeter
    trace_context: otel_context.Context

    def start(self, work: Callable[[], Awaitable[T]]) -> asyncio.Task[T]:
        async def run() -> T:
            token = otel_context.attach(self.trace_context)
            try:
                with usage_meter() as own:
                    try:
                        return await work()
                    finally:
                        self.meter.add_totals(own.totals)
            finally:
                otel_context.detach(token)

        task = asyncio.ensure_future(run())
        task.add_done_callback(lambda _: self.lease.release())
        return task


@dataclass
class End:
    """The stream finished; `result` is the door's whole Completion (usage, finish reason)."""

    result: Completion[Any]


class Relay:
    """The door's stream pumped by a job into a queue: the response reads the queue, and
    cancelling the job stops the engine whether or not the response is still reading."""

    def __init__(self, open_stream: Callable[[], CompletionStream[Any]], job: Job) -> None:
        self._queue: asyncio.Queue[str | End | BaseException] = asyncio.Queue()
        self.task = job.start(lambda: self._pump(open_stream))

    async def _pump(self, open_stream: Callable[[], CompletionStream[Any]]) -> None:
        try:
            answer = open_stream()
            async for delta in answer:
                if delta:
                    self._queue.put_nowait(delta)
        except Exception as exc:  # noqa: BLE001 - handed to the reader, which answers with it
            self._queue.put_nowait(exc)
            return
        assert answer.result is not None
        self._queue.put_nowait(End(answer.result))

    async def next(self) -> str | End | BaseException:
        return await self._queue.get()

    async def items(self, first: str | End | BaseException) -> AsyncIterator[str | End | BaseException]:
        """`first`, then everything after it, up to and including the End or failure."""
        item = first
        while True:
            yield item
            if not isinstance(item, str):
                return
            item = await self.next()

    def cancel(self) -> None:
        self.task.cancel()
