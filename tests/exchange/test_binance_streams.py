"""Binance's websocket streams through unmodified ccxt.pro, against the emulator's user-data and market streams.

The emulator pushes what Binance pushes (markPriceUpdate, ACCOUNT_UPDATE,
ORDER_TRADE_UPDATE, listenKeyExpired); ccxt's websocket URLs are rewritten
to it as its REST URLs are. Waiting for a socket to deliver is bounded by a
generous deadline; nothing is decided by how long anything takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest

from hedgebot.config import Settings
from hedgebot.domain.model import OrderSide, PositionSide
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.streams import StreamedPort, StreamState, StreamSupervisor, attach_streams
from hedgebot.exchange.port import OrderRequest
from tests.emulator_rig import BTC, EmulatorRig, connect, emulator_rig
from hedgebot.commands.main import main
from tests.helpers import hedge_config, paper_settings_dict, write_toml

D = Decimal
SYMBOL = "BTC/USDT:USDT"
MARK = f"mark {SYMBOL}"
POSITIONS = f"positions {SYMBOL}"


async def until(condition: Callable[[], bool], what: str, deadline: float = 20.0) -> None:
    """Let the event loop run until `condition` holds; fail naming `what` if it never does."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.005)


def premium_polls(rig: EmulatorRig) -> int:
    """Return how many times the mark price was polled over REST."""
    return sum(1 for method, path in rig.emulator.requests if path == "/fapi/v1/premiumIndex")


async def streaming(rig: EmulatorRig, wake: Callable[[str, Any], None] | None = None) -> tuple[StreamedPort, StreamSupervisor]:
    await rig.venue.load_market(SYMBOL)
    attached = attach_streams(rig.venue, [SYMBOL], rig.clock, 10.0, wake or (lambda name, update: None))
    assert attached is not None, "ccxt.pro's binanceusdm offers websocket streams"
    port, supervisor = attached
    supervisor.start()
    await until(lambda: rig.hub is not None and rig.hub.mark_subscribers(BTC) >= 1, "the mark-price stream subscribes")
    rig.emulator.set_mark(BTC, D("50000"))
    await until(lambda: supervisor.live(MARK), "the first mark price arrives")
    return port, supervisor


async def test_a_pushed_position_change_wakes_the_keeper_within_one_event_loop_turn() -> None:
    async with emulator_rig(streams=True) as rig:
        keeper = rig.keeper(hedge_config())
        port, supervisor = await streaming(rig, lambda name, update: keeper.wake.set() if name == POSITIONS else None)
        await until(lambda: supervisor.live(POSITIONS), "the positions snapshot arrives")
        keeper.wake.clear()
        seen = next(h.messages for h in supervisor.health() if h.name == POSITIONS)
        # A trade hedgebot did not make (a person on the web UI, another bot) through another connection.
        other = connect(rig.url, rig.clock)
        await other.load_market(SYMBOL)
        await other.place_order(OrderRequest("manual1", SYMBOL, OrderSide.SELL, D("0.01"), PositionSide.SHORT))
        while next(h.messages for h in supervisor.health() if h.name == POSITIONS) == seen:
            assert not keeper.wake.is_set()
            await asyncio.sleep(0)
        # The turn that delivered the pushed update is the turn that woke the keeper.
        assert keeper.wake.is_set()
        positions = supervisor.last_update(POSITIONS)
        assert [(p["side"], p["contracts"]) for p in positions if p["contracts"]] == [("short", 0.01)]
        await other.close()
        await supervisor.stop()


async def test_a_dropped_stream_falls_back_to_polling_and_a_restored_one_stops_it() -> None:
    async with emulator_rig(streams=True) as rig:
        assert rig.hub is not None
        port, supervisor = await streaming(rig)
        before = premium_polls(rig)
        assert (await port.fetch_mark_price(SYMBOL)).price == D(50000)
        assert premium_polls(rig) == before, "a live stream answers without polling"

        await rig.hub.drop()
        await until(lambda: supervisor.state(MARK) is StreamState.DOWN, "the dropped stream is seen as down")
        assert supervisor.polling
        await port.fetch_mark_price(SYMBOL)
        assert premium_polls(rig) == before + 1, "while the stream is down the mark is polled"

        # The supervisor reconnects after its backoff; the next push makes the stream live again.
        await until(lambda: rig.hub.mark_subscribers(BTC) >= 1, "the mark-price stream subscribes again")
        rig.emulator.set_mark(BTC, D("50100"))
        await until(lambda: supervisor.live(MARK), "the restored stream delivers")
        polls = premium_polls(rig)
        assert (await port.fetch_mark_price(SYMBOL)).price == D(50100)
        assert premium_polls(rig) == polls, "the restored stream stops the polling"
        assert next(h for h in supervisor.health() if h.name == MARK).reconnects >= 1
        await supervisor.stop()


