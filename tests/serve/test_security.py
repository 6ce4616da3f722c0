"""Who may call the server and what it may serve: an API key off loopback, only this
machine's in-process engines, never a proxy to a remote model."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.serve.conftest import client, serve_settings, served, user
from turnout.config import load_settings
from turnout.engines import scripted
from turnout.errors import ConfigError, ModelNotFound
from turnout.serve import create_app, served_models

KEY = "s3cret-key-for-tests"


@pytest.fixture
def echo() -> Iterator[None]:
    with scripted.scripted("echo", lambda messages: "ok"):
        yield


def test_with_a_key_every_v1_request_needs_it(echo: None) -> None:
    with served(["scripted/echo"], api_key=KEY) as url:
        with pytest.raises(openai.AuthenticationError) as missing:
            client(url, key="wrong-key").chat.completions.create(model="scripted/echo", messages=user("hi"))
        with pytest.raises(openai.AuthenticationError):
            client(url, key="wrong-key").models.list()
        no_header = httpx.post(f"{url}/chat/completions", json={"model": "scripted/echo", "messages": user("hi")})
        answer = client(url, key=KEY).chat.completions.create(model="scripted/echo", messages=user("hi"))
        health = httpx.get(url.removesuffix("/v1") + "/health")
    assert missing.value.status_code == 401 and missing.value.code == "invalid_api_key"
    assert "Authorization: Bearer <key>" in missing.value.message
    assert no_header.status_code == 401 and no_header.headers["www-authenticate"] == "Bearer"
    assert no_header.json()["error"]["type"] == "invalid_request_error"
    assert answer.choices[0].message.content == "ok"
    assert health.status_code == 200  # readiness probes need no key


def test_the_key_can_come_from_the_environment(echo: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_SERVE__API_KEY", KEY)
    with served(["scripted/echo"]) as url:
        with pytest.raises(openai.AuthenticationError):
            client(url).models.list()
        assert [m.id for m in client(url, key=KEY).models.list().data] == ["scripted/echo"]


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "192.168.1.20", "gpu-box.internal"])
def test_binding_beyond_loopback_without_a_key_refuses_to_start(echo: None, host: str) -> None:
    with pytest.raises(ConfigError, match=f"refusing to serve on {host} without an API key"):
        create_app(serve_settings(["scripted/echo"], host=host))


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_key(echo: None, host: str) -> None:
    create_app(serve_settings(["scripted/echo"], host=host))


def test_beyond_loopback_with_a_key_starts(echo: None) -> None:
    create_app(serve_settings(["scripted/echo"], host="0.0.0.0", api_key=KEY))


def test_an_empty_key_counts_as_none(echo: None) -> None:
    with pytest.raises(ConfigError, match="without an API key"):
        create_app(serve_settings(["scripted/echo"], host="0.0.0.0", api_key="  "))


@pytest.mark.parametrize("model", ["anthropic/claude-sonnet-4-5", "openai/gpt-5", "hosted_vllm/qwen"])
def test_a_remote_model_is_never_served(echo: None, model: str) -> None:
    with pytest.raises(ConfigError, match="may name only this machine's in-process engines") as error:
        create_app(serve_settings(["scripted/echo", model]))
    assert model in str(error.value) and "proxy to a remote model" in str(error.value)


def test_a_model_without_provider_is_refused() -> None:
    with pytest.raises(ConfigError, match="'smollm2' has no provider"):
        create_app(serve_settings(["smollm2"]))


def test_a_missing_local_model_fails_at_start_up(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFound, match="no script named 'ghost'"):
        create_app(serve_settings(["scripted/ghost"]))


def test_by_default_the_roles_local_models_are_served(echo: None, tmp_path: Path) -> None:
    (tmp_path / "turnout.toml").write_text(
        '[roles]\nplanner = "anthropic/claude-sonnet-4-5"\nrouter = "scripted/echo"\n'
        'retriever = "scripted/echo"\ncoder = "scripted/other"\nverifier = "scripted/echo"\n'
    )
    with scripted.scripted("other", ["x"]):
        assert served_models(load_settings()) == ["scripted/echo", "scripted/other"]


def test_with_no_local_role_and_no_models_there_is_nothing_to_serve(monkeypatch: pytest.MonkeyPatch) -> None:
    for role in ("PLANNER", "ROUTER", "RETRIEVER", "CODER", "VERIFIER"):
        monkeypatch.setenv(f"TURNOUT_ROLES__{role}", "anthropic/claude-sonnet-4-5")
    with pytest.raises(ConfigError, match="nothing to serve"):
        served_models(load_settings())


def test_no_trace_files_or_recordings_unless_config_asks(echo: None, tmp_path: Path) -> None:
    with served(["scripted/echo"]) as url:
        client(url).chat.completions.create(model="scripted/echo", messages=user("private prompt"))
    assert not (tmp_path / ".turnout").exists()


def test_config_can_ask_for_call_recordings(echo: None, tmp_path: Path) -> None:
    (tmp_path / "turnout.toml").write_text('traces_dir = "served-traces"\nrecord_calls = true\n')
    with served(["scripted/echo"]) as url:
        client(url).chat.completions.create(model="scripted/echo", messages=user("kept on purpose"))
    [recording] = (tmp_path / "served-traces").rglob("*.jsonl")
    assert "kept on purpose" in recording.read_text()
