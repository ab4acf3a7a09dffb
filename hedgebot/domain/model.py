"""Frozen value types shared by the domain core and the shell around it.

Amounts are in base units of the asset (BTC, ETH), prices and margin in the
settlement stablecoin (USDT). Everything is `Decimal`; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from enum import StrEnum

ZERO = Decimal(0)
BOOKED_STEP = Decimal("1e-8")  # exchanges book balances, commissions and funding to 8 decimals
ONE = Decimal(1)


class OrderSide(StrEnum):
    BUY = "buy"
    SELL = "sell"


class PositionSide(StrEnum):
    LONG = "long"
    SHORT = "short"

    @property
    def opening(self) -> OrderSide:
        """Return the order side that grows a leg of this side (hedge mode: SELL opens a short, BUY a long)."""
        return OrderSide.SELL if self is PositionSide.SHORT else OrderSide.BUY

    @property
    def other(self) -> PositionSide:
        """Return the other leg's side."""
        return PositionSide.LONG if self is PositionSide.SHORT else PositionSide.SHORT

    @property
    def closing(self) -> OrderSide:
        """Return the order side that reduces a leg of this side (sent in the close form, never the other leg)."""
        return OrderSide.BUY if self is PositionSide.SHORT else OrderSide.SELL


class MarginMode(StrEnum):
    ISOLATED = "isolated"
    CROSS = "cross"


class PositionMode(StrEnum):
    HEDGE = "hedge"
    ONE_WAY = "oneway"


class Wallet(StrEnum):
    SPOT = "spot"
    FUTURES = "futures"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


def floor_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round `value` down to a whole number of `step`."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_FLOOR) * step


def ceil_to_step(value: Decimal, step: Decimal) -> Decimal:
    """Round `value` up to a whole number of `step`."""
    if step <= 0:
        return value
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


@dataclass(frozen=True)
class Bracket:
    """One maintenance-margin tier: applies to notional in [floor, cap)."""

    notional_floor: Decimal
    notional_cap: Decimal
    maint_margin_rate: Decimal
    maint_amount: Decimal
    max_leverage: int | None = None  # the highest leverage the exchange allows inside this bracket

    def holds(self, notional: Decimal) -> bool:
        """Tell whether `notional` falls inside this bracket."""
        return self.notional_floor <= notional < self.notional_cap


@dataclass(frozen=True)
class Market:
    """Trading rules of one perpetual or delivery contract, in base units."""

    symbol: str
    base: str
    quote: str
    amount_step: Decimal
    min_amount: Decimal
    min_notional: Decimal
    brackets: tuple[Bracket, ...]
    contract_size: Decimal = ONE
    margin_step: Decimal = Decimal("0.01")
    price_step: Decimal = Decimal("0.01")
    taker_fee: Decimal = Decimal("0.0005")
    spot_fee: Decimal = Decimal("0.001")  # the spot pair's taker fee, for sizing margin-raising sales
    # A coin-margined (inverse) contract: leg sizes are face value in the quote (contracts × contract_size),
    # margin, PnL and fees are in the base coin. Its arithmetic is `domain.margin.rule_for(market)`'s.
    inverse: bool = False
    # A delivery contract's delivery time (epoch seconds); None for a perpetual.
    expiry: float | None = None

    @property
    def delivers(self) -> bool:
        """Tell whether the contract expires and is delivered (a quarterly), rather than a perpetual."""
        return self.expiry is not None

    @property
    def margin_asset(self) -> str:
        """Return the asset that margins the contract: the quote (linear) or the base coin (inverse)."""
        return self.base if self.inverse else self.quote

    @property
    def spot_symbol(self) -> str:
        """Name the spot market of the same pair (BTC/USDT for BTC/USDT:USDT)."""
        return f"{self.base}/{self.quote}"

    def min_tradeable(self, price: Decimal) -> Decimal:
        """Return the smallest amount the venue accepts at `price`, on the step."""
        by_notional = ceil_to_step(self.min_notional / price, self.amount_step) if price > 0 else ZERO
        return max(self.min_amount, by_notional, self.amount_step)