async def test_a_silent_stream_is_marked_stale_and_its_price_is_not_used() -> None:
    async with emulator_rig(streams=True) as rig:
        assert rig.hub is not None
        port, supervisor = await streaming(rig)
        rig.hub.mute()  # connected, but nothing more is said
        rig.emulator.set_mark(BTC, D("60000"))  # the exchange moved; the silent stream does not tell
        rig.clock.advance(11.0)  # past the 10 s staleness limit
        assert supervisor.state(MARK) is StreamState.STALE
        before = premium_polls(rig)
        quote = await port.fetch_mark_price(SYMBOL)
        assert quote.price == D(60000) and premium_polls(rig) == before + 1, "stale: the price comes from REST"
        rig.hub.mute(False)
        rig.emulator.set_mark(BTC, D("60010"))
        await until(lambda: supervisor.live(MARK), "the stream speaks again")
        await supervisor.stop()


async def test_an_expired_listen_key_is_a_reconnect_with_a_new_key() -> None:
    async with emulator_rig(streams=True) as rig:
        assert rig.hub is not None
        port, supervisor = await streaming(rig)
        await until(lambda: supervisor.live(POSITIONS) and rig.hub.user_sockets() >= 1, "the user-data stream connects")
        first = set(rig.hub.listen_keys)
        rig.hub.expire_listen_keys()
        await until(lambda: next(h.reconnects for h in supervisor.health() if h.name == POSITIONS) >= 1, "the expiry drops the stream")
        await until(lambda: bool(rig.hub.listen_keys) and set(rig.hub.listen_keys) != first, "a new listen key is asked for")
        await until(lambda: rig.hub.user_sockets() >= 1, "the user-data stream reconnects on the new key")
        await supervisor.stop()


async def test_the_listen_key_is_kept_alive() -> None:
    async with emulator_rig(streams=True) as rig:
        assert rig.hub is not None
        rig.venue.futures.options["listenKeyRefreshRate"] = 50  # ms: ccxt's keep-alive, sped up
        port, supervisor = await streaming(rig)
        await until(lambda: rig.hub.keepalives >= 1, "ccxt keeps the listen key alive with PUT /fapi/v1/listenKey")
        await supervisor.stop()


async def test_funding_and_forced_orders_on_the_user_stream_become_venue_events() -> None:
    async with emulator_rig(streams=True) as rig:
        events: list[Any] = []
        rig.venue.subscribe(events.append)
        port, supervisor = await streaming(rig)
        await until(lambda: rig.hub is not None and rig.hub.user_sockets() >= 1, "the user-data stream connects")
        await rig.venue.place_order(OrderRequest("hbS1", SYMBOL, OrderSide.SELL, D("0.1"), PositionSide.SHORT))
        rig.emulator.settle_funding(BTC, D("0.0001"))
        await until(lambda: any(e.kind == "funding" for e in events), "the FUNDING_FEE update arrives")
        funding = next(e for e in events if e.kind == "funding")
        assert (funding.symbol, funding.side, funding.amount) == (SYMBOL, "short", D("0.5"))  # 0.1 x 50,000 x 0.0001 received
        assert not any(e.kind in ("liquidation", "adl") for e in events), "our own orders are not surprises"
        await supervisor.stop()


async def test_a_daemon_whose_stream_is_cut_keeps_hedging_by_polling_and_says_so(tmp_path, capsys) -> None:
    async with emulator_rig(streams=True) as rig:
        assert rig.hub is not None
        data = paper_settings_dict(tmp_path)
        account = data["accounts"][0]
        account.update(mode="live", credentials={"api_key": {"env": "HB_TEST_KEY"}, "secret": {"env": "HB_TEST_SECRET"}})
        account.pop("paper", None)
        settings = Settings(**data)
        venue = rig.daemon_venue()
        daemon = Daemon(settings, rig.clock, allow_live=True, venue_factory=lambda a: venue)
        rig.publish_mark_every_second({"mark": D("50000")})
        await daemon.start()
        try:
            runtime = daemon.accounts[0]
            assert runtime.streams is not None
            await until(lambda: rig.short() > 0, "the hedge is opened")
            await until(lambda: not daemon.stream_status()[account["name"]]["polling"], "every stream is up")
            await rig.hub.cut()  # lasts until restored: whether a reconnect beats the next step is not left to chance
            await until(lambda: runtime.streams is not None and runtime.streams.polling, "the cut is noticed")
            status = daemon.stream_status()[account["name"]]
            assert status["polling"] is True
            assert any(s["state"] == "down" for s in status["streams"])
            short = rig.short()
            rig.emulator.deposit("spot", "BTC", D("0.5"))  # more to hedge, and no stream to tell
            for keeper in daemon.keepers:
                keeper.notify_balance()
            await until(lambda: rig.short() > short, "the keeper, polling, grows the short")
            daemon.write_status()
            written = (tmp_path / "state" / "status.json").read_text()
            assert '"polling": true' in written
            config = write_toml(tmp_path / "live.toml", data)
            assert main(["status", "--config", str(config)]) == 0
            shown = capsys.readouterr().out
            assert f"streams {account['name']}: REST polling stands in for a stream" in shown and "down" in shown
        finally:
            await daemon.stop()


