"""The egress guard inside `complete()`: what a remote model may see under each policy.

A scripted engine declared `locality = "remote"` stands in for a cloud model: it records
every message it receives, so each test asserts on what actually arrived.
"""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from turnout.config import load_settings
from turnout.engines import check_policy, complete, scripted, stream, tag, usage_meter
from turnout.errors import ConfigError, EgressRefused, ScriptExhausted

SECRET_BODY = "    return amount * RATE_TABLE_CANARY_7F3A[region]\n"
SNIPPET = f"def tax_for_region(amount: float, region: str) -> float:\n{SECRET_BODY}"


def settings(mode: str = "no-code", on_forbidden: str = "refuse", **extra: Any) -> Any:
    return load_settings(
        roles={
            "planner": {"model": "scripted/cloud", "locality": "remote"},
            "coder": {"model": "scripted/local"},
            **extra.pop("roles", {}),
        },
        policy={"mode": mode, "on_forbidden": on_forbidden, **extra},
    )


def code_prompt() -> tag.Tagged:
    return tag.compose(
        "Request: {request}\nCode:\n{code}",
        request=tag.request("Why is the UK tax wrong?"),
        code=tag.code(SNIPPET, origin="shop/pricing.py:4-5"),
    )


def received(script: scripted.Script) -> str:
    return "\n".join(str(m.get("content")) for call in script.calls for m in call)


async def test_code_never_reaches_a_remote_model_under_no_code() -> None:
    with scripted.scripted("cloud", ["never"]) as cloud, pytest.raises(EgressRefused) as refused:
        await complete("planner", code_prompt(), settings=settings())
    assert cloud.calls == []
    error = refused.value
    assert (error.role, error.model, error.policy) == ("planner", "scripted/cloud", "no-code")
    assert error.part == f"code from shop/pricing.py:4-5 ({len(SNIPPET.encode()):,} bytes)"
    assert "on_forbidden" in str(error) and "nothing was sent" in str(error)


async def test_code_reaches_a_remote_model_under_open() -> None:
    with scripted.scripted("cloud", ["fine"]) as cloud:
        result = await complete("planner", code_prompt(), settings=settings("open"))
    assert "RATE_TABLE_CANARY_7F3A" in received(cloud)
    assert result.egress is not None and result.egress.decision == "sent"
    assert result.egress.sent_bytes["code"] == len(SNIPPET.encode())
    assert result.egress.source_bytes_sent == len(SNIPPET.encode())


async def test_request_paths_and_summaries_go_remote_under_no_code() -> None:
    prompt = tag.compose(
        "Task: {task}\nFiles: {files}\nResults:\n{results}",
        task=tag.request("Where is tax computed?"),
        files=tag.path("shop/pricing.py"),
        results=tag.summary("found tax_for_region in shop/pricing.py"),
    )
    with scripted.scripted("cloud", ["in pricing"]) as cloud:
        result = await complete("planner", prompt, settings=settings())
    assert cloud.calls and "shop/pricing.py" in received(cloud)
    assert result.egress is not None
    assert result.egress.decision == "sent"
    assert set(result.egress.sent_bytes) == {"instructions", "request", "path", "summary"}
    assert result.egress.source_bytes_sent == 0


async def test_untagged_text_is_treated_as_source_under_no_code() -> None:
    with scripted.scripted("cloud", ["never"]) as cloud, pytest.raises(EgressRefused, match="untagged"):
        await complete("planner", "some text nobody tagged", settings=settings())
    assert cloud.calls == []


async def test_outline_sends_signatures_instead_of_code() -> None:
    with scripted.scripted("cloud", ["ok"]) as cloud:
        result = await complete("planner", code_prompt(), settings=settings(on_forbidden="outline"))
    seen = received(cloud)
    assert "RATE_TABLE_CANARY_7F3A" not in seen
    assert "def tax_for_region(amount: float, region: str) -> float" in seen
    assert result.egress is not None and result.egress.decision == "rewritten"
    assert result.egress.withheld_bytes == {"code": len(SNIPPET.encode())}
    assert result.egress.source_bytes_sent == 0


async def test_redact_names_what_was_withheld() -> None:
    with scripted.scripted("cloud", ["ok"]) as cloud:
        await complete("planner", code_prompt(), settings=settings(on_forbidden="redact"))
    seen = received(cloud)
    assert "RATE_TABLE_CANARY_7F3A" not in seen and "def tax_for_region" not in seen
    assert "code from shop/pricing.py:4-5" in seen and "withheld by privacy policy no-code" in seen


