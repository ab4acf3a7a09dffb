"""A paper options book: the puts of one asset, priced by a model, bought and sold in limit orders, settled at expiry.

This is a MODEL, not a market. Prices are Black-Scholes (rate zero) on an
implied volatility: one for every strike and expiry (the config's, or in a
backtest the candles' trailing realised volatility times a premium factor), or
a recorded surface's, interpolated by strike and expiry
(hedgebot.domain.vol_surface). The book quotes a bid and an ask a spread either side of the
model's mark, and never gives better than that:

- a limit buy fills at the ask, only when its limit is at or above the ask;
  a limit sell fills at the bid, only when its limit is at or below the bid;
  an order that does not cross is cancelled at once (immediate-or-cancel), so
  a resting order never fills later at a price the keeper did not see;
- the fee is Deribit's option fee, 0.03 % of the underlying per contract,
  capped at 12.5 % of the option's price (deribit.com "Fees");
- the premium and the fee are paid from the quote wallet (spot), and a
  purchase the wallet cannot pay is refused;
- only long puts are held: selling more than is held is refused (no writing);
- expiries follow Deribit's Contract Introduction Policy: 1, 2, 3 dailies,
  1, 2, 3 weeklies (Fridays), 1, 2, 3 monthlies (last Friday of the month)
  and the quarterlies of the March/June/September/December cycle 3, 6, 9 and
  12 months out (last Friday of the quarter), all at 08:00 UTC;
- options are European and cash-settled: at expiry each put pays
  max(strike − price, 0) into the quote wallet, the price being the first
  mark the book sees at or after the expiry (Deribit settles on a 30-minute
  average of its index before 08:00, which the book does not have).
"""

from __future__ import annotations

import calendar
import json
import math
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from pathlib import Path
from typing import Any

from hedgebot.domain.options import OptionKind, as_money, black_scholes
from hedgebot.domain.put_plan import YEAR_SECONDS
from hedgebot.domain.vol_surface import VolSurface
from hedgebot.exchange.port import InsufficientFunds, PermanentError

ZERO = Decimal(0)
DERIBIT_FEE_OF_UNDERLYING = Decimal("0.0003")
DERIBIT_FEE_CAP_OF_PRICE = Decimal("0.125")
_EXPIRY_HOUR = 8


class OptionOrderRefused(PermanentError):
    """The book refused an option order (unknown or expired series, a sale of puts not held, a bad amount)."""


@dataclass(frozen=True)
class PutSeries:
    """One listed put: its strike and its expiry (epoch seconds)."""

    strike: Decimal
    expiry: float

    @property
    def symbol(self) -> str:
        """Return the series' name, Deribit style: BTC-27DEC26-42000-P without the asset (the book adds it)."""
        day = datetime.fromtimestamp(self.expiry, UTC).strftime("%d%b%y").upper()
        return f"{day}-{self.strike.normalize():f}-P"


@dataclass(frozen=True)
class OptionQuoteBook:
    """The book's quote of one put: the model's mark, the bid and ask around it, and the model's figures."""

    series: PutSeries
    mark: Decimal  # quote currency per coin
    bid: Decimal
    ask: Decimal
    volatility: float
    delta: float
    underlying: Decimal


@dataclass(frozen=True)
class OptionFill:
    """An option order the book executed, kept by client id so that a restarted keeper can find it."""

    client_id: str
    strike: Decimal
    expiry: float
    side: str  # "buy" or "sell"
    amount: Decimal  # contracts of one coin
    price: Decimal  # per coin, quote currency
    fee: Decimal
    at: float

    @property
    def series(self) -> PutSeries:
        """Return the series the fill was in."""
        return PutSeries(self.strike, self.expiry)

    @property
    def cash(self) -> Decimal:
        """Return what the fill moved in the quote wallet: negative for a purchase, positive for a sale."""
        gross = self.price * self.amount
        return (gross if self.side == "sell" else -gross) - self.fee

    def to_json(self) -> dict[str, Any]:
        """Return the fill as JSON-safe values."""
        data = asdict(self)
        return {**{k: (str(v) if isinstance(v, Decimal) else v) for k, v in data.items()}, "cash": str(self.cash)}


