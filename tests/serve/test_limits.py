"""Backpressure and limits: bounded concurrency, a bounded queue answered by 429, body and
token caps, and a client that leaves taking its generation with it."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest

from tests.serve.conftest import (
    Probe,
    async_client,
    client,
    eventually,
    health,
    served,
    user,
)
from turnout.engines import scripted


class Gate:
    """A scripted model whose answers wait until the test opens the gate, counting how many
    are inside at once: how a test fills the server's slots and queue deterministically."""

    def __init__(self, opens_at: int | None = None) -> None:
        self.open = threading.Event()
        self.inside = 0
        self.peak = 0
        self._opens_at = opens_at
        self._lock = threading.Lock()

    async def __call__(self, messages: list[dict[str, Any]]) -> str:
        with self._lock:
            self.inside += 1
            self.peak = max(self.peak, self.inside)
            if self._opens_at is not None and self.inside >= self._opens_at:
                self.open.set()
        try:
            await asyncio.to_thread(self.open.wait, 30)
            return f"answer to {messages[-1]['content']}"
        finally:
            with self._lock:
                self.inside -= 1


@pytest.fixture
def gate() -> Iterator[Gate]:
    gate = Gate()
    with scripted.scripted("gated", gate):
        yield gate
    gate.open.set()  # never leave a worker thread waiting


async def test_concurrent_requests_all_answer_and_at_most_max_concurrency_generate() -> None:
    gate = Gate(opens_at=3)  # the first three wait for each other: proof that three run at once
    with scripted.scripted("gated", gate), served(["scripted/gated"], max_concurrency=3, max_queue=10) as url:
        openai_client = async_client(url)
        prompts = [f"question {i}" for i in range(9)]
        responses = await asyncio.gather(*(
            openai_client.chat.completions.create(model="scripted/gated", messages=user(p)) for p in prompts
        ))
        await openai_client.close()
    assert [r.choices[0].message.content for r in responses] == [f"answer to {p}" for p in prompts]
    assert gate.peak == 3


async def test_a_full_queue_is_answered_429_with_retry_after_at_once(gate: Gate) -> None:
    with served(["scripted/gated"], max_concurrency=1, max_queue=1) as url:
        openai_client = async_client(url)
        generating = asyncio.ensure_future(openai_client.chat.completions.create(model="scripted/gated", messages=user("a")))
        await eventually(lambda: gate.inside == 1, "the first request to reach the engine")
        waiting = asyncio.ensure_future(openai_client.chat.completions.create(model="scripted/gated", messages=user("b")))
        await eventually(lambda: health(url)["load"]["queued"] == 1, "the second request to queue")

        with pytest.raises(openai.RateLimitError) as refused:
            await openai_client.chat.completions.create(model="scripted/gated", messages=user("c"))
        load = health(url)["load"]
        gate.open.set()
        answers = [r.choices[0].message.content for r in await asyncio.gather(generating, waiting)]
        await openai_client.close()

    error = refused.value
    assert error.status_code == 429 and error.code == "rate_limit_exceeded"
    assert int(error.response.headers["retry-after"]) >= 1
    assert "1 requests are generating and 1 are waiting" in error.message
    assert load == {"active": 1, "queued": 1, "max_concurrency": 1, "max_queue": 1, "turned_away": 1}
    assert answers == ["answer to a", "answer to b"]  # the queue held, then drained in order


async def test_with_no_queue_a_busy_server_refuses_at_once(gate: Gate) -> None:
    with served(["scripted/gated"], max_concurrency=1, max_queue=0) as url:
        openai_client = async_client(url)
        generating = asyncio.ensure_future(openai_client.chat.completions.create(model="scripted/gated", messages=user("a")))
        await eventually(lambda: gate.inside == 1, "the first request to reach the engine")
        with pytest.raises(openai.RateLimitError):
            await openai_client.chat.completions.create(model="scripted/gated", messages=user("b"), stream=True)
        gate.open.set()
        await generating
        await openai_client.close()


def test_max_tokens_over_the_servers_cap_names_the_limit(gate: Gate) -> None:
    with served(["scripted/gated"], max_tokens=100) as url:
        with pytest.raises(openai.BadRequestError) as error:
            client(url).chat.completions.create(model="scripted/gated", messages=user("x"), max_tokens=101)
        with pytest.raises(openai.BadRequestError) as completion_error:
            client(url).chat.completions.create(model="scripted/gated", messages=user("x"), max_completion_tokens=500)
    assert "max_tokens = 101 is over this server's limit of 100 tokens" in error.value.message
    assert error.value.body["param"] == "max_tokens"  # type: ignore[index]
    assert completion_error.value.body["param"] == "max_completion_tokens"  # type: ignore[index]


