"""An offline Binance (USDⓈ-M and COIN-M futures, spot, wallet) emulator that unmodified ccxt talks to.

COIN-M (`/dapi/`, ccxt's `binancecoinm`) runs on the same book and handlers as USDⓈ-M (`/fapi/`): a
contract's `SymbolSpec` says whether it is linear or inverse (contracts of `contract_size` USD,
margin, PnL, fees and funding in the coin, its own wallet `Book.coinm` and position mode), and one
set of formulas answers both. Faults, lookup lag, weights and liquidation apply to both alike.

An aiohttp application on 127.0.0.1 answering the REST endpoints hedgebot
uses, at Binance's own paths, with Binance's documented response shapes and
error codes. Point a ccxt client at it by rewriting `urls['api']` (see
`hedgebot.exchange.ccxt_venue.rewrite_api_urls`). It keeps its own book:
spot and futures wallets, both legs of each symbol with entry price and
isolated margin, orders by client id, margin and transfer history, funding
income, brackets, position mode. Every signed request is checked as Binance
checks it: API key, HMAC-SHA256 signature over the query and body,
timestamp within `recvWindow`.

For tests it can inject faults (timeouts before or after executing, 429 with
Retry-After, 5xx, -1021) and move the mark price. Control endpoints live
under `/_emulator/` (never part of Binance's API); `/_emulator/requests` lists
every request with the API key it came under and when it arrived, and every
order carried out, so a test can tell which of two daemons sent what.

Run by hand:

    python -m hedgebot.testing.binance_emulator --port 8765 --key demo:demosecret --state var/emulator.json

It also serves Binance's websocket streams (`hedgebot.testing.binance_streams`):
the user-data stream (ACCOUNT_UPDATE, ORDER_TRADE_UPDATE) for a listen key, and
the mark-price stream, which pushes again each time `/_emulator/mark` moves it.

It counts Binance's request weight per IP and minute
(`hedgebot.testing.binance_limits`): `X-MBX-USED-WEIGHT-1M` on every answer,
429 with Retry-After past the limit, 418 with the ban's end for a client
that keeps sending inside the Retry-After period.

A liquidation engine runs on every mark change and funding payment: a leg whose
margin balance falls below its maintenance margin on the mark is closed by an
`autoclose-` order of the exchange's own (order history, ORDER_TRADE_UPDATE,
REALIZED_PNL and INSURANCE_CLEAR income), its margin lost; `auto_deleverage`
(`/_emulator/adl`) closes a profitable leg the same way with `adl_autoclose-`.

Limits: COIN-M's streams are not served (its events never reach the USDⓈ-M user stream); delivery
contracts are listed (`quarterly`) and settled when asked (`deliver`, `/_emulator/deliver`), not on
their date; market orders only, filled at the mark (under the `partial_fill` fault in
part, the rest EXPIRED); liquidation takes the whole margin at once (no partial
liquidation by tier); ADL only when asked.
"""

from __future__ import annotations


import argparse
import asyncio
import dataclasses
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from aiohttp import web

from hedgebot.exchange.candles import MOST_PER_PAGE, TIMEFRAMES, CandleBook
from hedgebot.exchange.port import Candle
from hedgebot.testing.binance_limits import WeightLimiter

D = Decimal
ZERO = D(0)


_EIGHT = D("0.00000001")
_SPOT_STEP = D("0.00001")  # the LOT_SIZE step /api/v3/exchangeInfo serves


def _s(value: Decimal) -> str:
    """Format a decimal the way Binance does: plain, at most 8 decimals, no exponent."""
    value = value.quantize(_EIGHT)
    return format(value.normalize(), "f") if value != 0 else "0"


class BinanceError(Exception):
    """A refusal answered as `{"code": ..., "msg": ...}`."""

    def __init__(self, code: int, msg: str, status: int = 400) -> None:
        super().__init__(msg)
        self.code = code
        self.msg = msg
        self.status = status


# ---- the book ------------------------------------------------------------------------


@dataclass
class SymbolSpec:
    """One perpetual (and the spot pair of the same name)."""

    base: str
    quote: str
    step: str = "0.001"
    min_qty: str = "0.001"
    min_notional: str = "100"
    tick: str = "0.10"
    mark: str = "50000"
    funding_rate: str = "0.0001"
    leverage: int = 20
    margin_type: str = "CROSSED"
    # A COIN-M (inverse) contract: its face value in USD; empty for a USDⓈ-M (linear) one.
    contract_size: str = ""
    # PERPETUAL, CURRENT_QUARTER or NEXT_QUARTER; a quarterly's delivery time and its status (TRADING,
    # PENDING_TRADING, PRE_DELIVERING, DELIVERING, DELIVERED), as exchangeInfo serves them.
    contract_type: str = "PERPETUAL"
    delivery_ms: int = 4133404800000
    status: str = "TRADING"
    # (floor, cap, maint ratio, cum, max leverage), as /fapi/v1/leverageBracket serves them (in the
    # margin asset: USDT notional on USDⓈ-M, coins on COIN-M as /dapi/v2/leverageBracket's qtyFloor/qtyCap)
    brackets: list[tuple[int, int, str, str, int]] = field(
        default_factory=lambda: [
            (0, 50_000, "0.004", "0", 125),
            (50_000, 600_000, "0.005", "50", 100),
            (600_000, 3_000_000, "0.0065", "950", 75),
            (3_000_000, 12_000_000, "0.01", "11450", 50),
            (12_000_000, 70_000_000, "0.02", "131450", 25),
            (70_000_000, 100_000_000, "0.025", "481450", 20),
        ]
    )

    @property
    def inverse(self) -> bool:
        """Say whether the contract is COIN-M's: amounts in contracts, margin, PnL and fees in the coin."""
        return bool(self.contract_size)

    @property
    def settle(self) -> str:
        """Return the margin asset: the quote on USDⓈ-M, the coin itself on COIN-M."""
        return self.base if self.inverse else self.quote

    @property
    def api(self) -> str:
        """Return the API family that lists the contract: "fapi" (USDⓈ-M) or "dapi" (COIN-M)."""
        return "dapi" if self.inverse else "fapi"

    def value(self, qty: Decimal, price: Decimal) -> Decimal:
        """Return the value of `qty` at `price` in the margin asset (linear: qty x price; inverse: contracts x face / price)."""
        if self.inverse:
            return qty * D(self.contract_size) / price if price > 0 else ZERO
        return qty * price

    def pnl(self, short: bool, entry: Decimal, qty: Decimal, price: Decimal) -> Decimal:
        """Return the profit of `qty` entered at `entry`, valued at `price`, in the margin asset."""
        if self.inverse:
            if entry <= 0 or price <= 0:
                return ZERO
            gain = qty * D(self.contract_size) * (1 / entry - 1 / price)  # a long's
        else:
            gain = (price - entry) * qty
        return -gain if short else gain

    def average_entry(self, entry: Decimal, size: Decimal, price: Decimal, qty: Decimal) -> Decimal:
        """Return the entry after adding `qty` at `price` to `size` at `entry` (inverse: the harmonic mean, as Binance averages)."""
        if self.inverse and size > 0 and entry > 0:
            return (size + qty) / (size / entry + qty / price)
        return (entry * size + price * qty) / (size + qty)


# Binance COIN-M's tiers of BTCUSD_PERP in coins (GET /dapi/v2/leverageBracket: qtyFloor, qtyCap, ratio, cum, leverage).
COINM_BTC_BRACKETS: list[tuple[int, int, str, str, int]] = [
    (0, 5, "0.004", "0", 125), (5, 10, "0.005", "0.005", 100), (10, 20, "0.01", "0.055", 50),
    (20, 50, "0.025", "0.355", 20), (50, 100, "0.05", "1.605", 10), (100, 200, "0.1", "6.605", 5),
    (200, 400, "0.125", "11.605", 4), (400, 1000, "0.15", "21.605", 3), (1000, 1500, "0.25", "121.605", 2),
    (1500, 3000, "0.5", "496.605", 1),
]


# How long before delivery a delivery contract stops taking orders (Binance does not say; see `age_quarterlies`).
PRE_DELIVERY_SECONDS = 3600


def quarterly(spec: SymbolSpec, delivery_ms: int, contract_type: str = "CURRENT_QUARTER") -> SymbolSpec:
    """Return the delivery contract of `spec`'s kind that settles at `delivery_ms` (no funding; named BTCUSDT_260327)."""
    return dataclasses.replace(spec, contract_type=contract_type, delivery_ms=delivery_ms, funding_rate="0", brackets=list(spec.brackets))


def delivery_symbol(spec: SymbolSpec, delivery_ms: int) -> str:
    """Return Binance's name of a delivery contract: the pair, an underscore, the delivery date as YYMMDD."""
    from datetime import UTC, datetime

    day = datetime.fromtimestamp(delivery_ms / 1000, UTC).strftime("%y%m%d")
    return f"{spec.base}{spec.quote}_{day}"


def coinm_perpetual(base: str, mark: str = "50000") -> SymbolSpec:
    """Return a COIN-M perpetual (`BTCUSD_PERP`): 100 USD contracts for BTC, 10 USD for every other coin."""
    return SymbolSpec(
        base, "USD", step="1", min_qty="1", min_notional="0", tick="0.1", mark=mark,
        contract_size="100" if base == "BTC" else "10", brackets=list(COINM_BTC_BRACKETS),
    )


@dataclass
class KeySpec:
    """An API key and what it may do."""

    secret: str
    can_withdraw: bool = False
    ip_restrict: bool = True
    futures: bool = True  # Binance: off for a key created before the futures account was opened


@dataclass
class Position:
    """One leg: signed amount for BOTH, positive for LONG/SHORT legs."""

    amount: str = "0"
    entry: str = "0"
    isolated_wallet: str = "0"
    update_time: int = 0


