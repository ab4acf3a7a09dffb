"""Quarterly orders: the exact request that opens, finds (by client id) and closes a delivery-contract short.

On every exchange the symbol carries the expiry (BTCUSDT_231229, BTCUSD_231229, BTCUSDT-29DEC23, BTC-USDT-231229),
the quantity is in the exchange's unit (coins on USDⓈ-M and Bybit linear, contracts of 100 USD on COIN-M, of 0.01
BTC or 100 USD on OKX), the leg is named as the exchange names it, and the client id travels in its own field.
Bybit has no hedge mode on USDT futures: the named leg is refused, the one-way form is positionIdx 0 + reduceOnly.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hedgebot.clock import SimClock
from hedgebot.domain.model import MarginMode, OrderSide, PositionSide
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.dialects.binancecoinm import BinanceCoinm
from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
from hedgebot.exchange.port import ModeError, OrderRequest, OrderStatus
from tests.exchange.books import BybitBook, OkxBook
from tests.exchange.ccxt_recorder import RecordedRequest, RecordingSession, Reply
from tests.exchange.delivery_books import BYBIT_DELIVERY, DEC23, NOW_MS, OKX_LISTED, binance_exchange_info
from tests.exchange.dialect_rig import make_rig
from tests.exchange.test_delivery_contracts import COINM_BRACKETS, COINM_SYMBOLS, USDM_BRACKETS, USDM_SYMBOLS

D = Decimal


class BinanceOrders:
    """Binance's new-order and query-order endpoints (fapi or dapi): market orders fill at 37,000, found by client id."""

    def __init__(self, coinm: bool) -> None:
        self.coinm = coinm
        self.orders: dict[str, dict[str, Any]] = {}

    def new(self, request: RecordedRequest) -> Any:
        params = request.params
        qty = params["quantity"]
        order = {
            "orderId": 8000 + len(self.orders), "symbol": params["symbol"], "status": "FILLED",
            "clientOrderId": params["newClientOrderId"], "price": "0", "avgPrice": "37000.0", "origQty": qty,
            "executedQty": qty, "cumQty": qty, "timeInForce": "GTC", "type": "MARKET",
            "reduceOnly": params.get("reduceOnly") == "true", "closePosition": False, "side": params["side"],
            "positionSide": params.get("positionSide", "BOTH"), "stopPrice": "0", "workingType": "CONTRACT_PRICE",
            "priceProtect": False, "origType": "MARKET", "updateTime": NOW_MS, "time": NOW_MS,
        }
        if self.coinm:
            order.update(pair="BTCUSD", cumBase=str(D(qty) * 100 / D(37000)))
        else:
            order.update(cumQuote=str(D(qty) * 37000), priceMatch="NONE", selfTradePreventionMode="NONE", goodTillDate=0)
        self.orders[order["clientOrderId"]] = order
        return order

    def query(self, request: RecordedRequest) -> Any:
        found = self.orders.get(request.query.get("origClientOrderId", ""))
        return found if found is not None else Reply({"code": -2013, "msg": "Order does not exist."}, status=400)


def binance(coinm: bool) -> tuple[CcxtVenue, RecordingSession]:
    api = "/dapi" if coinm else "/fapi"
    orders = BinanceOrders(coinm)
    session = RecordingSession({
        ("GET", f"{api}/v1/exchangeInfo"): binance_exchange_info(COINM_SYMBOLS if coinm else USDM_SYMBOLS),
        ("GET", f"{api}/v2/leverageBracket" if coinm else f"{api}/v1/leverageBracket"): COINM_BRACKETS if coinm else USDM_BRACKETS,
        ("POST", f"{api}/v1/order"): orders.new,
        ("GET", f"{api}/v1/order"): orders.query,
    })
    dialect = BinanceCoinm() if coinm else BinanceUsdm()
    return CcxtVenue.connect(dialect, SimClock(NOW_MS / 1000), api_key="key", secret="secret", session=session), session


