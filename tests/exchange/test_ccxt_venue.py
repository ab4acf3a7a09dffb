"""The real ccxt venue against the offline Binance emulator: orders, margin, transfers, errors, idempotency."""

from __future__ import annotations

from decimal import Decimal

import pytest

from hedgebot.domain.model import MarginMode, OrderSide, PositionMode, PositionSide, Wallet
from hedgebot.exchange.port import (
    AuthenticationFailed,
    DuplicateClientId,
    FundsQuery,
    InsufficientFunds,
    InvalidOrder,
    ModeError,
    OrderRequest,
    RateLimited,
    RequestTimeout,
    VenueUnavailable,
)
from hedgebot.testing.binance_book import Position, SymbolSpec
from hedgebot.testing.binance_faults import Fault
from tests.emulator_rig import BTC, START, connect, emulator_rig
from tests.helpers import D, SYMBOL, hedge_config

pytestmark = pytest.mark.slow


def sell_short(cid: str, amount: str) -> OrderRequest:
    return OrderRequest(cid, SYMBOL, OrderSide.SELL, D(amount), PositionSide.SHORT)


def buy_short(cid: str, amount: str) -> OrderRequest:
    return OrderRequest(cid, SYMBOL, OrderSide.BUY, D(amount), PositionSide.SHORT, reduce_only=True)


async def test_market_rules_and_brackets_come_from_the_exchange() -> None:
    async with emulator_rig() as rig:
        market = await rig.venue.load_market(SYMBOL)
        assert (market.amount_step, market.min_amount, market.min_notional) == (D("0.001"), D("0.001"), D("100"))
        assert market.price_step == D("0.1") and market.margin_step == D("0.001")
        assert market.brackets[0].maint_margin_rate == D("0.004") and market.brackets[1].maint_amount == D("50")
        assert market.brackets[0].max_leverage == 125
        with pytest.raises(InvalidOrder, match="lists no market"):
            await rig.venue.load_market("DOGE/USDT:USDT")


async def test_the_short_is_opened_grown_and_reduced_always_in_the_close_form() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        keeper = rig.keeper(hedge_config(margin_mode="isolated", leverage=3))
        await keeper.prepare()
        await keeper.tick()
        assert rig.short() == D("1")
        rig.emulator.deposit("spot", "BTC", D("0.5"))
        await keeper.tick()
        assert rig.short() == D("1.5")
        rig.emulator.deposit("spot", "BTC", D("-0.8"))
        await keeper.tick()
        assert rig.short() == D("0.7")
        orders = list(rig.emulator.futures_orders().values())
        assert [(o["side"], o["positionSide"], o["reduceOnly"]) for o in orders] == [
            ("SELL", "SHORT", False), ("SELL", "SHORT", False), ("BUY", "SHORT", False),
        ]
        intents = rig.journal.intents()
        assert sorted(rig.emulator.futures_orders()) == sorted(i.client_id for i in intents)
        assert rig.emulator.book.symbols[BTC].margin_type == "ISOLATED" and rig.emulator.book.symbols[BTC].leverage == 3


async def test_margin_is_added_to_the_short_leg_when_the_mark_rallies() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}, futures="30000") as rig:
        keeper = rig.keeper(hedge_config(margin_mode="isolated", leverage=3))
        await keeper.prepare()
        await keeper.tick()
        before = D(rig.emulator.position(BTC, "SHORT").isolated_wallet)
        for price in ("55000", "60000", "64000"):  # a rally in steps the jump guard accepts
            rig.emulator.set_mark(BTC, D(price))
            await keeper.tick()
        after = D(rig.emulator.position(BTC, "SHORT").isolated_wallet)
        history = rig.emulator.book.margin_history
        assert after > before and history and {h["positionSide"] for h in history} == {"SHORT"}
        assert keeper.status.distance is not None and keeper.status.distance >= keeper.policy.guard.trigger
        done = [i for i in rig.journal.intents() if i.kind == "margin"]
        assert done and done[0].status.value == "done" and done[0].outcome["venue_id"]


