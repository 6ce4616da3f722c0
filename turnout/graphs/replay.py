"""Replay a recorded run: the same graph, the same input, every model call answered from
the recording (no model loaded), or some of them live to see what changes.

    result = await replay("3f2a9c", build_hybrid_graph(repo="."))           # exact re-run
    result = await replay("3f2a9c", graph, live=["router=openai/gpt-4o"])   # swap one role
    assert result.diverged is None and result.state["answer"] == "…"

The replay is itself a traced, recorded run (its root span says which run it replays), so
`turnout trace diff ORIGINAL REPLAY` shows what changed. In pytest this turns a recorded
run into a regression test that needs no model.
"""

from __future__ import annotations

import base64
import logging
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from turnout.config import get_settings
from turnout.engines._replay import LiveRule, ReplaySession, replaying
from turnout.errors import ReplayDiverged, UserError
from turnout.telemetry._calls import CALLS_DIR, RecordingError, calls_path, read_calls
from turnout.telemetry._manifest import RunManifest, graph_hash, read_manifest, run_context

logger = logging.getLogger("turnout")


class ReplayMismatch(UserError):
    """The graph given for a replay is not the one the run was recorded from."""


class ReplayResult(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    original: str
    run_id: str | None  # the replay's own run id (None when it was not traced)
    state: dict[str, Any]
    replayed_calls: int
    live_calls: int
    unused_calls: int  # recorded calls the replay never asked for
    diverged: str | None = None  # why it stopped, when it diverged

    @property
    def identical(self) -> bool:
        return self.diverged is None and self.unused_calls == 0 and self.live_calls == 0


def recorded_runs(traces_dir: Path) -> list[RunManifest]:
    """Every run with a manifest under `traces_dir`, newest first."""
    manifests = []
    for path in (traces_dir / CALLS_DIR).glob("*.run.json"):
        try:
            manifests.append(read_manifest(traces_dir, path.name.removesuffix(".run.json")))
        except RecordingError:
            continue
    return sorted(manifests, key=lambda m: m.started, reverse=True)


def find_recorded_run(traces_dir: Path, run_id: str) -> RunManifest:
    runs = [m for m in recorded_runs(traces_dir) if m.run_id.startswith(run_id.lower())]
    if len(runs) == 1:
        return runs[0]
    if runs:
        raise UserError(f"run id {run_id!r} is ambiguous ({', '.join(m.run_id[:12] for m in runs[:5])}…); give more characters")
    raise RecordingError(
        f"no recorded run {run_id!r} under {traces_dir / CALLS_DIR} (`turnout trace ls` lists runs; "
        "runs are recorded when record_calls is on and trace files are kept)"
    )


def _check_live(rules: Sequence[LiveRule], graph: Any, manifest: RunManifest, requested: set[str]) -> None:
    nodes = sorted(n for n in graph.nodes if not n.startswith("__"))
    roles = get_settings().roles.names()
    tools = {name.removeprefix("tool:") for name in requested if name.startswith("tool:")}
    for rule in rules:
        if rule.name not in (*nodes, *roles, *requested, *tools):
            raise UserError(
                f"--live {rule.name!r} names neither a node, a role nor a tool of graph {manifest.graph!r}: "
                f"nodes are {', '.join(nodes)}; roles are {', '.join(roles)}"
                + (f"; tools are {', '.join(sorted(tools))}" if tools else "")
            )


async def replay(
    run_id: str,
    graph: Any,
    *,
    traces_dir: Path | str | None = None,
    live: Sequence[str | LiveRule] = (),
    from_step: int | None = None,
    force: bool = False,
    input: Any = None,
) -> ReplayResult:
    """Re-run recorded run `run_id` (an id or prefix) on `graph`, answering model calls from
    its recording. `live`: nodes or roles (`NAME` or `NAME=MODEL`) whose calls go to a model;
    `from_step`: every call from that graph step on is live. A graph whose structure differs
    from the recorded one is refused unless `force`."""
    from turnout.telemetry import instrument

    directory = Path(traces_dir) if traces_dir is not None else get_settings().traces_path
    if directory is None:
        raise UserError("trace files are turned off (traces_dir = 'off'), so there are no recordings to replay")
    manifest = find_recorded_run(directory, run_id)
    calls = read_calls(calls_path(directory, manifest.run_id))
    structure = graph_hash(graph)
    if structure != manifest.graph_hash:
        message = (
            f"run {manifest.run_id[:12]} was recorded from graph {manifest.graph!r} with structure "
            f"{manifest.graph_hash}, and this graph's is {structure}: its nodes or edges changed"
        )
        if not force:
            raise ReplayMismatch(f"{message}; pass --force (force=True) to replay it anyway")
        logger.warning("%s; replaying anyway (forced)", message)
    rules = [r if isinstance(r, LiveRule) else LiveRule.parse(r) for r in live]
    _check_live(rules, graph, manifest, {c.requested for c in calls})
    session = ReplaySession(calls, rules, from_step)
    payload = input if input is not None else _recorded_input(manifest)
    if payload is None:
        raise RecordingError(f"run {manifest.run_id[:12]}'s input was not recorded; pass input=")
    thread_id = f"replay-{uuid.uuid4().hex[:12]}"
    instrument(graph)
    diverged = None
    state: dict[str, Any] = {}
    with replaying(session), run_context(replay_of=manifest.run_id):
        try:
            state = dict(await graph.ainvoke(payload, {"configurable": {"thread_id": thread_id}}))
        except ReplayDiverged as exc:
            diverged = str(exc)
    return ReplayResult(
        original=manifest.run_id,
        run_id=_replay_run_id(directory, manifest.run_id, thread_id),
        state=state,
        replayed_calls=len(session.used),
        live_calls=session.live_calls,
        unused_calls=len(session.unused),
        diverged=diverged,
    )


def _recorded_input(manifest: RunManifest) -> Any:
    from turnout.graphs._running import turnout_serializer

    if manifest.typed_input is None:
        return manifest.input
    kind, data = manifest.typed_input
    return turnout_serializer().loads_typed((kind, base64.b64decode(data)))


def _replay_run_id(directory: Path, original: str, thread_id: str) -> str | None:
    for manifest in recorded_runs(directory):
        if manifest.thread_id == thread_id and manifest.context.get("replay_of") == original:
            return manifest.run_id
    return None