def sent_order(session: RecordingSession, path: str) -> dict[str, str]:
    params = session.last("POST", path).params
    return {k: str(params[k]) for k in ("symbol", "side", "positionSide", "type", "quantity", "newClientOrderId")}


async def test_a_binance_usdm_quarterly_short_is_opened_found_and_closed_on_its_dated_symbol() -> None:
    venue, session = binance(coinm=False)
    symbol = "BTC/USDT:USDT-231229"
    try:
        market = await venue.load_market(symbol)
        opened = await venue.place_order(OrderRequest("hbQ1", symbol, OrderSide.SELL, D("0.25"), PositionSide.SHORT))
        open_sent = sent_order(session, "/fapi/v1/order")
        found = await venue.fetch_order(symbol, "hbQ1")
        looked = session.last("GET", "/fapi/v1/order").query
        closed = await venue.place_order(OrderRequest("hbQ2", symbol, OrderSide.BUY, D("0.25"), PositionSide.SHORT, reduce_only=True))
        close_sent = session.last("POST", "/fapi/v1/order").params
    finally:
        await venue.close()
    assert market.expiry == DEC23 / 1000
    assert open_sent == {"symbol": "BTCUSDT_231229", "side": "SELL", "positionSide": "SHORT", "type": "MARKET", "quantity": "0.25", "newClientOrderId": "hbQ1"}
    assert (looked["symbol"], looked["origClientOrderId"]) == ("BTCUSDT_231229", "hbQ1")
    # hedge mode closes with BUY on positionSide SHORT; Binance refuses reduceOnly there (-1106)
    assert (close_sent["side"], close_sent["positionSide"], close_sent["quantity"], "reduceOnly" in close_sent) == ("BUY", "SHORT", "0.25", False)
    assert (opened.status, opened.filled, opened.average_price) == (OrderStatus.FILLED, D("0.25"), D(37000))
    assert found is not None and (found.client_id, found.symbol, found.filled, found.position_side) == ("hbQ1", symbol, D("0.25"), PositionSide.SHORT)
    assert closed.filled == D("0.25")


async def test_a_binance_coinm_quarterly_short_is_sent_in_contracts_of_100_usd_on_its_dated_symbol() -> None:
    venue, session = binance(coinm=True)
    symbol = "BTC/USD:BTC-231229"
    try:
        await venue.load_market(symbol)
        opened = await venue.place_order(OrderRequest("hbQc1", symbol, OrderSide.SELL, D(30000), PositionSide.SHORT))
        open_sent = sent_order(session, "/dapi/v1/order")
        found = await venue.fetch_order(symbol, "hbQc1")
        looked = session.last("GET", "/dapi/v1/order").query
        await venue.place_order(OrderRequest("hbQc2", symbol, OrderSide.BUY, D(30000), PositionSide.SHORT, reduce_only=True))
        close_sent = session.last("POST", "/dapi/v1/order").params
    finally:
        await venue.close()
    assert open_sent == {"symbol": "BTCUSD_231229", "side": "SELL", "positionSide": "SHORT", "type": "MARKET", "quantity": "300", "newClientOrderId": "hbQc1"}
    assert (looked["symbol"], looked["origClientOrderId"]) == ("BTCUSD_231229", "hbQc1")
    assert (close_sent["side"], close_sent["positionSide"], close_sent["quantity"], "reduceOnly" in close_sent) == ("BUY", "SHORT", "300", False)
    assert opened.filled == D(30000) and found is not None and found.filled == D(30000)  # face value, back from 300 contracts
    assert all(r.path.startswith("/dapi/") for r in session.requests)


