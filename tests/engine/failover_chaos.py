"""Chaos over daemons taking turns on one account: seeded schedules of failures, and the invariants they must keep.

Three daemons with one config share a real PostgreSQL journal and one (paper) account. A
seeded schedule hits whoever leads: its journal connection cut (renewals fail: it fences
itself off), a crash (its tasks end, its lease is never released: as SIGKILL leaves it), every
database connection terminated (`pg_terminate_backend`), a database restart; between them the
account's spot holding changes. After each failure the daemons are driven on a simulated clock
until one leads again and the hedge is back in band, while the lease itself expires on the
database's own (real) clock. Checked throughout:
- no order executed twice, and every order one journaled intent;
- no order sent under an epoch after a newer one was committed (each order's client id carries
  its epoch; the database's current epoch is read as the order reaches the account);
- how often two daemons could send at once by their own (simulated) clocks: counted, not an
  invariant here, since the simulated clock stands still while a database restart blocks the loop
  and the database's real clock runs on (a real monotonic clock never stands still).
Used by the short test in `make test` and by bench/chaos_failover.py over 50 schedules.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.domain.model import Wallet
from hedgebot.engine.daemon import Daemon
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.exchange.port import OrderRequest, OrderResult
from hedgebot.store.journal import JournalUnavailable
from tests.helpers import SYMBOL, btc_market, paper_settings_dict
from tests.postgres_server import PASSWORD, PostgresServer

LEASE, MARGIN = 3.0, 1.0
FAILURES = ("cut", "crash", "terminate", "restart")
ACCOUNT = "paper"


@dataclass
class ChaosFigures:
    """What one schedule did and measured."""

    seed: int
    failures: list[str] = field(default_factory=list)
    orders: int = 0
    duplicates: int = 0
    stale_epoch_orders: int = 0
    two_writers: int = 0
    epochs: int = 0
    recoveries: list[float] = field(default_factory=list)  # real seconds from a failure to the hedge back in band


class RecordingVenue(PaperVenue):
    """The account: it notes the database's epoch as each order reaches it."""

    current_epoch: Any = None
    placed: list[tuple[str, int | None]]

    async def place_order(self, request: OrderRequest) -> OrderResult:
        self.placed.append((request.client_id, self.current_epoch()))
        return await super().place_order(request)


def settings(root: Path, name: str, pg_url: str) -> Settings:
    data = paper_settings_dict(root / name)
    data["journal"] = {
        "url": pg_url.replace(f":{PASSWORD}@", "@"), "password": {"env": "HB_PG_PASSWORD"},
        "lease_seconds": LEASE, "lease_margin_seconds": MARGIN,
    }
    data["http"] = {"enabled": False}
    data["alerts"] = {"startup_summary": False}
    return Settings(**data)


def epoch_of(client_id: str) -> int:
    return int(client_id[7:11], 36)


def crash(daemon: Daemon) -> None:
    """End a daemon as SIGKILL would: its tasks stop, its lease is not released, nothing is saved."""
    daemon._stopping = True
    for task in [*daemon._tasks, *daemon._keeper_tasks]:
        task.cancel()
    for runtime in daemon.accounts:
        runtime.keepers = []
        runtime.lock.release()
    if daemon.journal is not None:
        daemon.journal.close()
        daemon.journal = None


async def run_schedule(seed: int, pg_url: str, server: PostgresServer, root: Path, events: int = 4,
                       patience: float = 40.0) -> ChaosFigures:
    """Run one seeded schedule of `events` failures; return its figures (the invariants are counted, not asserted)."""
    os.environ["HB_PG_PASSWORD"] = PASSWORD
    rng = random.Random(seed)
    figures = ChaosFigures(seed)
    clock = SimClock()
    venue = RecordingVenue(clock, [PaperMarket(btc_market())], spot={"BTC": Decimal("2"), "USDT": Decimal("10000")},
                           futures={"USDT": Decimal("1000000")})
    venue.placed = []
    venue.update_price(SYMBOL, clock.now(), Decimal("50000"))
    watcher = psycopg.connect(pg_url, autocommit=True)

    def db_epoch() -> int | None:
        nonlocal watcher
        for _ in range(2):
            try:
                row = watcher.execute("SELECT epoch FROM leases WHERE account = %s", (ACCOUNT,)).fetchone()
                return None if row is None else int(row[0])
            except psycopg.OperationalError:
                watcher = psycopg.connect(pg_url, autocommit=True)  # cut or restarted with the others
        return None

    venue.current_epoch = db_epoch
    names = iter(f"d{n}" for n in range(100))
    alive: list[Daemon] = []

    async def spawn(standby: bool) -> None:
        daemon = Daemon(settings(root / str(seed), next(names), pg_url), clock, standby=standby, venue_factory=lambda _a: venue)
        await daemon.start()
        alive.append(daemon)

    def leaders() -> list[Daemon]:
        return [d for d in alive if d.keepers]

    def may_send() -> int:
        return sum(1 for d in alive for r in d.accounts if r.lease is not None and r.keepers and r.lease.may_send())

    async def settle(since: float) -> None:
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline:
            await clock.advance(0.5)
            if may_send() > 1:
                figures.two_writers += 1
            legs = await venue.fetch_legs(SYMBOL)
            held = venue.spot.get("BTC", Decimal(0))
            if len(leaders()) == 1 and abs(legs.short.size - held) <= held * Decimal("0.02"):
                figures.recoveries.append(time.monotonic() - since)
                return
            await asyncio.sleep(0.01)  # the database's clock decides expiry: let real time pass too
        raise AssertionError(f"seed {seed}: no leader brought the hedge back in band within {patience}s of real time")

    try:
        await spawn(False)
        for _ in range(2):
            await spawn(True)
        await settle(time.monotonic())
        for _ in range(events):
            failure = rng.choice(FAILURES)
            figures.failures.append(failure)
            leader = leaders()[0]
            started = time.monotonic()
            if failure == "cut":
                def refuse(*_args: object) -> None:
                    raise JournalUnavailable("journal: the database does not answer (cut by the chaos schedule)")
                journal = leader.journal
                assert journal is not None
                journal.take_lease = refuse  # type: ignore[method-assign]
                while leader.keepers:
                    await clock.advance(0.5)
                del journal.take_lease  # the network heals: it stands by from now on
            elif failure == "crash":
                crash(leader)
                alive.remove(leader)
                await spawn(True)  # the orchestrator starts a replacement, which stands by
            elif failure == "terminate":
                with psycopg.connect(pg_url, autocommit=True) as conn:
                    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                 "AND datname = current_database()")
            else:
                server.restart()
            if rng.random() < 0.7:
                venue.deposit(Wallet.SPOT, "BTC", Decimal(rng.choice(["0.1", "0.25", "0.5"])))
                for daemon in leaders():
                    for keeper in daemon.keepers:
                        keeper.notify_balance()
            await settle(started)
    finally:
        for daemon in alive:
            try:
                await daemon.stop()
            except Exception:  # noqa: BLE001 - a daemon that cannot stop cleanly must not hide the figures
                pass
        watcher.close()
    figures.orders = len(venue.placed)
    figures.duplicates = sum(1 for cid in venue.orders if "#" in cid) + (len(venue.placed) - len({c for c, _ in venue.placed}))
    figures.stale_epoch_orders = sum(1 for cid, now in venue.placed if now is not None and epoch_of(cid) != now)
    figures.epochs = db_epoch() or 0
    return figures
