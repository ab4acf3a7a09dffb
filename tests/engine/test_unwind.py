"""Unwinding a hedge on the paper venue: short slice first, spot after, never net short, closed until resumed."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hedgebot.clock import SimClock
from hedgebot.config import Settings
from hedgebot.domain.model import Wallet
from hedgebot.domain.trading import TradingState
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.paper import FillModel
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.control import Control
from hedgebot.store.journal import Journal
from tests.helpers import D, SYMBOL, hedge_config, make_rig, paper_settings_dict


def _unwind(rig: Any, **detail: Any) -> int:
    return rig.keeper.control.submit("acct", rig.keeper.hedge.name, "unwind", "tester", "closing", **detail)


def _trail(rig: Any, start_short: Decimal, start_spot: Decimal) -> list[tuple[str, Decimal, Decimal, Decimal]]:
    """Replay the unwind's fills from the journal: (leg, filled, short after, spot after)."""
    short, spot = start_short, start_spot
    out = []
    for intent in rig.journal.intents():
        if "unwind" not in intent.detail or intent.kind != "order" or intent.status.value != "done":
            continue
        filled = D(intent.outcome["filled"])
        if intent.detail["position_side"] == "short":
            assert intent.detail["side"] == "buy", "only the close form: BUY on the SHORT side"
            assert filled <= short, "never more than the live leg"
            short -= filled
            out.append(("short", filled, short, spot))
        else:
            spot -= filled
            out.append(("spot", filled, short, spot))
    return out


async def test_unwind_with_sell_spot_closes_the_short_sells_the_spot_and_returns_the_margin() -> None:
    rig = await make_rig(spot={"BTC": "2", "USDT": "0"}, hedge=hedge_config(max_order=D("0.5")))
    await rig.keeper.tick()
    leg = (await rig.venue.fetch_legs(SYMBOL)).short
    assert leg.size == D("2")
    _unwind(rig, sell_spot=True)
    await rig.keeper.tick()
    assert await rig.short() == 0 and rig.venue.spot["BTC"] == 0
    trail = _trail(rig, D("2"), D("2"))
    assert [t[0] for t in trail] == ["short", "spot"] * 4, "a short slice before each spot slice"
    assert all(short <= spot for _, _, short, spot in trail), "never net short"
    moved = [i for i in rig.journal.intents() if i.kind == "transfer" and "unwind" in i.detail]
    assert len(moved) == 1 and D(moved[0].detail["amount"]) == leg.margin.quantize(D("0.01"), "ROUND_FLOOR")
    assert rig.venue.spot["USDT"] >= leg.margin + D("2") * D("50000") * D("0.99"), "sale proceeds and margin reached spot"
    assert rig.keeper.trading_state is TradingState.CLOSED
    done = rig.journal.events(kind="unwind_completed")[0].detail
    assert (D(done["short_bought_back"]), D(done["spot_sold"])) == (D("2"), D("2"))


async def test_an_unwound_hedge_stays_closed_until_resumed_even_when_spot_arrives() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    await rig.keeper.tick()
    _unwind(rig)
    await rig.keeper.tick()
    assert await rig.short() == 0 and rig.venue.spot["BTC"] == D("1"), "without --sell-spot the spot is kept"
    rig.venue.deposit(Wallet.SPOT, "BTC", D("1"))
    await rig.set_price("50000")
    await rig.keeper.tick()
    assert await rig.short() == 0 and rig.keeper.status.trading_state == "closed"
    rig.keeper.control.submit("acct", "btc", "resume", "tester")
    await rig.keeper.tick()
    assert await rig.short() == D("2")


async def test_partial_fills_never_leave_the_account_net_short_and_no_slice_is_bought_twice() -> None:
    rig = await make_rig(spot={"BTC": "3"}, hedge=hedge_config(max_order=D("1")))
    await rig.keeper.tick()
    rig.venue.fill_model = FillModel(partial_probability=1.0, seed=8)
    rig.venue._rng = rig.venue.fill_model.make_rng()
    start = await rig.short()
    _unwind(rig, sell_spot=True)
    for _ in range(5):
        await rig.set_price("50000")
        await rig.keeper.tick()
    assert await rig.short() == 0
    trail = _trail(rig, start, D("3"))
    assert sum(f for leg, f, _, _ in trail if leg == "short") == start, "every coin bought back exactly once"
    assert all(short <= spot for _, _, short, spot in trail)
    assert any(f < D("1") for leg, f, _, _ in trail if leg == "short"), "fills were partial"
    assert abs(rig.venue.spot["BTC"] - (D("3") - start)) < D("0.001")


