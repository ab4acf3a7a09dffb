"""A venue that sends nothing to an account once this daemon's lease on it has lapsed.

The journal refuses an intent under a stale epoch, but a call already journaled
could still be sent late: a process frozen (SIGSTOP, a suspended VM) between the
write and the call wakes up with a standby leading. So every call checks the
lease on the monotonic clock first and is refused, unsent, when the lease was
not renewed within lease_seconds - margin.
"""

from __future__ import annotations

import functools
import inspect
from collections import Counter
from typing import Any

from hedgebot.exchange.port import Fenced
from hedgebot.store.lease import Lease


class FencedPort:
    """Wrap a venue so that each of its calls goes out only under a current lease; count calls per epoch and refusals."""

    def __init__(self, port: Any, lease: Lease) -> None:
        self._port = port
        self._lease = lease
        self.sent: Counter[int] = Counter()  # calls let through, per lease epoch
        self.refused = 0
        bound = getattr(port, "bound_by_lease", None)
        if bound is not None:
            bound(lease.remaining)  # checked again as each request is signed; recvWindow cut to the lease left

    @property
    def inner(self) -> Any:
        """Return the venue behind the fence."""
        return self._port

    def _check(self, name: str) -> int:
        lease = self._lease
        epoch = lease.epoch
        if epoch is None or not lease.may_send():
            self.refused += 1
            age = lease.age()
            raise Fenced(
                f"account {lease.account!r}: this daemon's lease "
                + (f"(epoch {epoch}) was last renewed {age:.1f}s ago, over the {lease.timing.seconds - lease.timing.margin:.1f}s "
                   "it may send for" if epoch is not None and age is not None else "is not held")
                + f"; {name} was not sent"
            )
        self.sent[epoch] += 1
        return epoch

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._port, name)
        if not inspect.iscoroutinefunction(attribute):
            return attribute

        @functools.wraps(attribute)
        async def fenced(*args: Any, **kwargs: Any) -> Any:
            self._check(name)
            return await attribute(*args, **kwargs)

        return fenced
