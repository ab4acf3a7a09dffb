"""Trading states, circuit breakers, the control channel and surprises on the leg, on the paper venue."""

from __future__ import annotations

from typing import Any

from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.domain.model import OrderSide, PositionSide, Wallet
from hedgebot.domain.trading import TradingState
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.keeper import Liquidation
from hedgebot.exchange.port import InsufficientFunds, OrderRequest
from hedgebot.store.control import Control
from hedgebot.store.journal import Journal
from tests.helpers import D, SYMBOL, hedge_config, make_rig, paper_settings_dict


def _ask(rig: Any, command: str, reason: str = "") -> int:
    return rig.keeper.control.submit("acct", rig.keeper.hedge.name, command, "tester", reason)


def _orders(rig: Any) -> int:
    return len(rig.venue.orders)


async def test_pause_halts_the_hedge_and_resume_brings_it_back_with_an_audit_trail() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    await rig.keeper.tick()
    request = _ask(rig, "pause", "maintenance window")
    await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.HALTED
    assert rig.keeper.status.trading_state == "halted" and rig.keeper.status.trading_reason == "maintenance window"
    rig.venue.deposit(Wallet.SPOT, "BTC", D("1"))
    await rig.set_price("50000")
    before = _orders(rig)
    await rig.keeper.tick()
    assert _orders(rig) == before, "halted: no orders"
    taken = rig.keeper.control.request(request)
    assert taken.taken_at is not None and taken.result == "hedge is halted"
    _ask(rig, "resume")
    await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.ACTIVE and await rig.short() == D("2")
    changes = rig.journal.events(kind="trading_state_changed")
    assert [(e.detail["state"], e.detail["actor"]) for e in changes] == [("halted", "tester"), ("active", "tester")]
    alerts = [e.detail for e in rig.journal.events(kind="alert") if e.detail["code"] == "trading_state"]
    assert alerts and alerts[0]["reason"] == "maintenance window" and alerts[0]["actor"] == "tester"
    assert [e.detail["code"] for e in rig.journal.events(kind="alert_resolved")].count("trading_state") == 1


async def test_in_halted_a_margin_topup_still_runs_but_no_order_goes_out() -> None:
    rig = await make_rig(spot={"BTC": "1", "USDT": "200000"}, futures={"USDT": "17000"})
    await rig.keeper.tick()
    _ask(rig, "pause")
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.5"))
    before = _orders(rig)
    for price in ("55000", "60000", "64000", "68000"):
        await rig.set_price(price, high=price, advance=600)
        await rig.keeper.tick()
    assert _orders(rig) == before
    assert [i for i in rig.journal.intents() if i.kind == "margin"], "top-ups ran while halted"
    assert [e for e in rig.venue.events if e.kind == "liquidation"] == []


async def test_in_reducing_an_over_hedge_is_reduced_but_an_under_hedge_is_not_grown() -> None:
    rig = await make_rig(spot={"BTC": "2"})
    await rig.keeper.tick()
    _ask(rig, "reduce", "risk review")
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("-1"))
    await rig.set_price("50000")
    await rig.keeper.tick()
    assert await rig.short() == D("1"), "the over-hedge was reduced"
    rig.venue.deposit(Wallet.SPOT, "BTC", D("2"))
    await rig.set_price("50000")
    await rig.keeper.tick()
    assert await rig.short() == D("1"), "reducing: the short does not grow"


async def test_a_state_set_in_the_config_wins_over_resume() -> None:
    rig = await make_rig(spot={"BTC": "1"}, hedge=hedge_config(state="halted"))
    _ask(rig, "resume")
    await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.HALTED and await rig.short() == 0
    assert "config sets state" in rig.keeper.control.requests()[0].result
    assert rig.keeper.status.trading_actor == "config"


# ---- circuit breakers -------------------------------------------------------------


async def test_too_many_orders_in_the_window_move_the_hedge_to_reducing_until_resumed() -> None:
    rig = await make_rig(spot={"BTC": "1"}, hedge=hedge_config(breakers={"max_orders": 2, "window_seconds": 3600}))
    for amount in ("0.5", "0.5", "0.5"):
        rig.venue.deposit(Wallet.SPOT, "BTC", D(amount))
        await rig.set_price("50000", advance=60)
        await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.REDUCING
    assert rig.keeper.trading.actor == "circuit breaker order_rate" and "3 orders" in rig.keeper.trading.reason
    short = await rig.short()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("1"))
    await rig.set_price("50000", advance=60)
    await rig.keeper.tick()
    assert await rig.short() == short, "no growth while reducing"
    alert = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "trading_state"][-1]
    assert alert.severity == "critical" and alert.detail["actor"] == "circuit breaker order_rate"
    _ask(rig, "resume")
    await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.ACTIVE and await rig.short() > short


