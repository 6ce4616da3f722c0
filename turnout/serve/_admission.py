"""The bounded queue in front of the engines: at most `max_concurrency` requests generate at
once, at most `max_queue` wait for a slot, and the rest are turned away at once with a hint
of when to come back, so a burst never piles unbounded work onto one GPU."""

from __future__ import annotations

import asyncio
import math
import time
from dataclasses import dataclass

from pydantic import BaseModel


class Overloaded(Exception):
    """Every slot is busy and the queue is full."""

    def __init__(self, retry_after_s: int) -> None:
        super().__init__(f"retry after {retry_after_s}s")
        self.retry_after_s = retry_after_s


class Load(BaseModel):
    """What the server is doing now (for `/health`)."""

    active: int
    queued: int
    max_concurrency: int
    max_queue: int
    turned_away: int


@dataclass
class Lease:
    """One admitted request's slot; released once, when its generation has ended."""

    admission: Admission
    started: float
    released: bool = False

    def release(self) -> None:
        if not self.released:
            self.released = True
            self.admission._release(time.monotonic() - self.started)


class Admission:
    """Created per app; used from the app's event loop only (no locks needed)."""

    def __init__(self, max_concurrency: int, max_queue: int) -> None:
        self.max_concurrency = max_concurrency
        self.max_queue = max_queue
        self._slots = asyncio.Semaphore(max_concurrency)
        self._active = 0
        self._queued = 0
        self._turned_away = 0
        self._mean_s: float | None = None  # moving average of how long a slot is held

    async def enter(self) -> Lease:
        """Wait for a slot (cancellable: a cancelled wait leaves the queue); Overloaded when
        the queue is already full."""
        if self._active + self._queued >= self.max_concurrency + self.max_queue:
            self._turned_away += 1
            raise Overloaded(self.retry_after_s())
        self._queued += 1
        try:
            await self._slots.acquire()
        finally:
            self._queued -= 1
        self._active += 1
        return Lease(self, time.monotonic())

    def _release(self, held_s: float) -> None:
        self._active -= 1
        self._slots.release()
        self._mean_s = held_s if self._mean_s is None else 0.8 * self._mean_s + 0.2 * held_s

    def retry_after_s(self) -> int:
        """Seconds until a place is likely free: the queue ahead, drained at the recent pace."""
        mean = self._mean_s if self._mean_s is not None else 1.0
        return max(1, math.ceil(mean * (self._queued + 1) / self.max_concurrency))

    def load(self) -> Load:
        return Load(
            active=self._active, queued=self._queued, max_concurrency=self.max_concurrency,
            max_queue=self.max_queue, turned_away=self._turned_away,
        )
