"""Legs and balances from the user-data streams: REST only for the slow reconciliation, a reconnect, an action or a doubt.

Unmodified ccxt.pro talks to the Binance emulator's futures user stream (ACCOUNT_UPDATE) and spot WebSocket API
(outboundAccountPosition). Time is the rig's stepping clock; waiting for a socket is bounded by a generous deadline,
and nothing is decided by how long anything takes.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from hedgebot.engine.streams import StreamedPort, StreamSupervisor, attach_streams, route_order_updates
from hedgebot.exchange.streaming import AccountPush
from hedgebot.testing.binance_faults import Fault
from tests.emulator_rig import BTC, EmulatorRig, emulator_rig
from tests.helpers import hedge_config

D = Decimal
SYMBOL = "BTC/USDT:USDT"
RECONCILE = 600.0


async def until(condition: Callable[[], bool], what: str, deadline: float = 20.0) -> None:
    """Let the event loop run until `condition` holds; fail naming `what` if it never does."""
    loop = asyncio.get_running_loop()
    end = loop.time() + deadline
    while not condition():
        if loop.time() > end:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.005)


def reads(rig: EmulatorRig, path: str) -> int:
    """Return how many times `path` was read over REST."""
    return sum(1 for method, p in rig.emulator.requests if p == path and method == "GET")


POSITIONS, FUTURES_ACCOUNT, SPOT_ACCOUNT = "/fapi/v3/positionRisk", "/fapi/v3/account", "/api/v3/account"


async def streamed(rig: EmulatorRig, wake: Callable[[str, Any], None] | None = None) -> tuple[StreamedPort, StreamSupervisor]:
    """Attach the venue's streams and wait until both user-data streams carry the account."""
    await rig.venue.load_market(SYMBOL)
    attached = attach_streams(rig.venue, [SYMBOL], rig.clock, 10.0, wake or (lambda name, update: None), reconcile_seconds=RECONCILE)
    assert attached is not None
    port, supervisor = attached
    supervisor.start()
    rig.emulator.set_mark(BTC, D("50000"))
    await until(lambda: supervisor.connection("futures") is not None, "the futures user stream is live")
    await until(lambda: supervisor.connection("spot") is not None, "the spot user-data subscription stands")
    return port, supervisor


async def seeded(port: StreamedPort) -> None:
    """Read every figure once (the seed), then once more from the cache."""
    for _ in range(2):
        await port.fetch_legs(SYMBOL)
        await port.fetch_futures_balance("USDT")
        await port.fetch_spot_balances()


def counts(rig: EmulatorRig) -> tuple[int, int, int]:
    return reads(rig, POSITIONS), reads(rig, FUTURES_ACCOUNT), reads(rig, SPOT_ACCOUNT)


async def test_legs_and_balances_come_from_the_pushes_and_rest_is_read_only_when_the_reconciliation_is_due() -> None:
    async with emulator_rig(streams=True) as rig:
        port, supervisor = await streamed(rig)
        before = counts(rig)
        await seeded(port)
        assert counts(rig) == tuple(n + 1 for n in before), "one REST read seeds each figure; the second look is served"
        seeded_reads = counts(rig)

        # Money arrives from outside: Binance pushes it (ACCOUNT_UPDATE DEPOSIT, outboundAccountPosition).
        wallet = (await port.fetch_futures_balance("USDT")).wallet
        rig.emulator.deposit("futures", "USDT", D("1000"))
        rig.emulator.deposit("spot", "BTC", D("0.5"))
        await until(lambda: port.cache.peek("futures", "USDT").wallet == wallet + 1000, "the futures deposit is pushed")
        await until(lambda: port.cache.peek("spot", "").get("BTC") == D("1.5"), "the spot deposit is pushed")
        balance = await port.fetch_futures_balance("USDT")
        assert (balance.wallet, balance.free) == (wallet + 1000, wallet + 1000)
        assert (await port.fetch_spot_balances())["BTC"] == D("1.5")
        assert counts(rig) == seeded_reads, "what the streams pushed is served without a REST read"

        rig.clock.advance(RECONCILE * 1.125)  # due within 12.5 % of the interval, drawn apart for each account
        await seeded(port)
        assert counts(rig) == tuple(n + 1 for n in seeded_reads), "the slow reconciliation reads each figure once"
        await supervisor.stop()