async def test_a_transfer_from_spot_goes_through_and_is_found_in_the_history() -> None:
    async with emulator_rig(spot={"BTC": "0", "USDT": "1000"}) as rig:
        moved = await rig.venue.transfer("USDT", D("250"), Wallet.SPOT, Wallet.FUTURES)
        assert (await rig.venue.fetch_spot_balances())["USDT"] == D("750")
        assert (await rig.venue.fetch_futures_balance("USDT")).wallet == D("100250")
        query = FundsQuery("transfer", "USDT", D("250"), START - 60, START + 60, source=Wallet.SPOT, destination=Wallet.FUTURES)
        found = await rig.venue.find_funds_movement(query)
        assert found is not None and found.venue_id == moved.venue_id
        claimed = FundsQuery(**{**query.__dict__, "claimed": frozenset({moved.venue_id})})
        assert await rig.venue.find_funds_movement(claimed) is None


async def test_an_order_whose_answer_is_lost_and_whose_first_lookup_lags_is_never_sent_again() -> None:
    async with emulator_rig() as rig:
        keeper = rig.keeper(hedge_config())
        await keeper.prepare()
        # The order executes but its answer is lost, and the first lookup does not see it yet. Binance
        # would accept the same id again (it is unique among open orders only): nothing is resent,
        # and a later lookup settles the order.
        rig.emulator.inject(Fault("drop_after", "/fapi/v1/order", "POST"))
        rig.emulator.inject(Fault("order_unseen", "/fapi/v1/order", "GET"))
        await keeper.tick()
        await keeper.tick()
        orders = rig.emulator.futures_orders()
        intents = rig.journal.intents()
        assert len(orders) == 1 and [i.client_id for i in intents] == list(orders)
        assert intents[0].status.value == "done" and rig.short() == D("1")
        assert rig.emulator.requests.count(("POST", "/fapi/v1/order")) == 1
        assert len(rig.emulator.executions) == 1


@pytest.mark.parametrize(("answer", "delay"), [(0, 1.0), (1, 3.0)], ids=["503", "-1007"])
async def test_an_order_executed_after_a_timeout_while_lookups_lag_executes_once_and_the_hedge_is_not_halted(
    answer: int, delay: float
) -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        keeper = rig.keeper(hedge_config())
        await keeper.prepare()
        rig.emulator.lookup_lag_seconds = 5.0
        rig.emulator.inject(Fault("execute_later", "/fapi/v1/order", "POST", delay=delay, retry_after=answer))
        await keeper.tick()
        assert [i.status.value for i in rig.journal.intents()] == ["unknown"]
        for _ in range(12):
            rig.clock.advance(1.0)
            await keeper.tick()
        assert len(rig.emulator.executions) == 1, rig.emulator.executions
        assert rig.short() == D("1") and keeper.trading_state.value == "active"
        assert [i.status.value for i in rig.journal.intents()] == ["done"]
        assert rig.journal.events(kind="short_changed_outside") == []


async def test_a_timeout_after_execution_is_settled_by_lookup_with_no_second_order() -> None:
    async with emulator_rig() as rig:
        keeper = rig.keeper(hedge_config())
        await keeper.prepare()
        rig.emulator.inject(Fault("timeout_after", "/fapi/v1/order", "POST", delay=1.5))
        await keeper.tick()
        orders = rig.emulator.futures_orders()
        intents = rig.journal.intents()
        assert len(orders) == 1 and [i.client_id for i in intents] == list(orders)
        assert intents[0].status.value == "done" and rig.short() == D("1")
        assert ("POST", "/fapi/v1/order") in rig.emulator.requests and ("GET", "/fapi/v1/order") in rig.emulator.requests


async def test_an_unknown_client_id_is_never_seen_not_an_error() -> None:
    async with emulator_rig() as rig:
        assert await rig.venue.fetch_order(SYMBOL, "hbnever") is None
        assert await rig.venue.fetch_order("BTC/USDT", "hbnever") is None


