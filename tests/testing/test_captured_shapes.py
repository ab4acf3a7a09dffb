"""Every field the Binance emulator and the Bybit/OKX books answer is a field the exchange sends, of its kind.

The reference is real answers captured by ccxt (`ts/src/test/static/response/*.json` in the ccxt
repository). The installed ccxt package does not ship them, so `tests/testing/shapes` holds
field-name → kind tables written by hand from them (names and kinds only; see that package's
docstring). The emulator must answer every captured field of each answer it serves, and nothing
else; the books, which answer only what hedgebot reads, must send nothing the exchange does not
(a field the exchange documents but the capture lacks is listed with its source).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hedgebot.domain.model import OrderSide, PositionSide, Wallet
from hedgebot.exchange.port import OrderRequest
from tests.emulator_rig import BTC, emulator_rig
from tests.exchange.ccxt_recorder import RecordedRequest
from tests.exchange.dialect_rig import SYMBOL, make_rig
from tests.testing.shapes import Shape, conforms, mismatches
from tests.testing.shapes import binance as bn
from tests.testing.shapes import bybit as by
from tests.testing.shapes import okx as ok

pytestmark = pytest.mark.slow

D = Decimal


def with_documented(shape: Shape, documented: dict[str, tuple[str, str]]) -> Shape:
    """Return `shape` widened by the fields the exchange documents beyond the capture (name → kind, source)."""
    return {**shape, **{name: kind for name, (kind, _source) in documented.items()}}


async def test_every_field_the_emulator_answers_is_in_binances_captured_answers_with_its_kind() -> None:
    async with emulator_rig() as rig:
        futures, spot = rig.venue.futures, rig.venue.spot
        await rig.venue.load_market(SYMBOL)
        await futures.fapiPrivatePostMarginType({"symbol": BTC, "marginType": "ISOLATED"})
        problems: list[str] = []

        order = await futures.fapiPrivatePostOrder({
            "symbol": BTC, "side": "SELL", "positionSide": "SHORT", "type": "MARKET", "quantity": "0.5",
            "newClientOrderId": "shape1", "newOrderRespType": "RESULT",
        })
        problems += mismatches("POST /fapi/v1/order", order, bn.FUTURES_NEW_ORDER, complete=True)
        queried = await futures.fapiPrivateGetOrder({"symbol": BTC, "origClientOrderId": "shape1"})
        problems += mismatches("GET /fapi/v1/order", queried, bn.FUTURES_QUERY_ORDER, complete=True)
        for row in await futures.fapiPrivateV3GetPositionRisk({"symbol": BTC}):
            problems += mismatches("GET /fapi/v3/positionRisk", row, bn.POSITION_RISK, complete=True)
        account = await futures.fapiPrivateV3GetAccount()
        problems += mismatches("GET /fapi/v3/account", account, bn.ACCOUNT, complete=True)
        for row in account["assets"]:
            problems += mismatches("GET /fapi/v3/account assets[]", row, bn.ACCOUNT_ASSET, complete=True)
        for row in account["positions"]:
            problems += mismatches("GET /fapi/v3/account positions[]", row, bn.ACCOUNT_POSITION, complete=True)
        for row in await futures.fapiPrivateGetSymbolConfig({"symbol": BTC}):
            problems += mismatches("GET /fapi/v1/symbolConfig", row, bn.SYMBOL_CONFIG, complete=True)
        await rig.venue.adjust_margin(SYMBOL, PositionSide.SHORT, D("10"))
        for row in await futures.fapiPrivateGetPositionMarginHistory({"symbol": BTC}):
            problems += mismatches("GET /fapi/v1/positionMargin/history", row, bn.MARGIN_HISTORY, complete=True)
        rig.emulator.settle_funding(BTC)

        spot_order = await spot.privatePostOrder({
            "symbol": BTC, "side": "SELL", "type": "MARKET", "quantity": "0.1", "newClientOrderId": "shape2",
            "newOrderRespType": "FULL",
        })
        problems += mismatches("POST /api/v3/order", spot_order, bn.SPOT_NEW_ORDER, complete=True)
        spot_queried = await spot.privateGetOrder({"symbol": BTC, "origClientOrderId": "shape2"})
        problems += mismatches("GET /api/v3/order", spot_queried, bn.SPOT_QUERY_ORDER, complete=True)
        spot_account = await spot.privateGetAccount()
        problems += mismatches("GET /api/v3/account", spot_account, bn.SPOT_ACCOUNT, complete=True)
        for row in spot_account["balances"]:
            problems += mismatches("GET /api/v3/account balances[]", row, bn.SPOT_BALANCE, complete=True)

        # The exchange's own orders and income records answer in the same shapes as the user's.
        [row] = await futures.fapiPrivateV3GetPositionRisk({"symbol": BTC})
        rig.emulator.set_mark(BTC, D(row["liquidationPrice"]) + 1)  # short of the bankruptcy price: margin is left to clear
        [forced] = [key.split("|")[2] for key in rig.emulator.forced]
        liquidation = await futures.fapiPrivateGetOrder({"symbol": BTC, "origClientOrderId": forced})
        problems += mismatches("GET /fapi/v1/order (autoclose)", liquidation, bn.FUTURES_QUERY_ORDER, complete=True)
        rows = await futures.fapiPrivateGetIncome({"symbol": BTC})
        assert {r["incomeType"] for r in rows} >= {"FUNDING_FEE", "REALIZED_PNL", "INSURANCE_CLEAR"}
        for row in rows:
            problems += mismatches(f"GET /fapi/v1/income ({row['incomeType']})", row, bn.INCOME, complete=True)
        assert problems == [], "\n".join(problems)


def ask(routes: dict[tuple[str, str], Any], method: str, path: str, query: dict[str, str] | None = None) -> Any:
    """Return a book's raw answer to one request."""
    request = RecordedRequest(method, f"https://book{path}", path, query or {}, None, {})
    answer = routes[(method, path)](request)
    return getattr(answer, "body", answer)


