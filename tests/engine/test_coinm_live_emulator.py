"""A live coin-margined short on Binance COIN-M: the keeper, the real ccxt venue (`binancecoinm`) and the emulator's /dapi/.

Virtual time (the rig's stepping clock); the exchange answers as Binance COIN-M does: contracts of 100 USD,
margin, fees and funding in BTC, transfers between spot and the COIN-M wallet as MAIN_CMFUTURE.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from hedgebot.config import HedgeConfig
from hedgebot.testing.binance_faults import Fault
from tests.emulator_rig import BTC_COINM, COINM_SYMBOL, EmulatorRig, emulator_rig
from tests.helpers import D, hedge_config

pytestmark = pytest.mark.slow

FACE = D(100)


def coinm_hedge(**overrides: object) -> HedgeConfig:
    base = {"symbol": COINM_SYMBOL, "instrument": "coinm-perp", "leverage": 1, "margin_mode": "isolated",
            "max_order": D(5), "min_order": D("0.001"), "margin_guard": {"sources": ["futures_wallet", "spot_stablecoin"]}}
    return hedge_config(**{**base, **overrides})


def short_contracts(rig: EmulatorRig) -> Decimal:
    return D(rig.emulator.position(BTC_COINM, "SHORT").amount)


def short_coins(rig: EmulatorRig, price: str = "50000") -> Decimal:
    """The short's face value in coins at `price` (what the keeper matches to the exposure)."""
    return short_contracts(rig) * FACE / D(price)


def coins_held(rig: EmulatorRig) -> Decimal:
    """The user's coins on the exchange: spot, the COIN-M wallet, and the isolated margin behind the leg."""
    pos = rig.emulator.position(BTC_COINM, "SHORT")
    return D(rig.emulator.book.spot.get("BTC", "0")) + D(rig.emulator.book.coinm.get("BTC", "0")) + D(pos.isolated_wallet)


async def test_a_coin_m_short_opens_against_coins_in_spot_and_the_coin_m_wallet_and_follows_exposure() -> None:
    async with emulator_rig(spot={"BTC": "1.5", "USDT": "0"}, coinm="0.5") as rig:
        keeper = rig.keeper(coinm_hedge(leverage=2))  # half the coins back the short, the rest stay in spot
        await keeper.prepare()
        await keeper.tick()
        # 2 BTC of exposure (1.5 in spot, 0.5 in the COIN-M wallet) at 50,000: 100,000 USD, 1,000 contracts,
        # less the opening fee (0.05 % of 2 BTC, paid in BTC): the hedge shorts the coins that are left.
        exposure = keeper.status.exposure
        assert exposure is not None and D(2) - D("0.0011") <= exposure < D(2)
        assert short_contracts(rig) == (exposure * D(50000) / FACE).to_integral_value(rounding="ROUND_FLOOR")
        spec = rig.emulator.book.symbols[BTC_COINM]
        assert (spec.margin_type, spec.leverage) == ("ISOLATED", 2)
        assert D(rig.emulator.book.spot["BTC"]) > D("0.4")
        assert abs(coins_held(rig) - D(2)) < D("0.002")  # fees only: no coin was sold
        assert not [o for o in rig.emulator.book.orders if o.startswith("spot|")]
        # More coins arrive in spot: the short grows by their face value; coins leave: it shrinks.
        rig.emulator.deposit("spot", "BTC", D("0.5"))
        await keeper.tick()
        assert keeper.status.exposure is not None and keeper.status.exposure > D("2.49")
        assert abs(short_coins(rig) - keeper.status.exposure) < D("0.0021")  # within a contract and the fee
        rig.emulator.deposit("spot", "BTC", D("-0.4"))
        await keeper.tick()
        assert keeper.status.exposure < D("2.1") and abs(short_coins(rig) - keeper.status.exposure) < D("0.0021")
        orders = list(rig.emulator.futures_orders().values())
        # Grown with SELL and reduced with BUY, always naming the SHORT leg (hedge mode's close form, no reduceOnly).
        assert {o["side"] for o in orders} == {"SELL", "BUY"} and {o["positionSide"] for o in orders} == {"SHORT"}
        assert not any(o["reduceOnly"] for o in orders)
        assert sorted(rig.emulator.futures_orders()) == sorted(i.client_id for i in rig.journal.intents() if i.kind == "order")


