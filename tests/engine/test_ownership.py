"""Account identity and the machine-wide lock on it: one writer per account, whatever its paths; another writer seen at start."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.keeper import StartupRefused
from hedgebot.engine.ownership import AccountLocked, account_identity, lock_directory
from hedgebot.domain.model import MarginMode, OrderSide, PositionSide
from hedgebot.exchange.port import OrderRequest
from tests.helpers import SYMBOL, paper_settings_dict


def live_dict(tmp_path: Path, where: str, key_env: str = "HB_OWNER_KEY") -> dict:
    data = paper_settings_dict(tmp_path / where)
    data["accounts"][0].update(mode="live", credentials={"api_key": {"env": key_env}, "secret": {"env": "HB_OWNER_SECRET"}})
    return data


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HB_OWNER_KEY", "the-api-key-of-one-account")
    monkeypatch.setenv("HB_OWNER_OTHER", "the-api-key-of-another-account")
    monkeypatch.setenv("HB_OWNER_SECRET", "s3cret")


def test_a_live_identity_is_the_exchange_and_a_key_fingerprint_never_the_key(tmp_path: Path) -> None:
    first = account_identity(Settings(**live_dict(tmp_path, "a")).accounts[0], tmp_path / "a")
    moved = account_identity(Settings(**live_dict(tmp_path, "b")).accounts[0], tmp_path / "b")
    other = account_identity(Settings(**live_dict(tmp_path, "a", "HB_OWNER_OTHER")).accounts[0], tmp_path / "a")
    assert first == moved  # paths do not matter
    assert first != other
    assert "binanceusdm" in first.key
    assert "the-api-key" not in first.key + first.label


def test_a_paper_identity_is_the_account_name_and_its_state_file(tmp_path: Path) -> None:
    account = Settings(**paper_settings_dict(tmp_path)).accounts[0]
    same = account_identity(account, tmp_path / "state")
    assert same == account_identity(account, tmp_path / "x" / ".." / "state")
    assert same != account_identity(account, tmp_path / "elsewhere")  # another state file is another paper account


def test_the_lock_directory_is_configured_else_the_environment(tmp_path: Path) -> None:
    data = paper_settings_dict(tmp_path)
    assert lock_directory(Settings(**data), {"HEDGEBOT_LOCK_DIR": "/x/locks"}) == Path("/x/locks")
    data["daemon"]["lock_dir"] = str(tmp_path / "locks")
    assert lock_directory(Settings(**data), {"HEDGEBOT_LOCK_DIR": "/x/locks"}) == tmp_path / "locks"


async def test_a_second_daemon_on_one_live_account_with_another_state_dir_and_journal_is_refused_with_the_holders_pid(
    tmp_path: Path,
) -> None:
    import os

    clock = SimClock()
    first = Daemon(Settings(**live_dict(tmp_path, "systemd")), clock, allow_live=True, venue_factory=_paper_venue(clock))
    await first.start()
    try:
        second = Daemon(Settings(**live_dict(tmp_path, "shell")), clock, allow_live=True, venue_factory=_paper_venue(clock))
        with pytest.raises(AccountLocked, match=rf"already run by a daemon \(pid {os.getpid()}, state_dir .*systemd"):
            await second.start()
        assert not (tmp_path / "shell" / "state" / "journal.sqlite").exists()  # refused before anything was opened
        taken = first.journal.events(kind="account_lock_taken")  # type: ignore[union-attr]
        assert taken and taken[0].detail["pid"] == os.getpid() and "the-api-key" not in str(taken[0].detail)
    finally:
        await first.stop()
    again = Daemon(Settings(**live_dict(tmp_path, "shell")), clock, allow_live=True, venue_factory=_paper_venue(clock))
    await again.start()  # the account is free once the first daemon stopped
    await again.stop()


async def test_two_live_accounts_with_different_keys_run_side_by_side(tmp_path: Path) -> None:
    clock = SimClock()
    first = Daemon(Settings(**live_dict(tmp_path, "a")), clock, allow_live=True, venue_factory=_paper_venue(clock))
    second = Daemon(Settings(**live_dict(tmp_path, "b", "HB_OWNER_OTHER")), clock, allow_live=True, venue_factory=_paper_venue(clock))
    await first.start()
    try:
        await second.start()
        await second.stop()
    finally:
        await first.stop()


async def test_a_live_account_whose_key_cannot_be_read_is_refused_naming_the_field(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("HB_OWNER_KEY")
    daemon = Daemon(Settings(**live_dict(tmp_path, "a")), SimClock(), allow_live=True)
    with pytest.raises(StartupRefused, match="credentials.api_key: environment variable HB_OWNER_KEY is not set"):
        await daemon.start()


async def test_a_live_account_whose_short_differs_with_hedgebot_orders_this_journal_does_not_know_is_refused_at_start(
    tmp_path: Path,
) -> None:
    clock = SimClock()
    venue = _paper_venue(clock)(Settings(**live_dict(tmp_path, "a")).accounts[0])
    venue.update_price(SYMBOL, clock.now(), Decimal("50000"))
    # Another daemon, with its own journal (elsewhere, on another machine), shorted this account.
    await venue.place_order(OrderRequest("hbq7x2k0001abcdefg1", SYMBOL, OrderSide.SELL, Decimal("0.5"), PositionSide.SHORT))
    daemon = Daemon(Settings(**live_dict(tmp_path, "a")), clock, allow_live=True, venue_factory=lambda account: venue)
    with pytest.raises(StartupRefused, match=r"short is 0.5 on the exchange but 0 by this journal .*hbq7x2k0001abcdefg1.*another hedgebot daemon"):
        await daemon.start()
    assert [o.client_id for o in venue.orders.values()] == ["hbq7x2k0001abcdefg1"]  # nothing traded


async def test_a_live_account_with_a_manual_trade_starts_and_reports_it(tmp_path: Path) -> None:
    clock = SimClock()
    venue = _paper_venue(clock)(Settings(**live_dict(tmp_path, "a")).accounts[0])
    venue.update_price(SYMBOL, clock.now(), Decimal("50000"))
    await venue.set_margin_mode(SYMBOL, MarginMode.ISOLATED)
    await venue.place_order(OrderRequest("web_8f3a", SYMBOL, OrderSide.SELL, Decimal("0.5"), PositionSide.SHORT))
    daemon = Daemon(Settings(**live_dict(tmp_path, "a")), clock, allow_live=True, venue_factory=lambda account: venue)
    await daemon.start()
    try:
        assert daemon.journal is not None and daemon.journal.events(kind="position_differs_from_journal")
    finally:
        await daemon.stop()


def _paper_venue(clock: SimClock):  # noqa: ANN202
    from hedgebot.exchange.factory import build_paper_venue

    def make(account):  # noqa: ANN001, ANN202
        assert account.paper is not None
        return build_paper_venue(account, account.paper, clock, None)

    return make
