"""A daemon on the Binance emulator whose short the emulator's liquidation engine takes.

It must say so at once (the critical `liquidated` alert with the cause and the
margin lost), whether it hears it on the user stream (Binance's `autoclose-`
order) or only sees the short gone past its liquidation price while polling,
and re-open the short under the normal re-open rules: once the jumped price is
confirmed, with the margin brought to the guard's target at once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hedgebot.config import Settings
from hedgebot.engine.daemon import Daemon
from tests.emulator_rig import BTC, EmulatorRig, emulator_rig
from hedgebot.engine.keeper import Liquidation
from tests.helpers import D, hedge_config, paper_settings_dict

pytestmark = pytest.mark.slow

JUMP = D("80000")  # from 50,000 in one move: past the short's liquidation price at 3x


async def until(condition: Callable[[], bool], what: Callable[[], str] | str, deadline: float = 60.0) -> None:
    """Let the event loop run until `condition` holds; fail naming `what` if it never does."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"never happened: {what() if callable(what) else what}")
        await asyncio.sleep(0.005)


def live_daemon(rig: EmulatorRig, tmp_path: Path, *, streams: bool, margin_mode: str = "isolated") -> Daemon:
    data = paper_settings_dict(tmp_path, margin_mode=margin_mode, leverage=3, max_order="2")
    account = data["accounts"][0]
    account.update(mode="live", streams=streams, credentials={"api_key": {"env": "HB_TEST_KEY"}, "secret": {"env": "HB_TEST_SECRET"}})
    account.pop("paper", None)
    venue = rig.daemon_venue()
    return Daemon(Settings(**data), rig.clock, allow_live=True, venue_factory=lambda a: venue)


def alerts(daemon: Daemon, code: str) -> list[Any]:
    """Return the times the alert `code` was raised (its reminders while it lasts are not new alerts)."""
    assert daemon.journal is not None
    return [e for e in daemon.journal.events(kind="alert") if e.detail["code"] == code and e.detail["state"] == "raised"]


async def liquidate_and_rehedge(rig: EmulatorRig, daemon: Daemon, check: Callable[[Any], None]) -> None:
    """Open the hedge, jump the mark past the short's liquidation price, wait for the re-hedge, then `check` the keeper."""
    price = {"mark": D("50000")}

    rig.publish_mark_every_second(price)
    await daemon.start()
    try:
        keeper = daemon.keepers[0]
        await until(lambda: keeper.status.state == "hedged" and rig.short() == D("1"), lambda: f"the hedge is opened: {keeper.status}")
        price["mark"] = JUMP
        await until(lambda: bool(rig.emulator.forced), "the emulator's engine liquidates the short")
        await until(lambda: bool(alerts(daemon, "liquidated")), "the liquidation is reported")
        await until(lambda: rig.short() == D("1") and keeper.status.state == "hedged", lambda: f"the short is re-opened: {keeper.status}")
        check(keeper)
    finally:
        await daemon.stop()


@pytest.mark.parametrize("streams", [True, False], ids=["user-stream", "polling"])
async def test_a_short_liquidated_by_the_emulators_engine_is_reported_with_its_cause_and_reopened_under_the_rules(
    tmp_path: Path, streams: bool
) -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}, streams=streams) as rig:
        daemon = live_daemon(rig, tmp_path, streams=streams)

        def check(keeper: Any) -> None:
            reported_and_reopened(rig, daemon, keeper, streams)

        await liquidate_and_rehedge(rig, daemon, check)


def reported_and_reopened(rig: EmulatorRig, daemon: Daemon, keeper: Any, streams: bool) -> None:
    """Check the liquidation was reported with its cause and figures, and the short re-opened under the rules."""
    [raised] = alerts(daemon, "liquidated")
    assert raised.severity == "critical"
    cause = raised.detail["cause"]
    assert cause and cause in raised.detail["message"]
    assert daemon.journal is not None
    [resolved] = [e for e in daemon.journal.events(kind="alert_resolved") if e.detail["code"] == "liquidated"]
    told = resolved.detail["message"]  # the alert as it stood at the end: every cause it learnt
    if streams:
        assert "autoclose-" in told, told  # Binance's own order, heard on the user stream
    else:
        assert "liquidation price" in cause and "vanished" in cause, cause  # seen while polling
    lost = D(str(raised.detail["margin_lost"]))
    forced_income = sum(D(r["income"]) for r in rig.emulator.book.income if r["incomeType"] in ("REALIZED_PNL", "INSURANCE_CLEAR"))
    assert lost == -forced_income > 0, "the margin lost is the margin the exchange took"
    assert len(rig.emulator.forced) == 1
    # Re-opened under the re-open rules: at the jumped price, with the margin at the guard's target.
    status = keeper.status
    assert status.short == D("1") and status.distance is not None and status.distance >= D("0.35") - D("0.01")
    assert keeper.trading_state.value == "active", keeper.trading.reason
    outside = daemon.journal.events(kind="short_changed_outside")
    assert [e.detail["cause"] for e in outside] == ["liquidation"]
    opened_after = [
        e for e in daemon.journal.events(kind="order_filled") if e.detail.get("side") == "sell" and e.at > raised.at
    ]
    assert opened_after and all(D(str(e.detail["average_price"])) == JUMP for e in opened_after)