async def test_binance_codes_map_to_the_ports_error_families() -> None:
    async with emulator_rig(futures="100") as rig:
        with pytest.raises(InsufficientFunds, match="-2019"):
            await rig.venue.place_order(sell_short("hb1", "0.5"))
        with pytest.raises(InvalidOrder, match="-4164"):
            await rig.venue.place_order(sell_short("hb2", "0.001"))
        with pytest.raises(InvalidOrder, match="-2022"):
            await rig.venue.place_order(buy_short("hb3", "0.1"))
        with pytest.raises(InvalidOrder, match="-1106"):  # what ccxt's reduceOnly would earn in hedge mode
            await rig.venue._call(
                lambda: rig.venue.futures.create_order(SYMBOL, "market", "buy", 0.1, None, {"positionSide": "SHORT", "reduceOnly": True})
            )
        rig.emulator.inject(Fault("rate_limit", "/fapi/v3/positionRisk"))
        with pytest.raises(RateLimited):
            await rig.venue.fetch_legs(SYMBOL)
        rig.clock.advance(1.0)  # the 429's Retry-After: until then nothing is sent
        rig.emulator.inject(Fault("server_error", "/fapi/v3/positionRisk"))
        with pytest.raises(VenueUnavailable):
            await rig.venue.fetch_legs(SYMBOL)
        rig.emulator.book.dual_side = False
        with pytest.raises(ModeError, match="one-way"):
            await rig.venue.place_order(sell_short("hb4", "0.01"))
        bad = connect(rig.url, rig.clock, secret="wrong")
        try:
            with pytest.raises(AuthenticationFailed, match="-1022"):
                await bad.fetch_legs(SYMBOL)
        finally:
            await bad.close()


async def test_a_timestamp_refusal_is_transient_and_the_clock_is_measured_again() -> None:
    async with emulator_rig() as rig:
        rig.emulator.server_time_offset_ms = 30_000  # the exchange's clock runs 30 s ahead of ours
        from hedgebot.exchange.port import ClockSkew

        with pytest.raises(ClockSkew, match="-1021"):
            await rig.venue.fetch_legs(SYMBOL)
        legs = await rig.venue.fetch_legs(SYMBOL)  # resynchronised by the refusal
        assert legs.short.size == 0


async def test_modes_and_leverage_are_read_and_set_and_already_set_is_not_an_error() -> None:
    async with emulator_rig(hedge_mode=False) as rig:
        venue = rig.venue
        assert await venue.fetch_position_mode() is PositionMode.ONE_WAY
        await venue.set_position_mode(PositionMode.HEDGE)
        await venue.set_position_mode(PositionMode.HEDGE)  # -4059: already so
        assert await venue.fetch_position_mode() is PositionMode.HEDGE
        await venue.set_margin_mode(SYMBOL, MarginMode.ISOLATED)
        await venue.set_margin_mode(SYMBOL, MarginMode.ISOLATED)  # -4046: already so
        await venue.set_leverage(SYMBOL, 4)
        assert await venue.fetch_margin_mode(SYMBOL) is MarginMode.ISOLATED and await venue.fetch_leverage(SYMBOL) == 4
        await venue.place_order(sell_short("hb1", "0.1"))
        with pytest.raises(ModeError, match="-4068"):
            await venue.set_position_mode(PositionMode.ONE_WAY)
        with pytest.raises(ModeError, match="-4048"):
            await venue.set_margin_mode(SYMBOL, MarginMode.CROSS)


async def test_mark_price_carries_the_exchanges_timestamp_and_funding_is_read() -> None:
    async with emulator_rig() as rig:
        rig.clock.advance(5)
        rig.emulator.set_mark(BTC, D("51234.5"))
        quote = await rig.venue.fetch_mark_price(SYMBOL)
        assert quote.price == D("51234.5") and quote.timestamp == pytest.approx(START + 5)
        rig.emulator.stall_mark(BTC, 600)
        assert (await rig.venue.fetch_mark_price(SYMBOL)).timestamp == pytest.approx(START + 5 - 600)  # stale shows as stale
        await rig.venue.set_margin_mode(SYMBOL, MarginMode.CROSS)
        await rig.venue.place_order(sell_short("hb1", "1"))
        rig.emulator.settle_funding(BTC, D("0.0002"))
        funding = await rig.venue.fetch_funding_rate(SYMBOL)
        assert funding.rate == D("0.0001") and funding.next_funding_time is not None
        paid = await rig.venue.fetch_funding_history(SYMBOL, START)
        assert [p.amount for p in paid] == [D("1") * D("51234.5") * D("0.0002")]