async def test_summarize_sends_a_local_models_summary_instead_of_code() -> None:
    with scripted.scripted("summarizer", ["Computes tax for a region from a rate table."]) as local, \
            scripted.scripted("cloud", ["ok"]) as cloud:
        result = await complete(
            "planner", code_prompt(), settings=settings(on_forbidden="summarize", summarize_with="scripted/summarizer")
        )
    assert "RATE_TABLE_CANARY_7F3A" in received(local)  # the local summarizer saw the code
    seen = received(cloud)
    assert "RATE_TABLE_CANARY_7F3A" not in seen
    assert "Computes tax for a region from a rate table." in seen
    assert result.egress is not None and result.egress.sent_bytes.get("code", 0) == 0


async def test_a_remote_summarizer_is_refused_rather_than_sent_the_code() -> None:
    config = settings(on_forbidden="summarize", summarize_with="planner")
    with pytest.raises(ConfigError, match="summarize_with"):
        check_policy(config)
    with scripted.scripted("cloud", ["never"]) as cloud, pytest.raises(EgressRefused):
        await complete("planner", code_prompt(), settings=config)
    assert cloud.calls == []


def test_a_summarizer_role_with_a_remote_fallback_fails_at_start_up_as_it_would_at_run_time() -> None:
    config = settings(
        on_forbidden="summarize", summarize_with="coder",
        roles={"coder": {"model": "scripted/local", "fallbacks": ["anthropic/claude-sonnet-4-5"]}},
    )
    with pytest.raises(ConfigError, match=r"summarize_with = 'coder' can reach a remote model"):
        check_policy(config)


async def test_local_only_refuses_any_remote_call_and_sends_nothing() -> None:
    prompt = tag.as_tagged(tag.request("hello"))
    with scripted.scripted("cloud", ["never"]) as cloud, pytest.raises(EgressRefused, match="local-only"):
        await complete("planner", prompt, settings=settings("local-only"))
    assert cloud.calls == []


async def test_local_models_see_everything_under_every_policy() -> None:
    for mode in ("open", "no-code", "local-only"):
        with scripted.scripted("local", ["ok"]) as local:
            result = await complete("coder", code_prompt(), settings=settings(mode))
        assert "RATE_TABLE_CANARY_7F3A" in received(local)
        assert result.egress is not None and result.egress.decision == "local"
        assert result.egress.sent_bytes == {}


