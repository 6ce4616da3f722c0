"""Call recordings: every model call's request and answer, stored beside the run's trace.

`<traces_dir>/calls/<trace id>.jsonl`, one call a line, written whatever the content-capture
setting of exported spans (these files never leave the disk). They are what `turnout
replay` answers model calls from and what `turnout trace diff` compares outputs with.
Turn recording off with `record_calls = false` (or trace files off with `traces_dir = "off"`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from turnout.errors import UserError

logger = logging.getLogger("turnout.telemetry")
CALLS_DIR = "calls"


class RecordingError(UserError):
    """A call recording that is missing or cannot be read."""


class CallRecord(BaseModel):
    """One model call as it happened: what was sent (after the egress guard) and what came back."""

    trace_id: str
    span_id: str
    key: str = Field(description="request_key() of the request: what replay matches calls by.")
    node: str | None = None
    step: int | None = None
    requested: str
    role: str | None = None
    model: str
    locality: str
    messages: list[dict[str, Any]]
    schema_name: str | None = None
    json_schema: dict[str, Any] | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    text: str = Field(description="The answer; for a failed call, the raw text it failed on, if any.")
    tool_calls: list[dict[str, Any]] = Field(default_factory=list, description="The tool calls made (id, name, arguments).")
    error_type: str | None = Field(None, description="The exception class of a call that failed.")
    error: str | None = None
    finish_reason: str | None = None
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = None
    duration_s: float = 0.0
    engine_stats: dict[str, Any] = Field(
        default_factory=dict, description="What the engine reported beyond usage (a scored choice's probabilities)."
    )


def request_key(requested: str, messages: list[dict[str, Any]], schema_name: str | None) -> str:
    """What identifies a request for replay: who was asked, with what, for which schema."""
    payload = json.dumps([requested, [[m.get("role"), str(m.get("content"))] for m in messages], schema_name])
    return hashlib.sha256(payload.encode()).hexdigest()[:24]


def calls_path(traces_dir: Path, trace_id: str) -> Path:
    return traces_dir / CALLS_DIR / f"{trace_id}.jsonl"


_lock = threading.Lock()
_warned: set[Path] = set()


def append_call(traces_dir: Path, record: CallRecord) -> None:
    """Append one call to its run's recording (never raises: recording must not break a run).
    Recordings hold prompts and answers: the folder is the owner's only (0700), each file too
    (0600), whatever the umask."""
    path = calls_path(traces_dir, record.trace_id)
    try:
        with _lock:
            if not path.parent.is_dir():  # mkdir even of an existing folder counts as blocking I/O on an event loop
                path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
                os.chmod(path.parent, 0o700)
            descriptor = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
            with open(descriptor, "a", encoding="utf-8") as f:
                if os.fstat(descriptor).st_mode & 0o077:  # written by an older turnout, or copied in
                    os.fchmod(descriptor, 0o600)
                f.write(record.model_dump_json(exclude_defaults=True) + "\n")
    except OSError as exc:
        if path.parent not in _warned:
            _warned.add(path.parent)
            logger.warning("cannot record model calls in %s: %s", path.parent, exc)


def read_calls(path: Path) -> list[CallRecord]:
    """Every recorded call of a run, in the order they finished; a missing or corrupt file is
    a RecordingError saying which line and what to do."""
    if not path.is_file():
        raise RecordingError(
            f"no call recording at {path}: the run was made with record_calls = false, trace files "
            "off, or before recording existed; record it again"
        )
    calls = []
    with open(path, encoding="utf-8", errors="replace") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                calls.append(CallRecord.model_validate_json(line))
            except ValueError as exc:
                raise RecordingError(
                    f"{path}: line {number} is corrupt ({str(exc).splitlines()[0]}); the recording "
                    "cannot be replayed — record the run again"
                ) from None
    return calls
