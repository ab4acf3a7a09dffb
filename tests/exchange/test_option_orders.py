"""The order form for buying and selling an option on Deribit, Binance and OKX, through unmodified ccxt."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hedgebot.exchange.option_chains import ChainError, client_for
from hedgebot.exchange.option_orders import OptionOrder, place_option_order
from tests.exchange.ccxt_recorder import RecordedRequest, RecordingSession
from tests.exchange.option_books import NOW_MS, BinanceOptionsBook, DeribitOptionsBook, OkxOptionsBook

D = Decimal


def _deribit_order(request: RecordedRequest, direction: str) -> dict[str, Any]:
    q = request.query
    return {"jsonrpc": "2.0", "result": {"trades": [], "order": {
        "web": False, "time_in_force": "good_til_cancelled", "replaced": False, "reduce_only": q.get("reduce_only") == "true",
        "price": float(q["price"]), "post_only": False, "order_type": "limit", "order_state": "open", "order_id": "BTC-5550001",
        "max_show": float(q["amount"]), "last_update_timestamp": NOW_MS, "label": q.get("label", ""), "is_liquidation": False,
        "instrument_name": q["instrument_name"], "filled_amount": 0.0, "direction": direction, "creation_timestamp": NOW_MS,
        "average_price": 0.0, "api": True, "amount": float(q["amount"]),
    }}}


def _binance_order(request: RecordedRequest) -> dict[str, Any]:
    p = request.params
    return {
        "orderId": 4729002, "symbol": p["symbol"], "price": p["price"], "quantity": p["quantity"], "executedQty": "0",
        "fee": "0", "side": p["side"], "type": "LIMIT", "timeInForce": "GTC", "reduceOnly": p.get("reduceOnly") == "true",
        "postOnly": False, "createTime": NOW_MS, "updateTime": NOW_MS, "status": "ACCEPTED", "avgPrice": "0",
        "clientOrderId": p.get("clientOrderId", ""), "priceScale": 0, "quantityScale": 2, "optionSide": "PUT",
        "quoteAsset": "USDT", "mmp": False,
    }


def _okx_body(request: RecordedRequest) -> dict[str, Any]:
    # ccxt sends a single OKX order through the batch endpoint (its createOrder default), as a one-item list.
    return dict(request.body[0]) if isinstance(request.body, list) else dict(request.params)


def _okx_order(request: RecordedRequest) -> dict[str, Any]:
    return {"code": "0", "msg": "", "inTime": str(NOW_MS * 1000), "outTime": str(NOW_MS * 1000 + 300), "data": [
        {"clOrdId": _okx_body(request).get("clOrdId", ""), "ordId": "312269865356374016", "tag": "", "ts": str(NOW_MS),
         "sCode": "0", "sMsg": "Order placed"},
    ]}


def _session(venue: str) -> RecordingSession:
    if venue == "deribit":
        session = RecordingSession(DeribitOptionsBook().routes())
        session.route("GET", "/api/v2/private/buy", lambda r: _deribit_order(r, "buy"))
        session.route("GET", "/api/v2/private/sell", lambda r: _deribit_order(r, "sell"))
    elif venue == "binance":
        session = RecordingSession(BinanceOptionsBook().routes())
        session.route("POST", "/eapi/v1/order", _binance_order)
    else:
        session = RecordingSession(OkxOptionsBook().routes())
        session.route("POST", "/api/v5/trade/order", _okx_order)
        session.route("POST", "/api/v5/trade/batch-orders", _okx_order)
    return session


def _client(venue: str, session: RecordingSession) -> Any:
    keys: dict[str, Any] = {"apiKey": "test-key", "secret": "test-secret"}
    if venue == "okx":
        keys["password"] = "test-passphrase"
    return client_for(venue, {"session": session, "enableRateLimit": False, **keys})


async def _place(venue: str, order: OptionOrder) -> tuple[str, RecordingSession]:
    session = _session(venue)
    client = _client(venue, session)
    try:
        await client.load_markets()
        return await place_option_order(client, venue, order), session
    finally:
        await client.close()


async def test_deribit_buys_a_put_as_a_limit_order_in_btc_with_the_client_id_as_label() -> None:
    order_id, session = await _place("deribit", OptionOrder("BTC/USD:BTC-270129-75000-P", "buy", D("2"), D("0.0196"), "hb-put-1"))
    sent = session.last("GET", "/api/v2/private/buy").query
    assert sent["instrument_name"] == "BTC-29JAN27-75000-P" and sent["amount"] == "2" and sent["type"] == "limit"
    assert sent["price"] == "0.0196" and sent["label"] == "hb-put-1" and "reduce_only" not in sent
    assert order_id == "BTC-5550001"


async def test_deribit_sells_a_put_reduce_only_so_it_never_opens_a_short_option() -> None:
    _, session = await _place("deribit", OptionOrder("BTC/USD:BTC-270129-75000-P", "sell", D("2"), D("0.0195"), "hb-put-2"))
    sent = session.last("GET", "/api/v2/private/sell").query
    assert sent["reduce_only"] == "true" and sent["type"] == "limit" and sent["amount"] == "2"


async def test_binance_buys_a_put_with_its_option_client_id_field_and_gtc() -> None:
    order_id, session = await _place("binance", OptionOrder("BTC/USDT:USDT-270129-75000-P", "buy", D("2"), D("1925"), "hb-put-3"))
    sent = session.last("POST", "/eapi/v1/order").params
    assert (sent["symbol"], sent["side"], sent["type"], sent["quantity"], sent["price"]) == ("BTC-270129-75000-P", "BUY", "LIMIT", "2", "1925")
    assert sent["clientOrderId"] == "hb-put-3" and "newClientOrderId" not in sent and sent["timeInForce"] == "GTC"
    assert "signature" in sent and order_id == "4729002"


async def test_binance_sells_a_put_reduce_only() -> None:
    _, session = await _place("binance", OptionOrder("BTC/USDT:USDT-270129-75000-P", "sell", D("2"), D("1915"), "hb-put-4"))
    sent = session.last("POST", "/eapi/v1/order").params
    assert sent["side"] == "SELL" and sent["reduceOnly"] == "true"


async def test_okx_buys_a_put_in_contracts_with_cross_margin_and_clordid() -> None:
    order_id, session = await _place("okx", OptionOrder("BTC/USD:BTC-270129-75000-P", "buy", D("200"), D("0.0195"), "hbput5"))
    sent = _okx_body(session.last("POST", "/api/v5/trade/batch-orders"))
    assert (sent["instId"], sent["side"], sent["ordType"], sent["sz"], sent["px"]) == ("BTC-USD-270129-75000-P", "buy", "limit", "200", "0.0195")
    assert sent["tdMode"] == "cross" and sent["clOrdId"] == "hbput5"
    assert order_id == "312269865356374016"


async def test_okx_sells_a_put_reduce_only() -> None:
    _, session = await _place("okx", OptionOrder("BTC/USD:BTC-270129-75000-P", "sell", D("200"), D("0.019"), "hbput6"))
    sent = _okx_body(session.last("POST", "/api/v5/trade/batch-orders"))
    assert sent["side"] == "sell" and sent["reduceOnly"] is True


@pytest.mark.parametrize(("contracts", "price"), [("0", "0.0195"), ("2", "0")])
async def test_an_option_order_without_contracts_or_price_is_refused_before_sending(contracts: str, price: str) -> None:
    with pytest.raises(ChainError, match="above zero"):
        await _place("deribit", OptionOrder("BTC/USD:BTC-270129-75000-P", "buy", D(contracts), D(price), "hb-put-7"))
