"""Call recordings hold prompts and answers: redacted like traces, readable by the owner only."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from turnout.engines import complete, scripted
from turnout.telemetry._calls import CALLS_DIR, CallRecord, append_call, calls_path, read_calls

DEPLOY_TOKEN = "dtk-7f3a9c1e5b2d4f6a8c0e"  # no known key shape: only its variable's name marks it
ANTHROPIC_KEY = "sk-ant-api03-" + "y" * 40
TRACES = Path(".turnout/traces")


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


async def test_recordings_are_redacted_and_owner_only(spans: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ACME_DEPLOY_TOKEN", DEPLOY_TOKEN)
    old_umask = os.umask(0o002)  # a permissive umask must not make them readable by others
    try:
        with scripted.scripted("s", [f"Deployed with {DEPLOY_TOKEN} and {ANTHROPIC_KEY}."]):
            await complete("scripted/s", f"Deploy using ${DEPLOY_TOKEN} and the key {ANTHROPIC_KEY}")
    finally:
        os.umask(old_umask)
    (recording,) = (TRACES / CALLS_DIR).glob("*.jsonl")
    text = recording.read_text()
    assert DEPLOY_TOKEN not in text and ANTHROPIC_KEY not in text
    (call,) = read_calls(recording)
    assert call.messages[0]["content"] == "Deploy using $[REDACTED] and the key [REDACTED]"
    assert call.text == "Deployed with [REDACTED] and [REDACTED]."
    assert (_mode(recording.parent), _mode(recording)) == (0o700, 0o600)


def test_a_readable_recording_from_before_is_made_owner_only_on_its_next_append(tmp_path: Path) -> None:
    record = CallRecord(
        trace_id="a" * 32, span_id="b" * 16, key="k", requested="scripted/s", model="scripted/s",
        locality="local", messages=[], text="x",
    )
    append_call(tmp_path, record)
    path = calls_path(tmp_path, record.trace_id)
    path.chmod(0o644)
    append_call(tmp_path, record)
    assert _mode(path) == 0o600 and len(read_calls(path)) == 2
