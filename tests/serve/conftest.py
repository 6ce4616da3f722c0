"""A real `turnout serve` on a free loopback port, on a thread, for the OpenAI SDK to talk to.

Models are scripted (deterministic answers, counted in words) or `probe/…`, a test engine
that keeps every EngineRequest it gets, so a test can see what reached the engine.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import contextmanager
from typing import Any, ClassVar

import httpx
import openai
import pytest

from turnout.config import Settings, load_settings, use_settings
from turnout.engines import EngineChunk, EngineRequest, LocalEngine, register_engine
from turnout.serve import serving

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

CITY_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}, "population": {"type": "integer", "minimum": 0}},
    "required": ["city", "population"],
    "additionalProperties": False,
}
CITY_JSON = '{"city": "Paris", "population": 2100000}'


class Probe:
    """What the probe engine saw and how it behaves; reset for every test."""

    requests: list[EngineRequest]
    stopped: threading.Event  # set when a `probe/drip` generation ends, however it ends

    def __init__(self) -> None:
        self.requests = []
        self.stopped = threading.Event()


class ProbeEngine(LocalEngine):
    """`probe/json` answers CITY_JSON; `probe/drip` writes one word, then waits until it is
    stopped; `probe/crash` fails like a buggy engine would."""

    provider: ClassVar[str] = "probe"
    state: ClassVar[Probe] = Probe()

    async def stream(self, request: EngineRequest) -> AsyncIterator[EngineChunk]:
        self.state.requests.append(request)
        if request.model == "crash":
            raise RuntimeError("engine exploded at /secret/internal/path.py")
        if request.model == "drip":
            try:
                yield EngineChunk(text="first ")
                await asyncio.Event().wait()
            finally:
                self.state.stopped.set()
        yield EngineChunk(text=CITY_JSON)
        yield EngineChunk(finish_reason="stop", input_tokens=7, output_tokens=4)


@pytest.fixture(autouse=True)
def _no_server_left_running() -> Iterator[None]:
    yield
    left = [t.name for t in threading.enumerate() if t.name == "turnout-serve" and t.is_alive()]
    assert not left, f"a test left a server running: {left}"


@pytest.fixture
def probe() -> Probe:
    register_engine("probe", ProbeEngine)
    ProbeEngine.state = Probe()
    return ProbeEngine.state


def serve_settings(models: list[str], **serve: Any) -> Settings:
    settings = load_settings(serve={"models": models, **serve})
    use_settings(settings)
    return settings


@contextmanager
def served(models: list[str], **serve: Any) -> Iterator[str]:
    """A server for `models` on a free loopback port; yields its OpenAI base URL."""
    with serving(serve_settings(models, **serve)) as server:
        yield server.url


def client(url: str, key: str = "unused") -> openai.OpenAI:
    """An OpenAI client that never retries (a 429 must reach the test, not be retried)."""
    return openai.OpenAI(base_url=url, api_key=key, max_retries=0, timeout=30)


def async_client(url: str, key: str = "unused") -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=url, api_key=key, max_retries=0, timeout=30)


def health(url: str) -> dict[str, Any]:
    return httpx.get(url.removesuffix("/v1") + "/health").json()


async def eventually(check: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    """Wait (without blocking the loop) until `check()` holds: for the server's own thread
    to reach a state the test then relies on."""
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]
