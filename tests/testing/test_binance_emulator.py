"""The emulator answers with the fields ccxt reads, in the types Binance documents, and checks signatures."""

from __future__ import annotations

from typing import Any

import pytest

from hedgebot.domain.model import OrderSide, PositionSide, Wallet
from hedgebot.exchange.port import OrderRequest
from tests.emulator_rig import BTC, emulator_rig
from tests.helpers import D, SYMBOL

pytestmark = pytest.mark.slow

S, I, B = str, int, bool  # Binance sends decimals as strings, times and ids as integers

# The fields ccxt's parsers read (binance.py: parse_market, parse_ticker/parse_funding_rate,
# parse_position_risk, parse_balance_custom, parse_order, parse_transfer, parse_margin_modification,
# parse_income, parse_leverage_tiers), with Binance's documented types.
SHAPES: dict[str, dict[str, Any]] = {
    "order": {"orderId": I, "symbol": S, "status": S, "clientOrderId": S, "price": S, "avgPrice": S, "origQty": S,
              "executedQty": S, "cumQuote": S, "timeInForce": S, "type": S, "reduceOnly": B, "side": S,
              "positionSide": S, "stopPrice": S, "updateTime": I},
    "position": {"symbol": S, "positionSide": S, "positionAmt": S, "entryPrice": S, "markPrice": S,
                 "unRealizedProfit": S, "liquidationPrice": S, "isolatedMargin": S, "notional": S,
                 "isolatedWallet": S, "initialMargin": S, "maintMargin": S, "updateTime": I},
    "asset": {"asset": S, "walletBalance": S, "marginBalance": S, "availableBalance": S, "initialMargin": S,
              "maxWithdrawAmount": S, "updateTime": I},
    "premium": {"symbol": S, "markPrice": S, "indexPrice": S, "lastFundingRate": S, "nextFundingTime": I, "time": I},
    "bracket": {"bracket": I, "initialLeverage": I, "notionalCap": I, "notionalFloor": I, "maintMarginRatio": float, "cum": float},
    "margin_row": {"symbol": S, "type": I, "amount": S, "asset": S, "time": I, "positionSide": S},
    "transfer_row": {"asset": S, "amount": S, "type": S, "status": S, "tranId": I, "timestamp": I},
    "income": {"symbol": S, "incomeType": S, "income": S, "asset": S, "time": I, "tranId": I},
    "spot_order": {"symbol": S, "orderId": I, "clientOrderId": S, "transactTime": I, "origQty": S, "executedQty": S,
                   "cummulativeQuoteQty": S, "status": S, "type": S, "side": S, "fills": list},
    "symbol": {"symbol": S, "contractType": S, "status": S, "baseAsset": S, "quoteAsset": S, "marginAsset": S,
               "pricePrecision": I, "quantityPrecision": I, "filters": list, "deliveryDate": I, "onboardDate": I},
}


def assert_shape(kind: str, row: dict[str, Any]) -> None:
    for name, expected in SHAPES[kind].items():
        assert name in row, f"{kind}: {name} missing"
        assert isinstance(row[name], expected), f"{kind}.{name} is {type(row[name]).__name__}, Binance sends {expected.__name__}"


async def test_every_field_ccxt_reads_is_present_with_binances_type() -> None:
    async with emulator_rig() as rig:
        futures, spot = rig.venue.futures, rig.venue.spot
        await rig.venue.load_market(SYMBOL)
        await futures.fapiPrivatePostMarginType({"symbol": BTC, "marginType": "ISOLATED"})
        order = await futures.fapiPrivatePostOrder({
            "symbol": BTC, "side": "SELL", "positionSide": "SHORT", "type": "MARKET", "quantity": "0.5",
            "newClientOrderId": "shape1", "newOrderRespType": "RESULT",
        })
        assert_shape("order", order)
        assert_shape("order", await futures.fapiPrivateGetOrder({"symbol": BTC, "origClientOrderId": "shape1"}))
        for row in await futures.fapiPrivateV3GetPositionRisk({"symbol": BTC}):
            assert_shape("position", row)
        account = await futures.fapiPrivateV3GetAccount()
        assert account["assets"] and all(a["updateTime"] > 0 for a in account["assets"])
        for row in account["assets"]:
            assert_shape("asset", row)
        assert_shape("premium", await futures.fapiPublicGetPremiumIndex({"symbol": BTC}))
        for entry in await futures.fapiPrivateGetLeverageBracket({"symbol": BTC}):
            for row in entry["brackets"]:
                assert_shape("bracket", row)
        info = await futures.fapiPublicGetExchangeInfo()
        assert_shape("symbol", info["symbols"][0])
        await rig.venue.adjust_margin(SYMBOL, PositionSide.SHORT, D("10"))
        for row in await futures.fapiPrivateGetPositionMarginHistory({"symbol": BTC}):
            assert_shape("margin_row", row)
        await rig.venue.transfer("USDT", D("5"), Wallet.SPOT, Wallet.FUTURES)
        rows = (await spot.sapiGetAssetTransfer({"type": "MAIN_UMFUTURE"}))["rows"]
        for row in rows:
            assert_shape("transfer_row", row)
        rig.emulator.settle_funding(BTC)
        for row in await futures.fapiPrivateGetIncome({"symbol": BTC, "incomeType": "FUNDING_FEE"}):
            assert_shape("income", row)
        spot_order = await spot.privatePostOrder({
            "symbol": BTC, "side": "SELL", "type": "MARKET", "quantity": "0.1", "newClientOrderId": "shape2",
            "newOrderRespType": "FULL",
        })
        assert_shape("spot_order", spot_order)
        balances = (await spot.privateGetAccount())["balances"]
        assert all(isinstance(b["free"], str) and isinstance(b["locked"], str) for b in balances)


async def test_a_request_signed_with_another_secret_or_out_of_its_window_is_refused() -> None:
    async with emulator_rig() as rig:
        rig.venue.futures.secret = "wrong"
        with pytest.raises(Exception, match="-1022"):
            await rig.venue.futures.fapiPrivateGetPositionSideDual()
        rig.venue.futures.secret = "test-secret"
        rig.emulator.server_time_offset_ms = -20_000  # our stamps look 20 s in the future
        with pytest.raises(Exception, match="-1021"):
            await rig.venue.futures.fapiPrivateGetPositionSideDual()
        rig.emulator.server_time_offset_ms = 0
        rig.venue.futures.apiKey = "unknown"
        with pytest.raises(Exception, match="-2015"):
            await rig.venue.futures.fapiPrivateGetPositionSideDual()


async def test_a_restarted_emulator_keeps_its_book(tmp_path) -> None:
    state = tmp_path / "book.json"
    async with emulator_rig(state_path=state) as rig:
        await rig.venue.place_order(OrderRequest("kept", SYMBOL, OrderSide.SELL, D("0.2"), PositionSide.SHORT))
    async with emulator_rig(state_path=state) as again:
        assert "kept" in again.emulator.futures_orders()
        assert (await again.venue.fetch_order(SYMBOL, "kept")) is not None
