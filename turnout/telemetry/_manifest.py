"""Run manifests: what a run was started with, so it can be replayed.

`<traces_dir>/calls/<trace id>.run.json`, written when an instrumented graph starts a run:
the graph's name and structure hash, the input, the thread, and what the caller added with
`run_context()` (the CLI records how to rebuild the graph: `hybrid` and its repository,
`refactor`, or `module:attr`). Local disk only, like the call recordings beside it.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from turnout.telemetry._calls import CALLS_DIR, RecordingError

logger = logging.getLogger("turnout.telemetry")
_context: ContextVar[dict[str, Any]] = ContextVar("turnout_run_context", default={})


class RunManifest(BaseModel):
    run_id: str
    graph: str
    graph_hash: str
    input: Any = None  # as JSON, for people reading the file
    typed_input: tuple[str, str] | None = None  # LangGraph's serializer: (type, base64 data), for replay
    thread_id: str | None = None
    started: datetime
    context: dict[str, Any] = Field(default_factory=dict)


def manifest_path(traces_dir: Path, run_id: str) -> Path:
    return traces_dir / CALLS_DIR / f"{run_id}.run.json"


def graph_hash(graph: Any) -> str:
    """A hash of a compiled graph's nodes and edges: a changed graph has a different one."""
    drawn = graph.get_graph()
    nodes = sorted(str(node_id) for node_id in drawn.nodes)
    edges = sorted(f"{e.source}->{e.target}:{e.conditional}" for e in drawn.edges)
    return hashlib.sha256(json.dumps([nodes, edges]).encode()).hexdigest()[:16]


@contextmanager
def run_context(**values: Any) -> Iterator[None]:
    """Add `values` to the manifest of every run started inside the block."""
    token = _context.set({**_context.get(), **values})
    try:
        yield
    finally:
        _context.reset(token)


def current_context() -> dict[str, Any]:
    return dict(_context.get())


def write_manifest(traces_dir: Path, manifest: RunManifest) -> None:
    path = manifest_path(traces_dir, manifest.run_id)
    try:
        if not path.parent.is_dir():  # mkdir even of an existing folder counts as blocking I/O on an event loop
            path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(manifest.model_dump_json(indent=2), encoding="utf-8")
    except (OSError, TypeError, ValueError) as exc:  # an input that is not JSON: no replay, no failure
        logger.warning("cannot write the run manifest %s: %s", path, exc)


def read_manifest(traces_dir: Path, run_id: str) -> RunManifest:
    path = manifest_path(traces_dir, run_id)
    if not path.is_file():
        raise RecordingError(
            f"no run manifest at {path}: the run was not started through an instrumented graph with "
            "recording on (record_calls, traces_dir); record it again"
        )
    try:
        return RunManifest.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise RecordingError(f"{path} is corrupt ({str(exc).splitlines()[0]}); record the run again") from None


def new_manifest(run_id: str, graph: str, hash_: str, input: Any, thread_id: str | None) -> RunManifest:
    return RunManifest(
        run_id=run_id,
        graph=graph,
        graph_hash=hash_,
        input=_jsonable(input),
        typed_input=_typed(input),
        thread_id=thread_id,
        started=datetime.now(timezone.utc),
        context=current_context(),
    )


def _typed(value: Any) -> tuple[str, str] | None:
    """`value` as LangGraph's checkpoint serializer writes it (pydantic state values included)."""
    from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer

    try:
        kind, data = JsonPlusSerializer().dumps_typed(value)
    except Exception:  # an input LangGraph cannot serialize: replay then needs input=
        return None
    return kind, base64.b64encode(data).decode("ascii")


def _jsonable(value: Any) -> Any:
    try:
        return json.loads(json.dumps(value, default=_encode))
    except (TypeError, ValueError):
        return None


def _encode(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    if isinstance(value, tuple):
        return list(value)
    raise TypeError(type(value).__name__)
