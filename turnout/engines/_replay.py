"""Replay sessions: while one is active, `complete()` answers model calls from a recording.

A call is matched to a recorded one by its request (who was asked, with which messages, for
which schema), so parallel branches may finish in any order. Calls the session marks live
(a node or role named with `--live`, or every call from `--from STEP` on) go to a model as
usual; a call that is neither live nor recorded stops the replay with ReplayDiverged, which
names the call and shows how it differs from the closest recorded one.

Replay lives in two files: this one (how the door answers a call under a replay: the
session, its live rules, `replay_plan` and `recorded_answer`; the door then runs the
recorded text through the scripted engine on its one path) and `turnout/graphs/replay.py`
(the runner: the recorded run found, its graph checked and run again under a session).
"""

from __future__ import annotations

import json

import difflib
import threading
from collections import defaultdict, deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from turnout.errors import ReplayDiverged
from turnout.engines._recording import graph_position
from turnout.telemetry._calls import CallRecord, request_key


@dataclass(frozen=True)
class LiveRule:
    """`--live NAME[=MODEL]`: calls from node NAME, or made through role NAME, go live."""

    name: str
    model: str | None = None

    @classmethod
    def parse(cls, text: str) -> LiveRule:
        name, _, model = text.partition("=")
        return cls(name.strip(), model.strip() or None)


@dataclass
class ReplaySession:
    calls: list[CallRecord]
    live: Sequence[LiveRule] = ()
    from_step: int | None = None
    used: list[CallRecord] = field(default_factory=list)
    live_calls: int = 0

    def __post_init__(self) -> None:
        self._pending: dict[str, deque[CallRecord]] = defaultdict(deque)
        for call in self.calls:
            self._pending[call.key].append(call)
        self._lock = threading.Lock()

    def live_rule(self, node: str | None, step: int | None, requested: str) -> LiveRule | None:
        """The rule that makes this call live (None: answer it from the recording)."""
        for rule in self.live:
            if rule.name in (node, requested) or requested == tool_requested(rule.name):
                return rule
        if self.from_step is not None and step is not None and step >= self.from_step:
            return LiveRule(node or requested)
        return None

    def take(self, key: str, *, node: str | None, step: int | None, requested: str, messages: list[dict[str, Any]]) -> CallRecord:
        with self._lock:
            queue = self._pending.get(key)
            if queue:
                call = queue.popleft()
                self.used.append(call)
                return call
        raise ReplayDiverged(self._divergence(node, step, requested, messages), node=node, step=step, requested=requested)

    @property
    def unused(self) -> list[CallRecord]:
        return [c for queue in self._pending.values() for c in queue]

    def _divergence(self, node: str | None, step: int | None, requested: str, messages: list[dict[str, Any]]) -> str:
        where = f"node {node!r}, step {step}" if node else "outside any graph node"
        head = (
            f"replay diverged at call {len(self.used) + self.live_calls + 1} ({where}, {requested}): the "
            "recording holds no such request (the code, the prompts or an earlier live answer changed it)"
        )
        candidates = [c for c in self.unused if c.requested == requested and (node is None or c.node == node)]
        candidates = candidates or [c for c in self.unused if c.requested == requested]
        if not candidates:
            return f"{head}; no unused recorded call was made through {requested}"
        closest = candidates[0]
        diff = difflib.unified_diff(
            _lines(closest.messages), _lines(messages), "recorded", "this run", n=1, lineterm=""
        )
        shown = list(diff)[:40]
        return f"{head}. Against the next recorded {requested} call (node {closest.node!r}, step {closest.step}):\n" + "\n".join(shown)


def _lines(messages: list[dict[str, Any]]) -> list[str]:
    return [f"{m.get('role')}: {line}" for m in messages for line in str(m.get("content")).splitlines()]


_session: ContextVar[ReplaySession | None] = ContextVar("turnout_replay", default=None)


def current_replay() -> ReplaySession | None:
    return _session.get()


@contextmanager
def replaying(session: ReplaySession) -> Iterator[ReplaySession]:
    """Answer model calls made inside the block (and in tasks it starts) from `session`."""
    token = _session.set(session)
    try:
        yield session
    finally:
        _session.reset(token)


def replay_plan(role_or_model: str) -> tuple[ReplaySession | None, str | None]:
    """How the door answers a call: under a replay, the session and what a live call goes
    to (None: answered from the recording); outside one, (None, None), a normal call."""
    session = current_replay()
    if session is None:
        return None, None
    node, step = graph_position()
    rule = session.live_rule(node, step, role_or_model)
    if rule is None:
        return session, None
    session.live_calls += 1
    return session, rule.model or role_or_model


def tool_requested(name: str) -> str:
    """What a tool call is recorded as having asked (`--live NAME` names the tool itself)."""
    return f"tool:{name}"


def tool_call_messages(arguments: dict[str, Any]) -> list[dict[str, Any]]:
    """A tool call's arguments as the one message replay matches it by."""
    return [{"role": "tool_call", "content": json.dumps(arguments, sort_keys=True)}]


def recorded_answer(session: ReplaySession, requested: str, messages: list[dict[str, Any]], schema: str | None) -> CallRecord:
    """The recorded call a replayed call matches (by role or model, messages and schema, at
    its node and step); ReplayDiverged when there is none."""
    node, step = graph_position()
    key = request_key(requested, messages, schema)
    return session.take(key, node=node, step=step, requested=requested, messages=messages)
