"""Coins on one paper venue, the short on another: a replayed 15 % gap with the venues' prices 2 % apart liquidates nothing.

Account `cold` holds 10 BTC and prices them by its own replayed candles; account `main` keeps the short,
with 120,000 USDT of margin and a buffer of a 15 % adverse move plus 2 % divergence, and a deposit takes
30 minutes (`refill_seconds`). The hedging venue gaps 15 % up and rallies on to 40,000, its mark 2 % above
cold's price all the while; the deposit the buffer asks for arrives 30 minutes after the gap.
"""

from __future__ import annotations

import functools
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.engine.daemon import Daemon
from hedgebot.exchange.paper import PaperVenue
from tests.helpers import D, SYMBOL

START = 1_700_000_000.0
GAP_MINUTE = 20
REFILL = 1800
DIVERGENCE = Decimal("1.02")  # the hedging venue's mark sits 2 % above cold's price after the gap


def hedging_prices() -> list[Decimal]:
    """Return one close a minute: flat, a 15 % gap, a rally to 38,000 then to 40,000, then flat."""
    prices = [D(30000)] * GAP_MINUTE + [D(34500)]
    prices += [D(34500) + D(3500) * i / 15 for i in range(1, 16)]
    prices += [D(38000) + D(2000) * i / 15 for i in range(1, 16)]
    return [p.quantize(D("0.1")) for p in prices + [D(40000)] * 70]


def write_candles(path: Path, closes: list[Decimal]) -> Path:
    rows = ["unix,open,high,low,close,volume"]
    previous = closes[0]
    for minute, close in enumerate(closes):
        high, low = max(previous, close), min(previous, close)
        rows.append(f"{START + 60 * minute:.0f},{previous},{high},{low},{close},1")
        previous = close
    path.write_text("\n".join(rows) + "\n")
    return path


def two_venues(tmp_path: Path, *, divergence: str = "0.02", refill: dict[str, Any] | None = None,
               whitelist: tuple[str, ...] = ("main-usdt",), withdrawal_seconds: float = REFILL,
               state: str = "active") -> dict[str, Any]:
    """Return the config: with `refill`, no deposit comes by hand and the buffer may withdraw from cold's USDT."""
    closes = hedging_prices()
    cold_closes = [c if minute < GAP_MINUTE else (c / DIVERGENCE).quantize(D("0.1")) for minute, c in enumerate(closes)]
    feed = {"kind": "replay", "step_seconds": 60, "path": str(write_candles(tmp_path / "main.csv", closes))}
    cold_feed = {"kind": "replay", "step_seconds": 60, "path": str(write_candles(tmp_path / "cold.csv", cold_closes))}
    hedge = {
        "name": "btc", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "band": "0.02", "max_order": "20",
        "leverage": 3, "tick_seconds": 10, "state": state,
        "exposure": {"spot": False, "accounts": ["cold"]},
        "buffer": {"adverse_move": "0.15", "divergence": divergence, "refill_seconds": REFILL, **(refill or {})},
        "margin_guard": {"sources": ["futures_wallet", "spot_stablecoin"]},
    }
    deposit = {"asset": "USDT", "every_seconds": 10 * 86400, "amounts": ["300000"],
               "start_after_seconds": 60 * GAP_MINUTE + REFILL}  # the refill the alert asks for, 30 minutes on
    return {
        "daemon": {"state_dir": str(tmp_path / "state"), "status_interval_seconds": 1},
        "journal": {"path": str(tmp_path / "state" / "journal.sqlite")},
        "http": {"port": 0},
        "accounts": [
            {"name": "main", "mode": "paper", "hedges": [hedge], "paper": {
                "spot": {}, "futures": {"USDT": "120000"}, "script": [] if refill else [deposit], "deposit_address": "main-usdt",
                "markets": [{"symbol": SYMBOL, "feed": feed, "funding": {"rate": "0"}}],
            }},
            {"name": "cold", "mode": "paper", "paper": {
                "spot": {"BTC": "10", "USDT": "500000"}, "withdraw_whitelist": list(whitelist), "withdrawal_seconds": withdrawal_seconds, "markets": [{"symbol": SYMBOL, "feed": cold_feed, "funding": {"rate": "0"}}],
            }},
        ],
    }


