"""Usage meters: count every model call made inside a block, across concurrent tasks.

    with usage_meter() as meter:
        await agent.run(...)
    meter.totals  # tokens local/remote, cost, calls

Meters nest and follow asyncio tasks and LangGraph branches (they live in a ContextVar),
so a graph node can report exactly what its own calls cost.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pydantic import BaseModel, ConfigDict, Field

from turnout.engines._result import Completion
from turnout.engines.tag import SOURCE_KINDS


class UsageTotals(BaseModel):
    """Tokens and cost of a set of model calls, split by where they ran, and what the egress
    guard let leave the machine."""

    model_config = ConfigDict(frozen=True)

    calls: int = 0
    local_tokens: int = 0
    remote_tokens: int = 0
    cost_usd: float = 0.0
    unpriced_calls: int = Field(0, description="Remote calls whose price litellm does not know: not in cost_usd.")
    remote_calls: int = 0
    refused_calls: int = 0
    sent_bytes: dict[str, int] = Field(default_factory=dict, description="Bytes sent to remote models, by kind.")

    @property
    def source_bytes_sent(self) -> int:
        """Source text, diffs, test and tool output, and untagged text sent to remote models."""
        return sum(v for k, v in self.sent_bytes.items() if k in SOURCE_KINDS)

    @property
    def tokens(self) -> int:
        return self.local_tokens + self.remote_tokens

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            calls=self.calls + other.calls,
            local_tokens=self.local_tokens + other.local_tokens,
            remote_tokens=self.remote_tokens + other.remote_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
            unpriced_calls=self.unpriced_calls + other.unpriced_calls,
            remote_calls=self.remote_calls + other.remote_calls,
            refused_calls=self.refused_calls + other.refused_calls,
            sent_bytes=dict(Counter(self.sent_bytes) + Counter(other.sent_bytes)),
        )

    @classmethod
    def of(cls, completion: Completion) -> UsageTotals:  # type: ignore[type-arg]
        tokens = completion.usage.total_tokens
        local = completion.locality == "local"
        sent = completion.egress.sent_bytes if completion.egress else {}
        return cls(
            calls=1,
            local_tokens=tokens if local else 0,
            remote_tokens=0 if local else tokens,
            cost_usd=completion.cost_usd or 0.0,
            unpriced_calls=int(not local and completion.cost_usd is None),
            remote_calls=0 if local and not sent else 1,
            sent_bytes=dict(sent),
        )


class UsageMeter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.totals = UsageTotals()

    def add(self, completion: Completion) -> None:  # type: ignore[type-arg]
        self.add_totals(UsageTotals.of(completion))

    def add_totals(self, totals: UsageTotals) -> None:
        with self._lock:
            self.totals = self.totals + totals


_meters: ContextVar[tuple[UsageMeter, ...]] = ContextVar("turnout_usage_meters", default=())


@contextmanager
def usage_meter() -> Iterator[UsageMeter]:
    meter = UsageMeter()
    token = _meters.set((*_meters.get(), meter))
    try:
        yield meter
    finally:
        _meters.reset(token)


def record(completion: Completion) -> None:  # type: ignore[type-arg]
    """Called by the door for every finished call."""
    for meter in _meters.get():
        meter.add(completion)


def record_refusal() -> None:
    """Called by the door for every call the egress guard refused."""
    refused = UsageTotals(refused_calls=1)
    for meter in _meters.get():
        meter.add_totals(refused)
