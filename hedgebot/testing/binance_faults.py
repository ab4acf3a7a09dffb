"""Faults the Binance emulator injects into its REST answers, for tests.

It owns what a fault is (`Fault`, `FAULT_KINDS`), which queued fault a request takes, the refusals the
kinds that answer at once give (with Binance's codes and messages), holding or dropping a connection,
and the share of a market order a `partial_fill` leaves. It may NOT touch the book; the REST side
(`binance_rest`) takes faults and applies them, and the exchange only hears the share it may fill.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from decimal import Decimal

from aiohttp import web

from hedgebot.testing.binance_answers import BinanceError, no_such_order

FAULT = web.RequestKey("fault", object)  # the fault taken for a request, for the signed handler to see


@dataclass
class Fault:
    """One injected fault: `kind` on the next `count` requests matching method and path prefix."""

    kind: str  # one of FAULT_KINDS
    path: str = "/"
    method: str = ""
    count: int = 1
    delay: float = 2.0  # seconds held before answering, for the timeout kinds
    retry_after: int = 1
    fill: str = "1"  # partial_fill: the fraction of a market order the book can fill (rounded down to the step)


FAULT_KINDS = {
    "timeout_before", "timeout_after", "drop_before", "drop_after", "rate_limit", "server_error", "timestamp",
    "order_unseen",  # answer -2013 as a lagging read replica would, whatever the book holds
    # Answer 503 (`retry_after` 0) or -1007 (`retry_after` 1) at once, and carry the request out
    # `delay` seconds later: Binance documents that the execution status is then unknown.
    "execute_later",
    "system_busy",  # -1008: Binance's system-level throttle (reduce-only and close-position orders exempt)
    "price_protection",  # -4131: the best counterparty price is beyond the PERCENT_PRICE protection
    "disconnected",  # -1001 with HTTP 503: Binance's internal error, "unable to process your request"
    "partial_fill",  # a MARKET order runs out of liquidity: `fill` of it executes, the rest EXPIRED
}

# The kinds answered at once with a refusal, and the refusal (rate_limit and server_error answer with headers or no body).
_REFUSALS = {
    "timestamp": (-1021, "Timestamp for this request is outside of the recvWindow.", 400),
    "system_busy": (-1008, "Request throttled by system-level protection. Reduce-only/close-position orders are exempt. Please try again.", 503),
    "disconnected": (-1001, "Internal error; unable to process your request. Please try again.", 503),
    "price_protection": (-4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit.", 400),
}


def take_fault(faults: list[Fault], request: web.Request) -> Fault | None:
    """Return the first queued fault that matches the request's method and path (never a control's), counting it down."""
    if request.path.startswith("/_emulator/"):
        return None
    for fault in faults:
        if request.path.startswith(fault.path) and (not fault.method or fault.method == request.method):
            fault.count -= 1
            if fault.count <= 0:
                faults.remove(fault)
            return fault
    return None


def refusal_of(fault: Fault) -> BinanceError | None:
    """Return the refusal a fault answers at once in place of the request (None: the kind lets the request run)."""
    if fault.kind == "order_unseen":
        return no_such_order()
    if fault.kind in _REFUSALS:
        return BinanceError(*_REFUSALS[fault.kind])
    return None


async def hold_or_drop(request: web.Request, fault: Fault) -> None:
    """Close the connection with no answer (drop kinds), or hold the answer longer than the client waits."""
    if fault.kind.startswith("drop"):
        if request.transport is not None:
            request.transport.close()
        raise asyncio.CancelledError  # the client sees the connection close with no answer
    await asyncio.sleep(fault.delay)  # longer than the client waits: it gives up


def fill_of(request: web.Request) -> Decimal | None:
    """Return the share of a market order the book can fill under a partial_fill fault (None: no such fault)."""
    fault = request.get(FAULT)
    if not isinstance(fault, Fault) or fault.kind != "partial_fill":
        return None
    return Decimal(fault.fill)