async def test_every_field_the_bybit_book_answers_is_in_bybits_captured_answers_with_its_kind() -> None:
    rig = make_rig("bybit")
    try:
        await rig.venue.load_market(SYMBOL)
        await rig.venue.place_order(OrderRequest("hbShape1", SYMBOL, OrderSide.SELL, D("0.1"), PositionSide.SHORT))
        routes = rig.book.routes()
        problems: list[str] = []
        answers = {
            "order/history": ask(routes, "GET", "/v5/order/history", {"category": "linear", "orderLinkId": "hbShape1"}),
            "wallet-balance": ask(routes, "GET", "/v5/account/wallet-balance"),
            "tickers": ask(routes, "GET", "/v5/market/tickers"),
            "execution/list": ask(routes, "GET", "/v5/execution/list"),
        }
        for name, answer in answers.items():
            problems += mismatches(f"{name} envelope", answer, by.ENVELOPE, complete=True)
        [order] = answers["order/history"]["result"]["list"]
        problems += mismatches("order/history list[]", order, by.ORDER, complete=False)
        [account] = answers["wallet-balance"]["result"]["list"]
        problems += mismatches("wallet-balance list[]", account, by.WALLET, complete=False)
        coin_shape = with_documented(by.WALLET_COIN, by.DOCUMENTED["wallet_coin"])
        for coin in account["coin"]:
            problems += mismatches("wallet-balance coin[]", coin, coin_shape, complete=False)
        for row in answers["tickers"]["result"]["list"]:
            problems += mismatches("tickers list[]", row, by.TICKER, complete=False)
        for row in answers["execution/list"]["result"]["list"]:
            problems += mismatches("execution/list list[]", row, by.EXECUTION, complete=False)
        created = rig.book.routes()[("POST", "/v5/order/create")](RecordedRequest(
            "POST", "https://book/v5/order/create", "/v5/order/create", {},
            {"category": "linear", "symbol": "BTCUSDT", "side": "Sell", "orderType": "Market", "qty": "0.1",
             "positionIdx": 2, "orderLinkId": "hbShape2"}, {},
        ))
        problems += mismatches("order/create envelope", created, by.ENVELOPE, complete=True)
        problems += mismatches("order/create result", created["result"], by.CREATE_RESULT, complete=True)
        assert problems == [], "\n".join(problems)
    finally:
        await rig.venue.close()