@dataclass(frozen=True)
class Leg:
    """One side of a perpetual contract in hedge mode."""

    side: PositionSide
    size: Decimal = ZERO
    entry_price: Decimal = ZERO
    margin: Decimal = ZERO  # isolated margin posted to this leg; zero under cross margin

    @property
    def is_open(self) -> bool:
        """Tell whether the leg holds a position."""
        return self.size > 0

    def unrealized_pnl(self, mark: Decimal) -> Decimal:
        """Return the leg's profit or loss at `mark`."""
        sign = ONE if self.side is PositionSide.LONG else -ONE
        return sign * (mark - self.entry_price) * self.size


@dataclass(frozen=True)
class HeldElsewhere:
    """Coins of the asset held outside the account (a custody system's file), as last read."""

    amount: Decimal  # ZERO when never read
    at: float | None  # when the source says it counted them (None: never read)
    source: str  # what was read (a file's path), for messages
    stale: str | None = None  # why the count may not add risk: too old, or unreadable past its age limit
    error: str | None = None  # the last read's error, while the previous count is still used
    price: Decimal | None = None  # the asset's price where the coins are held (None: no source says)
    price_source: str = ""  # which source gave that price
    # Each source's last good count: (its name, the coins, when they were counted), summed in `amount`.
    parts: tuple[tuple[str, Decimal, float], ...] = ()

    @property
    def known(self) -> bool:
        """Tell whether a count was ever read."""
        return self.at is not None

    def spread(self, mark: Decimal) -> Decimal | None:
        """Return how far the holding's price sits from the hedging venue's mark, as a fraction of the mark."""
        if self.price is None or not mark.is_finite() or mark <= 0:
            return None
        return self.price / mark - 1


@dataclass(frozen=True)
class Snapshot:
    """Everything the policy needs to decide, read at one moment."""

    taken_at: float
    market: Market
    mark_price: Decimal
    price_time: float
    spot_asset: Decimal
    spot_quote: Decimal
    futures_free: Decimal
    futures_wallet: Decimal
    short: Leg
    long: Leg
    margin_mode: MarginMode
    leverage: int
    previous_price: Decimal | None = None
    cross_wallet: Decimal | None = None  # the futures wallet without isolated margin; backs cross legs
    read_at: float | None = None  # when the oldest of the snapshot's readings was taken
    elsewhere: HeldElsewhere | None = None  # coins held outside the account, when the hedge counts them

    @property
    def cross_backing(self) -> Decimal:
        """Return what backs the cross legs: the cross wallet (the whole wallet when the venue cannot say)."""
        return self.cross_wallet if self.cross_wallet is not None else self.futures_wallet

    def short_backing(self) -> tuple[Decimal, list[Leg]]:
        """Return the wallet behind the short and the other legs it also backs (isolated: the leg's margin alone)."""
        return self.backing_of(PositionSide.SHORT)

    def leg_of(self, side: PositionSide) -> Leg:
        """Return the leg of `side`."""
        return self.short if side is PositionSide.SHORT else self.long

    def backing_of(self, side: PositionSide) -> tuple[Decimal, list[Leg]]:
        """Return the wallet behind the leg of `side` and the other legs it also backs (isolated: its margin alone)."""
        if self.margin_mode is MarginMode.ISOLATED:
            return self.leg_of(side).margin, []
        other = PositionSide.LONG if side is PositionSide.SHORT else PositionSide.SHORT
        return self.cross_backing, [self.leg_of(other)]


MARGIN_SOURCES = ("futures_wallet", "spot_stablecoin", "sell_spot")