@dataclass(frozen=True)
class Lookup:
    """What a lookup by client id told: `known` when the venue has a record (or proof of none), `fill` when it executed."""

    known: bool
    fill: OptionFill | None


@dataclass(frozen=True)
class Settlement:
    """A held series settled at expiry to its intrinsic value."""

    series: PutSeries
    amount: Decimal
    price: Decimal  # the settlement price of the underlying
    payoff: Decimal  # paid into the quote wallet
    at: float


def _nice_step(price: Decimal) -> Decimal:
    """Return a round strike interval near 1 % of `price` (1, 2 or 5 times a power of ten)."""
    target = float(price) * 0.01
    power = 10 ** math.floor(math.log10(target))
    for factor in (1, 2, 5, 10):
        if power * factor >= target:
            return Decimal(f"{power * factor:f}").normalize()
    return Decimal(repr(power * 10)).normalize()  # pragma: no cover - the loop always returns


def _at_eight(day: datetime) -> float:
    return datetime(day.year, day.month, day.day, _EXPIRY_HOUR, tzinfo=UTC).timestamp()


def _last_friday(year: int, month: int) -> datetime:
    last = datetime(year, month, calendar.monthrange(year, month)[1], tzinfo=UTC)
    return last - timedelta(days=(last.weekday() - 4) % 7)


def deribit_expiries(now: float) -> list[float]:
    """Return the expiries Deribit lists at `now`: 3 dailies, 3 weeklies, 3 monthlies, 4 quarterlies, at 08:00 UTC."""
    today = datetime.fromtimestamp(now, UTC)
    first = today if _at_eight(today) > now else today + timedelta(days=1)
    dailies = [_at_eight(first + timedelta(days=i)) for i in range(3)]
    friday = first + timedelta(days=(4 - first.weekday()) % 7)
    weeklies = [_at_eight(friday + timedelta(weeks=i)) for i in range(3)]
    monthlies: list[float] = []
    year, month = today.year, today.month
    while len(monthlies) < 3:
        expiry = _at_eight(_last_friday(year, month))
        if expiry > now:
            monthlies.append(expiry)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    quarterlies: list[float] = []
    year, month = today.year, today.month + (-today.month % 3)
    if month == 0:
        month = 12
    while len(quarterlies) < 4:
        expiry = _at_eight(_last_friday(year, month))
        if expiry > now:
            quarterlies.append(expiry)
        year, month = (year + 1, 3) if month == 12 else (year, month + 3)
    return sorted(set(dailies + weeklies + monthlies + quarterlies))


def deribit_fee(underlying: Decimal, price: Decimal, amount: Decimal) -> Decimal:
    """Return Deribit's option fee for `amount` contracts of one coin: 0.03 % of the underlying, at most 12.5 % of the price."""
    return min(DERIBIT_FEE_OF_UNDERLYING * underlying, DERIBIT_FEE_CAP_OF_PRICE * price) * amount