async def test_every_field_the_okx_book_answers_is_in_okxs_captured_answers_with_its_kind() -> None:
    rig = make_rig("okx")
    try:
        await rig.venue.load_market(SYMBOL)
        await rig.venue.place_order(OrderRequest("hbShape1", SYMBOL, OrderSide.SELL, D("0.1"), PositionSide.SHORT))
        routes = rig.book.routes()
        problems: list[str] = []
        order_answer = ask(routes, "GET", "/api/v5/trade/order", {"clOrdId": "hbShape1", "instId": "BTC-USDT-SWAP"})
        positions = ask(routes, "GET", "/api/v5/account/positions")
        balance = ask(routes, "GET", "/api/v5/account/balance")
        config = ask(routes, "GET", "/api/v5/account/config")
        placed = routes[("POST", "/api/v5/trade/batch-orders")](RecordedRequest(
            "POST", "https://book/api/v5/trade/batch-orders", "/api/v5/trade/batch-orders", {},
            [{"instId": "BTC-USDT-SWAP", "side": "sell", "posSide": "short", "tdMode": "isolated", "ordType": "market",
              "sz": "10", "clOrdId": "hbShape2"}], {},
        ))
        for name, answer in {"trade/order": order_answer, "positions": positions, "balance": balance,
                             "config": config, "batch-orders": placed}.items():
            problems += mismatches(f"{name} envelope", answer, ok.ENVELOPE, complete=False)
        order_shape = with_documented(ok.ORDER, ok.DOCUMENTED["order"])
        for row in order_answer["data"]:
            problems += mismatches("trade/order data[]", row, order_shape, complete=False)
        for row in positions["data"]:
            problems += mismatches("positions data[]", row, ok.POSITION, complete=False)
        for row in balance["data"]:
            problems += mismatches("balance data[]", row, ok.BALANCE, complete=False)
            for detail in row["details"]:
                problems += mismatches("balance details[]", detail, ok.BALANCE_DETAIL, complete=False)
        for row in config["data"]:
            problems += mismatches("config data[]", row, ok.CONFIG, complete=False)
        for row in placed["data"]:
            problems += mismatches("batch-orders data[]", row, ok.PLACED, complete=True)
        assert problems == [], "\n".join(problems)
    finally:
        await rig.venue.close()


def _objects(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _objects(value)
    elif isinstance(node, list):
        for value in node:
            yield from _objects(value)


def test_the_tables_agree_with_the_captures_the_installed_ccxt_ships() -> None:
    import ccxt

    root = Path(ccxt.__file__).parent / "test" / "static" / "response"
    if not root.is_dir():
        pytest.skip(
            f"the installed ccxt {ccxt.__version__} ships no captured responses ({root}); "
            "the hand-written tables in tests/testing/shapes stand in for them"
        )
    tables = {
        "binance.json": [bn.FUTURES_NEW_ORDER, bn.POSITION_RISK, bn.ACCOUNT_ASSET, bn.INCOME, bn.MARGIN_HISTORY, bn.SPOT_QUERY_ORDER],
        "bybit.json": [by.ORDER, by.WALLET_COIN, by.EXECUTION],
        "okx.json": [ok.ORDER, ok.POSITION, ok.BALANCE_DETAIL],
    }
    for name, shapes in tables.items():
        captured = [
            obj for method in json.loads((root / name).read_text())["methods"].values()
            for case in method for obj in _objects(case.get("httpResponse"))
        ]
        for shape in shapes:
            assert any(
                all(field in obj and conforms(obj[field], kind) for field, kind in shape.items()) for obj in captured
            ), f"{name}: no captured answer carries every field of the table {sorted(shape)[:5]}…"