@dataclass(frozen=True)
class MarginGuard:
    """When and how to keep the short away from liquidation."""

    enabled: bool = True
    trigger: Decimal = Decimal("0.20")
    target: Decimal = Decimal("0.35")
    release: Decimal | None = None
    sources: tuple[str, ...] = ("futures_wallet", "spot_stablecoin")  # used in this order
    runway_warning: Decimal = Decimal("0.30")  # warn when the runway is less than this far above the mark
    # Opt-in: sell just enough of the hedged coin that the rest can be fully hedged (needs sell_spot among sources).
    fund_target_by_selling: bool = False
    # The buffer (a short whose margin cannot be refilled in seconds): below this distance, with the sources dry,
    # the leg is bought back in lockstep to keep it; None: no buffer.
    floor: Decimal | None = None
    refill_seconds: float | None = None  # how long a deposit takes to arrive, for the alert that asks for one
    divergence: Decimal | None = None  # the gap between the holding's price and the mark the floor allows for

    def uses(self, source: str) -> bool:
        """Tell whether the guard may take margin from `source` (never when it is disabled)."""
        return self.enabled and source in self.sources

    @property
    def from_futures_wallet(self) -> bool:
        """Tell whether free futures balance may fund the short."""
        return self.uses("futures_wallet")

    @property
    def from_spot_stablecoin(self) -> bool:
        """Tell whether stablecoin may be moved from spot."""
        return self.uses("spot_stablecoin")

    @property
    def sell_spot(self) -> bool:
        """Tell whether the hedged coin may be sold to fund margin."""
        return self.uses("sell_spot")


@dataclass(frozen=True)
class HedgePolicy:
    """The user's intent for one hedge, in the domain's terms."""

    ratio: Decimal
    band: Decimal
    min_order: Decimal
    max_order: Decimal
    offset: Decimal = ZERO
    include_spot: bool = True
    include_perp_long: bool = False
    staleness_seconds: float = 30.0
    max_jump: Decimal = Decimal("0.15")
    guard: MarginGuard = field(default_factory=MarginGuard)
    # The leg the hedge holds: a short against coins held, or a long against coins still to be bought
    # (then `offset` is the planned purchase and spot of the asset counts as bought).
    side: PositionSide = PositionSide.SHORT
    # The hedge's own ratio while a scheduled window sets `ratio` for a while: coins are sold to fund the target
    # (guard.fund_target_by_selling) only up to this one, since a sale is for good and the window's ratio is not.
    standing_ratio: Decimal | None = None

    @property
    def sellable_target_ratio(self) -> Decimal:
        """Return the ratio whose target selling coins may fund: the hedge's own, never a window's higher one."""
        return self.ratio if self.standing_ratio is None else min(self.ratio, self.standing_ratio)

    @property
    def sale_ratio(self) -> Decimal:
        """Return the short each spot coin sold lets go: its hedged share, or none when spot is not counted."""
        return self.ratio if self.include_spot else ZERO


# ---- actions -------------------------------------------------------------


@dataclass(frozen=True)
class PlaceOrder:
    """A market order on the perpetual (or, with `spot=True`, on the spot pair)."""

    side: OrderSide
    amount: Decimal
    position_side: PositionSide | None
    reduce: bool
    reason: str
    spot: bool = False

    kind = "order"


@dataclass(frozen=True)
class AdjustMargin:
    """Add (positive) or remove (negative) isolated margin on a leg."""

    position_side: PositionSide
    amount: Decimal
    reason: str
    source: str = "futures wallet"

    kind = "margin"


@dataclass(frozen=True)
class Transfer:
    """Move stablecoin between the spot and futures wallets."""

    asset: str
    amount: Decimal
    source: Wallet
    destination: Wallet
    reason: str

    kind = "transfer"


@dataclass(frozen=True)
class RaiseFromSpot:
    """Sell a slice of the hedged coin, shrink the short by its hedged share, and put the money on the leg.

    Executed as verified steps: reduce the short first, then sell the spot (so
    the account is never net short in between), move the sale's proceeds to
    the futures wallet, and add `margin_amount` (what the reduction freed plus
    the proceeds, as planned) to an isolated leg.
    """

    sell_amount: Decimal
    reduce_amount: Decimal
    reason: str
    margin_amount: Decimal = ZERO

    kind = "raise_from_spot"


@dataclass(frozen=True)
class ReleaseMargin:
    """Take spare isolated margin off the short and send it back to the spot wallet."""

    asset: str
    amount: Decimal
    reason: str

    kind = "release_margin"


Action = PlaceOrder | AdjustMargin | Transfer | RaiseFromSpot | ReleaseMargin


@dataclass(frozen=True)
class Alert:
    """Something a person must hear about; repeated until it clears."""

    severity: Severity
    code: str
    message: str