async def test_a_replayed_15_percent_gap_with_the_venues_2_percent_apart_liquidates_nothing_and_every_under_hedge_is_reported(
    tmp_path: Path,
) -> None:
    clock = SimClock(start=START)
    daemon = Daemon(Settings(**two_venues(tmp_path)), clock)
    await daemon.start()
    try:
        [keeper] = daemon.keepers
        venue = daemon.accounts[0].setup.simulated  # type: ignore[union-attr]
        assert isinstance(venue, PaperVenue)
        await clock.advance(60 * 10)
        assert keeper.status.short == D(10)  # hedged in full before the gap
        seen_lockstep = False
        spreads = []
        for _ in range(60 * 90 // 10):  # the gap, the rally and the refill, looked at every 10 s
            await clock.advance(10)
            status = keeper.status
            assert status.distance is None or status.distance >= D("0.17"), (clock.now() - START, status.distance)
            out_of_band = abs(status.short - status.target) > D("0.02") * status.exposure  # type: ignore[operator]
            reported = "buffer_lockstep" in keeper.alerts.active and "under_hedged" in keeper.alerts.active
            lockstep_sent = any(i.detail.get("reason", "").startswith("lockstep") for i in keeper.journal.open_intents("main", "btc"))
            assert not out_of_band or reported or lockstep_sent, (clock.now() - START, status.short, status.target)
            seen_lockstep = seen_lockstep or reported
            if clock.now() > START + 60 * (GAP_MINUTE + 1) and status.holding_spread is not None:
                spreads.append(status.holding_spread)
        assert [e for e in venue.events if e.kind == "liquidation"] == []
        assert seen_lockstep  # the rally with no deposit bought the short back, and said so
        buybacks = [i for i in keeper.journal.intents() if i.kind == "order" and i.detail["reason"].startswith("lockstep")]
        assert buybacks and all(i.detail["side"] == "buy" for i in buybacks)
        # The deposit arrived 30 minutes after the gap: the short is whole again and the alert is down.
        assert keeper.status.short == D(10) and "buffer_lockstep" not in keeper.alerts.active
        # status shows cold's price against the hedging mark: 2 % below it after the gap.
        assert spreads and all(abs(s - (1 / DIVERGENCE - 1)) < D("0.0002") for s in spreads[-10:]), spreads[-3:]
        assert keeper.status.holding_price == (D(40000) / DIVERGENCE).quantize(D("0.1"))
        assert "venues_diverge" not in keeper.alerts.active  # 2 % apart is what the buffer allows for
    finally:
        await daemon.stop()


async def test_venues_further_apart_than_the_buffer_allows_for_raise_a_warning_naming_both_prices(tmp_path: Path) -> None:
    clock = SimClock(start=START)
    daemon = Daemon(Settings(**two_venues(tmp_path, divergence="0.01")), clock)
    await daemon.start()
    try:
        [keeper] = daemon.keepers
        await clock.advance(60 * 10)
        assert "venues_diverge" not in keeper.alerts.active  # the same price on both venues before the gap
        await clock.advance(60 * 55)  # both venues flat again after the rally, 2 % apart
        alert = keeper.alerts.active["venues_diverge"]
        assert alert.severity.value == "warning"
        assert "account cold prices the coins at" in alert.message and "-1.96%" in alert.message and "1.00%" in alert.message
    finally:
        await daemon.stop()


REFILL_FROM_COLD = {
    "refill_from": "cold", "allow_withdraw": True, "withdraw_address": "main-usdt", "withdraw_network": "TRX",
    "max_withdraw": "250000", "max_withdraw_per_day": "1000000",
}


async def run_the_gap(
    tmp_path: Path, *, minutes: int = 90, cold: dict[str, Any] | None = None, **config: Any,
) -> tuple[Daemon, SimClock]:
    """Start the two venues and run `minutes` of the replay (by default the gap, the rally, and time for a refill).

    `cold` names methods of the holdings account's paper venue to stand in for (`withdraw`, ...): each is called with
    the real method and the request, so a stand-in can carry a withdrawal out and then lose or garble its answer.
    """
    clock = SimClock(start=START)
    daemon = Daemon(Settings(**two_venues(tmp_path, **config)), clock)
    await daemon.start()
    venue = daemon._holdings["cold"].venue
    for name, stand_in in (cold or {}).items():
        setattr(venue, name, functools.partial(stand_in, getattr(venue, name)))
    await clock.advance(60 * minutes)
    return daemon, clock


async def test_with_allow_withdraw_the_buffer_withdraws_the_deposit_it_asks_for_and_never_again_while_one_is_on_its_way(
    tmp_path: Path,
) -> None:
    daemon, clock = await run_the_gap(tmp_path, refill=REFILL_FROM_COLD)
    try:
        [keeper] = daemon.keepers
        cold = daemon._holdings["cold"].venue
        withdrawals = [i for i in keeper.journal.intents() if i.kind == "withdrawal"]
        assert withdrawals and all(i.status.value == "done" and i.detail["address"] == "main-usdt" for i in withdrawals)
        # The first goes when the buffer first asks (the gap); another only once the one before has had its refill time.
        assert withdrawals[0].created_at < START + 60 * (GAP_MINUTE + 5)
        assert all(b.created_at - a.created_at >= REFILL for a, b in zip(withdrawals, withdrawals[1:]))
        assert [w.client_id for w in cold.withdrawals] == [i.client_id for i in withdrawals]  # under the journaled ids
        amounts = [D(i.detail["amount"]) for i in withdrawals]
        assert all(D(0) < a <= D(250000) for a in amounts) and cold.spot["USDT"] == D(500000) - sum(amounts)
        venue = daemon.accounts[0].setup.simulated  # type: ignore[union-attr]
        assert [e for e in venue.events if e.kind == "liquidation"] == []
        # What was withdrawn arrived after the refill time: the short is whole again.
        assert keeper.status.short == D(10) and "buffer_lockstep" not in keeper.alerts.active
        sent = keeper.journal.events(kind="withdrawal_sent")
        assert [e.detail["client_id"] for e in sent] == [i.client_id for i in withdrawals]
        # Each arrival is journaled once, when the exchange reports the withdrawal completed (read every 5 minutes).
        completed = keeper.journal.events(kind="withdrawal_completed")
        arrived = [w.client_id for w in cold.withdrawals if w.status == "completed"]
        assert arrived and sorted(e.detail["client_id"] for e in completed) == sorted(arrived)
    finally:
        await daemon.stop()


async def test_with_allow_withdraw_false_no_withdrawal_is_ever_attempted(tmp_path: Path) -> None:
    daemon, clock = await run_the_gap(tmp_path, refill={**REFILL_FROM_COLD, "allow_withdraw": False})
    try:
        [keeper] = daemon.keepers
        assert daemon._holdings["cold"].venue.withdrawals == []
        assert [i for i in keeper.journal.intents() if i.kind == "withdrawal"] == []
        assert "buffer_lockstep" in keeper.alerts.active  # still asking for a deposit by hand
    finally:
        await daemon.stop()


async def test_an_address_taken_off_the_exchanges_whitelist_is_never_sent_to_and_the_alert_says_so(tmp_path: Path) -> None:
    async def unlisted(real: Any, asset: str, address: str, network: Any) -> bool:
        return False  # someone took the address off the account's whitelist after the start

    daemon, clock = await run_the_gap(tmp_path, refill=REFILL_FROM_COLD, cold={"withdrawal_whitelisted": unlisted})
    try:
        [keeper] = daemon.keepers
        assert daemon._holdings["cold"].venue.withdrawals == []
        refused = keeper.alerts.active["withdrawal_refused"]
        assert refused.severity.value == "critical" and "main-usdt is not on account cold's withdrawal whitelist" in refused.message
    finally:
        await daemon.stop()


async def test_a_withdrawal_whose_answer_was_lost_is_found_by_its_id_and_never_sent_twice(tmp_path: Path) -> None:
    from hedgebot.exchange.port import RequestTimeout

    async def executed_then_lost(real: Any, request: Any) -> Any:
        await real(request)
        raise RequestTimeout("timed out reading the answer")

    daemon, clock = await run_the_gap(tmp_path, refill=REFILL_FROM_COLD, cold={"withdraw": executed_then_lost})
    try:
        cold = daemon._holdings["cold"].venue
        [keeper] = daemon.keepers
        intents = withdrawal_intents(daemon)
        # Each executed once, its answer lost, found again by its id: never sent twice.
        assert intents and [w.client_id for w in cold.withdrawals] == [i.client_id for i in intents]
        assert all(i.status.value == "done" for i in intents)
        assert keeper.status.short == D(10)
    finally:
        await daemon.stop()


def test_a_withdrawal_needs_its_terms_spelled_out_in_the_config() -> None:
    import pytest

    from tests.helpers import hedge_config

    base = {"adverse_move": "0.15", "refill_seconds": 1800}
    guard = {"sources": ["futures_wallet", "spot_stablecoin"]}
    with pytest.raises(ValueError, match="allow_withdraw = true needs withdraw_address, withdraw_network, max_withdraw"):
        hedge_config(buffer={**base, "refill_from": "cold", "allow_withdraw": True}, margin_guard=guard,
                     exposure={"accounts": ["cold"]})
    with pytest.raises(ValueError, match="buffer.refill_from 'vault' is not among exposure.accounts"):
        hedge_config(buffer={**base, **REFILL_FROM_COLD, "refill_from": "vault"}, margin_guard=guard, exposure={"accounts": ["cold"]})
    with pytest.raises(ValueError, match="add spot_stablecoin to margin_guard.sources"):
        hedge_config(buffer={**base, **REFILL_FROM_COLD}, margin_guard={"sources": ["futures_wallet"]}, exposure={"accounts": ["cold"]})


async def test_a_refill_from_an_exchange_hedgebot_cannot_withdraw_on_is_refused_at_start_up(tmp_path: Path, monkeypatch: Any) -> None:
    import pytest

    from hedgebot.engine.keeper import StartupRefused

    monkeypatch.setenv("HB_COLD_KEY", "k")
    monkeypatch.setenv("HB_COLD_SECRET", "s")
    data = two_venues(tmp_path, refill=REFILL_FROM_COLD)
    data["accounts"][1] = {
        "name": "cold", "mode": "live", "exchange": "bybit", "api_base_url": "http://127.0.0.1:9",  # nothing answers
        "credentials": {"api_key": {"env": "HB_COLD_KEY"}, "secret": {"env": "HB_COLD_SECRET"}},
    }
    daemon = Daemon(Settings(**data), SimClock(start=START))
    try:
        with pytest.raises(StartupRefused, match="cannot withdraw from account 'cold'.*set allow_withdraw = false"):
            await daemon.start()
    finally:
        await daemon.stop()



def withdrawal_intents(daemon: Daemon) -> list[Any]:
    return [i for i in daemon.keepers[0].journal.intents() if i.kind == "withdrawal"]


async def test_a_withdrawal_whose_answer_cannot_be_read_is_looked_up_by_its_id_never_sent_again(tmp_path: Path) -> None:
    from hedgebot.exchange.port import BadData

    async def executed_then_garbled(real: Any, request: Any) -> Any:
        await real(request)
        raise BadData("binance withdrawal answer has no id: <html>502</html>")

    # The gap at 20 minutes, and 25 minutes of ticks after it.
    daemon, clock = await run_the_gap(tmp_path, minutes=45, refill=REFILL_FROM_COLD, cold={"withdraw": executed_then_garbled})
    try:
        cold = daemon._holdings["cold"].venue
        assert len(cold.withdrawals) == 1  # carried out once; the garbled answer never sent it again
        [intent] = withdrawal_intents(daemon)
        assert intent.status.value == "done" and intent.client_id == cold.withdrawals[0].client_id
    finally:
        await daemon.stop()


async def test_a_withdrawal_still_processing_after_the_refill_time_holds_the_next_until_it_completes(tmp_path: Path) -> None:
    daemon, clock = await run_the_gap(tmp_path, refill=REFILL_FROM_COLD, withdrawal_seconds=3 * REFILL)
    try:
        cold = daemon._holdings["cold"].venue
        # 90 minutes in, the first (sent at the gap) is still processing: no second one went out.
        assert len(cold.withdrawals) == 1 and cold.withdrawals[0].status == "processing"
        assert "buffer_lockstep" in daemon.keepers[0].alerts.active  # still reported, never silent
    finally:
        await daemon.stop()


async def test_a_refused_withdrawal_is_not_retried_every_tick_and_the_alert_names_the_error(tmp_path: Path) -> None:
    from hedgebot.exchange.port import InsufficientFunds

    attempts = []

    async def refused(real: Any, request: Any) -> Any:
        attempts.append(request)
        raise InsufficientFunds("-4026 insufficient balance in the spot wallet")

    # The gap and half an hour after it, ticks every 10 s.
    daemon, clock = await run_the_gap(tmp_path, minutes=50, refill=REFILL_FROM_COLD, cold={"withdraw": refused})
    try:
        assert len(attempts) == 1
        alert = daemon.keepers[0].alerts.active["withdrawal_refused"]
        assert alert.severity.value == "critical" and "insufficient balance" in alert.message
    finally:
        await daemon.stop()


async def test_a_halted_hedge_withdraws_nothing(tmp_path: Path) -> None:
    daemon, clock = await run_the_gap(tmp_path, refill=REFILL_FROM_COLD, state="halted")
    try:
        assert daemon._holdings["cold"].venue.withdrawals == [] and withdrawal_intents(daemon) == []
    finally:
        await daemon.stop()


async def test_no_more_than_max_withdraw_per_day_leaves_the_holdings_account_in_any_24_hours(tmp_path: Path) -> None:
    refill = {**REFILL_FROM_COLD, "max_withdraw": "20000", "max_withdraw_per_day": "30000"}
    daemon, clock = await run_the_gap(tmp_path, refill=refill)
    try:
        amounts = [D(i.detail["amount"]) for i in withdrawal_intents(daemon)]
        assert amounts == [D(20000), D(10000)]  # the second only up to what the day allows
        refused = daemon.keepers[0].alerts.active["withdrawal_refused"]
        assert "max_withdraw_per_day" in refused.message
    finally:
        await daemon.stop()


async def test_a_withdraw_address_that_is_not_the_hedging_accounts_own_is_refused_by_check_and_at_start_up(
    tmp_path: Path, monkeypatch: Any,
) -> None:
    import pytest

    from hedgebot.engine.keeper import StartupRefused
    from hedgebot.exchange.paper import PaperVenue

    # A paper config says both ends: check (and the config load) refuses it, naming the field and both addresses.
    with pytest.raises(ValueError, match="withdraw_address 'someone-else' is not account 'main'.s deposit address"):
        Settings(**two_venues(tmp_path, refill={**REFILL_FROM_COLD, "withdraw_address": "someone-else"}))
    unowned = two_venues(tmp_path, refill=REFILL_FROM_COLD)
    del unowned["accounts"][0]["paper"]["deposit_address"]
    with pytest.raises(ValueError, match="it has none: set \\[accounts.paper\\] deposit_address"):
        Settings(**unowned)

    # Live, the exchange says it at start-up (faked here on the paper venue): a mismatch refuses the start.
    async def elsewhere(self: Any, asset: str, network: Any) -> str:
        return "another-address"

    monkeypatch.setattr(PaperVenue, "fetch_deposit_address", elsewhere)
    daemon = Daemon(Settings(**two_venues(tmp_path, refill=REFILL_FROM_COLD)), SimClock(start=START))
    try:
        with pytest.raises(StartupRefused, match="withdraw_address main-usdt is not account 'main'.s deposit address"):
            await daemon.start()
    finally:
        await daemon.stop()


async def test_an_address_the_exchange_cannot_confirm_at_start_up_is_never_paid(tmp_path: Path, monkeypatch: Any) -> None:
    from hedgebot.exchange.paper import PaperVenue

    async def unknown(self: Any, asset: str, network: Any) -> None:
        return None

    monkeypatch.setattr(PaperVenue, "fetch_deposit_address", unknown)
    daemon, clock = await run_the_gap(tmp_path, refill=REFILL_FROM_COLD)
    try:
        assert daemon._holdings["cold"].venue.withdrawals == [] and withdrawal_intents(daemon) == []
        [disabled] = daemon.keepers[0].journal.events(kind="refill_disabled")
        assert disabled.severity == "critical" and "deposit by hand" in disabled.detail["message"]
    finally:
        await daemon.stop()


async def test_an_unknown_withdrawal_never_holds_the_hedges_own_growth(tmp_path: Path) -> None:
    from hedgebot.exchange.port import RequestTimeout

    async def lost(real: Any, request: Any) -> Any:
        raise RequestTimeout("no answer")

    async def not_seen(real: Any, client_id: str, since: float) -> Any:
        return None

    # The gap, and the rally's buy-back, within the withdrawal's refill time.
    daemon, clock = await run_the_gap(
        tmp_path, minutes=45, refill=REFILL_FROM_COLD, cold={"withdraw": lost, "find_withdrawal": not_seen},
    )
    try:
        keeper = daemon.keepers[0]
        [intent] = withdrawal_intents(daemon)
        assert intent.status.value in ("pending", "unknown")  # not proven absent within its refill time
        # The rally's buy-back went out meanwhile: an unknown withdrawal holds nothing of this hedge's own.
        assert [i for i in keeper.journal.intents() if i.kind == "order" and i.detail["reason"].startswith("lockstep")]
    finally:
        await daemon.stop()


def test_a_holding_price_from_a_source_that_failed_this_look_is_not_shown_against_the_fresh_mark() -> None:
    from hedgebot.engine.custody import CustodyCount
    from hedgebot.engine.holdings import AccountHoldings, held_elsewhere

    source = AccountHoldings("cold", None, 300, price_symbol=SYMBOL)  # type: ignore[arg-type]
    counts = {"account cold": CustodyCount(D(10), START, D(30000))}
    fresh = held_elsewhere([source], counts, {}, START + 10)
    assert fresh is not None and fresh.price == D(30000)
    failed = held_elsewhere([source], counts, {"account cold": "account cold: 503"}, START + 10)
    assert failed is not None and failed.price is None and failed.amount == D(10)  # the count stands, the price does not


def test_a_buffer_that_allows_for_no_divergence_shows_the_spread_but_raises_no_warning() -> None:
    from dataclasses import replace

    from hedgebot.domain.model import HeldElsewhere
    from hedgebot.domain.policy import plan
    from tests.helpers import hedge_config, snapshot

    held = HeldElsewhere(D(1), 1000.0, "account cold", price=D(50500), price_source="account cold")
    for divergence, warned in (("0", False), ("0.005", True)):
        policy = hedge_config(buffer={"adverse_move": "0.15", "divergence": divergence, "refill_seconds": 1800},
                              margin_guard={"sources": ["futures_wallet"]}).policy()
        planned = plan(replace(snapshot(), elsewhere=held), policy, 1000.0)
        assert ("venues_diverge" in {a.code for a in planned.alerts}) is warned, divergence


def test_check_says_the_buffer_and_who_may_withdraw_from_the_holdings_account(tmp_path: Path, capsys: Any) -> None:
    from hedgebot.commands.main import main
    from tests.helpers import write_toml

    data = two_venues(tmp_path, refill={**REFILL_FROM_COLD, "max_withdraw_per_day": "100000"})
    assert main(["check", "--config", str(write_toml(tmp_path / "hedgebot.toml", data))]) == 0
    out = capsys.readouterr().out
    assert "buffer: kept 17.0% from liquidation (adverse move 15.0% + divergence 2.0%); a deposit takes 30m" in out, out
    assert "refill: withdrawn from cold to main-usdt on TRX, at most 250000 at once and 100000 a day (the day's limit" in out
    assert "counted by main/btc, and main/btc may withdraw from it (the buffer's refill)" in out



async def test_a_completed_withdrawal_is_journaled_once_and_not_again_after_a_restart(tmp_path: Path) -> None:
    from hedgebot.engine.refill import Refill
    from hedgebot.store.journal import IntentStatus

    daemon, clock = await run_the_gap(tmp_path, refill=REFILL_FROM_COLD)
    try:
        journal = daemon.keepers[0].journal
        told = [e.detail["client_id"] for e in journal.events(kind="withdrawal_completed")]
        assert told
        # A restart learns the journal's withdrawals: one already told completed is not followed (nor told) again.
        again = Refill("cold", daemon._holdings["cold"].venue)
        again.remember(journal.intents(), told)
        assert all(again.sent[cid].status == "completed" for cid in told)
        ended: list[str] = []
        await again.follow(clock.now() + 3600, lambda sent: ended.append(sent.client_id))
        assert not set(ended) & set(told)
        assert all(i.status is IntentStatus.DONE for i in journal.intents() if i.kind == "withdrawal")
    finally:
        await daemon.stop()