def test_a_body_over_the_limit_is_413_by_content_length() -> None:
    with scripted.scripted("any", ["x"]), served(["scripted/any"], max_body_bytes=2048) as url:
        body = {"model": "scripted/any", "messages": user("x" * 4096)}
        response = httpx.post(f"{url}/chat/completions", json=body)
    assert response.status_code == 413
    error = response.json()["error"]
    assert error["code"] == "request_too_large" and "2,048 bytes" in error["message"]


def test_a_chunked_body_is_cut_off_once_it_passes_the_limit() -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: the server must count as it reads
        yield b'{"model": "scripted/any", "messages": [{"role": "user", "content": "'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}]}'

    with scripted.scripted("any", ["x"]) as script, served(["scripted/any"], max_body_bytes=4096) as url:
        response = httpx.post(f"{url}/chat/completions", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "request_too_large"
    assert script.calls == []


async def test_a_client_leaving_a_stream_stops_the_generation(probe: Probe) -> None:
    with served(["probe/drip"]) as url:
        openai_client = async_client(url)
        stream = await openai_client.chat.completions.create(model="probe/drip", messages=user("go"), stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                break
        await stream.close()
        assert await asyncio.to_thread(probe.stopped.wait, 10), "the engine was not told to stop"
        await eventually(lambda: health(url)["load"]["active"] == 0, "the slot to be released")
        await openai_client.close()


async def test_a_client_that_times_out_stops_a_whole_completion(probe: Probe) -> None:
    with served(["probe/drip"]) as url:
        impatient = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=0.5)
        with pytest.raises(openai.APITimeoutError):
            await impatient.chat.completions.create(model="probe/drip", messages=user("go"))
        assert await asyncio.to_thread(probe.stopped.wait, 10), "the engine was not told to stop"
        await eventually(lambda: health(url)["load"]["active"] == 0, "the slot to be released")
        await impatient.close()


async def test_a_client_that_leaves_the_queue_frees_its_place(gate: Gate) -> None:
    with served(["scripted/gated"], max_concurrency=1, max_queue=1) as url:
        openai_client = async_client(url)
        generating = asyncio.ensure_future(openai_client.chat.completions.create(model="scripted/gated", messages=user("a")))
        await eventually(lambda: gate.inside == 1, "the first request to reach the engine")
        impatient = openai.AsyncOpenAI(base_url=url, api_key="unused", max_retries=0, timeout=0.5)
        with pytest.raises(openai.APITimeoutError):
            await impatient.chat.completions.create(model="scripted/gated", messages=user("b"))
        await eventually(lambda: health(url)["load"]["queued"] == 0, "the queue to forget the client")
        gate.open.set()
        assert (await generating).choices[0].message.content == "answer to a"
        await impatient.close()
        await openai_client.close()


def _address(url: str) -> tuple[str, int]:
    parsed = httpx.URL(url)
    return parsed.host, parsed.port or 80


def _closed_within(sock: Any, seconds: float) -> bool:
    """Whether the server closed `sock` (recv returns b"" or fails) within `seconds`."""
    sock.settimeout(seconds)
    try:
        return sock.recv(1024) == b""
    except TimeoutError:
        return False
    except OSError:
        return True


def test_connections_that_send_nothing_or_headers_too_slowly_are_closed() -> None:
    """Once 1,500 such connections were held open for good; now each gets request_timeout_s."""
    import socket
    import time

    with scripted.scripted("echo", lambda messages: "ok"), served(["scripted/echo"], request_timeout_s=1) as url:
        silent = socket.create_connection(_address(url))
        dribbling = socket.create_connection(_address(url))
        dribbling.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")  # the headers never finish
        started = time.monotonic()
        assert _closed_within(silent, 5) and _closed_within(dribbling, 5)
        assert time.monotonic() - started < 4
        # A connection that asks in time is answered, and kept alive for its next request.
        with httpx.Client() as http:
            for _ in range(2):
                assert http.post(f"{url}/chat/completions", json={"model": "scripted/echo", "messages": user("hi")}).status_code == 200


def test_a_body_that_stops_arriving_is_a_408() -> None:
    import socket

    with scripted.scripted("echo", lambda messages: "ok"), served(["scripted/echo"], request_timeout_s=1) as url:
        slow = socket.create_connection(_address(url))
        slow.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 400\r\n\r\n{\"model\": ")  # 390 bytes still to come, and they never do
        slow.settimeout(5)
        answer = slow.recv(4096).decode()
        assert answer.startswith("HTTP/1.1 408") and "request_timeout_s" in answer


async def test_a_long_generation_is_not_cut_by_the_request_deadline() -> None:
    """The deadline is for a request's arrival; an answer may take as long as it takes."""

    async def slow(messages: list[dict[str, Any]]) -> str:
        await asyncio.sleep(2.5)
        return "done"

    with scripted.scripted("slow", slow), served(["scripted/slow"], request_timeout_s=1) as url:
        response = await async_client(url).chat.completions.create(model="scripted/slow", messages=user("hi"))
    assert response.choices[0].message.content == "done"
