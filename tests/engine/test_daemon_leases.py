"""The daemon on the PostgreSQL journal: it leads an account under a lease, fences itself off, and a standby takes over."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import psycopg
import pytest
from prometheus_client import generate_latest

from hedgebot.commands.main import main
from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.domain.model import Wallet
from hedgebot.engine.daemon import Daemon
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.ops.metrics import build_registry
from hedgebot.store.journal import JournalUnavailable
from tests.helpers import D, SYMBOL, btc_market, paper_settings_dict, write_toml
from tests.postgres_server import PASSWORD

LEASE = 15.0
MARGIN = 3.0


def shared_settings(tmp_path: Path, name: str, pg_url: str, monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Return a paper config on the PostgreSQL journal, with its own state directory (two daemons, one machine)."""
    monkeypatch.setenv("HB_PG_PASSWORD", PASSWORD)
    data = paper_settings_dict(tmp_path / name)
    data["journal"] = {
        "url": pg_url.replace(f":{PASSWORD}@", "@"), "password": {"env": "HB_PG_PASSWORD"},
        "lease_seconds": LEASE, "lease_margin_seconds": MARGIN,
    }
    data["http"] = {"enabled": False}
    return Settings(**data)


def exchange(clock: SimClock) -> PaperVenue:
    """Return the one account both daemons trade on: 2 BTC held, no short yet."""
    venue = PaperVenue(clock, [PaperMarket(btc_market())], spot={"BTC": D("2"), "USDT": D("10000")}, futures={"USDT": D("100000")})
    venue.update_price(SYMBOL, clock.now(), D("50000"))
    return venue


def expire_lease(pg_url: str, account: str) -> None:
    """Let the account's lease run out now by the database's clock (as it does lease_seconds after the last renewal)."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("UPDATE leases SET expires_at = clock_timestamp() WHERE account = %s", (account,))


def cut_renewals(leader: Daemon, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make every lease renewal of `leader` fail from now on, as a cut database connection does."""
    assert leader.journal is not None

    def cut(*_args: object) -> None:
        raise JournalUnavailable("journal: the database does not answer (cut by the test)")

    monkeypatch.setattr(leader.journal, "take_lease", cut)


def kinds(daemon: Daemon, kind: str) -> list[dict[str, Any]]:
    assert daemon.journal is not None
    return [e.detail for e in daemon.journal.events(account="paper", kind=kind)]


