"""A hedge whose ratio follows a schedule of windows, and a hedge that ends by itself (issue 23)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hedgebot.clock import SimClock
from hedgebot.domain.trading import TradingState
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.helpers import D, SYMBOL, SteppedWallClock, btc_market, hedge_config, make_rig

T0 = 1_600_000_000.0


def iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat().replace("+00:00", "Z")


def window(name: str, start: float, end: float, ratio: str) -> dict[str, str]:
    return {"name": name, "start": iso(start), "end": iso(end), "ratio": ratio}


async def test_a_window_holds_its_ratio_from_its_start_to_its_end_and_the_orders_carry_its_name() -> None:
    hedge = hedge_config(ratio=D("0.5"), schedule=[window("fomc", T0 + 100, T0 + 200, "1")])
    rig = await make_rig(hedge, spot={"BTC": "2"})
    await rig.keeper.tick()
    assert await rig.short() == D("1")
    await rig.set_price("50000", advance=100)  # the window's start
    await rig.keeper.tick()
    assert await rig.short() == D("2") and rig.keeper.status.window == "fomc"
    grown = [i for i in rig.journal.intents() if i.kind == "order" and i.detail.get("side") == "sell"]
    assert [i.detail.get("window") for i in grown] == [None, "fomc"], "the window's order is journaled with its name"
    await rig.set_price("50000", advance=100)  # its end: the hedge's own ratio again
    await rig.keeper.tick()
    assert await rig.short() == D("1") and rig.keeper.status.window == ""
    said = [(e.detail["entered"], e.detail["left"], e.detail["ratio"]) for e in rig.journal.events(kind="schedule_window")]
    assert said == [("fomc", "", "1"), ("", "fomc", "0.5")]


async def test_the_keeper_wakes_at_a_windows_start_however_long_its_tick() -> None:
    hedge = hedge_config(ratio=D("0.5"), tick_seconds=3600, schedule=[window("cpi", T0 + 1234, T0 + 5000, "1")])
    rig = await make_rig(hedge, spot={"BTC": "2"})
    running = asyncio.ensure_future(rig.keeper.run())
    try:
        for _ in range(75):  # the mark is published every 20 s; the keeper's own tick is an hour
            await rig.clock.advance(20)
            rig.venue.update_price(SYMBOL, rig.clock.now(), D("50000"))
        orders = [i for i in rig.journal.intents() if i.kind == "order" and i.detail.get("window") == "cpi"]
        assert orders and orders[0].created_at == T0 + 1234, "the ratio changed at the scheduled instant, not at the next tick"
    finally:
        rig.keeper.stop()
        await rig.clock.run(running)


async def test_a_hedge_with_until_is_unwound_at_its_time_and_stays_closed_across_a_restart(tmp_path: Path) -> None:
    hedge = hedge_config(until=iso(T0 + 100))
    rig = await make_rig(hedge, spot={"BTC": "1"}, journal_path=str(tmp_path / "journal.sqlite"))
    await rig.keeper.tick()
    assert await rig.short() == D("1") and rig.keeper.status.ends_at == T0 + 100
    await rig.set_price("50000", advance=99)
    await rig.keeper.tick()
    assert await rig.short() == D("1"), "not a second early"
    await rig.set_price("50000", advance=1)
    await rig.keeper.tick()
    assert await rig.short() == 0 and rig.venue.spot["BTC"] == D("1"), "unwound; the spot kept (until_sell_spot is false)"
    assert rig.keeper.trading_state is TradingState.CLOSED
    [ended] = rig.journal.events(kind="hedge_end_reached")
    assert ended.severity == "warning" and "stays closed" in ended.detail["message"]
    rig.journal.close()

    journal = Journal(str(tmp_path / "journal.sqlite"), rig.clock)
    keeper = Keeper("acct", hedge, rig.venue, rig.clock, journal, EventLog(journal, NullLogger()))
    await keeper.prepare()
    await rig.set_price("50000", advance=60)
    await keeper.tick()
    assert (await rig.venue.fetch_legs(SYMBOL)).short.size == 0 and keeper.trading_state is TradingState.CLOSED
    assert len(journal.events(kind="unwind_started")) == 1 and len(journal.events(kind="hedge_end_reached")) == 1


async def test_a_hedge_ending_with_until_sell_spot_sells_its_coins_in_the_unwind() -> None:
    rig = await make_rig(hedge_config(until=iso(T0 + 10), until_sell_spot=True), spot={"BTC": "1", "USDT": "0"})
    await rig.keeper.tick()
    await rig.set_price("50000", advance=10)
    await rig.keeper.tick()
    assert await rig.short() == 0 and rig.venue.spot["BTC"] == 0 and rig.venue.spot["USDT"] > D("49000")


async def test_a_backtest_changes_the_ratio_at_exactly_the_scheduled_replay_times_and_back() -> None:
    from hedgebot.backtest import run_backtest
    from hedgebot.clock import run_simulated  # noqa: F401 - the backtest runs in simulated time by itself
    from hedgebot.exchange.feeds import Candle
    from hedgebot.exchange.funding import ConstantFunding
    from tests.helpers import btc_market

    start = 1_700_000_400.0
    candles = [Candle(start + 3600.0 * i, D("40000"), D("40100"), D("39900"), D("40000")) for i in range(48)]
    opens, closes = start + 10 * 3600 + 1800, start + 20 * 3600 + 900  # between two candles: the keeper wakes for them
    hedge = hedge_config(ratio=D("0.5"), max_order=D("5"), schedule=[window("cpi", opens, closes, "1")])
    result = await run_backtest(
        candles, btc_market(), ConstantFunding(D("0")), hedge, {"BTC": D("4"), "USDT": D("0")}, {"USDT": D("100000")},
    )
    orders = [(t.time, t.side, t.amount) for t in result.trades if t.kind == "order"]
    assert orders == [(start, "sell short", D("2")), (opens, "sell short", D("2")), (closes, "buy short", D("2"))], orders
    assert result.final_short == D("2")


async def test_a_daemon_reads_its_calendar_and_status_shows_the_window_in_force_and_the_next(tmp_path: Path, capsys) -> None:
    from hedgebot.commands.main import main
    from hedgebot.clock import SimClock
    from hedgebot.config import load_config
    from hedgebot.engine.daemon import Daemon
    from tests.helpers import paper_settings_dict, write_toml

    clock = SimClock()
    now = clock.now()
    data = paper_settings_dict(tmp_path, ratio="0.5", schedule=[
        {"name": "fomc", "ratio": "1", "event": "FOMC", "before_hours": 1, "after_hours": 1},
    ])
    data["accounts"][0]["paper"]["markets"][0]["feed"]["volatility"] = 0.0
    data["calendar"] = {"events": [{"name": "FOMC", "at": iso(now + 1800)}, {"name": "FOMC", "at": iso(now + 86400)}]}
    path = write_toml(tmp_path / "hedgebot.toml", data)
    daemon = Daemon(load_config(path), clock)
    await daemon.start()
    try:
        await clock.advance(5)
        keeper = daemon.keepers[0]
        assert keeper.status.window == "fomc (FOMC)" and keeper.status.target_ratio == D("1")
        assert keeper.status.next_window_at == now + 86400 - 3600
    finally:
        await daemon.stop()
    capsys.readouterr()
    assert main(["status", "--config", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "window fomc (FOMC) in force (target ratio 1" in shown, shown
    assert f"next window fomc (FOMC) at {iso(now + 86400 - 3600)}" in shown, shown


async def test_a_reload_renaming_an_event_in_the_calendar_and_its_window_moves_the_window(tmp_path: Path) -> None:
    from hedgebot.clock import SimClock
    from hedgebot.config import load_config
    from hedgebot.engine.daemon import Daemon
    from tests.helpers import paper_settings_dict, write_toml

    clock = SimClock()
    now = clock.now()
    data = paper_settings_dict(tmp_path, ratio="0.5", schedule=[
        {"name": "fomc", "ratio": "1", "event": "FOMC", "before_hours": 1, "after_hours": 1},
    ])
    data["calendar"] = {"events": [{"name": "FOMC", "at": iso(now + 86400)}]}
    path = write_toml(tmp_path / "hedgebot.toml", data)
    daemon = Daemon(load_config(path), clock)
    await daemon.start()
    try:
        await clock.advance(3)
        data["calendar"] = {"events": [{"name": "FOMC December", "at": iso(now + 7200)}]}
        data["accounts"][0]["hedges"][0]["schedule"][0]["event"] = "FOMC December"
        write_toml(path, data)
        result = daemon.reload_file(path)
        assert not result.error and any("calendar" in a for a in result.applied), result
        assert [w.start for w in daemon.keepers[0].scheduled.schedule.windows] == [now + 7200 - 3600]
        # A calendar that drops an event a window still names is refused whole, and the running schedule stays.
        data["calendar"] = {"events": [{"name": "CPI", "at": iso(now + 9000)}]}
        write_toml(path, data)
        refused = daemon.reload_file(path)
        assert refused.error and "FOMC December" in refused.error, refused
        assert [w.start for w in daemon.keepers[0].scheduled.schedule.windows] == [now + 7200 - 3600]
    finally:
        await daemon.stop()


async def test_resume_is_refused_while_the_hedges_end_has_passed_and_sends_nothing() -> None:
    rig = await make_rig(hedge_config(until=iso(T0 + 10)), spot={"BTC": "1"})
    await rig.keeper.tick()
    await rig.set_price("50000", advance=10)
    await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.CLOSED
    orders = len([i for i in rig.journal.intents() if i.kind == "order"])
    request = rig.keeper.control.submit("acct", rig.keeper.hedge.name, "resume", "tester", "re-arm")
    await rig.set_price("50000", advance=10)
    await rig.keeper.tick()
    await rig.set_price("50000", advance=10)
    await rig.keeper.tick()
    taken = rig.keeper.control.request(request)
    assert taken is not None and "not resumed" in taken.result and "until" in taken.result
    assert rig.keeper.trading_state is TradingState.CLOSED
    assert len([i for i in rig.journal.intents() if i.kind == "order"]) == orders, "no round trip of the whole short"


async def test_a_hedge_halted_by_a_person_when_its_end_comes_waits_for_resume_then_unwinds() -> None:
    rig = await make_rig(hedge_config(until=iso(T0 + 10)), spot={"BTC": "1"})
    await rig.keeper.tick()
    rig.keeper.control.submit("acct", rig.keeper.hedge.name, "pause", "tester", "looking into something")
    await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.HALTED
    await rig.set_price("50000", advance=10)  # the end comes while halted
    await rig.keeper.tick()
    await rig.set_price("50000", advance=10)
    await rig.keeper.tick()
    assert await rig.short() == D("1"), "a halt is lifted only by a person: nothing is sent"
    assert rig.keeper.trading_state is TradingState.HALTED and "hedge_end_waiting" in rig.keeper.alerts.active
    request = rig.keeper.control.submit("acct", rig.keeper.hedge.name, "resume", "tester", "go ahead")
    for _ in range(3):
        await rig.set_price("50000", advance=10)
        await rig.keeper.tick()
    taken = rig.keeper.control.request(request)
    assert taken is not None and "unwound now" in taken.result
    sells = [i for i in rig.journal.intents() if i.kind == "order" and i.detail.get("side") == "sell"]
    assert len(sells) == 1, "the resume did not re-open anything on its way to the end"
    assert await rig.short() == 0 and rig.keeper.trading_state is TradingState.CLOSED


async def test_a_window_of_a_higher_ratio_never_sells_coins_that_the_hedges_own_ratio_did_not_need() -> None:
    hedge = hedge_config(
        ratio=D("0.5"), leverage=3, max_order=D("5"),
        margin_guard={"sources": ["futures_wallet", "sell_spot"], "fund_target_by_selling": True},
        schedule=[{"name": "cpi", "start": iso(T0 + 100), "end": iso(T0 + 200), "ratio": "1"}],  # 100 s around a CPI print
    )
    rig = await make_rig(hedge, spot={"BTC": "4", "USDT": "0"}, futures={"USDT": "36000"})
    await rig.keeper.tick()
    assert await rig.short() == D("2") and rig.venue.spot["BTC"] == D("4")  # the hedge's own ratio is fully funded
    shorts = []
    for _ in range(30):  # the window begins, ends, and the hedge runs on at its own ratio
        await rig.set_price("50000", advance=10)
        await rig.keeper.tick()
        shorts.append(await rig.short())
    assert rig.venue.spot["BTC"] == D("4"), "coins were sold for good to fund a ratio that lasted 100 s"
    assert max(shorts) > D("2"), "the window's ratio was not followed as far as the wallet pays"
    assert shorts[-1] == D("2"), "after the window the hedge is not back at its own target"


DAY = 86_400.0


class MeasuredVenue:
    """The paper venue as the ccxt venue presents it: the offset of the exchange's clock from ours, as last measured
    (ccxt re-measures after the -1021 that a wall clock a day off earns at once)."""

    name = "measured"

    def __init__(self, inner: Any, wall: SteppedWallClock) -> None:
        self.inner = inner
        self.wall = wall

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    @property
    def clock_offset(self) -> float:
        return -self.wall.step  # the exchange runs `step` seconds behind this machine's wall clock

    max_clock_offset = 10.0


async def test_a_hedge_is_not_unwound_because_this_machines_clock_jumped_past_its_until() -> None:
    exchange_clock = SimClock(start=1_600_000_000.0)
    wall = SteppedWallClock(exchange_clock)
    venue = PaperVenue(exchange_clock, [PaperMarket(btc_market(), ConstantFunding(D("0.0001")))], spot={"BTC": D("1")},
                       futures={"USDT": D("100000")})
    venue.update_price(SYMBOL, exchange_clock.now(), D("50000"))
    until = datetime.fromtimestamp(exchange_clock.now() + 3600, UTC).isoformat().replace("+00:00", "Z")  # in an hour
    journal = Journal(":memory:", wall)
    keeper = Keeper("acct", hedge_config(until=until, until_sell_spot=True), MeasuredVenue(venue, wall), wall, journal,
                    EventLog(journal, NullLogger()))
    await keeper.prepare()
    await keeper.tick()
    assert (await venue.fetch_legs(SYMBOL)).short.size == D("1")
    wall.step = DAY  # the machine's clock jumps a day ahead; the exchange's (and the world's) time is still before `until`
    for _ in range(3):
        await exchange_clock.advance(10)
        venue.update_price(SYMBOL, exchange_clock.now(), D("50000"))
        await keeper.tick()
    short, spot = (await venue.fetch_legs(SYMBOL)).short.size, venue.spot.get("BTC", D(0))
    assert keeper.trading_state is not TradingState.CLOSED and short == D("1") and spot == D("1"), (
        f"unwound 59 minutes before `until` by the exchange's clock: state {keeper.trading_state.value}, short {short}, "
        f"spot {spot}; alerts {sorted(keeper.alerts.active)}"
    )
