"""Retries for reads and idempotent calls: exponential backoff with seeded jitter on the injected clock."""

from __future__ import annotations

import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception_type, stop_after_attempt

from hedgebot.clock import Clock
from hedgebot.exchange.port import TransientError

T = TypeVar("T")


class Backoff:
    """Exponential backoff with full jitter, drawn from a seeded generator."""

    def __init__(self, rng: random.Random, base: float = 0.25, cap: float = 8.0) -> None:
        self.rng = rng
        self.base = base
        self.cap = cap

    def delay(self, attempt: int) -> float:
        """Return the pause before retry number `attempt` (1-based)."""
        return self.rng.uniform(0, min(self.cap, self.base * 2 ** (attempt - 1)))

    def __call__(self, state: RetryCallState) -> float:
        return self.delay(state.attempt_number)


async def retry_transient(call: Callable[[], Awaitable[T]], clock: Clock, backoff: Backoff, attempts: int = 6) -> T:
    """Run `call`, retrying transient venue errors; re-raise the last one when attempts run out."""
    try:
        return await call()  # the common case, without the retry machinery's cost
    except TransientError:
        attempts -= 1
        if attempts <= 0:
            raise
        await clock.sleep(backoff.delay(1))
    retrying = AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=lambda state: backoff.delay(state.attempt_number + 1),  # the first attempt was made above
        retry=retry_if_exception_type(TransientError),
        sleep=clock.sleep,
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await call()
    raise AssertionError("unreachable")  # pragma: no cover
