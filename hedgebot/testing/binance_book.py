"""The Binance emulator's book: what the emulated exchange knows, as data.

It owns the contracts (`SymbolSpec`: linear USDⓈ-M or inverse COIN-M, perpetual or delivery, with their
brackets), the API keys (`KeySpec`), the legs (`Position`) and the whole state (`Book`: wallets, legs,
orders, histories), with its JSON form for the state file. What the exchange does with it lives in
`hedgebot.testing.binance_exchange`; how it is asked, in `binance_rest` and `binance_streams`. It imports
none of them, and no web framework.
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from typing import Any

D = Decimal
ZERO = D(0)

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

