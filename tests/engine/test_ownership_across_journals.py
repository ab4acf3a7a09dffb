"""One writer per account across journals: a daemon on PostgreSQL (the lease is its lock) and one on its own SQLite
journal (the one being migrated from) never run the same account side by side, whichever started first."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hedgebot.commands.main import main
from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.domain.model import Wallet
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.ownership import AccountLocked
from hedgebot.exchange.factory import build_paper_venue
from tests.helpers import SYMBOL, paper_settings_dict
from tests.postgres_server import PASSWORD


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HB_OWNER_KEY", "the-api-key-of-one-account")
    monkeypatch.setenv("HB_OWNER_SECRET", "s3cret")
    monkeypatch.setenv("HB_PG_PASSWORD", PASSWORD)


def live(tmp_path: Path, where: str, pg_url: str | None = None) -> Settings:
    data = paper_settings_dict(tmp_path / where)
    data["accounts"][0].update(mode="live", credentials={"api_key": {"env": "HB_OWNER_KEY"}, "secret": {"env": "HB_OWNER_SECRET"}})
    data["accounts"][0]["paper"]["markets"][0]["feed"]["volatility"] = 0.0
    data["http"] = {"enabled": False}
    if pg_url is not None:
        data["journal"] = {**data["journal"], "url": pg_url.replace(f":{PASSWORD}@", "@"), "password": {"env": "HB_PG_PASSWORD"}}
    return Settings(**data)


async def test_a_daemon_on_postgresql_is_refused_while_one_on_its_own_journal_runs_the_same_account(
    tmp_path: Path, pg_url: str,
) -> None:
    clock = SimClock()
    old_settings = live(tmp_path, "old")
    venue = build_paper_venue(old_settings.accounts[0], old_settings.accounts[0].paper, clock, None)  # the one account
    venue.update_price(SYMBOL, clock.now(), Decimal("50000"))
    old = Daemon(old_settings, clock, allow_live=True, venue_factory=lambda _a: venue)
    await old.start()
    try:
        await clock.advance(5)
        assert (await venue.fetch_legs(SYMBOL)).short.size == Decimal("2")
        # The move: the SQLite journal is copied in while the old daemon still runs (README allows re-runs).
        assert main(["journal", "migrate", "--from", str(old_settings.journal.path), "--to", pg_url]) == 0
        new = Daemon(live(tmp_path, "new", pg_url), clock, allow_live=True, venue_factory=lambda _a: venue)
        with pytest.raises(AccountLocked, match="on its own journal: stop it"):
            await new.start()
        venue.deposit(Wallet.SPOT, "BTC", Decimal("0.5"))
        await clock.advance(10)
        assert (await venue.fetch_legs(SYMBOL)).short.size == Decimal("2.5")  # the old daemon alone hedged the deposit
        assert len({o.client_id[:6] for o in venue.orders.values()}) == 1, "orders from one daemon's prefix only"
    finally:
        await old.stop()


async def test_a_daemon_on_its_own_journal_is_refused_while_one_on_postgresql_runs_the_account(
    tmp_path: Path, pg_url: str,
) -> None:
    clock = SimClock()
    pg_settings = live(tmp_path, "new", pg_url)
    venue = build_paper_venue(pg_settings.accounts[0], pg_settings.accounts[0].paper, clock, None)
    venue.update_price(SYMBOL, clock.now(), Decimal("50000"))
    leader = Daemon(pg_settings, clock, allow_live=True, venue_factory=lambda _a: venue)
    await leader.start()
    try:
        standby = Daemon(live(tmp_path, "standby", pg_url), clock, allow_live=True, standby=True, venue_factory=lambda _a: venue)
        await standby.start()  # a standby on the same machine and journal is not refused
        await standby.stop()
        lone = Daemon(live(tmp_path, "old", None), clock, allow_live=True, venue_factory=lambda _a: venue)
        with pytest.raises(AccountLocked, match="a daemon on a shared journal"):
            await lone.start()
    finally:
        await leader.stop()