@pytest.fixture
def connections(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every host looked up and address connected to (the offline guard still refuses them)."""
    import socket

    tried: list[Any] = []
    guarded, lookup = socket.socket.connect, socket.getaddrinfo

    def connect(self: socket.socket, address: Any) -> Any:
        tried.append(address)
        return guarded(self, address)

    def getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        tried.append(host)
        return lookup(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return tried


async def test_a_remote_fallback_is_dropped_for_a_payload_it_may_not_see(connections: list[Any], spans: Any) -> None:
    config = settings(roles={"coder": {"model": "scripted/local", "fallbacks": ["openai/gpt-4o"]}})
    with scripted.scripted("local", []), pytest.raises(ScriptExhausted):
        await complete("coder", code_prompt(), settings=config)
    assert connections == []
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("chat")]
    assert span.attributes["turnout.egress.dropped_fallbacks"] == ("openai/gpt-4o",)


async def test_a_remote_fallback_stays_for_a_payload_it_may_see(connections: list[Any], spans: Any) -> None:
    config = settings(roles={"coder": {"model": "scripted/local", "fallbacks": ["openai/gpt-4o"]}})
    with scripted.scripted("local", []), pytest.raises(Exception):  # noqa: B017  # any failure: only the attempt matters
        await complete("coder", tag.as_tagged(tag.request("hello")), settings=config)
    assert connections  # the fallback was tried (and stopped by the offline guard)
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("chat")]
    assert span.attributes["turnout.egress.remote_models"] == ("openai/gpt-4o",)
    assert "turnout.egress.dropped_fallbacks" not in span.attributes


async def test_per_role_policy_overrides_the_default() -> None:
    config = load_settings(
        roles={"planner": {"model": "scripted/cloud", "locality": "remote"}},
        policy={"mode": "open", "roles": {"planner": "no-code"}},
    )
    with scripted.scripted("cloud", ["never"]) as cloud, pytest.raises(EgressRefused):
        await complete("planner", code_prompt(), settings=config)
    assert cloud.calls == []


async def test_a_refusal_is_recorded_on_the_span_and_the_meter(spans: Any) -> None:
    with scripted.scripted("cloud", ["never"]), usage_meter() as meter, pytest.raises(EgressRefused):
        await complete("planner", code_prompt(), settings=settings())
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("chat")]
    assert span.attributes["turnout.egress.decision"] == "refused"
    assert span.attributes["turnout.egress.policy"] == "no-code"
    assert span.attributes["turnout.egress.sent_bytes"] == 0
    assert span.attributes["turnout.egress.parts.code"] == 1
    assert span.attributes["turnout.egress.refused_part"].startswith("code from shop/pricing.py")
    assert span.status.status_code.name == "ERROR"
    assert meter.totals.refused_calls == 1 and meter.totals.remote_calls == 0


async def test_a_remote_call_records_policy_tags_and_bytes_on_its_span(spans: Any) -> None:
    prompt = tag.compose("Task: {task}", task=tag.request("Where is tax computed?"))
    with scripted.scripted("cloud", ["in pricing"]), usage_meter() as meter:
        await complete("planner", prompt, settings=settings())
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("chat")]
    a = span.attributes
    assert a["turnout.egress.decision"] == "sent" and a["turnout.locality"] == "remote"
    assert a["turnout.egress.parts.request"] == 1 and a["turnout.egress.parts.instructions"] == 1
    assert a["turnout.egress.sent_bytes.request"] == len(b"Where is tax computed?")
    assert a["turnout.egress.sent_bytes"] == len(b"Task: Where is tax computed?")
    assert a["turnout.egress.source_bytes_sent"] == 0
    assert meter.totals.remote_calls == 1
    assert meter.totals.sent_bytes == {"instructions": 6, "request": 22}


class Verdict(BaseModel):
    ok: bool


async def test_the_answer_schema_is_counted_as_sent() -> None:
    prompt = tag.as_tagged(tag.request("ok?"))
    with scripted.scripted("cloud", ['{"ok": true}']):
        result = await complete("planner", prompt, schema=Verdict, settings=settings())
    assert result.egress is not None and result.egress.sent_bytes["schema"] > 0


async def test_streams_are_guarded_too() -> None:
    with scripted.scripted("cloud", ["never"]) as cloud, pytest.raises(EgressRefused):
        async for _ in stream("planner", code_prompt(), settings=settings()):
            pass
    assert cloud.calls == []


async def test_a_remote_model_string_follows_the_default_policy(connections: list[Any]) -> None:
    with pytest.raises(EgressRefused, match="openai/gpt-4o is remote"):
        await complete("openai/gpt-4o", code_prompt(), settings=settings())
    assert connections == []


def test_content_is_kept_off_spans_bound_for_a_collector_outside_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    from turnout.engines.privacy._policy import span_capture
    from turnout.telemetry import CaptureMode

    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "https://otlp.example.com")
    captured = {"capture_content": "SPAN_ONLY"}
    assert span_capture(load_settings(**captured, policy={"mode": "no-code"}), "planner") is CaptureMode.NO_CONTENT
    assert span_capture(load_settings(**captured, policy={"mode": "open"}), "planner") is CaptureMode.SPAN_ONLY
    local = load_settings(**captured, policy={"mode": "no-code", "local_hosts": ["otlp.example.com"]})
    assert span_capture(local, "planner") is CaptureMode.SPAN_ONLY
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    assert span_capture(load_settings(**captured, policy={"mode": "no-code"}), "planner") is CaptureMode.SPAN_ONLY


async def test_a_remote_call_that_fails_still_counts_what_it_sent_by_kind(spans: Any) -> None:
    def broken(messages: list[dict[str, Any]]) -> str:
        raise RuntimeError("the cloud is down")

    prompt = tag.compose("Task: {task}", task=tag.request("Where is tax computed?"))
    no_retries = settings().model_copy(update={"remote_retries": 0})
    with scripted.scripted("cloud", broken), pytest.raises(Exception, match="the cloud is down"):
        await complete("planner", prompt, settings=no_retries)
    (span,) = [s for s in spans.get_finished_spans() if s.name.startswith("chat")]
    assert span.attributes["turnout.egress.sent_bytes.request"] == len(b"Where is tax computed?")
    assert span.attributes["turnout.egress.source_bytes_sent"] == 0