async def test_too_much_notional_in_the_window_moves_the_hedge_to_reducing() -> None:
    rig = await make_rig(spot={"BTC": "3"}, hedge=hedge_config(breakers={"max_notional": "100000"}))
    await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.REDUCING and rig.keeper.trading.actor == "circuit breaker order_notional"


class Rejecting:
    """Wraps the paper venue; refuses every order while `reject` is set."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = "rejecting"
        self.reject = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def place_order(self, request: Any) -> Any:
        if self.reject:
            raise InsufficientFunds("scripted: margin is insufficient")
        return await self.inner.place_order(request)


async def test_repeated_rejections_halt_the_hedge() -> None:
    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Rejecting, hedge=hedge_config(breakers={"max_rejections": 3}))
    rig.keeper.port.reject = True
    for _ in range(3):
        await rig.set_price("50000", advance=10)
        await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.HALTED and rig.keeper.trading.actor == "circuit breaker rejections"
    rig.keeper.port.reject = False
    await rig.keeper.tick()
    assert await rig.short() == 0
    _ask(rig, "resume")
    await rig.keeper.tick()
    assert await rig.short() == D("1")


async def test_a_jump_the_next_reading_does_not_confirm_moves_the_hedge_to_reducing() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    await rig.keeper.tick()
    await rig.set_price("80000")  # +60 %: suspect
    await rig.keeper.tick()
    await rig.set_price("50100")  # back: the jump was never confirmed
    await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.REDUCING
    assert rig.keeper.trading.actor == "circuit breaker unconfirmed_jump" and "80000" in rig.keeper.trading.reason


async def test_a_second_liquidation_within_the_window_halts_the_hedge() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    await rig.keeper.tick()
    for _ in range(2):
        await _liquidate(rig)
        await rig.keeper.tick()
        if rig.keeper.trading_state is TradingState.ACTIVE:
            assert await rig.short() == D("1"), "after the first liquidation the hedge is rebuilt"
    assert rig.keeper.trading_state is TradingState.HALTED
    assert rig.keeper.trading.actor == "circuit breaker second_liquidation"
    causes = [e.detail["cause"] for e in rig.journal.events(kind="short_changed_outside")]
    assert causes == ["liquidation", "liquidation"]


async def _liquidate(rig: Any) -> None:
    """Let the venue liquidate the short as an exchange does, and tell the keeper as the daemon would."""
    leg = (await rig.venue.fetch_legs(SYMBOL)).short
    rig.venue.legs.pop((SYMBOL, "short"))
    rig.keeper.notify_liquidation(Liquidation(rig.clock.now(), D("70000"), leg.size, leg.margin))
    await rig.set_price("50000", advance=600)


# ---- surprises on the leg ------------------------------------------------------------


async def test_a_short_shrunk_by_someone_else_is_named_and_rehedged() -> None:
    rig = await make_rig(spot={"BTC": "2"})
    await rig.keeper.tick()
    await rig.venue.place_order(OrderRequest("by-hand", SYMBOL, OrderSide.BUY, D("0.5"), PositionSide.SHORT))
    await rig.set_price("50000")
    await rig.keeper.tick()
    surprise = rig.journal.events(kind="short_changed_outside")
    assert [(D(e.detail["expected"]), D(e.detail["seen"]), e.detail["cause"]) for e in surprise] == [(D("2"), D("1.5"), "unknown")]
    assert await rig.short() == D("2") and rig.keeper.trading_state is TradingState.ACTIVE


async def test_a_short_shrunk_while_in_profit_is_put_down_to_auto_deleveraging() -> None:
    rig = await make_rig(spot={"BTC": "2"})
    await rig.keeper.tick()
    await rig.set_price("45000")
    await rig.keeper.tick()
    rig.venue.legs[(SYMBOL, "short")].size -= D("0.3")  # the exchange deleverages part of a winning short
    await rig.set_price("45000")
    await rig.keeper.tick()
    assert [e.detail["cause"] for e in rig.journal.events(kind="short_changed_outside")] == ["auto-deleveraging"]


async def test_someone_else_opening_short_on_our_leg_halts_the_hedge_rather_than_fighting() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    await rig.keeper.tick()
    await rig.venue.place_order(OrderRequest("other-bot", SYMBOL, OrderSide.SELL, D("0.4"), PositionSide.SHORT))
    await rig.set_price("50000")
    before = _orders(rig)
    await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.HALTED and rig.keeper.trading.actor == "surprise watch"
    assert _orders(rig) == before, "the other trader's short is not bought back"
    alert = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "short_changed_outside"]
    assert alert and alert[0].severity == "critical"


async def test_a_partial_fill_is_counted_as_ours_and_the_rest_is_planned_next() -> None:
    from hedgebot.exchange.paper import FillModel

    rig = await make_rig(spot={"BTC": "2"}, fill_model=FillModel(partial_probability=1.0, seed=3))
    await rig.keeper.tick()
    assert rig.journal.events(kind="short_changed_outside") == []
    assert abs(await rig.short() - D("2")) <= D("2") * D("0.02")


# ---- the control channel with a running daemon ------------------------------------------


async def test_pause_reaches_a_running_daemon_within_one_tick_and_a_stopped_one_at_its_next_start(tmp_path) -> None:
    settings = Settings(**paper_settings_dict(tmp_path))
    clock = SimClock()
    daemon = Daemon(settings, clock)
    await daemon.start()
    outside = Journal(settings.journal.path, clock)  # the command's own connection
    control = Control(outside)
    try:
        await clock.advance(3)
        keeper = daemon.keepers[0]
        request = control.submit("paper", "btc-core", "pause", "ops@host", "exchange maintenance")
        await clock.advance(keeper.hedge.tick_seconds)
        taken = control.request(request)
        assert taken.taken_at is not None and taken.taken_by.startswith("daemon pid")
        assert keeper.trading_state is TradingState.HALTED
    finally:
        await daemon.stop()
    queued = control.submit("paper", "btc-core", "resume", "ops@host")
    assert control.request(queued).taken_at is None
    again = Daemon(settings, clock)
    await again.start()
    try:
        assert again.keepers[0].trading_state is TradingState.HALTED, "the state outlives the daemon"
        await clock.advance(3)
        assert control.request(queued).taken_at is not None
        assert again.keepers[0].trading_state is TradingState.ACTIVE
    finally:
        await again.stop()
        outside.close()


async def test_a_removed_hedge_whose_short_is_still_open_is_named_with_what_to_do(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    eth = {"symbol": "ETH/USDT:USDT", "feed": {"kind": "synthetic", "start_price": "3000", "step_seconds": 1, "seed": 4}}
    data["accounts"][0]["paper"]["markets"].append(eth)
    clock = SimClock()
    first = Daemon(Settings(**data), clock)
    await first.start()
    await clock.advance(3)
    await first.stop()
    data["accounts"][0]["hedges"] = [
        {"name": "eth-core", "asset": "ETH", "symbol": "ETH/USDT:USDT", "ratio": "1", "tick_seconds": 2}
    ]
    second = Daemon(Settings(**data), clock)
    await second.start()
    try:
        orphans = second.journal.events(kind="orphaned_short")
        assert [(e.hedge, e.detail["symbol"], D(e.detail["venue_short"])) for e in orphans] == [("btc-core", SYMBOL, D("2"))]
        assert orphans[0].severity == "critical" and "hedgebot unwind --hedge btc-core" in orphans[0].detail["note"]
    finally:
        await second.stop()


async def test_a_paused_hedge_shows_halted_as_its_state_not_rebalancing() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    await rig.keeper.tick()
    _ask(rig, "pause", "test")
    rig.venue.deposit(Wallet.SPOT, "BTC", D("1"))
    await rig.set_price("50000")
    await rig.keeper.tick()
    assert rig.keeper.status.state == "halted", rig.keeper.status


async def test_a_jump_that_partly_retraces_within_max_jump_of_the_jumped_price_confirms_it_and_trips_nothing() -> None:
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "300000"}, hedge=hedge_config(leverage=1))
    await rig.keeper.tick()
    await rig.set_price("58000")  # +16 %: beyond max_jump 15 %, suspect
    await rig.keeper.tick()
    await rig.set_price("55000")  # within 15 % of 58,000: README counts this as confirmation
    await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.ACTIVE, rig.keeper.trading.reason
    assert rig.journal.events(kind="price_jump_confirmed")