class PaperOptions:
    """The puts of one asset on a paper account, priced by Black-Scholes on `surface`'s IV, else on `volatility()`.

    `price()` returns the underlying's mark and `now()` the venue's time; the
    book reads and pays from `wallet` (the paper venue's spot balances, by asset).
    """

    def __init__(
        self,
        asset: str,
        quote: str,
        wallet: dict[str, Decimal],
        price: Callable[[], Decimal],
        now: Callable[[], float],
        volatility: Callable[[], float],
        *,
        spread: Decimal = Decimal("0.02"),
        amount_step: Decimal = Decimal("0.1"),
        tick: Decimal = Decimal("0.5"),
        path: Path | None = None,
        on_change: Callable[[], None] | None = None,
        surface: VolSurface | None = None,
    ) -> None:
        if not ZERO <= spread < 1:
            raise ValueError(f"spread must be at least 0 and below 1, got {spread}")
        self.asset, self.quote = asset, quote
        self.wallet, self.price, self.now, self.volatility = wallet, price, now, volatility
        self.spread, self.amount_step, self.tick = spread, amount_step, tick
        self.surface = surface
        self.held: dict[PutSeries, Decimal] = {}
        self.fills: dict[str, OptionFill] = {}
        self.settlements: list[Settlement] = []
        self._once_listed: set[PutSeries] = set()
        # Where the book is saved after every change (paper accounts survive a restart, a SIGKILL included).
        self.path = path
        self.on_change = on_change  # the venue saves its wallet, which premiums and payoffs change
        if path is not None and path.exists():
            self.restore(json.loads(path.read_text()))

    def _save(self) -> None:
        if self.on_change is not None:
            self.on_change()
        if self.path is None:
            return
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_dict()))
        os.replace(tmp, self.path)

    # ---- the chain ----------------------------------------------------------------

    def listed(self) -> list[PutSeries]:
        """Return the puts listed now: each listed expiry, strikes on a grid from 50 % to 150 % of the price."""
        spot = self.price()
        step = _nice_step(spot)
        low = (spot * Decimal("0.5") / step).to_integral_value(ROUND_CEILING)
        high = (spot * Decimal("1.5") / step).to_integral_value(ROUND_FLOOR)
        strikes = [Decimal(f"{step * i:f}") for i in range(int(low), int(high) + 1)]
        grid = [PutSeries(k, e) for e in deribit_expiries(self.now()) for k in strikes]
        self._once_listed.update(grid)
        return grid

    def is_listed(self, series: PutSeries) -> bool:
        """Tell whether `series` trades now: on today's grid, or listed earlier (or held) and not expired yet.

        An exchange keeps a series it listed until it expires, whatever the price has done since.
        """
        if series.expiry <= self.now():
            return False
        return series in self.held or series in self._once_listed or series in set(self.listed())

    def quote_of(self, series: PutSeries) -> OptionQuoteBook | None:
        """Return the book's quote of a put, or None when the model gives no sensible one (no volatility, expired)."""
        spot, now = self.price(), self.now()
        if self.surface is not None:
            volatility = self.surface.iv(float(series.strike), series.expiry, now)
        else:
            volatility = self.volatility()
        if series.expiry <= now or not (math.isfinite(volatility) and volatility > 0) or spot <= 0:
            return None
        years = (series.expiry - now) / YEAR_SECONDS
        model = black_scholes(OptionKind.PUT, float(spot), float(series.strike), years, volatility)
        mark = as_money(model.price)
        half = mark * self.spread
        bid = ((mark - half) / self.tick).to_integral_value(ROUND_FLOOR) * self.tick
        ask = ((mark + half) / self.tick).to_integral_value(ROUND_CEILING) * self.tick
        return OptionQuoteBook(series, mark, max(bid, ZERO), max(ask, self.tick), volatility, model.delta, spot)

    # ---- orders -------------------------------------------------------------------

    def place_limit(self, client_id: str, series: PutSeries, side: str, amount: Decimal, limit: Decimal) -> OptionFill | None:
        """Execute a limit order at once where it crosses the book, else cancel it; return the fill or None.

        A client id already used returns its earlier fill (the exchange refuses a duplicate client id; the book
        answers as a lookup would), so a resent order never executes twice.
        """
        if client_id in self.fills:
            return self.fills[client_id]
        if side not in ("buy", "sell"):
            raise OptionOrderRefused(f"side {side!r} is neither buy nor sell")
        if amount <= 0 or amount % self.amount_step != 0:
            raise OptionOrderRefused(f"amount {amount} is not a positive multiple of the step {self.amount_step}")
        if limit <= 0 or limit % self.tick != 0:
            raise OptionOrderRefused(f"limit {limit} is not a positive multiple of the tick {self.tick}")
        if not self.is_listed(series):
            raise OptionOrderRefused(f"{self.asset}-{series.symbol} is not listed")
        quote = self.quote_of(series)
        if quote is None:
            return None
        if side == "sell" and self.held.get(series, ZERO) < amount:
            raise OptionOrderRefused(
                f"sell {amount} {self.asset}-{series.symbol}: only {self.held.get(series, ZERO)} held (puts are not written)"
            )
        if side == "buy" and limit < quote.ask or side == "sell" and (limit > quote.bid or quote.bid <= 0):
            return None
        price = quote.ask if side == "buy" else quote.bid
        fee = deribit_fee(quote.underlying, price, amount)
        fill = OptionFill(client_id, series.strike, series.expiry, side, amount, price, fee, self.now())
        cash = self.wallet.get(self.quote, ZERO)
        if cash + fill.cash < 0:
            raise InsufficientFunds(f"spot {self.quote} {cash} < {-fill.cash} for {amount} {self.asset}-{series.symbol}")
        self.wallet[self.quote] = cash + fill.cash
        self.held[series] = self.held.get(series, ZERO) + (amount if side == "buy" else -amount)
        if self.held[series] == 0:
            del self.held[series]
        self.fills[client_id] = fill
        self._save()
        return fill

    def find_fill(self, client_id: str) -> OptionFill | None:
        """Return the fill of an order by its client id, or None when the book never executed it."""
        return self.fills.get(client_id)

    # ---- expiry ---------------------------------------------------------------------

    def settle_expired(self) -> list[Settlement]:
        """Settle every held put whose expiry has passed at the current price; return what was settled."""
        now, price = self.now(), self.price()
        done: list[Settlement] = []
        for series in sorted((s for s in self.held if s.expiry <= now), key=lambda s: (s.expiry, s.strike)):
            amount = self.held.pop(series)
            payoff = max(series.strike - price, ZERO) * amount
            self.wallet[self.quote] = self.wallet.get(self.quote, ZERO) + payoff
            done.append(Settlement(series, amount, price, payoff, now))
        self.settlements.extend(done)
        if done:
            self._save()
        return done

    def mark_value(self) -> Decimal:
        """Return what the held puts are worth at the model's mark (intrinsic value for a series past expiry)."""
        total = ZERO
        for series, amount in self.held.items():
            quote = self.quote_of(series)
            total += (quote.mark if quote is not None else max(series.strike - self.price(), ZERO)) * amount
        return total

    # ---- persistence ----------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the book's holdings, fills and settlements as JSON-safe values."""
        return {
            "held": [{"strike": str(s.strike), "expiry": s.expiry, "amount": str(a)} for s, a in self.held.items()],
            "fills": [f.to_json() for f in self.fills.values()],
            "settlements": [
                {"strike": str(s.series.strike), "expiry": s.series.expiry, "amount": str(s.amount), "price": str(s.price),
                 "payoff": str(s.payoff), "at": s.at}
                for s in self.settlements
            ],
        }

    def restore(self, data: dict[str, Any]) -> None:
        """Load holdings, fills and settlements saved by `to_dict` (the wallet is the venue's own)."""
        self.held = {PutSeries(Decimal(h["strike"]), float(h["expiry"])): Decimal(h["amount"]) for h in data["held"]}
        self.fills = {
            f["client_id"]: OptionFill(
                f["client_id"], Decimal(f["strike"]), float(f["expiry"]), f["side"], Decimal(f["amount"]),
                Decimal(f["price"]), Decimal(f["fee"]), float(f["at"]),
            )
            for f in data["fills"]
        }
        self.settlements = [
            Settlement(PutSeries(Decimal(s["strike"]), float(s["expiry"])), Decimal(s["amount"]), Decimal(s["price"]),
                       Decimal(s["payoff"]), float(s["at"]))
            for s in data["settlements"]
        ]


def realised_volatility(closes: list[float], interval_seconds: float) -> float:
    """Return the annualised standard deviation of the log returns of `closes` (0 with fewer than 3 prices)."""
    if len(closes) < 3:
        return 0.0
    returns = [math.log(b / a) for a, b in zip(closes, closes[1:], strict=False) if a > 0 and b > 0]
    if len(returns) < 2:
        return 0.0
    mean = sum(returns) / len(returns)
    variance = sum((r - mean) ** 2 for r in returns) / (len(returns) - 1)
    return math.sqrt(variance * YEAR_SECONDS / interval_seconds)


def attach_options(
    venue: Any, symbol: str, asset: str, quote: str, volatility: Callable[[], float], path: Path | None = None,
    surface: VolSurface | None = None,
) -> PaperOptions:
    """Give a paper venue an options book on `asset`, priced off `symbol`'s mark and paid from its spot wallet."""
    book = PaperOptions(
        asset, quote, venue.spot, lambda: venue.marks[symbol][0], venue.clock.now, volatility, path=path,
        on_change=venue._changed,  # noqa: SLF001 - the book is part of the paper venue: its changes are the venue's
        surface=surface,
    )
    venue.options = book
    return book
