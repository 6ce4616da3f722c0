"""A fake OpenAI-compatible provider on loopback (the `fake_provider` fixture).

It stands in for a cloud model at the far end of a real TCP socket: litellm's `openai`
provider talks to it over HTTP exactly as it would to api.openai.com, so a test can read
the raw bytes that left turnout and count the connections made to it.

    fake_provider.answer = lambda request: {"steps": [...]}   # the JSON the model "writes"
    ... run something whose role points at fake_provider.base_url ...
    assert fake_provider.received("a string that must never leave")

`answer(request)` gets the parsed request body and returns the assistant's content: a dict
(sent as its JSON text), a string, or `Calls` (native tool calls; streamed, each call's
arguments arrive in two fragments). `schema_name(request)` says which output schema the
request asked for (`response_format.json_schema.name`, e.g. "Plan" or "CodeResult").
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

@dataclass
class Calls:
    """An answer that calls tools: (name, arguments as a dict, or as raw text) each."""

    calls: list[tuple[str, "dict[str, Any] | str"]]

    def openai(self) -> list[dict[str, Any]]:
        return [
            {"id": f"call_fake_{i}", "type": "function",
             "function": {"name": name, "arguments": arguments if isinstance(arguments, str) else json.dumps(arguments)}}
            for i, (name, arguments) in enumerate(self.calls)
        ]


Answer = Callable[[dict[str, Any]], "dict[str, Any] | str | Calls"]
CHAT_PATH = "/v1/chat/completions"


def schema_name(request: dict[str, Any]) -> str | None:
    """The name of the JSON schema the request's `response_format` asks for, if any."""
    response_format = request.get("response_format") or {}
    if response_format.get("type") != "json_schema":
        return None
    return (response_format.get("json_schema") or {}).get("name")


def _no_answer(request: dict[str, Any]) -> dict[str, Any]:
    raise AssertionError(f"the fake provider has no answer scripted for schema {schema_name(request)!r}")


def _tokens(text: str) -> int:
    return len(text.split())


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, provider: FakeProvider) -> None:
        self.provider = provider
        # Binding and listening happen here: the port accepts connections before this returns.
        super().__init__(("127.0.0.1", 0), _Handler)

    def get_request(self) -> tuple[Any, Any]:
        connection = super().get_request()
        with self.provider._lock:
            self.provider.connections += 1
        return connection


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    # HTTP/1.0: one request per connection, so a response ends when the connection closes.
    protocol_version = "HTTP/1.0"

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_POST(self) -> None:
        provider = self.server.provider
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        with provider._lock:
            provider.bodies.append(body)
            provider.authorizations.append(self.headers.get("Authorization"))
        if self.path.split("?")[0] != provider.chat_path:
            self._send_json(404, {"error": {"message": f"no route {self.path}", "type": "not_found"}})
            return
        try:
            request = json.loads(body)
            content = provider.answer(request)
        except Exception as exc:  # noqa: BLE001 - the test's answer failed: tell the client and the test
            with provider._lock:
                provider.errors.append(f"{type(exc).__name__}: {exc}")
            self._send_json(500, {"error": {"message": str(exc), "type": "fake_provider_error"}})
            return
        if isinstance(content, Calls):
            if request.get("stream"):
                self._stream(request, "", content)
            else:
                self._send_json(200, provider.completion(request, "", content))
            return
        text = content if isinstance(content, str) else json.dumps(content)
        if request.get("stream"):
            self._stream(request, text)
        else:
            self._send_json(200, provider.completion(request, text))

    def _send_json(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _stream(self, request: dict[str, Any], text: str, calls: Calls | None = None) -> None:
        provider = self.server.provider
        whole = provider.completion(request, text, calls)
        base = {key: whole[key] for key in ("id", "created", "model")} | {"object": "chat.completion.chunk"}
        if calls is None:
            events = [
                {**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": text}, "finish_reason": None}]},
                {**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
            ]
        else:
            events = []
            for index, call in enumerate(calls.openai()):
                arguments = call["function"]["arguments"]
                half = len(arguments) // 2
                events.append({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"role": "assistant", "tool_calls": [
                    {"index": index, "id": call["id"], "type": "function", "function": {"name": call["function"]["name"], "arguments": arguments[:half]}}]}}]})
                events.append({**base, "choices": [{"index": 0, "finish_reason": None, "delta": {"tool_calls": [
                    {"index": index, "function": {"arguments": arguments[half:]}}]}}]})
            events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]})
        if (request.get("stream_options") or {}).get("include_usage"):
            events.append({**base, "choices": [], "usage": whole["usage"]})
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.end_headers()
        for event in events:
            self.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        self.wfile.write(b"data: [DONE]\n\n")


