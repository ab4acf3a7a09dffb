"""The keeper on a paper venue in simulated time: hedging, the margin guard, alerts."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import pytest

from hedgebot.clock import SimClock
from hedgebot.domain.margin import liquidation_price, liquidation_price_of
from hedgebot.domain.model import MarginMode, OrderSide, PositionSide, Wallet
from hedgebot.domain.trading import TradingState
from hedgebot.engine.keeper import Keeper, StartupRefused
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.funding import ConstantFunding
from hedgebot.exchange.paper import PaperMarket, PaperVenue
from hedgebot.exchange.port import InvalidOrder, OrderRequest, RequestTimeout
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from tests.helpers import D, SYMBOL, btc_market, hedge_config, make_rig


async def test_hedge_is_established_from_zero() -> None:
    rig = await make_rig(spot={"BTC": "2.5"})
    await rig.keeper.tick()
    assert await rig.short() == D("2.5")
    assert rig.keeper.status.state == "hedged"
    assert rig.events.counts["hedge_opened"] == 1


async def test_spot_increase_grows_the_short() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.6"))
    await rig.set_price("50000")
    await rig.keeper.tick()
    assert await rig.short() == D("1.6")


async def test_spot_decrease_shrinks_the_short_first() -> None:
    rig = await make_rig(spot={"BTC": "2"})
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("-1.2"))
    await rig.set_price("50000")
    before = len(rig.venue.orders)
    await rig.keeper.tick()
    first_new = list(rig.venue.orders.values())[before]
    assert (first_new.side.value, first_new.position_side.value) == ("buy", "short")
    assert await rig.short() == D("0.8")


async def test_drift_inside_the_band_trades_nothing() -> None:
    rig = await make_rig(spot={"BTC": "2"}, hedge=hedge_config(band=D("0.05")))
    await rig.keeper.tick()
    orders = len(rig.venue.orders)
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.08"))  # 4 % drift, band 5 %
    await rig.set_price("50000")
    await rig.keeper.tick()
    assert len(rig.venue.orders) == orders and rig.keeper.status.state == "hedged"


async def test_out_of_band_drift_is_traded_back_to_the_target_not_the_band_edge() -> None:
    rig = await make_rig(spot={"BTC": "2"}, hedge=hedge_config(band=D("0.05"), max_order=D("0.1")))
    await rig.keeper.tick()
    assert await rig.short() == D("2")


async def test_ratio_half_keeps_half_hedged() -> None:
    rig = await make_rig(spot={"BTC": "3"}, hedge=hedge_config(ratio=D("0.5")))
    await rig.keeper.tick()
    assert await rig.short() == D("1.5")
    status = rig.keeper.status
    assert status.ratio == D("0.5") and status.target_ratio == D("0.5")


async def test_stale_price_trades_nothing() -> None:
    rig = await make_rig(spot={"BTC": "2"}, hedge=hedge_config(staleness_seconds=30))
    await rig.clock.advance(60)  # no price update for a minute
    await rig.keeper.tick()
    assert rig.venue.orders == {} and rig.keeper.status.state == "blocked"
    await rig.set_price("50000", advance=1)
    await rig.keeper.tick()
    assert await rig.short() == D("2")


async def test_a_price_jump_is_traded_only_once_a_second_reading_confirms_it() -> None:
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "300000"}, hedge=hedge_config(leverage=1))
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("1"))
    await rig.set_price("70000")  # +40 %: suspicious
    await rig.keeper.tick()
    assert await rig.short() == D("1")
    await rig.set_price("70100")  # confirmed
    await rig.keeper.tick()
    assert await rig.short() == D("2")


async def test_every_action_is_journaled_with_its_client_id_and_outcome() -> None:
    rig = await make_rig(spot={"BTC": "2.2"}, hedge=hedge_config(max_order=D("1")))
    await rig.keeper.tick()
    intents = rig.journal.intents()
    assert [i.status.value for i in intents] == ["done"] * 3
    assert {i.client_id for i in intents} == set(rig.venue.orders)
    assert sum(D(i.outcome["filled"]) for i in intents) == D("2.2")


# ---- the margin guard -------------------------------------------------------------


async def _rally(rig, prices: list[str]) -> None:
    for price in prices:
        await rig.set_price(price, high=price, advance=3600)
        await rig.keeper.tick()


RALLY = [str(p) for p in range(50_000, 100_001, 2_500)]


async def test_a_rally_with_the_guard_on_ends_with_no_liquidation_and_every_topup_logged() -> None:
    rig = await make_rig(spot={"BTC": "1", "USDT": "200000"}, futures={"USDT": "17000"})
    await rig.keeper.tick()
    await _rally(rig, RALLY)
    assert [e for e in rig.venue.events if e.kind == "liquidation"] == []
    topups = [i for i in rig.journal.intents() if i.kind == "margin"]
    transfers = [i for i in rig.journal.intents() if i.kind == "transfer"]
    assert topups and all(i.status.value == "done" and i.detail["reason"] == "margin top-up" for i in topups)
    assert transfers and all(i.detail["from"] == "spot" for i in transfers)
    logged = rig.journal.events(kind="margin_adjusted")
    assert len(logged) == len(topups) and all(e.detail["source"].startswith("futures wallet") for e in logged)
    assert rig.keeper.status.distance >= D("0.20")
    assert await rig.short() == D("1")


async def test_a_rally_with_the_guard_off_liquidates_the_short_at_the_predicted_price() -> None:
    rig = await make_rig(
        spot={"BTC": "1", "USDT": "200000"}, futures={"USDT": "17000"},
        hedge=hedge_config(margin_guard={"enabled": False}), funding=ConstantFunding(D(0)),
    )
    await rig.keeper.tick()
    leg = (await rig.venue.fetch_legs(SYMBOL)).short
    predicted = liquidation_price("short", leg.size, leg.entry_price, leg.margin, btc_market().brackets)
    await _rally(rig, RALLY)
    liquidations = [e for e in rig.venue.events if e.kind == "liquidation"]
    assert liquidations and liquidations[0].price == predicted


async def test_with_no_funds_anywhere_a_critical_alert_is_raised_and_repeated_while_it_lasts_and_nothing_crashes() -> None:
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "17000"})
    await rig.keeper.tick()
    for price in ("55000", "58000", "60000", "61000", "62000"):
        await rig.set_price(price, advance=600)
        await rig.keeper.tick()
    alerts = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "margin_unfunded"]
    assert len(alerts) >= 2 and all(e.severity == "critical" for e in alerts)
    assert [e.detail["state"] for e in alerts] == ["raised"] + ["repeated"] * (len(alerts) - 1)
    assert rig.keeper.status.state == "alert"
    before = len(alerts)
    await rig.set_price("62000", advance=900)
    await rig.keeper.tick()
    assert len([e for e in rig.journal.events(kind="alert") if e.detail["code"] == "margin_unfunded"]) == before + 1


async def test_selling_spot_funds_margin_by_reducing_the_short_first_then_selling() -> None:
    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "34000"}, hedge=hedge)
    await rig.keeper.tick()
    await _rally(rig, ["55000", "60000"])  # at 60,000 the short is 10 % from liquidation and no stablecoin is left
    kinds = [(i.kind, i.detail.get("symbol"), i.detail.get("side")) for i in rig.journal.intents()]
    sale = kinds.index(("order", "BTC/USDT", "sell"))
    assert kinds[sale - 1] == ("order", SYMBOL, "buy"), "the short is reduced before the spot is sold"
    assert kinds[sale + 1 : sale + 3] == [("transfer", None, None), ("margin", SYMBOL, None)], "then the proceeds go onto the leg"
    # Every sale's proceeds reached the short: nothing idles in spot.
    assert rig.venue.spot.get("USDT", D(0)) < D("0.01")
    # Sold no more than the margin needed plus the 2 % sale buffer: the short sits at the target, not far beyond.
    assert D("0.35") <= rig.keeper.status.distance < D("0.36")
    sold = D("2") - rig.venue.spot["BTC"]
    assert D(0) < sold < D("0.37"), "a sale sized without the margin the reduction frees would be 0.49"
    await _rally(rig, ["64000", "68000", "72000"])
    assert [e for e in rig.venue.events if e.kind == "liquidation"] == []
    spot_btc = rig.venue.spot["BTC"]
    assert spot_btc < D("2") and abs(await rig.short() - spot_btc) <= D("0.001") + spot_btc * D("0.02")


async def test_spare_margin_is_released_back_to_spot_only_when_opted_in() -> None:
    # After a fall the short's margin is spare; Binance lets it go down to the initial margin at the mark.
    async def fallen(guard: dict) -> Any:
        rig = await make_rig(spot={"BTC": "1", "USDT": "0"}, futures={"USDT": "20000"}, hedge=hedge_config(margin_guard=guard))
        await rig.keeper.tick()
        for price in ("45000", "40000", "35000"):
            await rig.set_price(price)
            await rig.keeper.tick()
        return rig

    rig = await fallen({"release": D("0.8")})
    leg = (await rig.venue.fetch_legs(SYMBOL)).short
    assert rig.venue.spot["USDT"] > 0
    assert leg.margin >= leg.size * D("35000") / 3
    assert D("0.35") <= rig.keeper.status.distance <= D("0.8")
    plain = await fallen({})
    assert plain.venue.spot["USDT"] == 0


async def test_under_cross_margin_a_topup_is_a_transfer_into_the_futures_wallet() -> None:
    rig = await make_rig(
        spot={"BTC": "1", "USDT": "200000"}, futures={"USDT": "20000"}, hedge=hedge_config(margin_mode="cross")
    )
    await rig.keeper.tick()
    await _rally(rig, RALLY)
    assert [e for e in rig.venue.events if e.kind == "liquidation"] == []
    kinds = {i.kind for i in rig.journal.intents()}
    assert "transfer" in kinds and "margin" not in kinds
    assert rig.keeper.status.distance >= D("0.20")


async def test_an_unexpected_error_raises_a_critical_event_and_the_keeper_keeps_watching() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    broken = True
    real_observe = rig.keeper.observe

    async def flaky_observe():
        if broken:
            raise ZeroDivisionError("a bug")
        return await real_observe()

    rig.keeper.observe = flaky_observe
    task = asyncio.create_task(rig.keeper.run())
    await rig.clock.advance(25)
    errors = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "keeper_error"]
    assert len(errors) == 1 and errors[0].severity == "critical" and not task.done()
    assert rig.keeper.status.state == "alert"
    broken = False
    await rig.clock.advance(10)
    assert [e.detail["code"] for e in rig.journal.events(kind="alert_resolved")] == ["keeper_error"]
    assert await rig.short() == D("1")
    rig.keeper.stop()
    await rig.clock.advance(10)
    assert task.done()


async def test_a_partly_filled_reduction_limits_the_spot_sale_so_the_account_is_never_net_short() -> None:
    from hedgebot.domain.model import RaiseFromSpot

    hedge = hedge_config(margin_guard={"sources": ["sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "40000"}, hedge=hedge)
    await rig.keeper.tick()
    rig.venue.fill_model = type(rig.venue.fill_model)(partial_probability=1.0, seed=5)  # every fill is partial now
    snapshot = await rig.keeper.observe()
    assert await rig.keeper._execute(RaiseFromSpot(D("0.5"), D("0.5"), "test"), snapshot)
    short, spot = await rig.short(), rig.venue.spot["BTC"]
    assert short < D("2") and short <= spot, (short, spot)


# ---- issue 7: failures, liquidations, jumps and stale readings --------------------


class _Wrapped:
    """Wraps the paper venue: everything passes through unless a subclass says otherwise."""

    name = "wrapped"

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class RefuseSpotSales(_Wrapped):
    """Wraps the paper venue; refuses every spot sale while `refuse` is set."""

    refuse = True

    async def place_order(self, request: OrderRequest) -> Any:
        if self.refuse and ":" not in request.symbol and request.side is OrderSide.SELL:
            raise InvalidOrder("scripted: spot trading is suspended")
        return await self.inner.place_order(request)


async def _sale_refused_rig() -> tuple[Any, Decimal]:
    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "34000"}, hedge=hedge, port_wrapper=RefuseSpotSales)
    await rig.keeper.tick()
    await _rally(rig, ["55000", "60000"])
    return rig, await rig.short()


async def test_a_failed_spot_sale_stops_further_reductions_with_a_critical_alert() -> None:
    rig, after_failure = await _sale_refused_rig()
    assert after_failure < D("2"), "the reduction went through before the sale failed"
    shorts = []
    for price in ("61000", "62000", "63000", "63500"):
        await _rally(rig, [price])
        shorts.append(await rig.short())
    assert min(shorts) >= after_failure, f"reduced again after a failed sale: {shorts}"
    critical = [e for e in rig.journal.events(kind="alert") if e.severity == "critical" and e.detail["code"] == "margin_sale_failed"]
    assert critical and "sale" in critical[0].detail["message"]
    # Once the venue sells again, the held sale goes through and the margin is restored.
    rig.keeper.port.refuse = False
    await _rally(rig, ["63500"])
    assert rig.venue.spot["BTC"] < D("2") and rig.keeper.status.distance >= D("0.20")


class SpotSaleAnsweredLate(_Wrapped):
    """Wraps the paper venue as Binance spot may behave: the first spot sale executes, its answer is lost,
    and lookups do not see it for `lag` seconds. A reused client id would be accepted (spot allows it
    once the earlier order has filled), so only the keeper can prevent a second sale."""

    settle_seconds = 60.0
    lag = 40.0

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.sales: list[Decimal] = []
        self.hidden_until: dict[str, float] = {}

    async def place_order(self, request: OrderRequest) -> Any:
        result = await self.inner.place_order(request)
        if ":" not in request.symbol and request.side is OrderSide.SELL:
            self.sales.append(result.filled)
            if len(self.sales) == 1:
                self.hidden_until[request.client_id] = self.inner.clock.now() + self.lag
                raise RequestTimeout("scripted: the answer to the spot sale was lost")
        return result

    async def fetch_order(self, symbol: str, client_id: str) -> Any:
        if self.inner.clock.now() < self.hidden_until.get(client_id, 0.0):
            return None
        return await self.inner.fetch_order(symbol, client_id)


async def test_a_margin_sale_whose_answer_is_lost_is_never_sold_twice_and_its_proceeds_reach_the_margin() -> None:
    hedge = hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "2"}, futures={"USDT": "34000"}, hedge=hedge, port_wrapper=SpotSaleAnsweredLate)
    await rig.keeper.tick()
    quote_before = rig.venue.spot.get("USDT", D(0))
    for _ in range(3):
        await rig.set_price("60000", high="60000", advance=10)  # the guard sells to fund the margin
        await rig.keeper.tick()
    for _ in range(12):
        await rig.set_price("60000", high="60000", advance=10)
        await rig.keeper.tick()
    port = rig.keeper.port
    assert len(port.sales) == 1, f"the margin sale went out {len(port.sales)} times: {port.sales}"
    assert not rig.journal.open_intents("acct", rig.keeper.hedge.name)
    # The late-settled sale's proceeds left spot for the futures wallet, and the hold was lifted.
    assert rig.venue.spot.get("USDT", D(0)) - quote_before < D("1")
    assert rig.keeper._held_sale is None
    assert rig.keeper.status.distance >= D("0.20")


async def test_status_after_a_failed_action_comes_from_the_latest_observation() -> None:
    rig, after_failure = await _sale_refused_rig()
    assert rig.keeper.status.short == after_failure < D("2")


async def test_after_a_liquidation_the_short_is_reopened_only_when_its_margin_can_reach_the_target() -> None:
    hedge = hedge_config(leverage=5, margin_guard={"sources": ["futures_wallet"]})
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "40000"}, hedge=hedge, funding=ConstantFunding(D(0)))
    await rig.keeper.tick()
    assert await rig.short() == D("1")
    await rig.set_price("75000", high="75000")  # +50 % in one candle: past the guard's reach
    assert [e.kind for e in rig.venue.events if e.kind == "liquidation"] == ["liquidation"]
    for price in ("75100", "75200", "75300", "75400"):
        await rig.set_price(price)
        await rig.keeper.tick()
    assert await rig.short() == 0, "re-opened with too little margin to keep it alive"
    held = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "reopen_unfunded"]
    assert held and held[0].severity == "critical" and "USDT" in held[0].detail["message"]
    rig.venue.deposit(Wallet.FUTURES, "USDT", D("10000"))
    await rig.set_price("75400")
    await rig.keeper.tick()
    assert await rig.short() == D("1") and rig.keeper.status.distance >= D("0.35")


async def test_a_sustained_fast_move_is_confirmed_by_consecutive_readings() -> None:
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "1000000"}, hedge=hedge_config(leverage=1))
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("1"))
    for price in ("58000", "67280", "78045"):  # +16 % a reading, each beyond the 15 % jump guard
        await rig.set_price(price)
        await rig.keeper.tick()
    assert await rig.short() == D("2")
    assert rig.events.counts["price_jump_confirmed"] >= 1


async def test_a_margin_topup_goes_ahead_on_an_unconfirmed_jump_but_growth_waits() -> None:
    rig = await make_rig(spot={"BTC": "1", "USDT": "100000"}, futures={"USDT": "17000"})
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.5"))
    await rig.set_price("59000")  # +18 %: unconfirmed, and only 12 % from liquidation
    await rig.keeper.tick()
    leg = (await rig.venue.fetch_legs(SYMBOL)).short
    assert liquidation_price_of(leg.margin, [leg], btc_market().brackets) >= D("59000") * D("1.35") - 1
    assert leg.size == D("1"), "growing the short waits for a confirmed price"


async def test_cross_margin_counts_only_the_cross_wallet_not_isolated_margin_of_other_contracts() -> None:
    clock = SimClock(start=1_600_000_000.0)
    eth = default_market("ETH/USDT:USDT")
    assert eth is not None
    venue = PaperVenue(
        clock,
        [PaperMarket(btc_market(), margin_mode=MarginMode.CROSS), PaperMarket(eth, margin_mode=MarginMode.ISOLATED, leverage=3)],
        spot={"BTC": D("1")}, futures={"USDT": D("40000")},
    )
    venue.update_price(SYMBOL, clock.now(), D("50000"))
    venue.update_price(eth.symbol, clock.now(), D("3000"))
    await venue.place_order(OrderRequest("eth-short", eth.symbol, OrderSide.SELL, D("10"), PositionSide.SHORT))
    journal = Journal(":memory:", clock)
    keeper = Keeper("acct", hedge_config(margin_mode="cross"), venue, clock, journal, EventLog(journal, NullLogger()))
    await keeper.prepare()
    await keeper.tick()
    short = (await venue.fetch_legs(SYMBOL)).short
    assert short.size == D("1")
    assert keeper.status.liquidation_price == liquidation_price_of(venue.cash["USDT"], [short], btc_market().brackets)


class SlowPrice(_Wrapped):
    """Wraps the paper venue; the mark price answers 40 s late, freshly stamped."""

    clock: Any = None

    async def fetch_mark_price(self, symbol: str) -> Any:
        if self.clock is not None:  # slow only once the test says so
            await self.clock.sleep(40)
            self.inner.update_price(symbol, self.clock.now(), self.inner.marks[symbol][0])
        return await self.inner.fetch_mark_price(symbol)


async def test_balances_older_than_the_staleness_limit_trade_nothing() -> None:
    rig = await make_rig(spot={"BTC": "1"}, hedge=hedge_config(staleness_seconds=30), port_wrapper=SlowPrice)
    rig.keeper.port.clock = rig.clock
    await rig.clock.run(rig.keeper.tick())
    assert rig.venue.orders == {} and rig.keeper.status.state == "blocked" and "stale" in rig.keeper.status.note


async def test_a_max_order_below_the_market_minimum_is_refused_at_start() -> None:
    with pytest.raises(StartupRefused, match="max_order"):
        await make_rig(hedge=hedge_config(min_order=D("0.0001"), max_order=D("0.0005")))
    with pytest.raises(StartupRefused, match="max_order"):
        await make_rig(hedge=hedge_config(max_order=D("0.0015")))  # 0.001 BTC at 50,000 is below 100 USDT


class StopAfterFirstOrder(_Wrapped):
    """Wraps the paper venue; asks the keeper to stop as soon as one order has filled."""

    keeper: Any = None

    async def place_order(self, request: OrderRequest) -> Any:
        result = await self.inner.place_order(request)
        self.keeper.stop()
        return result


async def test_a_stopped_keeper_finishes_the_order_in_flight_and_sends_no_other() -> None:
    rig = await make_rig(spot={"BTC": "20"}, futures={"USDT": "1000000"}, hedge=hedge_config(max_order=D("1")), port_wrapper=StopAfterFirstOrder)
    rig.keeper.port.keeper = rig.keeper
    await rig.keeper.tick()
    assert len(rig.venue.orders) == 1 and await rig.short() == D("1")


async def test_status_shows_the_runway_and_warns_when_it_is_short() -> None:
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "17500"})
    await rig.keeper.tick()
    status = rig.keeper.status
    assert status.runway_price is not None and status.runway_price > status.mark
    assert status.runway == (status.runway_price / status.mark - 1)
    assert status.runway < D("0.30")
    warned = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "runway_short"]
    assert warned and warned[0].severity == "warning"
    json_ready = status.to_json()
    assert abs(D(json_ready["runway_price"]) - status.runway_price) <= btc_market().price_step


# ---- issue 17: the guard on real accounts -------------------------------------------


class RefuseTransfers(_Wrapped):
    """Wraps the paper venue; refuses every transfer between wallets while `refuse` is set."""

    refuse = True

    async def transfer(self, asset: str, amount: Decimal, source: Wallet, destination: Wallet) -> Any:
        if self.refuse:
            raise InvalidOrder("scripted: transfers are suspended")
        return await self.inner.transfer(asset, amount, source, destination)


async def test_an_unwind_closes_the_short_even_when_every_margin_topup_is_refused() -> None:
    rig = await make_rig(
        spot={"BTC": "1", "USDT": "100000"}, futures={"USDT": "17000"}, hedge=hedge_config(max_order=D("0.25")),
        port_wrapper=RefuseTransfers,
    )
    await rig.keeper.tick()
    assert await rig.short() == D("1")
    rig.keeper.control.submit("acct", "btc", "unwind", "tester", "closing")
    await rig.set_price("62000", high="62000")
    await rig.keeper.tick()
    assert [i for i in rig.journal.intents() if i.kind == "transfer" and i.status.value == "rejected"], "the top-up was tried"
    assert await rig.short() == 0, "the unwind's slices waited behind a top-up that cannot go through"
    assert [e for e in rig.venue.events if e.kind == "liquidation"] == []


async def test_a_refused_transfer_still_posts_the_futures_wallet_share_of_the_topup_and_retries_the_rest() -> None:
    rig = await make_rig(spot={"BTC": "1", "USDT": "100000"}, futures={"USDT": "21000"}, port_wrapper=RefuseTransfers)
    await rig.keeper.tick()
    idle = (await rig.venue.fetch_futures_balance("USDT")).free
    assert idle > D("4000")
    margin_before = (await rig.venue.fetch_legs(SYMBOL)).short.margin
    await rig.set_price("62000", high="62000")
    await rig.keeper.tick()
    leg = (await rig.venue.fetch_legs(SYMBOL)).short
    assert leg.margin - margin_before >= idle - D("0.01"), "the free futures balance was left idle beside a short in danger"
    await rig.set_price("62000")
    await rig.keeper.tick()
    refused = [i for i in rig.journal.intents() if i.kind == "transfer" and i.status.value == "rejected"]
    assert len(refused) >= 2, "the refused transfer is tried again"
    rig.keeper.port.refuse = False
    await rig.set_price("62000")
    await rig.keeper.tick()
    assert rig.keeper.status.distance >= D("0.34")


@pytest.mark.parametrize("sources", [("spot_stablecoin", "futures_wallet"), ("spot_stablecoin",)])
async def test_money_moved_for_a_topup_reaches_the_leg_whatever_the_order_of_sources(sources: tuple[str, ...]) -> None:
    hedge = hedge_config(margin_guard={"sources": list(sources)})
    rig = await make_rig(spot={"BTC": "1", "USDT": "50000"}, futures={"USDT": "16700"}, hedge=hedge)
    await rig.keeper.tick()
    margin_before = (await rig.venue.fetch_legs(SYMBOL)).short.margin
    free_before = (await rig.venue.fetch_futures_balance("USDT")).free
    spot_before = rig.venue.spot["USDT"]  # opening the short may have drawn a little from spot already
    await rig.set_price("62000", high="62000")
    await rig.keeper.tick()
    added = (await rig.venue.fetch_legs(SYMBOL)).short.margin - margin_before
    moved = spot_before - rig.venue.spot["USDT"]
    free_after = (await rig.venue.fetch_futures_balance("USDT")).free
    assert added > 0 and rig.keeper.status.distance >= D("0.34")
    assert moved <= added + D("0.01"), f"moved {moved} out of spot for a top-up of {added}"
    assert free_after <= free_before + D("0.01"), "money moved for the top-up sits idle in the futures wallet"


async def _restart(rig: Any) -> Keeper:
    """Start a new keeper on the same venue and journal, as a restarted daemon would: nothing kept in memory."""
    keeper = Keeper("acct", rig.keeper.hedge, rig.keeper.port, rig.clock, rig.journal, rig.events)
    await keeper.prepare()
    rig.keeper = keeper
    return keeper


async def test_a_restart_after_a_liquidation_keeps_the_reopen_guard_and_does_not_reopen_an_unfunded_short() -> None:
    hedge = hedge_config(leverage=5, margin_guard={"sources": ["futures_wallet"]})
    rig = await make_rig(spot={"BTC": "1"}, futures={"USDT": "40000"}, hedge=hedge, funding=ConstantFunding(D(0)))
    await rig.keeper.tick()
    await rig.set_price("75000", high="75000")  # liquidated
    await rig.set_price("75100")
    await rig.keeper.tick()
    assert await rig.short() == 0
    await _restart(rig)
    for price in ("75200", "75300"):
        await rig.set_price(price)
        await rig.keeper.tick()
    assert await rig.short() == 0, "a restart re-opened the short without the funding check"
    held = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "reopen_unfunded"]
    assert held and held[-1].severity == "critical"


async def test_a_restart_after_a_failed_margin_sale_does_not_cut_the_short_again() -> None:
    rig, after_failure = await _sale_refused_rig()
    for price in ("61000", "62000", "63000"):
        await _restart(rig)
        await _rally(rig, [price])
        assert await rig.short() >= after_failure, "a restart lifted the failed-sale hold and the short was cut again"
    assert rig.venue.spot["BTC"] == D("2")


async def test_breaker_counts_survive_a_restart() -> None:
    from tests.engine.test_trading_states import Rejecting
    from hedgebot.domain.trading import TradingState

    rig = await make_rig(spot={"BTC": "1"}, port_wrapper=Rejecting, hedge=hedge_config(breakers={"max_rejections": 3}))
    rig.keeper.port.reject = True
    for _ in range(2):
        await rig.set_price("50000", advance=10)
        await rig.keeper.tick()
    await _restart(rig)
    await rig.set_price("50000", advance=10)
    await rig.keeper.tick()
    assert rig.keeper.trading_state is TradingState.HALTED, "a restart forgot the rejections counted before it"


# ---- issue 19: never silently under-hedged ---------------------------------------------


async def test_a_hedge_the_margin_cannot_fund_raises_a_critical_under_hedged_alert_at_its_first_tick() -> None:
    hedge = hedge_config(leverage=3, margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "10"}, futures={"USDT": "50000"}, hedge=hedge)
    await rig.keeper.tick()
    assert await rig.short() < D("4")
    raised = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "under_hedged"]
    assert raised and raised[0].severity == "critical"
    assert "no margin" in raised[0].detail["cause"] and D(raised[0].detail["missing"]) > D("6")


async def test_an_under_hedge_that_outlasts_the_limit_is_alerted_once_and_resolved_back_in_band() -> None:
    from tests.engine.test_trading_states import Rejecting

    hedge = hedge_config(underhedge_alert_after=300, breakers={"max_rejections": 1000})
    rig = await make_rig(spot={"BTC": "1"}, hedge=hedge, port_wrapper=Rejecting)
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("1"))
    rig.keeper.port.reject = True
    for _ in range(5):  # 4 minutes outside the band: not yet
        await rig.set_price("50000", advance=60)
        await rig.keeper.tick()
    assert "under_hedged" not in rig.keeper.alerts.active
    for _ in range(5):
        await rig.set_price("50000", advance=60)
        await rig.keeper.tick()
    raised = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "under_hedged"]
    assert len(raised) == 1 and D(raised[0].detail["missing"]) == D("1")
    rig.keeper.port.reject = False
    await rig.set_price("50000", advance=60)
    await rig.keeper.tick()
    resolved = [e for e in rig.journal.events(kind="alert_resolved") if e.detail["code"] == "under_hedged"]
    assert resolved and D(resolved[0].detail["short"]) == D("2")


async def test_a_closed_hedge_raises_no_under_hedged_alert() -> None:
    rig = await make_rig(spot={"BTC": "1"}, hedge=hedge_config(underhedge_alert_after=0))
    await rig.keeper.tick()
    rig.keeper.control.submit("acct", "btc", "unwind", "tester", "closing")
    for _ in range(3):
        await rig.set_price("50000", advance=600)
        await rig.keeper.tick()
    assert await rig.short() == 0
    assert not [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "under_hedged"]


# ---- issue 18: a journal that cannot be written -----------------------------------------


async def test_a_journal_locked_by_another_connection_sends_nothing_alerts_the_senders_and_resumes_by_itself(tmp_path) -> None:
    import sqlite3

    path = tmp_path / "journal.sqlite"
    rig = await make_rig(spot={"BTC": "1"}, journal_path=str(path))
    heard: list[Any] = []
    rig.events.subscribe(heard.append)
    await rig.keeper.tick()
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.8"))
    other = sqlite3.connect(path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    for _ in range(3):
        await rig.set_price("50000", advance=10)
        assert await rig.keeper.tick() is None
    assert await rig.short() == D("1"), "an order was sent that the journal could not record"
    critical = [r for r in heard if r.kind == "alert" and r.detail.get("code") == "journal_unwritable"]
    assert critical and critical[0].severity.value == "critical", "the alert reached the senders without the journal"
    assert rig.keeper.status.state == "journal_unwritable"
    other.execute("ROLLBACK")
    other.close()
    await rig.set_price("50000", advance=10)
    await rig.keeper.tick()
    assert await rig.short() == D("1.8") and rig.keeper.status.state == "hedged"
    assert any(r.kind == "alert_resolved" and r.detail.get("code") == "journal_unwritable" for r in heard)


class FailingWrites:
    """Wraps a journal's connection so that every write fails, as on a full disk."""

    def __init__(self, db: Any) -> None:
        self.db = db
        self.failing = True

    def execute(self, sql: str, *args: Any) -> Any:
        if self.failing and sql.lstrip().split()[0].upper() in {"INSERT", "UPDATE", "BEGIN", "DELETE"}:
            import sqlite3

            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.db, name)


