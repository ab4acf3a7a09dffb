"""Delivery contracts: which quarterlies a hedge named without expiry can hold, read from each exchange's listing.

Each venue runs its real ccxt client over a recorded book (tests/exchange/delivery_books.py). A contract's
delivery time and status come from the exchange's own fields: Binance `deliveryDate` with `status` (USDⓈ-M) or
`contractStatus` (COIN-M), Bybit `deliveryTime` and `status`, OKX `expTime` and `state`. Only the trading
status (TRADING, Trading, live) lets a contract trade.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from hedgebot.clock import SimClock
from hedgebot.domain.roll import Contract
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.dialects.binancecoinm import BinanceCoinm
from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
from hedgebot.exchange.port import BadData, InvalidOrder
from tests.exchange.books import BybitBook, OkxBook
from tests.exchange.ccxt_recorder import RecordingSession
from tests.exchange.delivery_books import (
    BYBIT_DELIVERY,
    DEC23,
    MAR24,
    NOV23,
    NOW_MS,
    OCT23,
    OKX_LISTED,
    binance_exchange_info,
    coinm_symbol,
    usdm_symbol,
)
from tests.exchange.dialect_rig import make_rig

D = Decimal

USDM_SYMBOLS = [
    usdm_symbol("BTCUSDT", "PERPETUAL", 4133404800000, "TRADING"),
    usdm_symbol("BTCUSDT_231229", "CURRENT_QUARTER", DEC23, "TRADING"),
    usdm_symbol("BTCUSDT_240329", "NEXT_QUARTER", MAR24, "PENDING_TRADING"),
    usdm_symbol("BTCUSDT_231124", "CURRENT_QUARTER", NOV23, "PRE_DELIVERING"),
    usdm_symbol("BTCUSDT_231027", "CURRENT_QUARTER", OCT23, "SETTLING"),
    usdm_symbol("ETHUSDT_231229", "CURRENT_QUARTER", DEC23, "TRADING", base="ETH"),
]
COINM_SYMBOLS = [
    coinm_symbol("BTCUSD_PERP", "PERPETUAL", 4133404800000, "TRADING"),
    coinm_symbol("BTCUSD_231229", "CURRENT_QUARTER", DEC23, "TRADING"),
    coinm_symbol("BTCUSD_240329", "NEXT_QUARTER", MAR24, "TRADING"),
    coinm_symbol("BTCUSD_231124", "CURRENT_QUARTER", NOV23, "DELIVERING"),
]
# Maintenance brackets as /fapi/v1/leverageBracket and /dapi/v2/leverageBracket serve them (per symbol).
USDM_BRACKETS = [
    {"symbol": s, "notionalCoef": 1.0, "brackets": [
        {"bracket": 1, "initialLeverage": 50, "notionalCap": 50000, "notionalFloor": 0, "maintMarginRatio": 0.01, "cum": 0.0},
        {"bracket": 2, "initialLeverage": 25, "notionalCap": 250000, "notionalFloor": 50000, "maintMarginRatio": 0.02, "cum": 500.0},
    ]} for s in ("BTCUSDT", "BTCUSDT_231229", "BTCUSDT_240329")
]
COINM_BRACKETS = [
    {"symbol": s, "notionalCoef": 1, "brackets": [
        {"bracket": 1, "initialLeverage": 125, "qtyCap": 5, "qtyFloor": 0, "maintMarginRatio": 0.004, "cum": 0},
        {"bracket": 2, "initialLeverage": 100, "qtyCap": 10, "qtyFloor": 5, "maintMarginRatio": 0.005, "cum": 0.005},
    ]} for s in ("BTCUSD_PERP", "BTCUSD_231229", "BTCUSD_240329")
]


def binance_venue(coinm: bool, symbols: list[dict[str, Any]] | None = None) -> tuple[CcxtVenue, RecordingSession]:
    """Return a Binance USDⓈ-M (or COIN-M) venue over a book listing the quarterlies above."""
    if coinm:
        routes: dict[Any, Any] = {
            ("GET", "/dapi/v1/exchangeInfo"): binance_exchange_info(symbols if symbols is not None else COINM_SYMBOLS),
            ("GET", "/dapi/v2/leverageBracket"): COINM_BRACKETS,
        }
    else:
        routes = {
            ("GET", "/fapi/v1/exchangeInfo"): binance_exchange_info(symbols if symbols is not None else USDM_SYMBOLS),
            ("GET", "/fapi/v1/leverageBracket"): USDM_BRACKETS,
        }
    session = RecordingSession(routes)
    dialect = BinanceCoinm() if coinm else BinanceUsdm()
    return CcxtVenue.connect(dialect, SimClock(NOW_MS / 1000), api_key="key", secret="secret", session=session), session


async def test_binance_usdm_lists_its_quarterlies_with_delivery_date_and_only_trading_ones_tradable() -> None:
    venue, session = binance_venue(coinm=False)
    try:
        contracts = await venue.fetch_delivery_contracts("BTC/USDT:USDT")
    finally:
        await venue.close()
    # SETTLING delivered before now and is left out; ETH's quarterly is another coin's; the perpetual is no delivery contract
    assert contracts == [
        Contract("BTC/USDT:USDT-231124", NOV23 / 1000, tradable=False),  # PRE_DELIVERING: no new orders
        Contract("BTC/USDT:USDT-231229", DEC23 / 1000, tradable=True),
        Contract("BTC/USDT:USDT-240329", MAR24 / 1000, tradable=False),  # PENDING_TRADING: not open yet
    ]
    assert [r.path for r in session.requests] == ["/fapi/v1/exchangeInfo"]


@pytest.mark.parametrize("status", ["PENDING_TRADING", "PRE_DELIVERING", "DELIVERING", "DELIVERED", "PRE_SETTLE", "SETTLING", "CLOSE"])
async def test_a_binance_quarterly_in_any_status_but_trading_is_not_tradable(status: str) -> None:
    venue, _ = binance_venue(coinm=False, symbols=[usdm_symbol("BTCUSDT_231229", "CURRENT_QUARTER", DEC23, status)])
    try:
        contracts = await venue.fetch_delivery_contracts("BTC/USDT:USDT")
    finally:
        await venue.close()
    assert contracts == [Contract("BTC/USDT:USDT-231229", DEC23 / 1000, tradable=False)]


async def test_binance_coinm_lists_its_quarterlies_by_contract_status() -> None:
    venue, session = binance_venue(coinm=True)
    try:
        contracts = await venue.fetch_delivery_contracts("BTC/USD:BTC")
    finally:
        await venue.close()
    assert contracts == [
        Contract("BTC/USD:BTC-231124", NOV23 / 1000, tradable=False),  # DELIVERING
        Contract("BTC/USD:BTC-231229", DEC23 / 1000, tradable=True),
        Contract("BTC/USD:BTC-240329", MAR24 / 1000, tradable=True),
    ]
    assert all(r.path.startswith("/dapi/") for r in session.requests)


async def test_a_quarterly_named_with_its_expiry_is_loaded_with_its_delivery_time() -> None:
    usdm, _ = binance_venue(coinm=False)
    coinm, _ = binance_venue(coinm=True)
    try:
        linear = await usdm.load_market("BTC/USDT:USDT-231229")
        inverse = await coinm.load_market("BTC/USD:BTC-240329")
        perpetual = await usdm.load_market("BTC/USDT:USDT")
    finally:
        await usdm.close()
        await coinm.close()
    assert (linear.expiry, linear.inverse, linear.amount_step, linear.min_notional) == (DEC23 / 1000, False, D("0.001"), D(100))
    assert (inverse.expiry, inverse.inverse, inverse.contract_size, inverse.margin_asset) == (MAR24 / 1000, True, D(100), "BTC")
    assert perpetual.expiry is None


async def test_a_binance_listing_without_a_status_is_bad_data_naming_the_field() -> None:
    row = usdm_symbol("BTCUSDT_231229", "CURRENT_QUARTER", DEC23, "TRADING")
    del row["status"]
    venue, _ = binance_venue(coinm=False, symbols=[row])
    try:
        with pytest.raises(BadData, match="BTC/USDT:USDT-231229 status"):
            await venue.fetch_delivery_contracts("BTC/USDT:USDT")
    finally:
        await venue.close()


async def test_delivery_contracts_are_asked_for_a_market_named_without_expiry() -> None:
    venue, session = binance_venue(coinm=False)
    try:
        with pytest.raises(InvalidOrder, match="without expiry"):
            await venue.fetch_delivery_contracts("BTC/USDT:USDT-231229")
    finally:
        await venue.close()
    assert session.requests == []


async def test_bybit_lists_usdt_futures_by_delivery_time_and_status_including_pre_launch() -> None:
    rig = make_rig("bybit", BybitBook(listed=list(BYBIT_DELIVERY)))
    try:
        linear = await rig.venue.fetch_delivery_contracts("BTC/USDT:USDT")
        inverse = await rig.venue.fetch_delivery_contracts("BTC/USD:BTC")
    finally:
        await rig.venue.close()
    assert linear == [
        Contract("BTC/USDT:USDT-231124", NOV23 / 1000, tradable=False),  # Delivering
        Contract("BTC/USDT:USDT-231229", DEC23 / 1000, tradable=True),
        Contract("BTC/USDT:USDT-240329", MAR24 / 1000, tradable=False),  # PreLaunch: listed only when asked by status
    ]
    assert inverse == [
        Contract("BTC/USD:BTC-231229", DEC23 / 1000, tradable=True),
        Contract("BTC/USD:BTC-240329", MAR24 / 1000, tradable=True),
    ]
    asked = {(r.query.get("category"), r.query.get("status")) for r in rig.session.sent("GET", "/v5/market/instruments-info")}
    assert {("linear", None), ("linear", "PreLaunch"), ("inverse", None), ("inverse", "PreLaunch")} <= asked


async def test_a_bybit_usdt_future_is_loaded_with_its_expiry_and_its_own_risk_limits() -> None:
    rig = make_rig("bybit", BybitBook(listed=list(BYBIT_DELIVERY)))
    try:
        market = await rig.venue.load_market("BTC/USDT:USDT-231229")
    finally:
        await rig.venue.close()
    assert (market.expiry, market.inverse, market.amount_step, market.contract_size) == (DEC23 / 1000, False, D("0.001"), D(1))
    assert rig.last("GET", "/v5/market/risk-limit") == {"category": "linear", "symbol": "BTCUSDT-29DEC23"}


async def test_okx_lists_futures_by_exp_time_and_only_live_ones_tradable() -> None:
    rig = make_rig("okx", OkxBook(listed=list(OKX_LISTED)))
    try:
        linear = await rig.venue.fetch_delivery_contracts("BTC/USDT:USDT")
        inverse = await rig.venue.fetch_delivery_contracts("BTC/USD:BTC")
    finally:
        await rig.venue.close()
    assert linear == [
        Contract("BTC/USDT:USDT-231124", NOV23 / 1000, tradable=False),  # suspend
        Contract("BTC/USDT:USDT-231229", DEC23 / 1000, tradable=True),
        Contract("BTC/USDT:USDT-240329", MAR24 / 1000, tradable=False),  # preopen
    ]
    assert inverse == [Contract("BTC/USD:BTC-231229", DEC23 / 1000, tradable=True)]
    assert {r.query.get("instType") for r in rig.session.sent("GET", "/api/v5/public/instruments")} == {"SWAP", "FUTURES", "SPOT"}


async def test_a_quarterly_that_stops_trading_is_seen_at_the_next_listing_not_hidden_by_ccxts_market_cache() -> None:
    symbols = [usdm_symbol("BTCUSDT_231229", "CURRENT_QUARTER", DEC23, "TRADING")]
    venue, session = binance_venue(coinm=False, symbols=symbols)
    try:
        before = await venue.fetch_delivery_contracts("BTC/USDT:USDT")
        symbols[0]["status"] = "PRE_DELIVERING"  # the book's exchangeInfo is the same list object
        after = await venue.fetch_delivery_contracts("BTC/USDT:USDT")
    finally:
        await venue.close()
    assert [c.tradable for c in before] == [True] and [c.tradable for c in after] == [False]
    assert len(session.sent("GET", "/fapi/v1/exchangeInfo")) == 2