async def test_a_liquidation_seen_by_polling_then_reported_by_the_stream_is_one_liquidation_told_by_both() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        keeper = rig.keeper(hedge_config(margin_guard={"enabled": False}))
        await keeper.prepare()
        await keeper.tick()
        assert rig.short() == D("1")
        [row] = await rig.venue.futures.fapiPrivateV3GetPositionRisk({"symbol": BTC})
        rig.emulator.set_mark(BTC, D(row["liquidationPrice"]) + 10)
        await keeper.tick()  # the short is seen gone past its liquidation price before any stream message
        order = rig.emulator.futures_orders()[rig.emulator.forced[0].split("|")[2]]
        keeper.notify_liquidation(
            Liquidation(rig.clock.now(), D(order["avgPrice"]), D(order["executedQty"]), D(0), f"the exchange closed it ({order['clientOrderId']})")
        )
        alert = keeper.alerts.active["liquidated"]
        assert "vanished" in alert.message and order["clientOrderId"] in alert.message, alert.message
        assert keeper.status.liquidated_price == D(order["avgPrice"]) and keeper.status.margin_lost > 0
        assert len([e for e in rig.journal.events(kind="short_changed_outside") if e.detail["cause"] == "liquidation"]) == 1
        assert keeper.trading_state.value == "active", "one liquidation, not two: the second-liquidation breaker stays quiet"


@pytest.mark.parametrize("amount", [None, D("0.4")], ids=["whole-short", "part"])
async def test_a_short_auto_deleveraged_by_the_emulator_is_named_as_such_and_grown_back(tmp_path: Path, amount: D | None) -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}, streams=True) as rig:
        daemon = live_daemon(rig, tmp_path, streams=True)
        price = {"mark": D("50000")}

        rig.publish_mark_every_second(price)
        await daemon.start()
        try:
            keeper = daemon.keepers[0]
            await until(lambda: keeper.status.state == "hedged" and rig.short() == D("1"), lambda: f"the hedge is opened: {keeper.status}")
            price["mark"] = D("45000")  # the short is in profit: the kind of leg ADL takes
            await until(lambda: keeper.status.mark == D("45000"), "the keeper sees the new mark")
            rig.emulator.auto_deleverage(BTC, "SHORT", amount)
            await until(lambda: bool(daemon.journal and daemon.journal.events(kind="short_changed_outside")), "the change is noticed")
            await until(lambda: rig.short() == D("1") and keeper.status.state == "hedged", lambda: f"the short is grown back: {keeper.status}")
            assert daemon.journal is not None
            [outside] = daemon.journal.events(kind="short_changed_outside")
            assert outside.detail["cause"] == "auto-deleveraging", outside.detail
            assert outside.severity == "warning"
            assert not alerts(daemon, "liquidated") and keeper.trading_state.value == "active"
            assert [e.detail["detail"][:14] for e in daemon.journal.events(kind="adl")] == ["adl_autoclose-"]
        finally:
            await daemon.stop()


async def test_a_cross_short_liquidated_with_its_wallet_waits_for_money_then_reopens(tmp_path: Path) -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}, streams=True) as rig:
        daemon = live_daemon(rig, tmp_path, streams=True, margin_mode="cross")
        price = {"mark": D("50000")}

        rig.publish_mark_every_second(price)
        await daemon.start()
        try:
            keeper = daemon.keepers[0]
            await until(lambda: keeper.status.state == "hedged" and rig.short() == D("1"), lambda: f"the hedge is opened: {keeper.status}")
            wallet = D(rig.emulator.book.futures["USDT"])
            price["mark"] = D("160000")  # past the cross liquidation price: the whole cross wallet backs the short
            await until(lambda: bool(rig.emulator.forced), "the emulator's engine liquidates the cross short")
            await until(lambda: "reopen_unfunded" in keeper.alerts.active, lambda: f"the re-open waits for money: {keeper.status}")
            assert rig.short() == 0, "no short is re-opened without the margin the rules ask for"
            assert daemon.journal is not None
            await until(lambda: bool(keeper.status.margin_lost), "the margin lost is known")
            assert keeper.status.margin_lost == wallet, "a cross liquidation takes the whole cross wallet"
            rig.emulator.deposit("futures", "USDT", D("150000"))
            keeper.notify_balance()
            await until(lambda: rig.short() == D("1") and keeper.status.state == "hedged", lambda: f"the short is re-opened: {keeper.status}")
            assert keeper.status.distance is not None and keeper.status.distance >= D("0.34")
            assert keeper.trading_state.value == "active"
        finally:
            await daemon.stop()