def test_forced_orders_and_account_moves_on_the_user_stream_are_named() -> None:
    from hedgebot.exchange.dialects.binanceusdm import user_stream_events

    symbol_of = {"BTCUSDT": SYMBOL}.get
    liquidation = {
        "e": "ORDER_TRADE_UPDATE", "E": 1_790_000_000_000, "T": 1_790_000_000_000,
        "o": {"s": "BTCUSDT", "c": "autoclose-1790000000000123", "S": "BUY", "o": "LIMIT", "X": "FILLED", "l": "0.2", "z": "0.2",
              "ap": "61234.5", "L": "61234.5", "ps": "SHORT"},
    }
    adl = {**liquidation, "o": {**liquidation["o"], "c": "adl_autoclose", "l": "0.05"}}
    ours = {**liquidation, "o": {**liquidation["o"], "c": "hb01abc"}}
    moved = {
        "e": "ACCOUNT_UPDATE", "E": 1_790_000_000_000, "T": 1_790_000_000_000,
        "a": {"m": "MARGIN_TRANSFER", "B": [{"a": "USDT", "wb": "900", "cw": "900", "bc": "-100"}], "P": []},
    }
    [event] = user_stream_events(liquidation, symbol_of)  # type: ignore[arg-type]
    assert (event.kind, event.symbol, event.side, event.amount, event.price) == ("liquidation", SYMBOL, "short", D("0.2"), D("61234.5"))
    [event] = user_stream_events(adl, symbol_of)  # type: ignore[arg-type]
    assert (event.kind, event.amount) == ("adl", D("0.05"))
    assert user_stream_events(ours, symbol_of) == []  # type: ignore[arg-type]
    [event] = user_stream_events(moved, symbol_of)  # type: ignore[arg-type]
    assert (event.kind, event.amount, event.detail) == ("account_update", D("-100"), "USDT MARGIN_TRANSFER")


async def test_an_order_answered_503_and_executed_later_is_settled_by_the_user_stream_while_lookups_lag() -> None:
    # Lookups and the order history stay blind to the order for a minute; the user-data stream's
    # ORDER_TRADE_UPDATE settles it seconds after it executed: one execution, no halt.
    from hedgebot.engine.streams import route_order_updates
    from hedgebot.testing.binance_faults import Fault

    async with emulator_rig(streams=True, spot={"BTC": "1", "USDT": "0"}) as rig:
        keeper = rig.keeper(hedge_config())
        port, supervisor = await streaming(rig, lambda name, update: route_order_updates(rig.venue, [keeper], name, update))
        await until(lambda: rig.hub is not None and rig.hub.user_sockets() >= 1, "the user-data stream connects")
        await keeper.prepare()
        rig.emulator.lookup_lag_seconds = 60.0
        rig.emulator.inject(Fault("execute_later", "/fapi/v1/order", "POST", delay=1.0, retry_after=0))
        await keeper.tick()
        assert [i.status.value for i in rig.journal.intents()] == ["unknown"]
        rig.clock.advance(2.0)
        await rig.venue.fetch_legs(SYMBOL)  # the exchange carries the order out
        await until(lambda: bool(keeper._streamed), "the stream reports the executed order")
        await keeper.tick()
        [intent] = rig.journal.intents()
        assert intent.status.value == "done" and D(intent.outcome["filled"]) == D("1")
        assert rig.journal.events(kind="intent_settled")[0].detail["settled_by"] == "user_stream"
        assert len(rig.emulator.executions) == 1 and rig.short() == D("1")
        assert keeper.trading_state.value == "active"
        await supervisor.stop()