async def test_a_stream_that_goes_down_makes_only_its_own_account_poll() -> None:
    async with emulator_rig(streams=True) as first, emulator_rig(streams=True) as second:
        assert first.hub is not None
        port_a, supervisor_a = await streamed(first)
        port_b, supervisor_b = await streamed(second)
        await seeded(port_a)
        await seeded(port_b)
        a, b = counts(first), counts(second)
        await first.hub.cut()
        await until(lambda: supervisor_a.connection("futures") is None and supervisor_a.connection("spot") is None,
                    "the cut account's streams are seen down")
        for _ in range(3):
            await seeded(port_a)
            await seeded(port_b)
        assert counts(first) == tuple(n + 6 for n in a), "the account whose streams are down reads REST at every look"
        assert counts(second) == b, "the other account, its streams up, still reads nothing"
        await supervisor_a.stop()
        await supervisor_b.stop()


async def test_a_reconnected_stream_has_the_account_read_over_rest_at_once_and_then_served_again() -> None:
    async with emulator_rig(streams=True) as rig:
        assert rig.hub is not None
        port, supervisor = await streamed(rig)
        await seeded(port)
        connection = supervisor.connection("futures")
        await rig.hub.drop()
        await until(lambda: supervisor.connection("futures") not in (None, connection), "the futures user stream is back")
        await until(lambda: supervisor.connection("spot") is not None, "the spot subscription is back")
        rig.emulator.deposit("futures", "USDT", D("1"))  # pushed while reconnected: the cache alone would have missed nothing
        before = counts(rig)
        await seeded(port)
        assert counts(rig)[:2] == (before[0] + 1, before[1] + 1), "pushes may have been lost while it was down: read at once"
        assert (await port.fetch_futures_balance("USDT")).wallet == D("100001")
        await supervisor.stop()


async def test_a_fill_whose_account_push_is_lost_is_read_over_rest_before_the_keeper_plans_again() -> None:
    async with emulator_rig(streams=True, spot={"BTC": "1", "USDT": "0"}) as rig:
        assert rig.hub is not None
        rig.hub.lose("ACCOUNT_UPDATE")  # Binance: pushes may be delayed or lost
        port, supervisor = await streamed(rig)
        keeper = rig.keeper(hedge_config(), port)
        await keeper.prepare()
        for _ in range(4):
            await keeper.tick()
        assert len(rig.emulator.executions) == 1 and rig.short() == D("1"), "one order: the fill was read, not ordered again"
        assert keeper.status.short == D("1")
        assert rig.hub.lost_count >= 1
        await supervisor.stop()


async def test_an_order_executed_late_with_its_account_push_lost_is_never_ordered_twice() -> None:
    # The order is answered 503 and carried out a second later; its ORDER_TRADE_UPDATE settles it, and the
    # ACCOUNT_UPDATE that would move the cached short is lost. The keeper must see the fill over REST.
    async with emulator_rig(streams=True, spot={"BTC": "1", "USDT": "0"}) as rig:
        assert rig.hub is not None
        rig.hub.lose("ACCOUNT_UPDATE")
        keepers: list[Any] = []
        port, supervisor = await streamed(rig, lambda name, update: route_order_updates(rig.venue, keepers, name, update))
        keeper = rig.keeper(hedge_config(), port)
        keepers.append(keeper)
        port.in_doubt = lambda: bool(rig.journal.open_intents(keeper.account))
        await keeper.prepare()
        await seeded(port)
        rig.emulator.inject(Fault("execute_later", "/fapi/v1/order", "POST", delay=1.0, retry_after=0))
        await keeper.tick()
        assert [i.status.value for i in rig.journal.intents()] == ["unknown"]
        rig.clock.advance(2.0)
        await rig.venue.fetch_mark_price(SYMBOL)  # any request: the exchange carries the order out
        await until(lambda: bool(keeper._streamed), "the stream reports the executed order")
        for _ in range(3):
            await keeper.tick()
        assert len(rig.emulator.executions) == 1 and rig.short() == D("1")
        assert [i.status.value for i in rig.journal.intents()] == ["done"]
        await supervisor.stop()