class FakeProvider:
    """The server and what it saw: raw request bodies, accepted TCP connections, and the
    errors the test's `answer` raised (the fixture fails the test on any)."""

    def __init__(self, answer: Answer = _no_answer, *, chat_path: str = CHAT_PATH) -> None:
        """`chat_path`: where chat completions are served (OpenAI's `/v1/chat/completions`;
        a Microsoft Foundry deployment's `/models/chat/completions`)."""
        self.answer = answer
        self.chat_path = chat_path
        self.bodies: list[bytes] = []
        self.authorizations: list[str | None] = []  # each request's Authorization header
        self.connections = 0
        self.errors: list[str] = []
        self._lock = threading.Lock()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._served = 0

    @property
    def address(self) -> tuple[str, int]:
        assert self._server is not None, "the fake provider is not running"
        host, port = self._server.server_address[:2]
        return str(host), int(port)

    @property
    def base_url(self) -> str:
        """The API base a client is given: the chat path less `/chat/completions`."""
        host, port = self.address
        return f"http://{host}:{port}{self.chat_path.removesuffix('/chat/completions')}"

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The request bodies, parsed."""
        return [json.loads(body) for body in self.bodies]

    def schema_names(self) -> list[str | None]:
        """The output schema each request asked for, in order."""
        return [schema_name(request) for request in self.requests]

    def received(self, text: str) -> bool:
        """Whether `text` arrived in any request body, byte for byte."""
        needle = text.encode()
        return any(needle in body for body in self.bodies)

    def completion(self, request: dict[str, Any], text: str, calls: Calls | None = None) -> dict[str, Any]:
        """An OpenAI `chat.completion` body carrying `text` (or tool `calls`), with word-count usage."""
        with self._lock:
            self._served += 1
            number = self._served
        prompt = sum(_tokens(str(m.get("content") or "")) for m in request.get("messages", []))
        completion = _tokens(text) + sum(_tokens(json.dumps(c)) for c in (calls.openai() if calls else []))
        message: dict[str, Any] = {"role": "assistant", "content": text}
        if calls is not None:
            message = {"role": "assistant", "content": None, "tool_calls": calls.openai()}
        return {
            "id": f"chatcmpl-fake-{number}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.get("model", "fake"),
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "finish_reason": "tool_calls" if calls is not None else "stop",
                    "logprobs": None,
                }
            ],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
        }

    def start(self) -> FakeProvider:
        self._server = _Server(self)
        ready = threading.Event()

        def serve() -> None:
            ready.set()
            assert self._server is not None
            self._server.serve_forever(poll_interval=0.05)

        self._thread = threading.Thread(target=serve, name="fake-provider", daemon=True)
        self._thread.start()
        ready.wait(timeout=10)
        return self

    def stop(self) -> None:
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = None
        self._thread = None


@pytest.fixture(name="fake_provider")
def fake_provider_fixture() -> Iterator[FakeProvider]:
    """A running FakeProvider; the test fails if its scripted `answer` raised.

    Import `fake_provider_fixture` into a test module to use it as `fake_provider`."""
    provider = FakeProvider().start()
    try:
        yield provider
    finally:
        provider.stop()
    assert not provider.errors, f"the fake provider's answer failed: {provider.errors}"


def cloud_role(provider: FakeProvider, monkeypatch: pytest.MonkeyPatch, role: str = "planner", **settings: Any) -> None:
    """Point `role` at the fake provider, declared remote (as a cloud model is), with an API key
    set; `settings` go to load_settings (e.g. policy={"mode": "no-code"})."""
    from turnout.config import load_settings, use_settings

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    roles = {role: {"model": "openai/gpt-4o-mini", "api_base": provider.base_url, "locality": "remote"}}
    use_settings(load_settings(roles=roles, **{"remote_retries": 0, **settings}))