async def test_the_guard_tops_a_coin_m_short_up_from_spot_coins_by_transfer_on_a_rally() -> None:
    async with emulator_rig(spot={"BTC": "2", "USDT": "0"}, coinm="0") as rig:
        keeper = rig.keeper(coinm_hedge(leverage=2))
        await keeper.prepare()
        await keeper.tick()
        assert short_contracts(rig) >= D(995)  # 2 BTC less the fee, in contracts of 100 USD
        before = D(rig.emulator.position(BTC_COINM, "SHORT").isolated_wallet)
        for price in ("55000", "60000", "66000", "72000", "78000", "84000", "90000"):  # steps the jump guard accepts
            rig.emulator.set_mark(BTC_COINM, D(price))
            rig.clock.advance(60)
            await keeper.tick()
            assert rig.emulator.forced == [], price
        after = D(rig.emulator.position(BTC_COINM, "SHORT").isolated_wallet)
        assert after > before
        transfers = [t for t in rig.emulator.book.transfers if t["type"] == "MAIN_CMFUTURE"]
        assert transfers and all(t["asset"] == "BTC" for t in transfers)
        assert {h["asset"] for h in rig.emulator.book.margin_history} == {"BTC"}
        assert keeper.status.distance is not None and keeper.status.distance >= keeper.policy.guard.trigger
        topups = [i for i in rig.journal.intents() if i.kind in ("transfer", "margin") and i.detail["reason"] == "margin top-up"]
        assert {i.kind for i in topups} == {"transfer", "margin"} and all(i.status.value == "done" for i in topups)
        assert all(i.detail["asset"] == "BTC" for i in topups)
        assert len(transfers) >= 2 and rig.emulator.book.margin_history[-1]["type"] == 1
        assert abs(coins_held(rig) - D(2)) < D("0.0011")  # coins moved, none sold: only the fee is gone


async def test_a_coin_m_order_that_times_out_is_settled_by_client_id_with_no_duplicate() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}, coinm="0.2") as rig:
        keeper = rig.keeper(coinm_hedge())
        await keeper.prepare()
        rig.emulator.inject(Fault("timeout_after", "/dapi/v1/order", "POST", delay=1.5))
        await keeper.tick()
        await keeper.tick()
        orders = rig.emulator.futures_orders()
        intents = [i for i in rig.journal.intents() if i.kind == "order"]
        assert len(orders) == 1 and [i.client_id for i in intents] == list(orders)
        assert intents[0].status.value == "done" and short_contracts(rig) in (D(599), D(600))
        assert rig.emulator.requests.count(("POST", "/dapi/v1/order")) == 1
        assert ("GET", "/dapi/v1/order") in rig.emulator.requests
        assert len(rig.emulator.executions) == 1


async def test_an_order_executed_late_after_an_unknown_answer_executes_once_on_coin_m() -> None:
    async with emulator_rig(spot={"BTC": "1", "USDT": "0"}, coinm="0.2") as rig:
        keeper = rig.keeper(coinm_hedge())
        await keeper.prepare()
        rig.emulator.lookup_lag_seconds = 5.0
        rig.emulator.inject(Fault("execute_later", "/dapi/v1/order", "POST", delay=3.0, retry_after=1))
        await keeper.tick()
        assert [i.status.value for i in rig.journal.intents() if i.kind == "order"] == ["unknown"]
        for _ in range(12):
            rig.clock.advance(1.0)
            await keeper.tick()
        assert len(rig.emulator.executions) == 1, rig.emulator.executions
        assert short_contracts(rig) in (D(599), D(600)) and keeper.trading_state.value == "active"
        assert [i.status.value for i in rig.journal.intents() if i.kind == "order"] == ["done"]
