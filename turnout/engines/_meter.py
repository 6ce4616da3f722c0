"""Usage meters: count every model call made inside a block, across concurrent tasks.

    with usage_meter() as meter:
        await agent.run(...)
    meter.totals  # tokens local/remote, cost, calls

Meters nest and follow asyncio tasks and LangGraph branches (they live in a ContextVar),
so a graph node can report exactly what its own calls cost.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

from pydantic import BaseModel, ConfigDict

from turnout.engines._result import Completion


class UsageTotals(BaseModel):
    """Tokens and cost of a set of model calls, split by where they ran."""

    model_config = ConfigDict(frozen=True)

    calls: int = 0
    local_tokens: int = 0
    remote_tokens: int = 0
    cost_usd: float = 0.0

    @property
    def tokens(self) -> int:
        return self.local_tokens + self.remote_tokens

    def __add__(self, other: UsageTotals) -> UsageTotals:
        return UsageTotals(
            calls=self.calls + other.calls,
            local_tokens=self.local_tokens + other.local_tokens,
            remote_tokens=self.remote_tokens + other.remote_tokens,
            cost_usd=self.cost_usd + other.cost_usd,
        )

    @classmethod
    def of(cls, completion: Completion) -> UsageTotals:  # type: ignore[type-arg]
        tokens = completion.usage.total_tokens
        local = completion.locality == "local"
        return cls(
            calls=1,
            local_tokens=tokens if local else 0,
            remote_tokens=0 if local else tokens,
            cost_usd=completion.cost_usd or 0.0,
        )


class UsageMeter:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.totals = UsageTotals()

    def add(self, completion: Completion) -> None:  # type: ignore[type-arg]
        with self._lock:
            self.totals = self.totals + UsageTotals.of(completion)


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
