"""Shared fixtures: every test is offline, isolated from the developer's config and keys."""

from __future__ import annotations

import ipaddress
import os
import socket
from collections.abc import Iterator
from typing import Any

import pytest

from tests.postgres_server import postgres_url  # noqa: F401  (the fixture)
from turnout.config import use_settings

# Tests import litellm themselves; it must never reach for its online cost map.
os.environ["LITELLM_LOCAL_MODEL_COST_MAP"] = "True"

KEY_VARIABLES = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "AZURE_AI_API_KEY", "AZURE_API_KEY", "GEMINI_API_KEY")
_real_connect = socket.socket.connect


def _is_loopback(address: Any) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _guarded_connect(self: socket.socket, address: Any) -> Any:
    if not _is_loopback(address):
        raise RuntimeError(f"test tried to reach the network ({address!r}); tests are offline")
    return _real_connect(self, address)


@pytest.fixture(autouse=True)
def _offline_and_isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> Iterator[None]:
    """No network but loopback, no TURNOUT_* (but one) or provider keys, no turnout.toml, fresh settings."""
    monkeypatch.setattr(socket.socket, "connect", _guarded_connect)
    for name in list(os.environ):
        if name.startswith("TURNOUT_") or name in KEY_VARIABLES:
            monkeypatch.delenv(name)
    # A repository without an environment of its own runs its tests with this interpreter: making
    # an isolated one needs a package index (tests/tools/test_isolated_env.py makes them offline).
    monkeypatch.setenv("TURNOUT_REFACTOR__ENVIRONMENT", "turnout")
    monkeypatch.chdir(tmp_path)
    use_settings(None)
    yield
    use_settings(None)


def _cuda_available() -> bool:
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        return False
    import torch

    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: Any, items: list[Any]) -> None:
    """`gpu` tests run only where CUDA is; elsewhere they are skipped, saying why."""
    gpu_items = [item for item in items if item.get_closest_marker("gpu")]
    if gpu_items and not _cuda_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU (torch.cuda.is_available() is False or torch is missing)")
        for item in gpu_items:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def _span_exporter() -> Any:
    """One SDK provider for the whole session, installed before any test can configure one:
    turnout.telemetry.configure() then adds to it, as it does to an application's provider."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture(autouse=True)
def spans(_span_exporter: Any) -> Any:
    """The spans finished during this test (an InMemorySpanExporter)."""
    _span_exporter.clear()
    return _span_exporter