async def test_the_unwound_hedge_stays_closed_after_a_restart(tmp_path) -> None:
    path = str(tmp_path / "journal.sqlite")
    rig = await make_rig(spot={"BTC": "1"}, journal_path=path)
    await rig.keeper.tick()
    _unwind(rig)
    await rig.keeper.tick()
    rig.journal.close()
    journal = Journal(path, rig.clock)
    restarted = Keeper("acct", rig.keeper.hedge, rig.venue, rig.clock, journal, EventLog(journal, NullLogger()))
    await restarted.prepare()
    orders = len(rig.venue.orders)
    await restarted.tick()
    assert restarted.trading_state is TradingState.CLOSED and len(rig.venue.orders) == orders
    assert await rig.short() == 0


async def test_a_lowered_ratio_is_reduced_in_max_order_slices() -> None:
    rig = await make_rig(spot={"BTC": "2"}, hedge=hedge_config(max_order=D("0.5")))
    await rig.keeper.tick()
    before = len(rig.venue.orders)
    rig.keeper.reconfigure(hedge_config(max_order=D("0.5"), ratio=D("0")))
    await rig.keeper.tick()
    new = list(rig.venue.orders.values())[before:]
    assert await rig.short() == 0 and len(new) == 4
    assert all((o.side.value, o.position_side.value) == ("buy", "short") and o.amount <= D("0.5") for o in new)


async def test_an_unwind_asked_again_while_under_way_carries_on_instead_of_starting_over() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    await rig.keeper.tick()
    rig.keeper.control.submit("acct", "btc", "pause", "tester")
    await rig.keeper.tick()
    _unwind(rig)
    _unwind(rig)
    await rig.keeper.tick()
    results = [r.result for r in rig.keeper.control.requests() if r.command == "unwind"]
    assert results[0].startswith("unwind 1 started") and "already under way" in results[1]
    assert await rig.short() == 0


async def test_a_daemon_stopped_mid_unwind_leaves_the_account_never_net_short_and_the_unwind_resumable(tmp_path) -> None:
    settings = Settings(**paper_settings_dict(tmp_path, max_order="0.5"))
    clock = SimClock()
    first = Daemon(settings, clock)
    await first.start()
    await clock.advance(3)
    venue = first.accounts[0].venue
    assert (await venue.fetch_legs(SYMBOL)).short.size == D("2")
    keeper = first.keepers[0]
    fills: list[Any] = []

    def stop_during_the_third_step(record: Any) -> None:
        if record.kind == "order_filled" and record.detail.get("unwind"):
            fills.append(record)
            if len(fills) == 3:
                keeper.stop()  # SIGTERM: stop planning, finish the action in flight

    first.events.subscribe(stop_during_the_third_step)
    Control(first.journal).submit("paper", "btc-core", "unwind", "tester", sell_spot=True)
    await clock.advance(3)
    await first.stop()
    short, spot = (await venue.fetch_legs(SYMBOL)).short.size, venue.spot["BTC"]
    assert (short, spot) == (D("1"), D("1.5")), "stopped between steps: short slices 1-2 and spot slice 1 done"
    assert short <= spot

    second = Daemon(settings, clock)
    await second.start()
    try:
        await clock.advance(3)
        resumed = second.accounts[0].venue
        assert (await resumed.fetch_legs(SYMBOL)).short.size == 0 and resumed.spot["BTC"] == 0
        slices = [o for o in resumed.orders.values() if o.side.value == "buy" or o.position_side is None]
        assert len([o for o in slices if o.position_side is not None]) == 4 and len(slices) == 8, "no slice repeated"
        assert second.keepers[0].trading_state is TradingState.CLOSED
    finally:
        await second.stop()


async def test_an_unwound_hedge_shows_closed_with_target_zero_and_logs_no_rebalanced() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    await rig.keeper.tick()
    opened = len(rig.journal.events(kind="rebalanced"))
    _unwind(rig)
    await rig.keeper.tick()
    await rig.keeper.tick()
    status = rig.keeper.status
    assert status.state == "closed" and status.short == 0 and status.target == 0, status
    assert len(rig.journal.events(kind="rebalanced")) == opened


async def test_a_margin_topup_due_during_an_unwind_goes_ahead_of_the_next_slice() -> None:
    rig = await make_rig(spot={"BTC": "1", "USDT": "100000"}, futures={"USDT": "17000"}, hedge=hedge_config(max_order=D("0.25")))
    await rig.keeper.tick()
    seen = len(rig.journal.intents())
    _unwind(rig)
    await rig.set_price("62000", high="62000")  # 6 % from liquidation: a top-up is due
    await rig.keeper.tick()
    after = rig.journal.intents()[seen:]
    assert after and after[0].kind in ("transfer", "margin") and after[0].detail["reason"] == "margin top-up", [
        (i.kind, i.detail.get("reason")) for i in after
    ]
    await rig.set_price("62000")  # the jump confirmed: the slices follow
    await rig.keeper.tick()
    assert await rig.short() == 0