async def test_a_bybit_usdt_future_takes_one_way_orders_on_position_idx_0_and_refuses_a_named_leg() -> None:
    rig = make_rig("bybit", BybitBook(listed=list(BYBIT_DELIVERY), hedge_mode=False))
    symbol = "BTC/USDT:USDT-231229"
    try:
        await rig.venue.load_market(symbol)
        rig.forget()
        with pytest.raises(ModeError, match="bybit has no hedge mode for BTC/USDT:USDT-231229 \\(linear futures\\)"):
            await rig.venue.place_order(OrderRequest("hbQb0", symbol, OrderSide.SELL, D("0.25"), PositionSide.SHORT))
        assert rig.requests() == []
        opened = await rig.venue.place_order(OrderRequest("hbQb1", symbol, OrderSide.SELL, D("0.25"), None))
        open_sent = rig.last("POST", "/v5/order/create")
        rig.forget()
        found = await rig.venue.fetch_order(symbol, "hbQb1")
        looked = rig.last("GET", "/v5/order/realtime")
        await rig.venue.place_order(OrderRequest("hbQb2", symbol, OrderSide.BUY, D("0.25"), None, reduce_only=True))
        close_sent = rig.last("POST", "/v5/order/create")
    finally:
        await rig.venue.close()
    assert open_sent == {"category": "linear", "symbol": "BTCUSDT-29DEC23", "side": "Sell", "orderType": "Market", "qty": "0.25", "positionIdx": 0, "orderLinkId": "hbQb1"}
    assert looked == {"category": "linear", "symbol": "BTCUSDT-29DEC23", "orderLinkId": "hbQb1"}
    assert close_sent == {"category": "linear", "symbol": "BTCUSDT-29DEC23", "side": "Buy", "orderType": "Market", "qty": "0.25", "positionIdx": 0, "reduceOnly": True, "orderLinkId": "hbQb2"}
    assert opened.filled == D("0.25") and found is not None and (found.client_id, found.symbol) == ("hbQb1", symbol)


@pytest.mark.parametrize(
    ("symbol", "inst_id", "amount", "contracts"),
    [("BTC/USDT:USDT-231229", "BTC-USDT-231229", "0.25", "25"), ("BTC/USD:BTC-231229", "BTC-USD-231229", "30000", "300")],
)
async def test_an_okx_quarterly_short_is_opened_found_and_closed_in_contracts_on_pos_side_short(symbol: str, inst_id: str, amount: str, contracts: str) -> None:
    rig = make_rig("okx", OkxBook(listed=list(OKX_LISTED)))
    rig.session.route("GET", "/api/v5/public/mark-price", lambda r: {"code": "0", "msg": "", "data": [{"instType": "FUTURES", "instId": r.query["instId"], "markPx": "37000", "ts": str(NOW_MS)}]})
    try:
        await rig.venue.set_margin_mode(symbol, MarginMode.ISOLATED)
        market = await rig.venue.load_market(symbol)
        rig.forget()
        opened = await rig.venue.place_order(OrderRequest("hbQo1", symbol, OrderSide.SELL, D(amount), PositionSide.SHORT))
        open_sent = rig.last("POST", "/api/v5/trade/batch-orders")
        found = await rig.venue.fetch_order(symbol, "hbQo1")
        looked = rig.last("GET", "/api/v5/trade/order")
        await rig.venue.place_order(OrderRequest("hbQo2", symbol, OrderSide.BUY, D(amount), PositionSide.SHORT, reduce_only=True))
        close_sent = rig.last("POST", "/api/v5/trade/batch-orders")
    finally:
        await rig.venue.close()
    assert market.expiry == DEC23 / 1000
    assert {k: open_sent[k] for k in ("instId", "tdMode", "side", "posSide", "ordType", "sz", "clOrdId")} == {
        "instId": inst_id, "tdMode": "isolated", "side": "sell", "posSide": "short", "ordType": "market", "sz": contracts, "clOrdId": "hbQo1",
    }
    assert looked == {"instId": inst_id, "clOrdId": "hbQo1"}
    # long/short mode closes with the opposite side on the same posSide; reduceOnly is for net mode only
    assert {k: close_sent[k] for k in ("instId", "side", "posSide", "sz", "clOrdId")} == {"instId": inst_id, "side": "buy", "posSide": "short", "sz": contracts, "clOrdId": "hbQo2"}
    assert "reduceOnly" not in close_sent
    assert opened.filled == D(amount) and found is not None and (found.client_id, found.filled) == ("hbQo1", D(amount))