def test_a_push_that_arrives_while_a_figure_is_read_has_it_read_again() -> None:
    from hedgebot.domain.model import Leg, PositionSide
    from hedgebot.engine.account_cache import AccountCache
    from hedgebot.exchange.port import Legs

    now = [0.0]
    cache = AccountCache(lambda: now[0], 600.0)
    empty = Legs(Leg(PositionSide.LONG), Leg(PositionSide.SHORT))
    read = cache.start_read("legs", SYMBOL, 1)
    cache.apply(AccountPush(0.0, legs={(SYMBOL, PositionSide.SHORT): Leg(PositionSide.SHORT, D("1"), D("50000"), D("100"))}))
    cache.seed("legs", SYMBOL, empty, read)  # the REST answer may predate the push: which is newer cannot be told
    assert cache.get("legs", SYMBOL, 1) is None
    cache.seed("legs", SYMBOL, empty, cache.start_read("legs", SYMBOL, 1))
    assert cache.get("legs", SYMBOL, 1) == empty
    assert cache.get("legs", SYMBOL, 2) is None, "another connection: pushes may have been lost between"
    assert cache.get("legs", SYMBOL, None) is None, "a carrying stream that is not live serves nothing"


def test_a_futures_balance_is_not_served_from_the_pushes_while_a_cross_leg_is_open() -> None:
    from hedgebot.domain.model import Leg, PositionSide
    from hedgebot.engine.account_cache import AccountCache
    from hedgebot.exchange.port import FuturesBalance, Legs

    cache = AccountCache(lambda: 0.0, 600.0)
    cache.seed("futures", "USDT", FuturesBalance(D("1000"), D("900"), D("900")), cache.start_read("futures", "USDT", 1))
    cache.apply(AccountPush(0.0, futures={"USDT": (D("1100"), D("1000"))}))
    assert cache.get("futures", "USDT", 1) == FuturesBalance(D("1100"), D("1000"), D("1000")), "free moves with the cross wallet"
    cross_short = Legs(Leg(PositionSide.LONG), Leg(PositionSide.SHORT, D("1"), D("50000"), D("0")))
    cache.seed("legs", SYMBOL, cross_short, cache.start_read("legs", SYMBOL, 1))
    assert cache.get("futures", "USDT", 1) is None, "a cross leg's free balance moves with the price, which no push says"


def test_binances_hedge_mode_push_with_its_empty_both_row_moves_only_the_leg_it_names() -> None:
    # Binance's documented shape (USDⓈ-M "Event: Balance and Position Update"): in hedge mode the BOTH row of the
    # changed symbol is pushed too, empty; the SHORT row is the leg that changed.
    from hedgebot.domain.model import PositionSide
    from hedgebot.exchange.dialects.binanceusdm import account_push

    message = {
        "e": "ACCOUNT_UPDATE", "E": 1564745798939, "T": 1564745798938,
        "a": {"m": "ORDER", "B": [{"a": "USDT", "wb": "122624.12345678", "cw": "100.12345678", "bc": "50.12345678"}],
              "P": [{"s": "BTCUSDT", "pa": "0", "ep": "0.00000", "cr": "200", "up": "0", "mt": "isolated", "iw": "0.00000000", "ps": "BOTH"},
                    {"s": "BTCUSDT", "pa": "-0.010", "ep": "50000.0", "cr": "0", "up": "0", "mt": "isolated", "iw": "180.5", "ps": "SHORT"}]},
    }
    push = account_push(message, {"BTCUSDT": SYMBOL}.get)  # type: ignore[arg-type]
    assert push is not None
    assert list(push.legs) == [(SYMBOL, PositionSide.SHORT)]
    short = push.legs[(SYMBOL, PositionSide.SHORT)]
    assert (short.size, short.entry_price, short.margin) == (D("0.010"), D("50000.0"), D("180.5"))
    assert push.futures == {"USDT": (D("122624.12345678"), D("100.12345678"))}
    alone = {**message, "a": {**message["a"], "P": message["a"]["P"][:1]}}  # type: ignore[dict-item]
    pushed = account_push(alone, {"BTCUSDT": SYMBOL}.get)  # type: ignore[arg-type]
    assert pushed is not None and not pushed.legs and pushed.reread == {SYMBOL}, "an empty BOTH row alone: read the legs again"
    wrapped = account_push({"subscriptionId": 0, "event": {"e": "outboundAccountPosition", "E": 1, "u": 1,
                                                           "B": [{"a": "BTC", "f": "1.5", "l": "0.25"}]}}, str)
    assert wrapped is not None and wrapped.spot == {"BTC": D("1.75")}