async def test_the_daemon_leads_its_account_under_a_lease_and_writes_every_intent_under_its_epoch(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SimClock()
    venue = exchange(clock)
    daemon = Daemon(shared_settings(tmp_path, "a", pg_url, monkeypatch), clock, venue_factory=lambda _a: venue)
    await daemon.start()
    try:
        await clock.advance(30)  # two renewals of the lease at least
        assert (await venue.fetch_legs(SYMBOL)).short.size == D("2")
        assert [e["epoch"] for e in kinds(daemon, "lease_taken")] == [1]
        assert daemon.lease_status()["paper"]["leading"] is True and daemon.lease_status()["paper"]["epoch"] == 1
        with psycopg.connect(pg_url) as conn:
            epochs = {row[0] for row in conn.execute("SELECT lease_epoch FROM intents")}
        assert epochs == {1}
        assert set(venue.orders) and all(cid[7:11] == "0001" for cid in venue.orders)  # the epoch in every client id
    finally:
        await daemon.stop()


async def test_status_metrics_and_readiness_show_whether_this_daemon_leads_its_epoch_and_the_lease_age(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    clock = SimClock()
    venue = exchange(clock)
    settings = shared_settings(tmp_path, "a", pg_url, monkeypatch)
    daemon = Daemon(settings, clock, venue_factory=lambda _a: venue)
    await daemon.start()
    try:
        await clock.advance(7)  # renewed at 5s: 2s old
        daemon.write_status()
        lease = json.loads((tmp_path / "a" / "state" / "status.json").read_text())["leases"]["paper"]
        assert lease["leading"] is True and lease["epoch"] == 1 and lease["lease_age_seconds"] == pytest.approx(2, abs=0.01)
        metrics = generate_latest(build_registry(daemon.ops)).decode()
        assert 'hedgebot_lease_leading{account="paper"} 1.0' in metrics and 'hedgebot_lease_epoch{account="paper"} 1.0' in metrics
        assert 'hedgebot_lease_age_seconds{account="paper"}' in metrics
        assert daemon.ops.status_json()["leases"]["paper"]["epoch"] == 1
        config = write_toml(tmp_path / "a.toml", settings.model_dump(mode="json", exclude_none=True))
        assert main(["status", "--config", str(config)]) == 0
        assert "lease paper: LEADS under epoch 1, renewed 2.0s ago" in capsys.readouterr().out
    finally:
        await daemon.stop()


async def test_a_second_daemon_on_the_same_journal_stands_by_and_sends_nothing(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SimClock()
    venue = exchange(clock)
    leader = Daemon(shared_settings(tmp_path, "a", pg_url, monkeypatch), clock, venue_factory=lambda _a: venue)
    standby = Daemon(shared_settings(tmp_path, "b", pg_url, monkeypatch), clock, venue_factory=lambda _a: venue)
    await leader.start()
    await standby.start()
    try:
        await clock.advance(30)
        fence = standby.accounts[0].fence
        assert fence is not None and sum(fence.sent.values()) == 0 and fence.refused == 0 and standby.keepers == []
        assert standby.lease_status()["paper"]["leading"] is False
        ready, reasons = standby.ops.ready()
        assert not ready and any("standby" in r for r in reasons) and standby.ops.healthy()
    finally:
        await standby.stop()
        await leader.stop()


async def test_a_leader_that_cannot_renew_fences_itself_off_and_the_standby_takes_over_with_the_next_epoch(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SimClock()
    venue = exchange(clock)
    leader = Daemon(shared_settings(tmp_path, "a", pg_url, monkeypatch), clock, venue_factory=lambda _a: venue)
    standby = Daemon(shared_settings(tmp_path, "b", pg_url, monkeypatch), clock, standby=True, venue_factory=lambda _a: venue)
    await leader.start()
    await standby.start()
    try:
        await clock.advance(10)
        assert (await venue.fetch_legs(SYMBOL)).short.size == D("2")
        cut_renewals(leader, monkeypatch)  # the leader's renewals fail from now on
        await clock.advance(LEASE - MARGIN + 1)
        assert leader.keepers == [] and [e["epoch"] for e in kinds(standby, "lease_lost")] == [1]
        before = set(venue.orders)
        venue.deposit(Wallet.SPOT, "BTC", D("0.5"))  # a change only a leader may answer
        await clock.advance(5)
        assert set(venue.orders) == before  # nobody leads: the database still shows the old lease
        expire_lease(pg_url, "paper")
        await clock.advance(10)
        taken = kinds(standby, "lease_taken")
        assert [e["epoch"] for e in taken] == [1, 2] and taken[-1]["holder"] == standby.holder
        steps = [e["step"] for e in kinds(standby, "reconcile_step") if e["epoch"] == 2]
        assert steps == ["open_intents_settled", "legs_wallets_funds_compared"]
        assert (await venue.fetch_legs(SYMBOL)).short.size == D("2.5")
        new = set(venue.orders) - before
        assert new and all(cid[7:11] == "0002" for cid in new)
        assert standby.lease_status()["paper"] | {"lease_age_seconds": None} == standby.lease_status()["paper"] | {
            "leading": True, "epoch": 2, "lease_age_seconds": None,
        }
    finally:
        await standby.stop()
        await leader.stop()


def two_accounts(settings: Settings, max_accounts: int) -> Settings:
    """Return `settings` with a second paper account beside the first, and at most `max_accounts` led at once."""
    data = settings.model_dump(mode="json", exclude_none=True)
    data["accounts"].append({**data["accounts"][0], "name": "paper2"})
    data["daemon"]["max_accounts"] = max_accounts
    return Settings(**data)


async def test_a_daemon_leads_at_most_max_accounts_and_leaves_the_rest_to_another(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SimClock()
    venues = {"paper": exchange(clock), "paper2": exchange(clock)}
    first = Daemon(two_accounts(shared_settings(tmp_path, "a", pg_url, monkeypatch), 1), clock, venue_factory=lambda a: venues[a.name])
    second = Daemon(two_accounts(shared_settings(tmp_path, "b", pg_url, monkeypatch), 2), clock, venue_factory=lambda a: venues[a.name])
    await first.start()
    await second.start()
    try:
        await clock.advance(10)
        led = {d: sorted(n for n, lease in d.lease_status().items() if lease["leading"]) for d in (first, second)}
        assert led[first] == ["paper"] and led[second] == ["paper2"]
        for venue in venues.values():
            assert (await venue.fetch_legs(SYMBOL)).short.size == D("2")
        await first.stop()  # a clean stop releases its lease: the other daemon has room and takes it over
        await clock.advance(10)
        assert sorted(n for n, lease in second.lease_status().items() if lease["leading"]) == ["paper", "paper2"]
    finally:
        await second.stop()
        await first.stop()


async def test_a_pause_asked_on_the_command_line_reaches_the_daemon_leading_the_account_through_postgresql(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    clock = SimClock()
    venue = exchange(clock)
    settings = shared_settings(tmp_path, "a", pg_url, monkeypatch)
    daemon = Daemon(settings, clock, venue_factory=lambda _a: venue)
    await daemon.start()
    try:
        await clock.advance(5)
        config = write_toml(tmp_path / "other-machine.toml", {
            **settings.model_dump(mode="json", exclude_none=True), "daemon": {"state_dir": str(tmp_path / "elsewhere")},
        })
        code = main(["pause", "--config", str(config), "--hedge", "btc-core", "--reason", "maintenance", "--wait", "0"])
        assert code != 0 and "stays queued" in capsys.readouterr().out  # not taken within 0 s: queued in PostgreSQL
        await clock.advance(5)
        assert daemon.keepers[0].trading_state.value == "halted"
    finally:
        await daemon.stop()


async def test_history_and_report_read_the_postgresql_journal_the_daemon_wrote(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:
    clock = SimClock()
    venue = exchange(clock)
    settings = shared_settings(tmp_path, "a", pg_url, monkeypatch)
    daemon = Daemon(settings, clock, venue_factory=lambda _a: venue)
    await daemon.start()
    await clock.advance(5)
    await daemon.stop()
    fills = set(venue.orders)
    config = write_toml(tmp_path / "a.toml", settings.model_dump(mode="json", exclude_none=True))
    capsys.readouterr()
    assert main(["history", "--config", str(config), "--hedge", "btc-core", "--json"]) == 0
    history = capsys.readouterr().out
    assert fills and all(cid in history for cid in fills)
    assert main(["report", "--config", str(config), "--csv"]) == 0
    report = capsys.readouterr().out
    assert all(cid in report for cid in fills)  # every fill the daemon journaled in PostgreSQL, for the accounts


class PacedVenue(PaperVenue):
    """The shared paper account, as seen through a venue whose pacing has not regained its burst for `cold` seconds."""

    def __init__(self, inner: PaperVenue, cold: float) -> None:
        self.__dict__ = inner.__dict__  # the same account, the same book
        self.cold = cold

    def warm_in(self) -> float:
        return self.cold


async def test_a_standby_still_regaining_its_pacing_lets_a_warm_one_take_the_lapsed_lease(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SimClock()
    venue = exchange(clock)
    leader = Daemon(shared_settings(tmp_path, "a", pg_url, monkeypatch), clock, venue_factory=lambda _a: venue)
    cold = Daemon(shared_settings(tmp_path, "b", pg_url, monkeypatch), clock, standby=True,
                  venue_factory=lambda _a: PacedVenue(venue, cold=4.0))  # first in line: it watches the lease first
    warm = Daemon(shared_settings(tmp_path, "c", pg_url, monkeypatch), clock, standby=True, venue_factory=lambda _a: venue)
    await leader.start()
    await cold.start()
    await warm.start()
    try:
        await clock.advance(0.5)
        cut_renewals(leader, monkeypatch)
        await clock.advance(LEASE - MARGIN)  # the leader fences itself off; the standbys have stood by 12.5 s
        venue.deposit(Wallet.SPOT, "BTC", D("0.5"))
        expire_lease(pg_url, "paper")
        await clock.advance(2)  # within the cold one's first lease period
        taken = kinds(warm, "lease_taken")
        assert [e["epoch"] for e in taken] == [1, 2] and taken[-1]["holder"] == warm.holder, taken
        assert (await venue.fetch_legs(SYMBOL)).short.size == D("2.5")
    finally:
        await warm.stop()
        await cold.stop()
        await leader.stop()


async def test_a_lone_standby_still_regaining_its_pacing_takes_the_lapsed_lease_within_one_lease_period(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SimClock()
    venue = exchange(clock)
    leader = Daemon(shared_settings(tmp_path, "a", pg_url, monkeypatch), clock, venue_factory=lambda _a: venue)
    cold = Daemon(shared_settings(tmp_path, "b", pg_url, monkeypatch), clock, standby=True,
                  venue_factory=lambda _a: PacedVenue(venue, cold=1e9))  # never warm
    await leader.start()
    await cold.start()
    try:
        cut_renewals(leader, monkeypatch)
        await clock.advance(1)
        expire_lease(pg_url, "paper")
        await clock.advance(LEASE + 2)  # alone, it waits at most one lease period from when it began standing by
        assert [e["epoch"] for e in kinds(cold, "lease_taken")] == [1, 2]
        assert kinds(cold, "lease_taken")[-1]["holder"] == cold.holder
    finally:
        await cold.stop()
        await leader.stop()


async def test_a_daemon_restarted_as_the_lease_lapses_lets_a_warm_standby_take_it_first(
    tmp_path: Path, pg_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    clock = SimClock()
    venue = exchange(clock)
    leader = Daemon(shared_settings(tmp_path, "a", pg_url, monkeypatch), clock, venue_factory=lambda _a: venue)
    warm = Daemon(shared_settings(tmp_path, "b", pg_url, monkeypatch), clock, standby=True, venue_factory=lambda _a: venue)
    await leader.start()
    await warm.start()
    restarted = Daemon(shared_settings(tmp_path, "c", pg_url, monkeypatch), clock, venue_factory=lambda _a: PacedVenue(venue, cold=4.0))
    try:
        await clock.advance(0.5)
        cut_renewals(leader, monkeypatch)
        await clock.advance(LEASE - MARGIN)
        expire_lease(pg_url, "paper")
        await restarted.start()  # not a standby: before, it took the lapsed lease at once, cold
        await clock.advance(2)
        taken = kinds(warm, "lease_taken")
        assert [e["epoch"] for e in taken] == [1, 2] and taken[-1]["holder"] == warm.holder, taken
    finally:
        await restarted.stop()
        await warm.stop()
        await leader.stop()