async def test_account_facts_report_withdraw_permission_ip_restriction_and_unsupported_modes() -> None:
    async with emulator_rig() as rig:
        facts = await rig.venue.fetch_account_facts()
        assert not facts.can_withdraw and facts.ip_restricted and not facts.multi_assets_margin and not facts.portfolio_margin
        rig.emulator.add_key("wide", "s2", can_withdraw=True, ip_restrict=False)
        rig.emulator.book.multi_assets = True
        rig.emulator.book.portfolio_margin = True
        other = connect(rig.url, rig.clock, "wide", "s2")
        try:
            facts = await other.fetch_account_facts()
        finally:
            await other.close()
        assert facts.can_withdraw and not facts.ip_restricted and facts.multi_assets_margin and facts.portfolio_margin


async def test_an_ambiguous_margin_change_is_settled_from_the_position_margin_history() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        keeper = rig.keeper(hedge_config(margin_mode="isolated", leverage=3))
        await keeper.prepare()
        await keeper.tick()
        rig.emulator.inject(Fault("drop_after", "/fapi/v1/positionMargin", "POST"))
        for price in ("55000", "60000", "64000"):
            rig.emulator.set_mark(BTC, D(price))
            await keeper.tick()
        margin = [i for i in rig.journal.intents() if i.kind == "margin"]
        assert len(rig.emulator.book.margin_history) == 1 and len(margin) == 1
        assert margin[0].status.value == "done" and margin[0].outcome["venue_id"]


# ---- issue 17: the cross wallet on a real account shape ------------------------------


async def test_a_cross_short_is_backed_by_the_cross_wallet_not_an_isolated_leg_on_another_contract() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}, futures="60000") as rig:
        # An isolated ETH long beside the hedge, with 39,000 USDT of margin that cannot back the BTC short.
        rig.emulator.book.symbols["ETHUSDT"] = SymbolSpec("ETH", "USDT", mark="3000", margin_type="ISOLATED")
        rig.emulator.book.positions["ETHUSDT|LONG"] = Position(amount="13", entry="3000", isolated_wallet="39000")
        balance = await rig.venue.fetch_futures_balance("USDT")
        assert (balance.wallet, balance.cross_wallet) == (D("99000"), D("60000"))
        keeper = rig.keeper(hedge_config(margin_mode="cross", leverage=3))
        await keeper.prepare()
        await keeper.tick()
        snapshot = keeper.last_snapshot
        assert snapshot is not None and snapshot.short.size == D("1")
        assert snapshot.cross_backing < D("60000"), "the ETH leg's isolated margin was counted as backing the short"


async def test_a_spot_sale_for_margin_executed_after_a_timeout_while_lookups_lag_is_sold_once() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}, futures="34000") as rig:
        keeper = rig.keeper(hedge_config(margin_guard={"sources": ["futures_wallet", "sell_spot"]}))
        await keeper.prepare()
        await keeper.tick()
        assert rig.short() == D("2")
        rig.emulator.lookup_lag_seconds = 5.0
        rig.emulator.inject(Fault("execute_later", "/api/v3/order", "POST", delay=1.0, retry_after=0))
        for price in ("55000", "60000", "62000", "62000", "62000", "62000", "62000", "62000", "62000"):
            rig.emulator.set_mark(BTC, D(price))
            await keeper.tick()
            rig.clock.advance(2.0)
        assert not rig.emulator.faults, "a spot sale met the execute-later answer"
        spot_sales = [k for k in rig.emulator.executions if k.startswith("spot|")]
        assert spot_sales and len(spot_sales) == len(set(spot_sales)), f"a spot sale executed twice: {spot_sales}"
        done = {f"spot|BTCUSDT|{i.client_id}" for i in rig.journal.intents() if i.detail.get("symbol") == "BTC/USDT" and i.status.value == "done"}
        assert done == set(spot_sales), "every sale the exchange carried out is journaled as done, and no other"
        assert keeper.trading_state.value == "active"