@dataclass
class Book:
    """Everything the emulated exchange knows."""

    symbols: dict[str, SymbolSpec] = field(
        default_factory=lambda: {"BTCUSDT": SymbolSpec("BTC", "USDT"), "BTCUSD_PERP": coinm_perpetual("BTC")}
    )
    keys: dict[str, KeySpec] = field(default_factory=dict)
    spot: dict[str, str] = field(default_factory=dict)
    futures: dict[str, str] = field(default_factory=dict)  # cross wallet balance, without isolated margin
    coinm: dict[str, str] = field(default_factory=dict)  # the COIN-M wallet's cross balance in coins, likewise
    dual_side: bool = False
    coinm_dual_side: bool = False  # COIN-M keeps its own position mode
    multi_assets: bool = False
    portfolio_margin: bool = False
    positions: dict[str, Position] = field(default_factory=dict)  # "BTCUSDT|SHORT"
    orders: dict[str, dict[str, Any]] = field(default_factory=dict)  # "futures|BTCUSDT|cid" -> answer
    open_orders: list[dict[str, Any]] = field(default_factory=list)
    margin_history: list[dict[str, Any]] = field(default_factory=list)
    transfers: list[dict[str, Any]] = field(default_factory=list)
    income: list[dict[str, Any]] = field(default_factory=list)
    funding_history: list[dict[str, Any]] = field(default_factory=list)  # every settlement, as fundingRate serves it
    mark_lag_ms: dict[str, int] = field(default_factory=dict)  # a mark price this old (a stalled feed)
    next_id: int = 1_000_000
    taker_fee: str = "0.0005"
    spot_fee: str = "0.001"

    def to_json(self) -> dict[str, Any]:
        """Return the book as JSON-ready data."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Book:
        """Rebuild a book written by `to_json`."""
        book = cls(**{k: v for k, v in data.items() if k not in {"symbols", "keys", "positions"}})
        book.symbols = {
            k: SymbolSpec(**{**v, "brackets": [tuple(b) for b in v["brackets"]]}) for k, v in data["symbols"].items()
        }
        book.keys = {k: KeySpec(**v) for k, v in data["keys"].items()}
        book.positions = {k: Position(**v) for k, v in data["positions"].items()}
        return book


@dataclass
class Fault:
    """One injected fault: `kind` on the next `count` requests matching method and path prefix."""

    kind: str  # one of FAULT_KINDS
    path: str = "/"
    method: str = ""
    count: int = 1
    delay: float = 2.0  # seconds held before answering, for the timeout kinds
    retry_after: int = 1
    fill: str = "1"  # partial_fill: the fraction of a market order the book can fill (rounded down to the step)


_OPEN_STATUSES = {"NEW", "PARTIALLY_FILLED"}
_FAULT = web.RequestKey("fault", object)  # the fault taken for a request, for the signed handler to see

FAULT_KINDS = {
    "timeout_before", "timeout_after", "drop_before", "drop_after", "rate_limit", "server_error", "timestamp",
    "order_unseen",  # answer -2013 as a lagging read replica would, whatever the book holds
    # Answer 503 (`retry_after` 0) or -1007 (`retry_after` 1) at once, and carry the request out
    # `delay` seconds later: Binance documents that the execution status is then unknown.
    "execute_later",
    "system_busy",  # -1008: Binance's system-level throttle (reduce-only and close-position orders exempt)
    "price_protection",  # -4131: the best counterparty price is beyond the PERCENT_PRICE protection
    "disconnected",  # -1001 with HTTP 503: Binance's internal error, "unable to process your request"
    "partial_fill",  # a MARKET order runs out of liquidity: `fill` of it executes, the rest EXPIRED
}


class Emulator:
    """The exchange: a book, a clock, faults, and the aiohttp application that serves them."""

    def __init__(
        self,
        book: Book | None = None,
        *,
        state_path: Path | None = None,
        now: Callable[[], float] | None = None,
        clock_offset_seconds: float = 0.0,
    ) -> None:
        self.book = book or Book()
        # How far the exchange's clock runs ahead of the daemon's (negative: behind). Every time the
        # exchange shows (server time, order, history, mark and event stamps) and its minute windows run on it.
        self.clock_offset_seconds = clock_offset_seconds
        self.state_path = state_path
        self._now = now or time.time
        self.faults: list[Fault] = []
        # Requests answered "unknown" and carried out later: (due time, handler, request, params).
        self.deferred: list[tuple[float, Callable[..., Any], web.Request, dict[str, str]]] = []
        # Order lookups lag behind execution by this many seconds (Binance: reads may lag).
        self.lookup_lag_seconds = 0.0
        # Request weight per IP per minute, 429 past the limit, 418 for a client that does not back off.
        self.limiter = WeightLimiter()
        self._visible_at: dict[str, float] = {}
        self.executions: list[str] = []  # the book key of every order carried out, duplicates included
        self.late_executions = 0  # requests answered "unknown" and carried out afterwards
        self.server_time_offset_ms = 0
        self.requests: list[tuple[str, str]] = []
        # Every request with the API key it came under and the exchange's time it arrived: who sent what, when.
        self.request_log: list[dict[str, Any]] = []
        # What the websocket side (hedgebot.testing.binance_streams) hooks in: events and routes.
        self.listeners: list[Callable[[dict[str, Any]], None]] = []
        self.route_installers: list[Callable[[web.UrlDispatcher], None]] = []
        self.order_listeners: list[Callable[[dict[str, Any]], None]] = []
        self.saved_listeners: list[Callable[[], None]] = []  # called on every change of the book (the streams' pushes)
        self.forced: list[str] = []  # the book key of every order Binance placed itself (liquidation, ADL)
        # The marks set, served as klines (kept in memory only: an emulator restarted from its state file has none).
        self.candles = CandleBook()
        if state_path is not None and state_path.exists():
            self.book = Book.from_json(json.loads(state_path.read_text()))

    # ---- time, persistence --------------------------------------------------------

    def now_ms(self) -> int:
        """Return the exchange's time in milliseconds (the clock the emulator was given, plus its offset)."""
        return int((self._now() + self.clock_offset_seconds) * 1000)

    def server_ms(self) -> int:
        """Return the server time that signed timestamps are checked against.

        ccxt stamps signed requests with the wall clock, so this is the wall clock plus the exchange's
        clock offset (and any injected skew), whatever clock drives the book.
        """
        return int((time.time() + self.clock_offset_seconds) * 1000) + self.server_time_offset_ms

    def save(self) -> None:
        """Tell who watches the book that it changed; write it atomically when a state path is set."""
        for listener in list(self.saved_listeners):
            listener()
        if self.state_path is None:
            return
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.book.to_json()))
        os.replace(tmp, self.state_path)

    def _id(self) -> int:
        self.book.next_id += 1
        return self.book.next_id

    # ---- test controls ------------------------------------------------------------

    def add_key(self, api_key: str, secret: str, *, can_withdraw: bool = False, ip_restrict: bool = True) -> None:
        """Register an API key."""
        self.book.keys[api_key] = KeySpec(secret, can_withdraw, ip_restrict)
        self.save()

    def deposit(self, wallet: str, asset: str, amount: Decimal) -> None:
        """Credit (or debit, never below zero) the spot, futures (USDⓈ-M) or coinm (COIN-M) wallet from outside."""
        book = {"spot": self.book.spot, "coinm": self.book.coinm}.get(wallet, self.book.futures)
        book[asset] = _s(max(ZERO, D(book.get(asset, "0")) + amount))
        self.save()

    def set_mark(self, symbol: str, price: Decimal) -> None:
        """Move the mark price of a symbol (Binance id, e.g. BTCUSDT)."""
        self.book.symbols[symbol].mark = _s(price)
        self.candles.record(symbol, self.now_ms() / 1000, price)
        self.save()
        self.publish(self.mark_price_update(symbol))
        self.liquidate_due()

    def stall_mark(self, symbol: str, seconds: float) -> None:
        """Make the mark price look `seconds` old, as a stalled price engine would serve it."""
        self.book.mark_lag_ms[symbol] = int(seconds * 1000)
        self.save()

    def mark_price_update(self, symbol: str) -> dict[str, Any]:
        """Return a markPriceUpdate event as the market stream pushes it."""
        premium = self._premium(symbol)
        return {
            "e": "markPriceUpdate", "E": premium["time"], "s": symbol, "p": premium["markPrice"], "i": premium["indexPrice"],
            "P": premium["estimatedSettlePrice"], "r": premium["lastFundingRate"], "T": premium["nextFundingTime"],
        }

    def publish(self, event: dict[str, Any]) -> None:
        """Hand an event (Binance's websocket shape) to whoever listens: the stream hub, tests."""
        for listener in list(self.listeners):
            listener(event)

    def settle_funding(self, symbol: str, rate: Decimal | None = None) -> None:
        """Pay funding on every leg of `symbol` now (positive rate: longs pay shorts)."""
        spec = self.book.symbols[symbol]
        if spec.contract_type != "PERPETUAL":
            raise ValueError(f"{symbol} is a delivery contract: it pays no funding")
        rate = D(spec.funding_rate) if rate is None else rate
        mark = D(spec.mark)
        self.book.funding_history.append(
            {"symbol": symbol, "fundingTime": self.now_ms(), "fundingRate": _s(rate), "markPrice": spec.mark}
        )
        for key, pos in self.book.positions.items():
            sym, _, side = key.partition("|")
            amount = D(pos.amount)
            if sym != symbol or amount == 0:
                continue
            is_short = side == "SHORT" or (side == "BOTH" and amount < 0)
            # In the margin asset: USDT on USDⓈ-M, the coin on COIN-M (the position's value in coins at the mark).
            payment = (spec.value(abs(amount), mark) * rate * (1 if is_short else -1)).quantize(_EIGHT)
            if spec.margin_type == "ISOLATED":
                pos.isolated_wallet = _s(D(pos.isolated_wallet) + payment)
            else:
                self._cash(spec, payment)
            self.book.income.append(
                {"symbol": symbol, "incomeType": "FUNDING_FEE", "income": _s(payment), "asset": spec.settle,
                 "info": "FUNDING_FEE", "time": self.now_ms(), "tranId": self._id(), "tradeId": ""}
            )
            self.publish(self.account_update("FUNDING_FEE", spec.settle, payment, symbol, side))
        self.save()
        self.liquidate_due()  # a funding payment can push a leg below its maintenance margin

    def age_quarterlies(self) -> None:
        """Turn each TRADING delivery contract PRE_DELIVERING once it is `PRE_DELIVERY_SECONDS` from its delivery.

        Binance lists a contract's status in exchangeInfo and stops its orders before delivery (-4108), but does
        not publish when PRE_DELIVERING begins; the settlement price is the index averaged over the last 30
        minutes. The emulator takes the harsh reading: no orders from an hour before delivery, as the paper venue.
        """
        now = self.now_ms()
        for spec in self.book.symbols.values():
            if spec.contract_type != "PERPETUAL" and spec.status == "TRADING" and now >= spec.delivery_ms - PRE_DELIVERY_SECONDS * 1000:
                spec.status = "PRE_DELIVERING"

    def deliver(self, symbol: str, price: Decimal | None = None) -> list[Decimal]:
        """Settle a delivery contract at `price` (its mark by default): every leg closed, its PnL and margin booked.

        Binance settles the positions still open at delivery at the delivery price, with no order of the
        user's: the income history shows DELIVERED_SETTELMENT (Binance's spelling) and the contract is
        DELIVERED, taking no order afterwards. Returns the PnL of each leg settled.
        """
        spec = self.book.symbols[symbol]
        if spec.contract_type == "PERPETUAL":
            raise ValueError(f"{symbol} is a perpetual: it has no delivery")
        price = D(spec.mark) if price is None else price
        settled = []
        for key, pos in self.book.positions.items():
            sym, _, side = key.partition("|")
            size = abs(D(pos.amount))
            if sym != symbol or size == 0:
                continue
            pnl = spec.pnl(self._is_short(side, pos), D(pos.entry), size, price)
            self._cash(spec, D(pos.isolated_wallet) + pnl)
            pos.amount, pos.entry, pos.isolated_wallet, pos.update_time = "0", "0", "0", self.now_ms()
            self._income(symbol, spec.settle, "DELIVERED_SETTELMENT", pnl)
            self.publish(self.account_update("ORDER", spec.settle, pnl, symbol, side))
            settled.append(pnl)
        spec.status = "DELIVERED"
        self.save()
        return settled

    def account_update(self, reason: str, asset: str, change: Decimal, symbol: str, side: str) -> dict[str, Any]:
        """Return an ACCOUNT_UPDATE event as Binance pushes it on the user-data stream."""
        pos = self.book.positions.get(f"{symbol}|{side}", Position())
        spec = self.book.symbols[symbol]
        wallet = D(self._wallet(spec.api).get(asset, "0"))
        isolated = sum((D(p.isolated_wallet) for k, p in self.book.positions.items()
                        if (other := self.book.symbols[k.partition("|")[0]]).api == spec.api and other.settle == asset), ZERO)
        return {
            "e": "ACCOUNT_UPDATE", "E": self.now_ms(), "T": self.now_ms(),
            "a": {
                "m": reason,
                # wb: the wallet with isolated margin (as /fapi/v3/account's walletBalance), cw: without it
                "B": [{"a": asset, "wb": _s(wallet + isolated), "cw": _s(wallet), "bc": _s(change)}],
                "P": [{
                    "s": symbol, "pa": _s(-D(pos.amount) if side == "SHORT" else D(pos.amount)), "ep": pos.entry, "bep": pos.entry, "cr": "0", "up": "0",
                    "mt": spec.margin_type.lower() if spec.margin_type == "ISOLATED" else "cross",
                    "iw": pos.isolated_wallet, "ps": side,
                }],
            },
        }

    def inject(self, fault: Fault) -> None:
        """Queue a fault."""
        if fault.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {fault.kind!r}; one of {sorted(FAULT_KINDS)}")
        self.faults.append(fault)

    def futures_orders(self) -> dict[str, dict[str, Any]]:
        """Return every futures order by client id."""
        return {k.split("|", 2)[2]: v for k, v in self.book.orders.items() if k.startswith("futures|")}

    def position(self, symbol: str, side: str) -> Position:
        """Return a leg (empty when there is none)."""
        return self.book.positions.get(f"{symbol}|{side}", Position())

    # ---- the application ------------------------------------------------------------

    def app(self) -> web.Application:
        """Return the aiohttp application."""
        app = web.Application(middlewares=[self._middleware])
        r = app.router
        for prefix in ("/fapi/v1", "/dapi/v1", "/api/v3"):
            r.add_get(f"{prefix}/time", self.time)
            r.add_get(f"{prefix}/ping", self.ping)
        # COIN-M (/dapi/) on the same handlers as USDⓈ-M: one book, the contract saying linear or inverse.
        r.add_get("/dapi/v1/exchangeInfo", self.futures_exchange_info)
        r.add_get("/dapi/v1/premiumIndex", self.premium_index)
        r.add_get("/dapi/v1/fundingRate", self.funding_rate_history)
        r.add_get("/fapi/v1/fundingRate", self.funding_rate_history)
        r.add_get("/dapi/v2/leverageBracket", self.signed(self.leverage_bracket))
        r.add_get("/dapi/v1/positionSide/dual", self.signed(self.get_dual))
        r.add_post("/dapi/v1/positionSide/dual", self.signed(self.post_dual))
        r.add_post("/dapi/v1/marginType", self.signed(self.margin_type))
        r.add_post("/dapi/v1/leverage", self.signed(self.leverage))
        r.add_post("/dapi/v1/order", self.signed(self.futures_new_order))
        r.add_get("/dapi/v1/order", self.signed(self.futures_get_order))
        r.add_get("/dapi/v1/openOrders", self.signed(self.futures_open_orders))
        r.add_get("/dapi/v1/allOrders", self.signed(self.futures_all_orders))
        r.add_get("/dapi/v1/positionRisk", self.signed(self.position_risk))
        r.add_get("/dapi/v1/account", self.signed(self.futures_account))
        r.add_get("/dapi/v1/balance", self.signed(self.coinm_balance))
        r.add_post("/dapi/v1/positionMargin", self.signed(self.position_margin))
        r.add_get("/dapi/v1/positionMargin/history", self.signed(self.position_margin_history))
        r.add_get("/dapi/v1/income", self.signed(self.income))
        r.add_get("/fapi/v1/exchangeInfo", self.futures_exchange_info)
        r.add_get("/fapi/v1/premiumIndex", self.premium_index)
        r.add_get("/fapi/v1/klines", self.klines)
        r.add_get("/fapi/v1/leverageBracket", self.signed(self.leverage_bracket))
        r.add_get("/fapi/v1/positionSide/dual", self.signed(self.get_dual))
        r.add_post("/fapi/v1/positionSide/dual", self.signed(self.post_dual))
        r.add_get("/fapi/v1/multiAssetsMargin", self.signed(self.multi_assets))
        r.add_get("/fapi/v1/symbolConfig", self.signed(self.symbol_config))
        r.add_post("/fapi/v1/marginType", self.signed(self.margin_type))
        r.add_post("/fapi/v1/leverage", self.signed(self.leverage))
        r.add_post("/fapi/v1/order", self.signed(self.futures_new_order))
        r.add_get("/fapi/v1/order", self.signed(self.futures_get_order))
        r.add_get("/fapi/v1/openOrders", self.signed(self.futures_open_orders))
        r.add_get("/fapi/v1/allOrders", self.signed(self.futures_all_orders))
        r.add_get("/fapi/v3/positionRisk", self.signed(self.position_risk))
        r.add_get("/fapi/v3/account", self.signed(self.futures_account))
        r.add_post("/fapi/v1/positionMargin", self.signed(self.position_margin))
        r.add_get("/fapi/v1/positionMargin/history", self.signed(self.position_margin_history))
        r.add_get("/fapi/v1/income", self.signed(self.income))
        r.add_get("/api/v3/exchangeInfo", self.spot_exchange_info)
        r.add_get("/api/v3/account", self.signed(self.spot_account))
        r.add_post("/api/v3/order", self.signed(self.spot_new_order))
        r.add_get("/api/v3/order", self.signed(self.spot_get_order))
        r.add_get("/api/v3/allOrders", self.signed(self.spot_all_orders))
        r.add_post("/sapi/v1/asset/transfer", self.signed(self.new_transfer))
        r.add_get("/sapi/v1/asset/transfer", self.signed(self.transfer_history))
        r.add_get("/sapi/v1/account/apiRestrictions", self.signed(self.api_restrictions))
        r.add_get("/sapi/v1/portfolio/account", self.signed(self.portfolio_account))
        for install in self.route_installers:
            install(r)
        r.add_get("/_emulator/state", self.control_state)
        r.add_get("/_emulator/requests", self.control_requests)
        r.add_post("/_emulator/mark", self.control_mark)
        r.add_post("/_emulator/fault", self.control_fault)
        r.add_get("/_emulator/faults", self.control_faults)
        r.add_post("/_emulator/deposit", self.control_deposit)
        r.add_post("/_emulator/account", self.control_account)
        r.add_post("/_emulator/funding", self.control_funding)
        r.add_post("/_emulator/adl", self.control_adl)
        r.add_post("/_emulator/deliver", self.control_deliver)
        return app

    def _take_fault(self, request: web.Request) -> Fault | None:
        if request.path.startswith("/_emulator/"):
            return None
        for fault in self.faults:
            if request.path.startswith(fault.path) and (not fault.method or fault.method == request.method):
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
                return fault
        return None

    @web.middleware
    async def _middleware(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        self.requests.append((request.method, request.path))
        if not request.path.startswith("/_emulator/"):
            self.request_log.append({
                "method": request.method, "path": request.path, "key": request.headers.get("X-MBX-APIKEY"),
                "at": self.now_ms() / 1000,
            })
        await self.run_deferred()
        self.age_quarterlies()
        ip = request.remote or "unknown"
        verdict = self.limiter.judge(ip, request.method, request.path, "symbol" in request.query, self.now_ms() / 1000)
        if verdict.status != 200:
            return _error_response(BinanceError(verdict.code, verdict.msg, verdict.status), headers=verdict.headers)
        response = await self._answer(request, handler)
        if not response.prepared:
            response.headers.update(verdict.headers)
        return response

    async def _answer(self, request: web.Request, handler: Callable[..., Any]) -> web.StreamResponse:
        fault = self._take_fault(request)
        request[_FAULT] = fault
        if fault is not None:
            if fault.kind == "rate_limit":
                self.limiter.note_429(request.remote or "unknown", self.now_ms() / 1000, fault.retry_after)
                return _error_response(BinanceError(-1003, "Too many requests; current limit is 2400 requests per minute.", 429),
                                       headers={"Retry-After": str(fault.retry_after)})
            if fault.kind == "server_error":
                return web.Response(status=503, text="Service Unavailable")
            if fault.kind == "timestamp":
                return _error_response(BinanceError(-1021, "Timestamp for this request is outside of the recvWindow."))
            if fault.kind == "system_busy":
                return _error_response(BinanceError(-1008, "Request throttled by system-level protection. Reduce-only/close-position orders are exempt. Please try again.", 503))
            if fault.kind == "disconnected":
                return _error_response(BinanceError(-1001, "Internal error; unable to process your request. Please try again.", 503))
            if fault.kind == "price_protection":
                return _error_response(BinanceError(-4131, "The counterparty's best price does not meet the PERCENT_PRICE filter limit."))
            if fault.kind == "order_unseen":
                return _error_response(BinanceError(-2013, "Order does not exist."))
            if fault.kind in {"timeout_before", "drop_before"}:
                await self._hold_or_drop(request, fault)
        try:
            response = await handler(request)
        except BinanceError as exc:
            response = _error_response(exc)
        if fault is not None and fault.kind in {"timeout_after", "drop_after"}:
            await self._hold_or_drop(request, fault)
        return response

    async def run_deferred(self) -> None:
        """Carry out the requests answered "unknown" whose time has come (errors are lost, as the client never hears)."""
        now = self._now()
        due = [d for d in self.deferred if d[0] <= now]
        self.deferred = [d for d in self.deferred if d[0] > now]
        clock = self._now
        for at, handler, request, params in sorted(due, key=lambda d: d[0]):
            # Carried out at its due time, not at the request that happens to notice it: its stamps and
            # its lookup lag count from then.
            self._now = lambda at=at: at
            self.late_executions += 1
            try:
                await handler(request, params)
            except BinanceError:
                pass
            finally:
                self._now = clock
            self.save()

    def _record_order(self, key: str, answer: dict[str, Any]) -> None:
        """Keep an executed order; lookups see it only after the lookup lag."""
        self.book.orders[key] = answer
        self.executions.append(key)
        self._visible_at[key] = self._now() + self.lookup_lag_seconds

    def _visible(self, key: str) -> bool:
        return self._now() >= self._visible_at.get(key, 0.0)

    async def _hold_or_drop(self, request: web.Request, fault: Fault) -> None:
        if fault.kind.startswith("drop"):
            if request.transport is not None:
                request.transport.close()
            raise asyncio.CancelledError  # the client sees the connection close with no answer
        await asyncio.sleep(fault.delay)  # longer than the client waits: it gives up

    # ---- signing ----------------------------------------------------------------------

    def signed(self, handler: Callable[[web.Request, dict[str, str]], Any]) -> Callable[[web.Request], Any]:
        """Wrap a handler with Binance's key, signature and timestamp checks."""

        async def checked(request: web.Request) -> web.StreamResponse:
            api_key = request.headers.get("X-MBX-APIKEY")
            key = self.book.keys.get(api_key or "")
            if key is None or (not key.futures and request.path.startswith(("/fapi/", "/dapi/"))):
                raise BinanceError(-2015, "Invalid API-key, IP, or permissions for action.", 401)
            query = request.query_string
            body = (await request.text()) if request.can_read_body else ""
            total = query + body if not (query and body) else f"{query}{body}"
            payload, sep, signature = total.rpartition("&signature=")
            if not sep:
                raise BinanceError(-1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
            expected = hmac.new(key.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
            if not hmac.compare_digest(expected, signature):
                raise BinanceError(-1022, "Signature for this request is not valid.")
            params = dict(parse_qsl(payload, keep_blank_values=True))
            try:
                stamp = int(params["timestamp"])
                window = int(params.get("recvWindow", "5000"))
            except (KeyError, ValueError):
                raise BinanceError(-1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.") from None
            if self.request_log and self.request_log[-1]["path"] == request.path:
                self.request_log[-1]["recv_window"] = window
                self.request_log[-1]["signed_at"] = stamp / 1000
            if window > 60_000:
                raise BinanceError(-1131, "recvWindow must be less than 60000")
            server = self.server_ms()
            if stamp > server + 1000 or server - stamp > window:
                raise BinanceError(-1021, "Timestamp for this request is outside of the recvWindow.")
            fault = request.get(_FAULT)
            if fault is not None and fault.kind == "execute_later":
                self.deferred.append((self._now() + fault.delay, handler, request, params))
                if fault.retry_after:
                    raise BinanceError(-1007, "Timeout waiting for response from backend server. Send status unknown; execution status unknown.")
                return web.Response(status=503, text="Service Unavailable")
            answer = await handler(request, params)
            if request.method != "GET":
                self.save()
            return web.json_response(answer, dumps=json.dumps)

        return checked

    # ---- public ---------------------------------------------------------------------------

    async def ping(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/ping, /api/v3/ping."""
        return web.json_response({})

    async def time(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/time, /api/v3/time."""
        return web.json_response({"serverTime": self.server_ms()})

    def _spec(self, symbol: str | None, request: web.Request | None = None) -> SymbolSpec:
        """Return a symbol's contract, refusing one the requested API does not list (USDⓈ-M's on /dapi/ and back)."""
        spec = self.book.symbols.get(symbol or "")
        if spec is None or (request is not None and spec.api != self._family(request) and not (
            self._family(request) == "api" and not spec.inverse
        )):
            raise BinanceError(-1121, "Invalid symbol.")
        return spec

    @staticmethod
    def _family(request: web.Request) -> str:
        """Return the API family a request went to: "fapi", "dapi", "api" (spot) or "sapi"."""
        return request.path.split("/", 2)[1]

    def _listed(self, request: web.Request) -> list[str]:
        """Return the symbols the requested futures API lists."""
        family = self._family(request)
        return [sym for sym, spec in self.book.symbols.items() if spec.api == family]

    @staticmethod
    def _decimals(step: str) -> int:
        return max(0, -D(step).normalize().as_tuple().exponent)  # type: ignore[operator]

    async def futures_exchange_info(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/exchangeInfo (and /dapi/v1/exchangeInfo, see `coinm_exchange_info`)."""
        if self._family(request) == "dapi":
            return self.coinm_exchange_info()
        symbols = []
        for sym in self._listed(request):
            spec = self.book.symbols[sym]
            symbols.append({
                "symbol": sym, "pair": sym.split("_")[0], "contractType": spec.contract_type, "deliveryDate": spec.delivery_ms,
                "onboardDate": 1569398400000, "status": spec.status, "maintMarginPercent": "2.5000",
                "requiredMarginPercent": "5.0000", "baseAsset": spec.base, "quoteAsset": spec.quote,
                "marginAsset": spec.quote, "pricePrecision": self._decimals(spec.tick),
                "quantityPrecision": self._decimals(spec.step), "baseAssetPrecision": 8, "quotePrecision": 8,
                "underlyingType": "COIN", "underlyingSubType": ["PoW"], "settlePlan": 0, "triggerProtect": "0.0500",
                "liquidationFee": "0.012500", "marketTakeBound": "0.05", "maxMoveOrderLimit": 10000,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "556.80", "maxPrice": "4529764", "tickSize": spec.tick},
                    {"filterType": "LOT_SIZE", "stepSize": spec.step, "maxQty": "1000", "minQty": spec.min_qty},
                    {"filterType": "MARKET_LOT_SIZE", "stepSize": spec.step, "maxQty": "120", "minQty": spec.min_qty},
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "MAX_NUM_ALGO_ORDERS", "limit": 10},
                    {"filterType": "MIN_NOTIONAL", "notional": spec.min_notional},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX", "GTD"],
                "permissionSets": ["GRID", "COPY"],
            })
        return web.json_response({
            "timezone": "UTC", "serverTime": self.server_ms(), "futuresType": "U_MARGINED",
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400}],
            "exchangeFilters": [], "assets": [], "symbols": symbols,
        })

    def coinm_exchange_info(self) -> web.Response:
        """Answer GET /dapi/v1/exchangeInfo: contracts of a face value in USD (contractSize), margined in the coin."""
        symbols = []
        for sym, spec in self.book.symbols.items():
            if not spec.inverse:
                continue
            symbols.append({
                "symbol": sym, "pair": sym.split("_")[0], "contractType": spec.contract_type, "deliveryDate": spec.delivery_ms,
                "onboardDate": 1597042800000, "contractStatus": spec.status, "contractSize": int(D(spec.contract_size)),
                "marginAsset": spec.settle, "maintMarginPercent": "2.5000", "requiredMarginPercent": "5.0000",
                "baseAsset": spec.base, "quoteAsset": spec.quote, "pricePrecision": self._decimals(spec.tick),
                "quantityPrecision": self._decimals(spec.step), "baseAssetPrecision": 8, "quotePrecision": 8,
                "equalQtyPrecision": 4, "maxMoveOrderLimit": 10000, "triggerProtect": "0.0500",
                "underlyingType": "COIN", "underlyingSubType": [], "liquidationFee": "0.015000", "marketTakeBound": "0.05",
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "1000", "maxPrice": "4529764", "tickSize": spec.tick},
                    {"filterType": "LOT_SIZE", "minQty": spec.min_qty, "maxQty": "1000000", "stepSize": spec.step},
                    {"filterType": "MARKET_LOT_SIZE", "minQty": spec.min_qty, "maxQty": "60000", "stepSize": spec.step},
                    {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                    {"filterType": "PERCENT_PRICE", "multiplierUp": "1.0500", "multiplierDown": "0.9500", "multiplierDecimal": "4"},
                ],
                "orderTypes": ["LIMIT", "MARKET", "STOP", "STOP_MARKET", "TAKE_PROFIT", "TAKE_PROFIT_MARKET", "TRAILING_STOP_MARKET"],
                "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
            })
        return web.json_response({
            "timezone": "UTC", "serverTime": self.server_ms(),
            "rateLimits": [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": 2400},
                           {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": 1200}],
            "exchangeFilters": [], "symbols": symbols,
        })

    async def spot_exchange_info(self, request: web.Request) -> web.Response:
        """GET /api/v3/exchangeInfo (the spot pairs: the USDⓈ-M symbols' names)."""
        symbols = []
        for sym, spec in self.book.symbols.items():
            if spec.inverse:
                continue
            symbols.append({
                "symbol": sym, "status": "TRADING", "baseAsset": spec.base, "baseAssetPrecision": 8,
                "quoteAsset": spec.quote, "quotePrecision": 8, "quoteAssetPrecision": 8, "baseCommissionPrecision": 8,
                "quoteCommissionPrecision": 8, "orderTypes": ["LIMIT", "LIMIT_MAKER", "MARKET", "STOP_LOSS_LIMIT", "TAKE_PROFIT_LIMIT"],
                "icebergAllowed": True, "ocoAllowed": True, "otoAllowed": True, "quoteOrderQtyMarketAllowed": True,
                "allowTrailingStop": True, "cancelReplaceAllowed": True, "isSpotTradingAllowed": True,
                "isMarginTradingAllowed": False,
                "filters": [
                    {"filterType": "PRICE_FILTER", "minPrice": "0.01000000", "maxPrice": "1000000.00000000", "tickSize": "0.01000000"},
                    {"filterType": "LOT_SIZE", "minQty": "0.00001000", "maxQty": "9000.00000000", "stepSize": "0.00001000"},
                    {"filterType": "NOTIONAL", "minNotional": "5.00000000", "applyMinToMarket": True,
                     "maxNotional": "9000000.00000000", "applyMaxToMarket": False, "avgPriceMins": 5},
                ],
                "permissions": [], "permissionSets": [["SPOT"]], "defaultSelfTradePreventionMode": "EXPIRE_MAKER",
                "allowedSelfTradePreventionModes": ["EXPIRE_TAKER", "EXPIRE_MAKER", "EXPIRE_BOTH"],
            })
        return web.json_response({"timezone": "UTC", "serverTime": self.server_ms(), "rateLimits": [], "exchangeFilters": [], "symbols": symbols})

    def _premium(self, sym: str) -> dict[str, Any]:
        spec = self.book.symbols[sym]
        interval = 8 * 3600 * 1000
        now = self.now_ms()
        perpetual = spec.contract_type == "PERPETUAL"  # a delivery contract has no funding: empty rate, no next time
        return {
            "symbol": sym, "markPrice": spec.mark, "indexPrice": spec.mark, "estimatedSettlePrice": spec.mark,
            "lastFundingRate": spec.funding_rate if perpetual else "", "interestRate": "0.00010000" if perpetual else "",
            "nextFundingTime": (now // interval + 1) * interval if perpetual else 0,
            "time": now - self.book.mark_lag_ms.get(sym, 0),
        }

    async def premium_index(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/premiumIndex (mark price and funding rate); /dapi/v1/premiumIndex answers a list, with the pair."""
        symbol = request.query.get("symbol")
        if self._family(request) == "dapi":
            wanted = [symbol] if symbol else self._listed(request)
            rows = []
            for sym in wanted:
                self._spec(sym, request)
                rows.append({**self._premium(sym), "pair": sym.split("_")[0]})
            return web.json_response(rows)
        if symbol:
            self._spec(symbol, request)
            return web.json_response(self._premium(symbol))
        return web.json_response([self._premium(s) for s in self._listed(request)])

    async def klines(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/klines: candles of the marks set, from startTime, the one still forming last (as Binance serves it)."""
        q = request.query
        symbol = q.get("symbol")
        self._spec(symbol, request)
        interval = q.get("interval", "")
        if interval not in TIMEFRAMES:
            raise BinanceError(-1120, "Invalid interval.")
        try:
            limit = int(q.get("limit", "500"))
            start = int(q["startTime"]) / 1000 if "startTime" in q else 0.0
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
        if not 1 <= limit <= MOST_PER_PAGE:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        now = self.now_ms() / 1000
        length = TIMEFRAMES[interval]
        # Closed candles, then the forming one (its close is the mark now): Binance hands both out.
        rows = self.candles.candles(str(symbol), interval, start, MOST_PER_PAGE, now)
        forming = now - now % length
        if forming >= start and (not rows or rows[-1].start < forming):
            mark = D(self.book.symbols[str(symbol)].mark)
            seen = self.candles.candles(str(symbol), "1m", forming, MOST_PER_PAGE, now + 60)
            rows.append(Candle(
                forming, seen[0].open if seen else mark, max([mark, *(c.high for c in seen)]),
                min([mark, *(c.low for c in seen)]), mark,
            ))
        out = [
            [int(c.start * 1000), _s(c.open), _s(c.high), _s(c.low), _s(c.close), "0", int((c.start + length) * 1000) - 1,
             "0", 0, "0", "0", "0"]
            for c in rows[:limit]
        ]
        return web.json_response(out)

    async def funding_rate_history(self, request: web.Request) -> web.Response:
        """GET /fapi/v1/fundingRate and /dapi/v1/fundingRate: the funding rates settled, from the income the book paid."""
        q = request.query
        symbol = q.get("symbol")
        self._spec(symbol, request)
        try:
            limit = int(q.get("limit", "100"))
            start = int(q["startTime"]) if "startTime" in q else None
            end = int(q["endTime"]) if "endTime" in q else None
        except ValueError:
            raise BinanceError(-1100, "Illegal characters found in a parameter.") from None
        if not 1 <= limit <= 1000:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        rows = [r for r in self.book.funding_history if r["symbol"] == symbol
                and (start is None or r["fundingTime"] >= start) and (end is None or r["fundingTime"] <= end)]
        # From startTime the first `limit` settlements; without it the most recent `limit` (Binance's fundingRate).
        return web.json_response(rows[:limit] if start is not None else rows[-limit:])

    # ---- futures account settings ------------------------------------------------------------

    async def leverage_bracket(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/leverageBracket; /dapi/v2/leverageBracket gives COIN-M's tiers in coins (qtyFloor, qtyCap)."""
        wanted = [p["symbol"]] if p.get("symbol") else self._listed(request)
        out = []
        for sym in wanted:
            spec = self._spec(sym, request)
            if spec.inverse:
                out.append({"symbol": sym, "notionalCoef": 1.0, "brackets": [
                    {"bracket": i + 1, "initialLeverage": lev, "qtyCap": cap, "qtyFloor": floor,
                     "maintMarginRatio": float(ratio), "cum": float(cum)}
                    for i, (floor, cap, ratio, cum, lev) in enumerate(spec.brackets)
                ]})
                continue
            out.append({
                "symbol": sym, "notionalCoef": 1.0,
                "brackets": [
                    {"bracket": i + 1, "initialLeverage": lev, "notionalCap": cap, "notionalFloor": floor,
                     "maintMarginRatio": float(ratio), "cum": float(cum)}
                    for i, (floor, cap, ratio, cum, lev) in enumerate(spec.brackets)
                ],
            })
        return out

    async def get_dual(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/positionSide/dual (and /dapi/: COIN-M keeps its own mode)."""
        return {"dualSidePosition": self._dual(self._family(request))}

    async def post_dual(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /fapi/v1/positionSide/dual."""
        wanted = p.get("dualSidePosition", "").lower() == "true"
        family = self._family(request)
        if wanted == self._dual(family):
            raise BinanceError(-4059, "No need to change position side.")
        if self.book.open_orders:
            raise BinanceError(-4067, "Position side cannot be changed if there exists open orders.")
        if any(D(pos.amount) != 0 and self.book.symbols[key.partition("|")[0]].api == family
               for key, pos in self.book.positions.items()):
            raise BinanceError(-4068, "Position side cannot be changed if there exists position.")
        if family == "dapi":
            self.book.coinm_dual_side = wanted
        else:
            self.book.dual_side = wanted
        return {"code": 200, "msg": "success"}

    async def multi_assets(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/multiAssetsMargin."""
        return {"multiAssetsMargin": self.book.multi_assets}

    async def symbol_config(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/symbolConfig."""
        wanted = [p["symbol"]] if p.get("symbol") else self._listed(request)
        return [
            {"symbol": s, "marginType": self._spec(s, request).margin_type, "isAutoAddMargin": False,
             "leverage": self._spec(s, request).leverage, "maxNotionalValue": str(self._max_notional(self._spec(s, request)))}
            for s in wanted
        ]

    @staticmethod
    def _max_notional(spec: SymbolSpec) -> int:
        allowed = [cap for _, cap, _, _, lev in spec.brackets if lev >= spec.leverage]
        return max(allowed) if allowed else 0

    def _has_position(self, symbol: str) -> bool:
        return any(k.startswith(f"{symbol}|") and D(v.amount) != 0 for k, v in self.book.positions.items())

    async def margin_type(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /fapi/v1/marginType."""
        spec = self._spec(p.get("symbol"), request)
        wanted = p.get("marginType", "").upper()
        if wanted not in {"ISOLATED", "CROSSED"}:
            raise BinanceError(-1116, "Invalid marginType.")
        if wanted == spec.margin_type:
            raise BinanceError(-4046, "No need to change margin type.")
        if self._has_position(p["symbol"]):
            raise BinanceError(-4048, "Margin type cannot be changed if there exists position.")
        spec.margin_type = wanted
        return {"code": 200, "msg": "success"}

    async def leverage(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /fapi/v1/leverage."""
        spec = self._spec(p.get("symbol"), request)
        try:
            value = int(p["leverage"])
        except (KeyError, ValueError):
            raise BinanceError(-1102, "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.") from None
        if not 1 <= value <= max(b[4] for b in spec.brackets):
            raise BinanceError(-4028, "Leverage is not valid")
        spec.leverage = value
        cap = "maxQty" if spec.inverse else "maxNotionalValue"  # COIN-M's cap is in coins
        return {"leverage": value, cap: str(self._max_notional(spec)), "symbol": p["symbol"]}

    # ---- futures trading ----------------------------------------------------------------------

    def _wallet(self, api: str) -> dict[str, str]:
        """Return the cross wallet of an API family: USDⓈ-M's (fapi) or COIN-M's (dapi), kept apart as Binance keeps them."""
        return self.book.coinm if api == "dapi" else self.book.futures

    def _cash(self, spec: SymbolSpec, delta: Decimal) -> None:
        """Book `delta` of a contract's margin asset to the cross wallet of its family."""
        self._move(spec.api, spec.settle, delta)

    def _move(self, api: str, asset: str, delta: Decimal) -> None:
        wallet = self._wallet(api)
        wallet[asset] = _s(D(wallet.get(asset, "0")) + delta)

    def _cross_used(self, api: str, asset: str) -> Decimal:
        """Initial margin and unrealized loss of cross legs, which the wallet must back."""
        used = ZERO
        for sym, side, pos in self._cross_legs(api, asset):
            spec = self.book.symbols[sym]
            mark = D(spec.mark)
            used += spec.value(abs(D(pos.amount)), mark) / spec.leverage - min(ZERO, self._pnl(spec, side, pos, mark))
        return used

    def _pnl(self, spec: SymbolSpec, side: str, pos: Position, mark: Decimal) -> Decimal:
        """Return a leg's unrealized profit at `mark` in its margin asset."""
        return spec.pnl(self._is_short(side, pos), D(pos.entry), abs(D(pos.amount)), mark)

    def _available(self, api: str, asset: str) -> Decimal:
        return max(ZERO, D(self._wallet(api).get(asset, "0")) - self._cross_used(api, asset))

    def _dual(self, api: str) -> bool:
        """Return whether the family's account is in hedge mode (USDⓈ-M and COIN-M each keep their own)."""
        return self.book.coinm_dual_side if api == "dapi" else self.book.dual_side

    def _order_answer(self, sym: str, p: dict[str, str], order_id: int, qty: Decimal, price: Decimal, side: str,
                      position_side: str, reduce_only: bool) -> dict[str, Any]:
        now = self.now_ms()
        spec = self.book.symbols[sym]
        answer = {
            "orderId": order_id, "symbol": sym, "status": "FILLED", "clientOrderId": p["newClientOrderId"],
            "price": "0", "avgPrice": _s(price), "origQty": _s(qty), "executedQty": _s(qty), "cumQty": _s(qty),
            "cumQuote": _s(qty * price), "timeInForce": "GTC", "type": "MARKET", "reduceOnly": reduce_only,
            "closePosition": False, "side": side, "positionSide": position_side, "stopPrice": "0",
            "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": "MARKET", "priceMatch": "NONE",
            "selfTradePreventionMode": "EXPIRE_MAKER", "goodTillDate": 0, "time": now, "updateTime": now,
        }
        if spec.inverse:
            # COIN-M's order: its pair, and cumBase (the value in coins) where USDⓈ-M has cumQuote.
            del answer["cumQuote"], answer["priceMatch"], answer["selfTradePreventionMode"], answer["goodTillDate"]
            answer.update(pair=sym.split("_")[0], cumBase=_s(spec.value(qty, price)) if qty > 0 else "0")
        return answer

    async def futures_new_order(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /fapi/v1/order and /dapi/v1/order (MARKET only, filled at once at the mark; COIN-M quantities in contracts)."""
        sym = p.get("symbol", "")
        spec = self._spec(sym, request)
        dual = self._dual(spec.api)
        side = p.get("side", "").upper()
        if side not in {"BUY", "SELL"}:
            raise BinanceError(-1117, "Invalid side.")
        if p.get("type", "").upper() != "MARKET":
            raise BinanceError(-1116, "Invalid orderType.")
        if spec.status != "TRADING":
            # Binance: a contract pending trading, or in pre-delivery, delivery or delivered, takes no order.
            raise BinanceError(-4108, "Symbol is on delivering or delivered or settling or closed or pre-trading.")
        position_side = p.get("positionSide", "BOTH").upper()
        if "reduceOnly" in p and dual:
            raise BinanceError(-1106, "Parameter 'reduceonly' sent when not required.")
        if dual != (position_side in {"LONG", "SHORT"}):
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        cid = p.get("newClientOrderId") or f"emu{self._id()}"
        p["newClientOrderId"] = cid
        key = f"futures|{sym}|{cid}"
        if self.book.orders.get(key, {}).get("status") in _OPEN_STATUSES:
            # Binance keeps newClientOrderId unique among open orders only: a filled one's id is free again.
            raise BinanceError(-4116, "ClientOrderId is duplicated.")
        try:
            qty = D(p["quantity"])
        except (KeyError, ArithmeticError):
            raise BinanceError(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.") from None
        step = D(spec.step)
        if qty <= 0 or qty % step != 0:
            raise BinanceError(-1111, "Precision is over the maximum defined for this asset.")
        if qty < D(spec.min_qty):
            raise BinanceError(-1013, "Filter failure: LOT_SIZE")
        mark = D(spec.mark)
        reduce_only = p.get("reduceOnly", "false").lower() == "true"
        pos_key = f"{sym}|{position_side}"
        pos = self.book.positions.get(pos_key, Position())
        amount = D(pos.amount)
        if position_side == "BOTH":
            signed = qty if side == "BUY" else -qty
            opening = amount == 0 or (amount > 0) == (signed > 0)
            if not opening and qty > abs(amount):
                raise BinanceError(-2022, "ReduceOnly Order is rejected.") if reduce_only else BinanceError(-4003, "emulator: one-way flips are not modelled")
            if reduce_only and opening:
                raise BinanceError(-2022, "ReduceOnly Order is rejected.")
        else:
            opening = (side == "SELL") == (position_side == "SHORT")
            if not opening and qty > amount:
                raise BinanceError(-2022, "ReduceOnly Order is rejected.")
        if opening and D(spec.min_notional) > 0 and qty * mark < D(spec.min_notional):
            raise BinanceError(-4164, f"Order's notional must be no smaller than {spec.min_notional} (unless you choose reduce only).")
        ordered, qty = qty, self._fillable(request, qty, step)
        if qty == 0:
            return _as_placed(self._expire_unfilled(key, self._order_answer(sym, p, self._id(), ordered, mark, side, position_side, reduce_only)))
        fee = spec.value(qty, mark) * D(self.book.taker_fee)  # in the margin asset: coins on COIN-M
        size = abs(amount)
        if opening:
            initial = spec.value(qty, mark) / spec.leverage
            if self._available(spec.api, spec.settle) < initial + fee:
                raise BinanceError(-2019, "Margin is insufficient.")
            pos.entry = _s(spec.average_entry(D(pos.entry), size, mark, qty))
            if position_side == "BOTH":
                pos.amount = _s(amount + (qty if side == "BUY" else -qty))
            else:
                pos.amount = _s(amount + qty)
            if spec.margin_type == "ISOLATED":
                pos.isolated_wallet = _s(D(pos.isolated_wallet) + initial)
                self._cash(spec, -initial)
        else:
            pnl = spec.pnl(self._is_short(position_side, pos), D(pos.entry), qty, mark)
            remaining = size - qty
            released = ZERO
            if spec.margin_type == "ISOLATED":
                released = D(pos.isolated_wallet) if remaining == 0 else D(pos.isolated_wallet) * qty / size
                pos.isolated_wallet = _s(D(pos.isolated_wallet) - released)
            sign = -1 if position_side == "BOTH" and amount < 0 else 1
            pos.amount = _s(sign * remaining)
            if remaining == 0:
                pos.entry = "0"
            self._cash(spec, released + pnl)
        self._cash(spec, -fee)
        pos.update_time = self.now_ms()
        self.book.positions[pos_key] = pos
        answer = self._expire_rest(self._order_answer(sym, p, self._id(), qty, mark, side, position_side, reduce_only), ordered)
        self._record_order(key, answer)
        for update in self._order_updates(answer, fee):
            self.publish(update)
        self.publish(self.account_update("ORDER", spec.settle, -fee, sym, position_side))
        for listener in self.order_listeners:
            listener(answer)
        return _as_placed(answer)

    def order_update(self, order: dict[str, Any], fee: Decimal) -> dict[str, Any]:
        """Return an ORDER_TRADE_UPDATE event for a filled market order."""
        return {
            "e": "ORDER_TRADE_UPDATE", "E": self.now_ms(), "T": self.now_ms(),
            "o": {
                "s": order["symbol"], "c": order["clientOrderId"], "S": order["side"], "o": "MARKET", "f": "GTC",
                "q": order["origQty"], "p": "0", "ap": order["avgPrice"], "sp": "0", "x": "TRADE", "X": "FILLED",
                "i": order["orderId"], "l": order["executedQty"], "z": order["executedQty"], "L": order["avgPrice"],
                "N": self.book.symbols[order["symbol"]].settle, "n": _s(fee), "T": self.now_ms(), "t": order["orderId"], "b": "0", "a": "0", "m": False,
                "R": order.get("reduceOnly", False), "wt": "CONTRACT_PRICE", "ot": "MARKET", "ps": order["positionSide"],
                "cp": False, "rp": "0", "pP": False, "si": 0, "ss": 0, "V": "NONE", "pm": "NONE", "gtd": 0,
            },
        }

    # ---- liquidity: market orders filled in part, the rest EXPIRED --------------------------

    def _fillable(self, request: web.Request, qty: Decimal, step: Decimal) -> Decimal:
        """Return how much of a market order the book fills: all of it, or under a partial_fill fault its share, rounded down."""
        fault = request.get(_FAULT)
        if not isinstance(fault, Fault) or fault.kind != "partial_fill":
            return qty
        return min(qty, (qty * D(fault.fill) / step).to_integral_value(rounding="ROUND_FLOOR") * step)

    @staticmethod
    def _expire_rest(answer: dict[str, Any], ordered: Decimal) -> dict[str, Any]:
        """Turn the answer of an order filled in part into Binance's: origQty as sent, status EXPIRED."""
        if D(answer["executedQty"]) >= ordered:
            return answer
        return {**answer, "origQty": _s(ordered), "status": "EXPIRED"}

    def _expire_unfilled(self, key: str, answer: dict[str, Any]) -> dict[str, Any]:
        """Record and answer a market order that found no liquidity at all: EXPIRED, nothing executed, no fee."""
        answer = {**answer, "status": "EXPIRED", "avgPrice": "0", "executedQty": "0", "cumQty": "0", "cumQuote": "0"}
        self._record_order(key, answer)
        for update in self._order_updates(answer, ZERO):
            self.publish(update)
        return answer

    def _order_updates(self, answer: dict[str, Any], fee: Decimal) -> list[dict[str, Any]]:
        """Return the ORDER_TRADE_UPDATE events of a market order: its trade, then its expiry when it did not fill whole."""
        if answer["status"] != "EXPIRED":
            return [self.order_update(answer, fee)]
        updates = []
        if D(answer["executedQty"]) > 0:
            trade = self.order_update(answer, fee)
            trade["o"]["X"] = "PARTIALLY_FILLED"
            updates.append(trade)
        expiry = self.order_update(answer, ZERO)
        expiry["o"].update(x="EXPIRED", X="EXPIRED", l="0", L="0", n="0", t=0)
        updates.append(expiry)
        return updates

    # ---- the liquidation engine and auto-deleveraging ------------------------------------------
    # Binance liquidates a leg when its margin balance falls below its maintenance margin on the
    # mark: an isolated leg against its own wallet, the cross legs of an asset against the cross
    # wallet. The harsh branch of "Liquidation Protocols" is modelled: the user is declared bankrupt,
    # the leg is closed at the mark (never past the bankruptcy price) and what margin is left goes to
    # the insurance fund (INSURANCE_CLEAR), so the whole margin behind the leg is lost.

    @staticmethod
    def _bracket(spec: SymbolSpec, notional: Decimal) -> tuple[Decimal, Decimal]:
        """Return the maintenance ratio and maintenance amount (cum) of the bracket holding `notional`."""
        for _floor, cap, ratio, cum, _lev in spec.brackets:
            if notional <= cap:
                return D(ratio), D(cum)
        _floor, _cap, ratio, cum, _lev = spec.brackets[-1]
        return D(ratio), D(cum)

    def _maintenance(self, spec: SymbolSpec, size: Decimal, price: Decimal) -> Decimal:
        """Return the maintenance margin of a leg of `size` at `price`, in its margin asset."""
        value = spec.value(size, price)
        ratio, cum = self._bracket(spec, value)
        return max(ZERO, value * ratio - cum)

    @staticmethod
    def _is_short(side: str, pos: Position) -> bool:
        return side == "SHORT" or (side == "BOTH" and D(pos.amount) < 0)

    def _cross_legs(self, api: str, asset: str) -> list[tuple[str, str, Position]]:
        return [
            (sym, side, pos) for key, pos in self.book.positions.items()
            for sym, _, side in [key.partition("|")]
            for spec in [self.book.symbols[sym]]
            if D(pos.amount) != 0 and spec.api == api and spec.settle == asset and spec.margin_type == "CROSSED"
        ]

    def liquidation_price(self, symbol: str, side: str) -> Decimal:
        """Return the mark at which a leg is liquidated (0 when none), the other cross legs held at today's mark.

        The leg's margin balance (backing plus PnL) meets its maintenance margin, solved on each bracket:
        USDⓈ-M's linear formula, or COIN-M's inverse one (developers.binance.com, COIN-M "Liquidation Price"):
        LP = (Q x CS x MMR + Side x Q x CS) / (WB + cum + Side x Q x CS / EP), Side 1 long and -1 short. An
        inverse short whose backing covers its whole value at entry has no liquidation price on a rally.
        """
        pos = self.position(symbol, side)
        size = abs(D(pos.amount))
        spec = self.book.symbols[symbol]
        if size == 0:
            return ZERO
        if spec.margin_type == "ISOLATED":
            backing = D(pos.isolated_wallet)
        else:
            backing = D(self._wallet(spec.api).get(spec.settle, "0"))
            for sym, other_side, other in self._cross_legs(spec.api, spec.settle):
                if (sym, other_side) != (symbol, side):
                    other_spec = self.book.symbols[sym]
                    mark = D(other_spec.mark)
                    backing += self._pnl(other_spec, other_side, other, mark) - self._maintenance(other_spec, abs(D(other.amount)), mark)
        entry = D(pos.entry)
        short = self._is_short(side, pos)
        for floor, cap, ratio, cum, _lev in spec.brackets:
            r, c = D(ratio), D(cum)
            if spec.inverse:
                face = size * D(spec.contract_size)
                # backing + face x (1/E - 1/P) x side = face x r / P - c, solved for P
                if short:
                    denominator = face / entry - backing - c
                    if denominator <= 0:
                        continue  # enough coins behind the short to pay any rally on this tier
                    price = face * (1 - r) / denominator
                else:
                    price = face * (1 + r) / (backing + c + face / entry)
                value = face / price
            else:
                # backing + pnl(P) = size * P * r - c, solved for P on this bracket
                if short:
                    price = (backing + entry * size + c) / (size * (1 + r))
                else:
                    price = (entry * size - backing - c) / (size * (1 - r))
                value = size * price
            if floor < value <= cap:
                return max(ZERO, price)
        return ZERO

    def liquidate_due(self) -> list[dict[str, Any]]:
        """Liquidate every leg whose margin is below maintenance on its mark; return the forced orders."""
        forced: list[dict[str, Any]] = []
        for key, pos in list(self.book.positions.items()):
            sym, _, side = key.partition("|")
            spec = self.book.symbols[sym]
            size = abs(D(pos.amount))
            if size == 0 or spec.margin_type != "ISOLATED":
                continue
            mark = D(spec.mark)
            if D(pos.isolated_wallet) + self._pnl(spec, side, pos, mark) < self._maintenance(spec, size, mark):
                forced.append(self._liquidate_isolated(sym, side, pos))
        for api, asset in dict.fromkeys((spec.api, spec.settle) for spec in self.book.symbols.values()):
            legs = self._cross_legs(api, asset)
            if not legs:
                continue
            balance = D(self._wallet(api).get(asset, "0"))
            maintenance = ZERO
            for sym, side, pos in legs:
                spec = self.book.symbols[sym]
                mark = D(spec.mark)
                balance += self._pnl(spec, side, pos, mark)
                maintenance += self._maintenance(spec, abs(D(pos.amount)), mark)
            if balance < maintenance:
                forced.extend(self._liquidate_cross(api, asset, legs))
        if forced:
            self.save()
        return forced

    def _bankruptcy(self, spec: SymbolSpec, short: bool, entry: Decimal, size: Decimal, wallet: Decimal) -> Decimal | None:
        """Return the price at which a leg's wallet plus PnL is zero (None: an inverse short no rally bankrupts)."""
        if not spec.inverse:
            return entry + wallet / size if short else max(ZERO, entry - wallet / size)
        face = size * D(spec.contract_size)
        inverse_price = 1 / entry - wallet / face if short else 1 / entry + wallet / face
        return 1 / inverse_price if inverse_price > 0 else None

    def _liquidate_isolated(self, sym: str, side: str, pos: Position) -> dict[str, Any]:
        spec = self.book.symbols[sym]
        size = abs(D(pos.amount))
        wallet = D(pos.isolated_wallet)
        entry = D(pos.entry)
        short = self._is_short(side, pos)
        mark = D(spec.mark)
        bankruptcy = self._bankruptcy(spec, short, entry, size, wallet)
        if bankruptcy is None:
            bankruptcy = mark
        price = min(mark, bankruptcy) if short else max(mark, bankruptcy)
        pnl = spec.pnl(short, entry, size, price)
        cleared = max(ZERO, wallet + pnl)
        order = self._forced_close(sym, side, pos, "autoclose-", price, bankruptcy, pnl)
        pos.isolated_wallet = "0"
        self._income(sym, spec.settle, "INSURANCE_CLEAR", -cleared)
        self.publish(self.account_update("ORDER", spec.settle, ZERO, sym, side))
        return order

    def _liquidate_cross(self, api: str, asset: str, legs: list[tuple[str, str, Position]]) -> list[dict[str, Any]]:
        orders = []
        for sym, side, pos in legs:
            spec = self.book.symbols[sym]
            mark = D(spec.mark)
            pnl = self._pnl(spec, side, pos, mark)
            orders.append(self._forced_close(sym, side, pos, "autoclose-", mark, mark, pnl))
            self._move(api, asset, pnl)
        wallet = self._wallet(api)
        left = D(wallet.get(asset, "0"))
        wallet[asset] = "0"  # bankrupt: what is left goes to the insurance fund, a debt is covered by it
        if left > 0:
            self._income(legs[0][0], asset, "INSURANCE_CLEAR", -left)
        self.publish(self.account_update("INSURANCE_CLEAR", asset, -left, legs[0][0], legs[0][1]))
        return orders

    def auto_deleverage(self, symbol: str, side: str, amount: Decimal | None = None) -> dict[str, Any]:
        """Close `amount` (all by default) of a profitable leg at the mark, as Binance's ADL does against a bankrupt trader."""
        pos = self.position(symbol, side)
        size = abs(D(pos.amount))
        spec = self.book.symbols[symbol]
        mark = D(spec.mark)
        qty = size if amount is None else min(size, amount)
        if qty <= 0:
            raise ValueError(f"no {side} leg of {symbol} to deleverage")
        if self._pnl(spec, side, pos, mark) <= 0:
            raise ValueError(f"the {side} leg of {symbol} is not in profit: Binance deleverages profitable legs only")
        pnl = spec.pnl(self._is_short(side, pos), D(pos.entry), qty, mark)
        released = ZERO
        if spec.margin_type == "ISOLATED":
            released = D(pos.isolated_wallet) * qty / size
            pos.isolated_wallet = _s(D(pos.isolated_wallet) - released)
        order = self._forced_close(symbol, side, pos, "adl_autoclose-", mark, mark, pnl, qty)
        self._cash(spec, released + pnl if spec.margin_type == "ISOLATED" else pnl)
        self.publish(self.account_update("ORDER", spec.settle, ZERO, symbol, side))
        self.save()
        return order

    def _income(self, symbol: str, asset: str, kind: str, amount: Decimal) -> None:
        if amount != 0:
            self.book.income.append({"symbol": symbol, "incomeType": kind, "income": _s(amount), "asset": asset,
                                     "info": kind, "time": self.now_ms(), "tranId": self._id(), "tradeId": ""})

    def _forced_close(self, sym: str, side: str, pos: Position, prefix: str, price: Decimal, limit: Decimal,
                      pnl: Decimal, qty: Decimal | None = None) -> dict[str, Any]:
        """Close `qty` (all) of a leg with an order of Binance's own: in order history, on the user stream, in income."""
        size = abs(D(pos.amount))
        qty = size if qty is None else qty
        short = self._is_short(side, pos)
        now = self.now_ms()
        order_id = self._id()
        cid = f"{prefix}{now}{order_id % 1000:03d}"
        remaining = size - qty
        pos.amount = _s(-remaining if side == "BOTH" and short else remaining)
        if remaining == 0:
            pos.entry = "0"
        pos.update_time = now
        spec = self.book.symbols[sym]
        tick = D(spec.tick)
        answer = {
            "orderId": order_id, "symbol": sym, "status": "FILLED", "clientOrderId": cid,
            "price": _s((limit / tick).to_integral_value() * tick), "avgPrice": _s(price), "origQty": _s(qty),
            "executedQty": _s(qty), "cumQty": _s(qty), "cumQuote": _s(qty * price), "timeInForce": "IOC", "type": "LIMIT",
            "reduceOnly": True, "closePosition": False, "side": "BUY" if short else "SELL", "positionSide": side,
            "stopPrice": "0", "workingType": "CONTRACT_PRICE", "priceProtect": False, "origType": "LIMIT",
            "priceMatch": "NONE", "selfTradePreventionMode": "NONE", "goodTillDate": 0, "time": now, "updateTime": now,
        }
        if spec.inverse:
            del answer["cumQuote"]
            answer.update(pair=sym.split("_")[0], cumBase=_s(spec.value(qty, price)))
        key = f"futures|{sym}|{cid}"
        self.book.orders[key] = answer
        self._visible_at[key] = self._now() + self.lookup_lag_seconds
        self.forced.append(key)
        self._income(sym, spec.settle, "REALIZED_PNL", pnl)
        update = self.order_update(answer, ZERO)
        update["o"].update(o="LIMIT", f="IOC", p=answer["price"], R=True, ot="LIMIT", rp=_s(pnl))
        self.publish(update)
        return answer

    async def futures_get_order(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/order (by origClientOrderId or orderId)."""
        sym = p.get("symbol", "")
        self._spec(sym, request)
        cid = p.get("origClientOrderId")
        if cid is not None:
            key = f"futures|{sym}|{cid}"
            found = self.book.orders.get(key) if self._visible(key) else None
        else:
            found = next((o for k, o in self.book.orders.items() if k.startswith(f"futures|{sym}|") and str(o["orderId"]) == p.get("orderId") and self._visible(k)), None)
        if found is None:
            raise BinanceError(-2013, "Order does not exist.")
        return _as_queried(found)

    def _history(self, request: web.Request, market: str, p: dict[str, str], max_window_ms: int) -> list[dict[str, Any]]:
        """Return the visible orders of one symbol in [startTime, endTime], oldest first, at most `limit` (Binance allOrders)."""
        sym = p.get("symbol", "")
        self._spec(sym, request)
        now = self.now_ms()
        end = int(p.get("endTime") or now)
        start = int(p.get("startTime") or end - max_window_ms)
        if end - start > max_window_ms:
            raise BinanceError(-1127, "More than 24 hours between startTime and endTime." if market == "spot" else "The time between startTime and endTime cannot be longer than 7 days.")
        limit = int(p.get("limit") or 500)
        if not 1 <= limit <= 1000:
            raise BinanceError(-1130, "Data sent for parameter 'limit' is not valid.")
        # History reads lag like lookups: an order is invisible to both for the lookup lag.
        found = [o for k, o in self.book.orders.items() if k.startswith(f"{market}|{sym}|") and self._visible(k) and start <= int(o["time"]) <= end]
        return sorted(found, key=lambda o: int(o["orderId"]))[:limit]

    async def futures_all_orders(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/allOrders (symbol, startTime/endTime at most 7 days apart, limit <= 1000)."""
        return self._history(request, "futures", p, 7 * 24 * 3_600_000)

    async def spot_all_orders(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /api/v3/allOrders (symbol, startTime/endTime at most 24 hours apart, limit <= 1000)."""
        return [self._spot_view(o) for o in self._history(request, "spot", p, 24 * 3_600_000)]

    async def futures_open_orders(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/openOrders."""
        return list(self.book.open_orders)

    def _risk_row(self, sym: str, side: str, pos: Position) -> dict[str, Any]:
        """Return one leg as positionRisk shows it (USDⓈ-M v3; COIN-M v1 in contracts, with its value in coins)."""
        spec = self.book.symbols[sym]
        amount = D(pos.amount)
        mark = D(spec.mark)
        signed = -amount if side == "SHORT" else amount
        pnl = self._pnl(spec, side, pos, mark)
        value = spec.value(abs(amount), mark)
        notional = value if signed >= 0 else -value
        isolated = spec.margin_type == "ISOLATED"
        initial = value / spec.leverage
        liquidation = _s(self.liquidation_price(sym, side))
        if spec.inverse:
            return {
                "symbol": sym, "positionAmt": _s(signed), "entryPrice": pos.entry, "breakEvenPrice": pos.entry,
                "markPrice": spec.mark, "unRealizedProfit": _s(pnl), "liquidationPrice": liquidation,
                "leverage": str(spec.leverage), "maxQty": str(self._max_notional(spec)),
                "marginType": "isolated" if isolated else "cross",
                "isolatedMargin": _s(D(pos.isolated_wallet) + pnl) if isolated else "0",
                "isAutoAddMargin": "false", "positionSide": side, "notionalValue": _s(notional),
                "isolatedWallet": pos.isolated_wallet if isolated else "0", "updateTime": pos.update_time,
            }
        return {
            "symbol": sym, "positionSide": side, "positionAmt": _s(signed), "entryPrice": pos.entry,
            "breakEvenPrice": pos.entry, "markPrice": spec.mark, "unRealizedProfit": _s(pnl),
            "liquidationPrice": liquidation, "isolatedMargin": _s(D(pos.isolated_wallet) + pnl) if isolated else "0",
            "notional": _s(notional), "marginAsset": spec.settle,
            "isolatedWallet": pos.isolated_wallet if isolated else "0", "initialMargin": _s(initial),
            "maintMargin": _s(value * D(spec.brackets[0][2])), "positionInitialMargin": _s(initial),
            "openOrderInitialMargin": "0", "adl": 1, "bidNotional": "0", "askNotional": "0",
            "updateTime": pos.update_time,
        }

    def _risk_rows(self, api: str = "fapi") -> list[dict[str, Any]]:
        """Return the legs with a position of one API family (USDⓈ-M's v3 lists only those)."""
        rows = []
        for key, pos in self.book.positions.items():
            sym, _, side = key.partition("|")
            if D(pos.amount) != 0 and self.book.symbols[sym].api == api:
                rows.append(self._risk_row(sym, side, pos))
        return rows

    async def position_risk(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v3/positionRisk (only legs with a position, as v3 does); /dapi/v1/positionRisk (every leg of every contract)."""
        if self._family(request) == "dapi":
            sides = ("LONG", "SHORT") if self.book.coinm_dual_side else ("BOTH",)
            # COIN-M filters by pair and margin asset (it has no symbol parameter).
            wanted = [sym for sym in self._listed(request)
                      if (not p.get("pair") or sym.split("_")[0] == p["pair"])
                      and (not p.get("marginAsset") or self.book.symbols[sym].settle == p["marginAsset"])]
            return [self._risk_row(sym, side, self.position(sym, side)) for sym in wanted for side in sides]
        rows = self._risk_rows()
        if p.get("symbol"):
            rows = [r for r in rows if r["symbol"] == p["symbol"]]
        return rows

    def _assets(self, api: str) -> list[dict[str, Any]]:
        """Return the wallet's assets as the account endpoints show them: wallet with isolated margin, PnL, free."""
        assets = []
        now = self.now_ms()
        rows = self._risk_rows(api)
        for asset, cash in self._wallet(api).items():
            isolated = sum(
                (D(pos.isolated_wallet) for key, pos in self.book.positions.items()
                 for spec in [self.book.symbols[key.partition("|")[0]]] if spec.api == api and spec.settle == asset),
                ZERO,
            )
            wallet = D(cash) + isolated
            available = self._available(api, asset)
            pnl = sum((D(r["unRealizedProfit"]) for r in rows if self.book.symbols[r["symbol"]].settle == asset), ZERO)
            assets.append({
                "asset": asset, "walletBalance": _s(wallet), "unrealizedProfit": _s(pnl), "marginBalance": _s(wallet + pnl),
                "maintMargin": "0", "initialMargin": _s(self._cross_used(api, asset)), "positionInitialMargin": "0",
                "openOrderInitialMargin": "0", "crossWalletBalance": cash, "crossUnPnl": "0",
                "availableBalance": _s(available), "maxWithdrawAmount": _s(available), "updateTime": now,
            })
        return assets

    async def futures_account(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v3/account; GET /dapi/v1/account (the COIN-M wallet's coins, each its own margin)."""
        if self._family(request) == "dapi":
            return {
                "assets": self._assets("dapi"), "canDeposit": True, "canTrade": True, "canWithdraw": True, "feeTier": 0,
                "updateTime": self.now_ms(),
                "positions": [{k: r[k] for k in ("symbol", "positionAmt", "unRealizedProfit", "isolatedWallet",
                                                 "positionSide", "leverage", "entryPrice", "updateTime")}
                              | {"initialMargin": "0", "maintMargin": "0", "positionInitialMargin": "0",
                                 "openOrderInitialMargin": "0", "isolated": r["marginType"] == "isolated", "maxQty": r["maxQty"]}
                              for r in self._risk_rows("dapi")],
            }
        assets = self._assets("fapi")
        usdt = next((a for a in assets if a["asset"] == "USDT"), None)
        total = usdt or {"walletBalance": "0", "unrealizedProfit": "0", "marginBalance": "0", "availableBalance": "0"}
        return {
            "totalInitialMargin": "0", "totalMaintMargin": "0", "totalWalletBalance": total["walletBalance"],
            "totalUnrealizedProfit": total["unrealizedProfit"], "totalMarginBalance": total["marginBalance"],
            "totalPositionInitialMargin": "0", "totalOpenOrderInitialMargin": "0",
            "totalCrossWalletBalance": total["walletBalance"], "totalCrossUnPnl": "0",
            "availableBalance": total["availableBalance"], "maxWithdrawAmount": total["availableBalance"],
            "assets": assets,
            "positions": [{"symbol": r["symbol"], "positionSide": r["positionSide"], "positionAmt": r["positionAmt"],
                           "unrealizedProfit": r["unRealizedProfit"], "isolatedMargin": r["isolatedMargin"],
                           "notional": r["notional"], "isolatedWallet": r["isolatedWallet"],
                           "initialMargin": r["initialMargin"], "maintMargin": r["maintMargin"],
                           "updateTime": r["updateTime"]} for r in self._risk_rows()],
        }

    async def coinm_balance(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /dapi/v1/balance: each coin of the COIN-M wallet."""
        return [
            {"accountAlias": "SgsR", "asset": a["asset"], "balance": a["walletBalance"], "withdrawAvailable": a["maxWithdrawAmount"],
             "crossWalletBalance": a["crossWalletBalance"], "crossUnPnl": a["unrealizedProfit"],
             "availableBalance": a["availableBalance"], "updateTime": a["updateTime"]}
            for a in self._assets("dapi")
        ]

    async def position_margin(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /fapi/v1/positionMargin (type 1 add, 2 reduce; isolated legs only)."""
        sym = p.get("symbol", "")
        spec = self._spec(sym, request)
        side = p.get("positionSide", "BOTH").upper()
        if self._dual(spec.api) != (side in {"LONG", "SHORT"}):
            raise BinanceError(-4061, "Order's position side does not match user's setting.")
        try:
            amount = D(p["amount"])
            kind = int(p["type"])
        except (KeyError, ValueError, ArithmeticError):
            raise BinanceError(-1102, "Mandatory parameter 'amount' was not sent, was empty/null, or malformed.") from None
        if spec.margin_type != "ISOLATED":
            raise BinanceError(-4050, "Cross balance insufficient.")
        pos = self.book.positions.get(f"{sym}|{side}")
        if pos is None or D(pos.amount) == 0:
            raise BinanceError(-2019, "Margin is insufficient.")
        if kind == 1:
            if self._available(spec.api, spec.settle) < amount:
                raise BinanceError(-2019, "Margin is insufficient.")
            pos.isolated_wallet = _s(D(pos.isolated_wallet) + amount)
            self._cash(spec, -amount)
        elif kind == 2:
            if D(pos.isolated_wallet) - amount <= spec.value(abs(D(pos.amount)), D(spec.mark)) / spec.leverage / 2:
                raise BinanceError(-4051, "Isolated balance insufficient.")
            pos.isolated_wallet = _s(D(pos.isolated_wallet) - amount)
            self._cash(spec, amount)
        else:
            raise BinanceError(-1102, "Mandatory parameter 'type' was not sent, was empty/null, or malformed.")
        self.book.margin_history.append({
            "symbol": sym, "type": kind, "deltaType": "USER_ADJUST", "amount": _s(amount), "asset": spec.settle,
            "time": self.now_ms(), "positionSide": side, "clientTranId": "",
        })
        return {"amount": float(amount), "code": 200, "msg": "Successfully modify position margin.", "type": kind}

    async def position_margin_history(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/positionMargin/history."""
        sym = p.get("symbol")
        self._spec(sym, request)
        start = int(p.get("startTime", "0"))
        end = int(p.get("endTime", str(2**62)))
        rows = [
            r for r in self.book.margin_history
            if r["symbol"] == sym and start <= r["time"] <= end and (not p.get("type") or str(r["type"]) == p["type"])
        ]
        return rows[: int(p.get("limit", "500"))]

    async def income(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /fapi/v1/income and /dapi/v1/income (each its own family's contracts; COIN-M's in coins)."""
        start = int(p.get("startTime", "0"))
        end = int(p.get("endTime", str(2**62)))
        listed = set(self._listed(request))
        return [
            r for r in self.book.income
            if r["symbol"] in listed and (not p.get("symbol") or r["symbol"] == p["symbol"])
            and (not p.get("incomeType") or r["incomeType"] == p["incomeType"])
            and start <= r["time"] <= end
        ][: int(p.get("limit", "100"))]

    # ---- spot --------------------------------------------------------------------------------

    async def spot_account(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /api/v3/account."""
        return {
            "makerCommission": 10, "takerCommission": 10, "buyerCommission": 0, "sellerCommission": 0,
            "commissionRates": {"maker": "0.00100000", "taker": "0.00100000", "buyer": "0.00000000", "seller": "0.00000000"},
            "canTrade": True, "canWithdraw": True, "canDeposit": True, "brokered": False,
            "requireSelfTradePrevention": False, "preventSor": False, "updateTime": self.now_ms(), "accountType": "SPOT",
            "balances": [{"asset": a, "free": v, "locked": "0"} for a, v in self.book.spot.items()],
            "permissions": ["SPOT"], "uid": 354937868,
        }

    async def spot_new_order(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /api/v3/order (MARKET only, filled at the mark less the spot fee)."""
        sym = p.get("symbol", "")
        spec = self._spec(sym, request)
        side = p.get("side", "").upper()
        if p.get("type", "").upper() != "MARKET" or side not in {"BUY", "SELL"}:
            raise BinanceError(-1116, "Invalid orderType.")
        cid = p.get("newClientOrderId") or f"emu{self._id()}"
        key = f"spot|{sym}|{cid}"
        if self.book.orders.get(key, {}).get("status") in _OPEN_STATUSES:
            # Spot accepts a reused newClientOrderId once the earlier order is no longer open.
            raise BinanceError(-2010, "Duplicate order sent.")
        try:
            qty = D(p["quantity"])
        except (KeyError, ArithmeticError):
            raise BinanceError(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.") from None
        price = D(spec.mark)
        if side == "SELL" and D(self.book.spot.get(spec.base, "0")) < qty:
            raise BinanceError(-2010, "Account has insufficient balance for requested action.")
        ordered, qty = qty, self._fillable(request, qty, _SPOT_STEP)
        quote_qty = qty * price
        fee = (quote_qty if side == "SELL" else qty) * D(self.book.spot_fee)
        base_held = D(self.book.spot.get(spec.base, "0"))
        quote_held = D(self.book.spot.get(spec.quote, "0"))
        if side == "SELL":
            if base_held < qty:
                raise BinanceError(-2010, "Account has insufficient balance for requested action.")
            self.book.spot[spec.base] = _s(base_held - qty)
            self.book.spot[spec.quote] = _s(quote_held + quote_qty - fee)
            fee_asset = spec.quote
        else:
            if quote_held < quote_qty:
                raise BinanceError(-2010, "Account has insufficient balance for requested action.")
            self.book.spot[spec.quote] = _s(quote_held - quote_qty)
            self.book.spot[spec.base] = _s(base_held + qty - fee)
            fee_asset = spec.base
        now = self.now_ms()
        order_id = self._id()
        answer = {
            "symbol": sym, "orderId": order_id, "orderListId": -1, "clientOrderId": cid, "transactTime": now,
            "price": "0.00000000", "origQty": _s(qty), "executedQty": _s(qty), "origQuoteOrderQty": "0.00000000",
            "cummulativeQuoteQty": _s(quote_qty), "status": "FILLED", "timeInForce": "GTC", "type": "MARKET",
            "side": side, "workingTime": now,
            "fills": [{"price": _s(price), "qty": _s(qty), "commission": _s(fee), "commissionAsset": fee_asset, "tradeId": order_id}],
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }
        if qty < ordered:
            answer.update(origQty=_s(ordered), status="EXPIRED", fills=answer["fills"] if qty > 0 else [])
        self._record_order(key, {k: v for k, v in answer.items() if k != "fills"} | {"time": now, "updateTime": now})
        return answer

    async def spot_get_order(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /api/v3/order."""
        sym = p.get("symbol", "")
        self._spec(sym, request)
        key = f"spot|{sym}|{p.get('origClientOrderId')}"
        found = self.book.orders.get(key) if self._visible(key) else None
        if found is None:
            raise BinanceError(-2013, "Order does not exist.")
        return self._spot_view(found)

    @staticmethod
    def _spot_view(found: dict[str, Any]) -> dict[str, Any]:
        """Return a spot order as GET /api/v3/order and allOrders show it."""
        return {
            **{k: found[k] for k in ("symbol", "orderId", "orderListId", "clientOrderId", "price", "origQty",
                                     "executedQty", "cummulativeQuoteQty", "status", "timeInForce", "type", "side")},
            "stopPrice": "0.00000000", "icebergQty": "0.00000000", "time": found["time"], "updateTime": found["updateTime"],
            "isWorking": True, "workingTime": found["time"], "origQuoteOrderQty": "0.00000000",
            "selfTradePreventionMode": "EXPIRE_MAKER",
        }

    # ---- wallet -------------------------------------------------------------------------------

    async def new_transfer(self, request: web.Request, p: dict[str, str]) -> Any:
        """POST /sapi/v1/asset/transfer (MAIN_UMFUTURE, UMFUTURE_MAIN, and COIN-M's MAIN_CMFUTURE, CMFUTURE_MAIN)."""
        kind = p.get("type")
        asset = p.get("asset", "")
        try:
            amount = D(p["amount"])
        except (KeyError, ArithmeticError):
            raise BinanceError(-1102, "Mandatory parameter 'amount' was not sent, was empty/null, or malformed.") from None
        if amount <= 0:
            raise BinanceError(-1102, "Mandatory parameter 'amount' was not sent, was empty/null, or malformed.")
        api = "dapi" if "CMFUTURE" in str(kind) else "fapi"
        if kind in {"MAIN_UMFUTURE", "MAIN_CMFUTURE"}:
            held = D(self.book.spot.get(asset, "0"))
            if held < amount:
                raise BinanceError(-5002, "You have insufficient balance.")
            self.book.spot[asset] = _s(held - amount)
            self._move(api, asset, amount)
        elif kind in {"UMFUTURE_MAIN", "CMFUTURE_MAIN"}:
            if self._available(api, asset) < amount:
                raise BinanceError(-5002, "You have insufficient balance.")
            self._move(api, asset, -amount)
            self.book.spot[asset] = _s(D(self.book.spot.get(asset, "0")) + amount)
        else:
            raise BinanceError(-1102, f"emulator: transfer type {kind!r} is not modelled")
        tran_id = self._id()
        self.book.transfers.append({"asset": asset, "amount": _s(amount), "type": kind, "status": "CONFIRMED",
                                    "tranId": tran_id, "timestamp": self.now_ms()})
        return {"tranId": tran_id}

    async def transfer_history(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /sapi/v1/asset/transfer."""
        start = int(p.get("startTime", "0"))
        end = int(p.get("endTime", str(2**62)))
        rows = [r for r in self.book.transfers if r["type"] == p.get("type") and start <= r["timestamp"] <= end]
        rows.sort(key=lambda r: r["timestamp"], reverse=True)
        return {"total": len(rows), "rows": rows[: int(p.get("size", "10"))]}

    async def api_restrictions(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /sapi/v1/account/apiRestrictions."""
        key = self.book.keys[request.headers["X-MBX-APIKEY"]]
        return {
            "ipRestrict": key.ip_restrict, "createTime": 1623840271000, "enableInternalTransfer": False,
            "enableFutures": key.futures, "enablePortfolioMarginTrading": False, "enableVanillaOptions": False,
            "permitsUniversalTransfer": True, "enableReading": True, "enableSpotAndMarginTrading": True,
            "enableWithdrawals": key.can_withdraw, "enableMargin": False,
        }

    async def portfolio_account(self, request: web.Request, p: dict[str, str]) -> Any:
        """GET /sapi/v1/portfolio/account (answers only for portfolio-margin accounts)."""
        if not self.book.portfolio_margin:
            raise BinanceError(-21001, "Request ID is not a Portfolio Margin Account.")
        return {"uniMMR": "5167.92171923", "accountEquity": "122607.35137903", "actualEquity": "73.47428058",
                "accountMaintMargin": "23.72469206", "accountStatus": "NORMAL", "accountType": "PM_1"}

    # ---- control ---------------------------------------------------------------------------------

    async def control_state(self, request: web.Request) -> web.Response:
        """GET /_emulator/state: the whole book."""
        return web.json_response(self.book.to_json())

    async def control_requests(self, request: web.Request) -> web.Response:
        """GET /_emulator/requests: every request (method, path, API key, arrival time) and every order carried out."""
        return web.json_response({"requests": self.request_log, "executions": self.executions})

    async def control_mark(self, request: web.Request) -> web.Response:
        """POST /_emulator/mark {"symbol": "BTCUSDT", "price": "51000"}."""
        data = await request.json()
        self.set_mark(data["symbol"], D(str(data["price"])))
        return web.json_response({"ok": True})

    async def control_faults(self, request: web.Request) -> web.Response:
        """GET /_emulator/faults: the injected faults not yet taken, each with the requests it still waits for."""
        return web.json_response({"faults": [dataclasses.asdict(f) for f in self.faults]})

    async def control_fault(self, request: web.Request) -> web.Response:
        """POST /_emulator/fault {"kind": ..., "path": ..., "method": ..., "count": ..., "delay": ...}."""
        data = await request.json()
        try:
            self.inject(Fault(**data))
        except (TypeError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"ok": True})

    async def control_deposit(self, request: web.Request) -> web.Response:
        """POST /_emulator/deposit {"wallet": "spot"|"futures"|"coinm", "asset": "BTC", "amount": "1"}."""
        data = await request.json()
        self.deposit(data["wallet"], data["asset"], D(str(data["amount"])))
        return web.json_response({"ok": True})

    async def control_account(self, request: web.Request) -> web.Response:
        """POST /_emulator/account {"dual_side", "coinm_dual_side", "multi_assets", "portfolio_margin": bool, "server_time_offset_ms": int}."""
        data = await request.json()
        for name in ("dual_side", "coinm_dual_side", "multi_assets", "portfolio_margin"):
            if name in data:
                setattr(self.book, name, bool(data[name]))
        if "server_time_offset_ms" in data:
            self.server_time_offset_ms = int(data["server_time_offset_ms"])
        self.save()
        return web.json_response({"ok": True})

    async def control_funding(self, request: web.Request) -> web.Response:
        """POST /_emulator/funding {"symbol": "BTCUSDT", "rate": "0.0001"}: settle funding now."""
        data = await request.json()
        self.settle_funding(data["symbol"], D(str(data["rate"])) if "rate" in data else None)
        return web.json_response({"ok": True})


    async def control_deliver(self, request: web.Request) -> web.Response:
        """POST /_emulator/deliver {"symbol": "BTCUSD_260925", "price": "61000"}: settle a delivery contract now."""
        data = await request.json()
        try:
            settled = self.deliver(data["symbol"], D(str(data["price"])) if "price" in data else None)
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response({"settled": [_s(p) for p in settled]})

    async def control_adl(self, request: web.Request) -> web.Response:
        """POST /_emulator/adl {"symbol": "BTCUSDT", "side": "SHORT", "amount": "0.1"}: auto-deleverage a profitable leg."""
        data = await request.json()
        try:
            order = self.auto_deleverage(data["symbol"], data["side"], D(str(data["amount"])) if "amount" in data else None)
        except (KeyError, ValueError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(order)


def _as_placed(order: dict[str, Any]) -> dict[str, Any]:
    """Return a futures order as POST /fapi/v1/order answers it: no `time` (the query answer has it)."""
    return {k: v for k, v in order.items() if k != "time"}


def _as_queried(order: dict[str, Any]) -> dict[str, Any]:
    """Return a futures order as GET /fapi/v1/order answers it: no `cumQty` (only the placing answer has it)."""
    return {k: v for k, v in order.items() if k != "cumQty"}


def _error_response(exc: BinanceError, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"code": exc.code, "msg": exc.msg}, status=exc.status, headers=headers)


# ---- running it ---------------------------------------------------------------------------------


async def serve(emulator: Emulator, host: str, port: int) -> web.AppRunner:
    """Start serving on host:port; return the runner (call `cleanup()` to stop)."""
    runner = web.AppRunner(emulator.app(), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner


def _parse_key(text: str) -> tuple[str, KeySpec]:
    parts = text.split(":")
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise argparse.ArgumentTypeError(f"--key {text!r}: expected KEY:SECRET[:withdraw][:noip]")
    return parts[0], KeySpec(
        parts[1], can_withdraw="withdraw" in parts[2:], ip_restrict="noip" not in parts[2:], futures="nofutures" not in parts[2:]
    )


def serve_until_interrupted(emulator: Emulator, host: str, port: int, note: str) -> int:
    """Serve the emulator on host:port until interrupted, saying where it listens first; return the exit status."""

    async def run() -> None:
        runner = await serve(emulator, host, port)
        print(f"binance emulator on http://{host}:{port} {note}", flush=True)
        try:
            await asyncio.Event().wait()
        finally:
            await runner.cleanup()

    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the emulator until interrupted."""
    parser = argparse.ArgumentParser(prog="binance_emulator", description="Offline Binance USDⓈ-M/COIN-M/spot emulator for ccxt.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--key", type=_parse_key, action="append", default=[], help="KEY:SECRET[:withdraw][:noip]")
    parser.add_argument("--state", type=Path, help="keep the book in this JSON file (survives restarts)")
    parser.add_argument("--spot", action="append", default=[], help="ASSET=AMOUNT credited to spot on a new book")
    parser.add_argument("--futures", action="append", default=[], help="ASSET=AMOUNT credited to futures on a new book")
    parser.add_argument("--coinm", action="append", default=[], help="ASSET=AMOUNT credited to the COIN-M wallet on a new book")
    parser.add_argument("--mark", default=None, help="BTCUSDT and BTCUSD_PERP mark price on a new book")
    parser.add_argument("--hedge-mode", action="store_true", help="start a new book in hedge mode (USDⓈ-M and COIN-M)")
    parser.add_argument("--clock-offset", type=float, default=0.0, help="seconds the exchange's clock runs ahead (negative: behind)")
    parser.add_argument(
        "--quarterly", action="append", default=[], metavar="YYMMDD",
        help="list BTCUSDT_YYMMDD and BTCUSD_YYMMDD, delivered that day at 08:00 UTC (or at @EPOCH_SECONDS), on a new book",
    )
    args = parser.parse_args(argv)
    fresh = args.state is None or not args.state.exists()
    emulator = Emulator(state_path=args.state, clock_offset_seconds=args.clock_offset)
    for api_key, spec in args.key:
        emulator.book.keys[api_key] = spec
    if fresh:
        credits = [(t, "spot") for t in args.spot] + [(t, "futures") for t in args.futures] + [(t, "coinm") for t in args.coinm]
        for text, wallet in credits:
            asset, _, amount = text.partition("=")
            emulator.deposit(wallet, asset, D(amount))
        if args.mark:
            emulator.set_mark("BTCUSDT", D(args.mark))
            emulator.set_mark("BTCUSD_PERP", D(args.mark))
        emulator.book.dual_side = emulator.book.coinm_dual_side = args.hedge_mode
        from datetime import UTC, datetime

        def delivery_of(day: str) -> int:
            if day.startswith("@"):  # a test's own delivery time (Binance delivers at 08:00 UTC)
                return int(float(day[1:]) * 1000)
            return int(datetime.strptime(day, "%y%m%d").replace(hour=8, tzinfo=UTC).timestamp() * 1000)

        for n, delivery_ms in enumerate(sorted(delivery_of(day) for day in args.quarterly)):
            for perpetual in ("BTCUSDT", "BTCUSD_PERP"):
                spec = quarterly(emulator.book.symbols[perpetual], delivery_ms, ("CURRENT_QUARTER", "NEXT_QUARTER")[min(n, 1)])
                emulator.book.symbols[delivery_symbol(spec, delivery_ms)] = spec
    emulator.save()
    from hedgebot.testing.binance_streams import StreamHub

    StreamHub(emulator)  # listen keys and the user-data and mark-price websockets

    return serve_until_interrupted(emulator, args.host, args.port, f"(state: {args.state or 'memory'})")


if __name__ == "__main__":
    raise SystemExit(main())