async def test_a_spot_deposit_pushed_by_the_stream_grows_the_short_without_a_spot_account_read(tmp_path) -> None:
    from hedgebot.config import Settings
    from hedgebot.engine.daemon import Daemon
    from tests.helpers import paper_settings_dict

    async with emulator_rig(streams=True) as rig:
        data = paper_settings_dict(tmp_path, tick_seconds=10, staleness_seconds=90)
        account = data["accounts"][0]
        account.pop("paper", None)
        account.update(mode="live", credentials={"api_key": {"env": "HB_UNUSED"}, "secret": {"env": "HB_UNUSED"}})
        data["http"] = {"enabled": False}
        venue = rig.daemon_venue()
        daemon = Daemon(Settings(**data), rig.clock, allow_live=True, venue_factory=lambda _a: venue)
        rig.publish_mark_every_second({"mark": D("50000")})
        await daemon.start()
        try:
            await until(lambda: rig.short() == D("1") and not daemon.stream_status()[account["name"]]["polling"],
                        "the hedge is opened with its streams up")
            keeper = daemon.keepers[0]
            await until(lambda: keeper.status.state == "hedged", "the hedge settles")
            mark = len(rig.emulator.requests)
            rig.emulator.deposit("spot", "BTC", D("0.5"))  # Binance pushes outboundAccountPosition
            await until(lambda: rig.short() == D("1.5"), "the keeper grows the short to the pushed holding")
            after = rig.emulator.requests[mark:]
            order = after.index(("POST", "/fapi/v1/order"))
            assert ("GET", SPOT_ACCOUNT) not in after[:order], f"the deposit came from the push, not a REST read: {after[:order]}"
        finally:
            await daemon.stop()


def test_the_reconciliations_of_accounts_started_together_fall_due_at_different_times() -> None:
    from hedgebot.engine.account_cache import AccountCache

    def first_rest_read(seed: int) -> int:
        now = [0.0]
        cache = AccountCache(lambda: now[0], 1200.0, seed=seed)
        cache.seed("spot", "", {}, cache.start_read("spot", "", 1))  # every account seeded at the same instant
        while cache.get("spot", "", 1) is not None:
            now[0] += 1
        return int(now[0])

    dues = [first_rest_read(seed) for seed in range(20)]
    assert all(1050 <= due <= 1350 for due in dues) and len(set(dues)) >= 10, dues


async def test_a_venue_that_streams_none_of_its_futures_feeds_keeps_its_spot_wallet_on_rest_too() -> None:
    from hedgebot.exchange.ccxt_venue import CcxtVenue
    from hedgebot.exchange.dialects.binancecoinm import BinanceCoinm
    from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
    from hedgebot.testing.clock import SteppingClock

    clock = SteppingClock(0.0)
    coinm = CcxtVenue.connect(BinanceCoinm(), clock, api_key="k", secret="s", rate_limit=False)
    usdm = CcxtVenue.connect(BinanceUsdm(), clock, api_key="k", secret="s", rate_limit=False)
    try:
        assert coinm.stream_specs(["BTC/USD:BTC"], 30.0) == [], "COIN-M streams nothing yet: its keeper reads REST"
        names = [spec.name for spec in usdm.stream_specs([SYMBOL], 30.0)]
        assert "spot_balance" in names and "balance" in names
        carried = {spec.name: spec.carries for spec in usdm.stream_specs([SYMBOL], 30.0) if spec.carries}
        assert carried == {"balance": frozenset({"futures"}), "spot_balance": frozenset({"spot"})}
    finally:
        await coinm.close()
        await usdm.close()