async def test_a_volatile_hour_of_throttle_and_price_protection_answers_slows_the_hedge_but_never_halts_it() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        keeper = rig.keeper(hedge_config())
        await keeper.prepare()
        await keeper.tick()
        for minute in range(60):
            if minute % 3 == 0:
                rig.emulator.deposit("spot", "BTC", D("0.1"))  # coins keep arriving: the short must grow
            kind = "system_busy" if minute % 2 else "price_protection"
            rig.emulator.inject(Fault(kind, "/fapi/v1/order", "POST"))
            await keeper.tick()
            rig.clock.advance(60.0)
        assert keeper.trading_state.value == "active", keeper.trading.reason
        assert [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "exchange_busy"], "the slowing is told"
        for _ in range(3):  # the storm is over
            await keeper.tick()
            rig.clock.advance(60.0)
        assert rig.short() == D("3")
        assert not [i for i in rig.journal.intents() if i.status.value == "rejected"], "a busy answer is not a rejection"


async def test_a_storm_of_rate_limit_and_internal_error_answers_slows_the_hedge_to_one_try_a_tick_and_never_halts_it() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}) as rig:
        keeper = rig.keeper(hedge_config())
        await keeper.prepare()
        await keeper.tick()
        rig.emulator.deposit("spot", "BTC", D("0.5"))
        for minute in range(12):
            kind = "rate_limit" if minute % 2 else "disconnected"
            rig.emulator.inject(Fault(kind, "/fapi/v1/order", "POST", count=10, retry_after=0))
            before = rig.emulator.requests.count(("POST", "/fapi/v1/order"))
            await keeper.tick()
            sent = rig.emulator.requests.count(("POST", "/fapi/v1/order")) - before
            rig.emulator.faults.clear()
            rig.clock.advance(60.0)
        assert [e for e in rig.journal.events(kind="alert") if e.detail["code"] == "exchange_busy"], "the slowing is told"
        assert sent == 1, f"a struggling exchange still got {sent} tries of one order in a tick"
        assert keeper.trading_state.value == "active", keeper.trading.reason
        assert not [i for i in rig.journal.intents() if i.status.value == "rejected"], "a busy answer is not a rejection"
        for _ in range(3):  # the storm is over
            await keeper.settle_open_intents()
            await keeper.tick()
            rig.clock.advance(60.0)
        assert rig.short() == D("1.5")


@pytest.mark.parametrize("market", ["futures", "spot"])
async def test_an_order_lookups_keep_missing_past_the_settle_delay_is_found_in_binances_order_history(market: str) -> None:
    # A read replica answers -2013 to every lookup by client id, long past the settle delay; the order
    # did execute (after a 503). Binance would take the same id again, and a miss would have sent a
    # second order: allOrders over the intent's window shows it, and it is settled as done.
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}, futures="34000" if market == "spot" else "100000") as rig:
        sources = ["futures_wallet", "sell_spot"] if market == "spot" else ["futures_wallet"]
        keeper = rig.keeper(hedge_config(margin_guard={"sources": sources}))
        await keeper.prepare()
        path = "/api/v3/order" if market == "spot" else "/fapi/v1/order"
        if market == "spot":
            await keeper.tick()
            assert rig.short() == D("2")
        rig.emulator.lookup_lag_seconds = 5.0
        rig.emulator.inject(Fault("execute_later", path, "POST", delay=1.0, retry_after=0))
        rig.emulator.inject(Fault("order_unseen", path, "GET", count=1000))
        prices = ["55000", "60000", "62000"] if market == "spot" else ["50000"]
        for price in prices + ["62000" if market == "spot" else "50000"] * 4:
            rig.emulator.set_mark(BTC, D(price))
            await keeper.tick()
            rig.clock.advance(31.0)
        assert not [f for f in rig.emulator.faults if f.kind == "execute_later"], "no order met the execute-later answer"
        prefix = "spot|" if market == "spot" else "futures|"
        executed = [k for k in rig.emulator.executions if k.startswith(prefix)]
        assert executed and len(executed) == len(set(executed)), f"an order executed twice: {executed}"
        symbol = "BTC/USDT" if market == "spot" else SYMBOL
        orders = [i for i in rig.journal.intents() if i.kind == "order" and i.detail["symbol"] == symbol]
        assert {f"{prefix}BTCUSDT|{i.client_id}" for i in orders if i.status.value == "done"} == set(executed)
        assert not [i for i in orders if i.status.value in ("absent", "unknown")]
        assert ("GET", "/api/v3/allOrders" if market == "spot" else "/fapi/v1/allOrders") in rig.emulator.requests
        assert keeper.trading_state.value == "active"
        if market == "futures":
            assert rig.short() == D("2") and len(executed) == 1
