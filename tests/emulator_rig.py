"""The Binance emulator on 127.0.0.1 with the real ccxt venue pointed at it, in virtual time."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.config import HedgeConfig
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from hedgebot.testing.binance_emulator import Emulator, serve
from hedgebot.testing.binance_streams import StreamHub
from hedgebot.testing.clock import SteppingClock

KEY, SECRET = "test-key", "test-secret"
BTC = "BTCUSDT"
START = 1_790_000_000.0


def free_port() -> int:
    """Return a TCP port nobody listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class EmulatorRig:
    """An emulator, its URL and a venue on it."""

    emulator: Emulator
    url: str
    clock: SteppingClock
    venue: CcxtVenue
    journal: Journal
    events: EventLog
    hub: StreamHub | None = None

    def keeper(self, hedge: HedgeConfig, port: Any = None) -> Keeper:
        """Return a keeper of `hedge` on the venue (or on `port` wrapping it)."""
        return Keeper("live", hedge, port or self.venue, self.clock, self.journal, self.events)

    def short(self) -> Decimal:
        """Return the emulator's SHORT leg of BTCUSDT."""
        return Decimal(self.emulator.position(BTC, "SHORT").amount)


def connect(url: str, clock: Any, key: str = KEY, secret: str = SECRET) -> CcxtVenue:
    """Return an unmodified ccxt venue whose REST URLs point at the emulator."""
    return CcxtVenue.connect(BinanceUsdm(), clock, api_key=key, secret=secret, api_base_url=url, timeout_ms=1000, rate_limit=False)


@asynccontextmanager
async def emulator_rig(
    *, spot: dict[str, str] | None = None, futures: str = "100000", mark: str = "50000", hedge_mode: bool = True,
    state_path: Path | None = None, streams: bool = False,
) -> AsyncIterator[EmulatorRig]:
    """Run an emulator holding `spot` and `futures` USDT, with a venue on it."""
    clock = SteppingClock(START)
    emulator = Emulator(now=clock.now, state_path=state_path)
    emulator.add_key(KEY, SECRET)
    for asset, amount in (spot or {"BTC": "1", "USDT": "10000"}).items():
        emulator.deposit("spot", asset, Decimal(amount))
    emulator.deposit("futures", "USDT", Decimal(futures))
    emulator.set_mark(BTC, Decimal(mark))
    emulator.book.dual_side = hedge_mode
    hub = StreamHub(emulator) if streams else None
    port = free_port()
    runner = await serve(emulator, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    venue = connect(url, clock)
    journal = Journal(":memory:", clock)
    try:
        yield EmulatorRig(emulator, url, clock, venue, journal, EventLog(journal, NullLogger()), hub)
    finally:
        await venue.close()
        journal.close()
        await runner.cleanup()