async def test_a_full_disk_under_the_journal_keeps_the_hedge_safe_and_the_keeper_alive() -> None:
    rig = await make_rig(spot={"BTC": "1"})
    await rig.keeper.tick()
    real = rig.journal._db
    failing = FailingWrites(real)
    rig.journal._db = failing
    rig.venue.deposit(Wallet.SPOT, "BTC", D("0.5"))
    for _ in range(3):
        await rig.set_price("50000", advance=10)
        await rig.keeper.tick()  # never raises: the keeper task must not end
    assert await rig.short() == D("1")
    assert "journal_unwritable" in rig.keeper.alerts.active
    failing.failing = False
    await rig.set_price("50000", advance=10)
    await rig.keeper.tick()
    assert await rig.short() == D("1.5") and "journal_unwritable" not in rig.keeper.alerts.active


async def test_the_under_hedged_alert_gives_its_amounts_at_the_markets_step() -> None:
    import re

    hedge = hedge_config(leverage=3, ratio=D("0.7"), margin_guard={"sources": ["futures_wallet", "sell_spot"]})
    rig = await make_rig(spot={"BTC": "10"}, futures={"USDT": "50000"}, hedge=hedge)
    await rig.keeper.tick()
    raised = [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "under_hedged"]
    message = raised[0].detail["message"]
    amounts = re.findall(r"(\d+(?:\.\d+)?) BTC", message)
    assert len(amounts) == 3 and all(re.fullmatch(r"\d+\.\d{3}", a) for a in amounts), message
    assert "a target of 7.000 BTC" in message, message


async def test_a_held_margin_sale_is_dropped_when_the_hedge_is_unwound_with_its_spot_kept() -> None:
    rig, _ = await _sale_refused_rig()  # the guard bought back part of the short; the spot sale failed and is held
    assert rig.keeper._held_sale is not None
    spot_held = rig.venue.spot["BTC"]
    # The user closes the hedge keeping the coins (`hedgebot unwind` without --sell-spot, or `until`).
    rig.keeper.control.submit("acct", rig.keeper.hedge.name, "unwind", "alice@host", "closing the hedge", sell_spot=False)
    await _rally(rig, ["63000", "63000"])
    assert await rig.short() == 0 and rig.keeper.trading_state is TradingState.CLOSED
    rig.keeper.port.refuse = False  # the exchange sells spot again
    await _rally(rig, ["63000", "63000"])
    assert rig.venue.spot["BTC"] == spot_held, "coins the user kept were sold for the margin of a short that is gone"
    assert rig.journal.events(kind="margin_sale_dropped"), "nothing said the owed sale was dropped"
    assert "margin_sale_failed" not in rig.keeper.alerts.active
