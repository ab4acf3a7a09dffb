"""How figures are shown to people: each kind of figure has one format, whatever field it sits in.

A status, an event or a report marks each of its fields with the kind of
figure it holds (`figure(Figure.AMOUNT)`), and `as_json` renders them all the
same way: amounts at the market's amount step, prices at its price step,
money at its margin step, ratios and distances to 4 decimals, times as
ISO 8601 UTC. A new field only has to say what kind of figure it is. While a
market's steps are not known, its amounts, prices and money are shown in plain
digits: rounding to a guessed step could hide digits (a price of 0.00001234 is
not 0.00).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, is_dataclass
from datetime import UTC, datetime
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, Decimal
from enum import Enum, StrEnum
from functools import lru_cache
from typing import Any

from hedgebot.domain.model import BOOKED_STEP, Market

FIGURE = "figure"


class Figure(StrEnum):
    """The kinds of figure a person reads."""

    AMOUNT = "amount"  # base units of the hedged coin, on the market's amount step
    PRICE = "price"  # quote per coin, on the market's price step
    MONEY = "money"  # quote currency (margin, fees, funding), on the market's margin step
    BALANCE = "balance"  # money as a wallet books it (ledgers, balances): exact, 8 decimals at most, so rows add up
    RATIO = "ratio"  # fractions: ratios, distances, rates, to 4 decimals
    TIME = "time"  # seconds since the epoch, shown as ISO 8601 UTC
    SECONDS = "seconds"  # a duration, to whole seconds
    HIDDEN = "hidden"  # kept on the object, not shown


RATIO_PLACES = Decimal("0.0001")


def figure(kind: Figure, default: Any = None) -> Any:
    """Declare a dataclass field holding one kind of figure."""
    return field(default=default, metadata={FIGURE: kind})


@dataclass(frozen=True)
class Precision:
    """The steps figures of one market are shown at (None: not known, shown in plain digits)."""

    amount: Decimal | None = None
    price: Decimal | None = None
    money: Decimal | None = None
    quote: str = ""  # the market's quote asset: an amount of it is money

    @classmethod
    def of(cls, market: Market | None, quote: str = "") -> Precision:
        """Return the precision of `market` (plain digits, with `quote` as the quote asset, when it is not known)."""
        if market is None:
            return cls(quote=quote)
        if market.inverse:
            # Its orders count face value and its status coins: no one step fits both, so amounts show their digits;
            # its money (margin, fees, funding) is the coin.
            return cls(None, market.price_step, market.margin_step, market.margin_asset)
        return cls(market.amount_step, market.price_step, market.margin_step, market.quote)


def plain(value: Any) -> Any:
    """Return a value as JSON-ready data without rounding: Decimals as strings, enums as their values."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    return value


def iso_utc(seconds: float) -> str:
    """Return an epoch time as ISO 8601 UTC with a Z (2026-11-22T04:30:19Z, milliseconds when there are any)."""
    moment = datetime.fromtimestamp(seconds, UTC)
    text = moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds")
    return text.replace("+00:00", "Z")


@lru_cache(maxsize=512)
def _quantum(step: Decimal) -> Decimal:
    """Return the decimal places a step implies (0.10 -> 0.1, 0.001 -> 0.001, 5 -> 1)."""
    exponent = step.normalize().as_tuple().exponent
    return Decimal(1).scaleb(min(int(exponent), 0))


def booked(value: Decimal) -> str:
    """Return money as a wallet books it: exact up to 8 decimals (cut beyond them, as exchanges show balances)."""
    if value.is_finite() and int(value.as_tuple().exponent) < -8:
        value = value.quantize(BOOKED_STEP, rounding=ROUND_DOWN)
    return format(value, "f")


def render(value: Any, kind: Figure | None, precision: Precision, rounding: str = ROUND_HALF_EVEN) -> Any:
    """Return one figure as JSON-ready data, on its step by `rounding` (pass the safe side for a figure acted on)."""
    if value is None:
        return None
    if kind is Figure.BALANCE:
        number_ = value if isinstance(value, Decimal) else Decimal(str(value))
        return booked(number_) if number_.is_finite() else str(number_)
    if kind is Figure.TIME:
        return iso_utc(float(value))
    if kind is Figure.SECONDS:
        return int(round(float(value)))
    if isinstance(value, Enum):
        return value.value
    # The status writer renders every figure of every hedge: only the step this kind needs is looked up.
    step: Decimal | None = None
    if kind is Figure.AMOUNT:
        step = precision.amount
    elif kind is Figure.PRICE:
        step = precision.price
    elif kind is Figure.MONEY:
        step = precision.money
    elif kind is not Figure.RATIO:
        return str(value) if isinstance(value, Decimal) else value
    if isinstance(value, Decimal) and not value.is_finite():
        return str(value)  # an unlimited runway is Infinity
    number_ = value if isinstance(value, Decimal) else Decimal(str(value))
    if kind is not Figure.RATIO and step is None:
        return format(number_, "f")  # the market's steps are not known: every digit, never an exponent
    places = RATIO_PLACES if step is None else _quantum(step)
    return str(number_.quantize(places, rounding=rounding))


def text(value: Any, kind: Figure | None, precision: Precision) -> str:
    """Return one figure as a person reads it: '-' when absent, never an exponent, never a float's 17 digits."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float) and math.isinf(value):
        return "unlimited" if value > 0 else "-"
    shown = render(value, kind, precision)
    if isinstance(shown, str) and kind in (Figure.AMOUNT, Figure.PRICE, Figure.MONEY, Figure.RATIO, Figure.BALANCE):
        return shown if shown in ("Infinity", "-Infinity", "NaN") else format(Decimal(shown), "f")
    if isinstance(value, float) and kind is None:
        return format(Decimal(repr(value)), "f")
    return str(shown)


def number(value: Any, kind: Figure, precision: Precision) -> float | int | None:
    """Return one figure as a JSON number at its kind's precision (None when absent or not finite)."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Decimal) and not value.is_finite():
        return None
    shown = render(value, kind, precision)
    return shown if isinstance(shown, int) else float(shown)


def duration(seconds: float) -> str:
    """Return a duration as a person reads it in a message: 45s, 12m, 3h05m."""
    seconds = int(round(seconds))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 7200:
        return f"{seconds // 60}m"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


def percent(value: Any, places: int = 2) -> str:
    """Return a fraction as a percentage ('-' when absent): 0.3218 -> '32.18%'."""
    if value is None:
        return "-"
    fraction = Decimal(str(value))
    if not fraction.is_finite():
        return "unlimited" if fraction > 0 else "-"
    return f"{fraction * 100:.{places}f}%"


def as_json(obj: Any, precision: Precision, extra: dict[str, tuple[Any, Figure]] | None = None) -> dict[str, Any]:
    """Return a dataclass's fields (and `extra` computed figures) rendered by their kind."""
    assert is_dataclass(obj)
    out: dict[str, Any] = {}
    for f in fields(obj):
        kind = f.metadata.get(FIGURE)
        if kind is Figure.HIDDEN:
            continue
        out[f.name] = render(getattr(obj, f.name), kind, precision)
    for name, (value, kind) in (extra or {}).items():
        out[name] = render(value, kind, precision)
    return out


# The kind of each figure an event's detail may hold, by its name: one table for history, logs and alert texts.
DETAIL_KINDS: dict[str, Figure] = {
    **{name: Figure.AMOUNT for name in (
        "amount", "short", "target", "exposure", "drift", "missing", "filled", "seen", "expected", "change",
        "liquidated_amount", "sell", "reduce", "size", "remaining", "before", "min_order", "effective_min_order",
        "short_bought_back", "spot_sold", "short_left", "spot_left", "exposure_elsewhere",
    )},
    **{name: Figure.PRICE for name in (
        "price", "mark", "average_price", "liquidation_price", "runway_price", "previous", "liquidated_price", "entry",
    )},
    **{name: Figure.MONEY for name in ("margin_lost", "fee", "margin", "quote_amount", "proceeds", "needed", "available", "min_notional", "margin_to_spot", "margin_locked")},
    **{name: Figure.RATIO for name in ("distance", "worst_distance", "level", "runway", "ratio", "drift_ratio")},
    **{name: Figure.TIME for name in ("since", "at", "liquidated_at", "until", "started_at", "exposure_elsewhere_at")},
    **{name: Figure.SECONDS for name in ("lasted_seconds", "seconds", "seconds_outside")},
}


def render_detail(detail: dict[str, Any], precision: Precision | None) -> dict[str, Any]:
    """Return an event's detail with each known figure at its kind's precision (text that is not a number is kept).

    Without a precision (a daemon-wide event, no market of its own) every field keeps its value, Decimals in plain
    digits; with a market's steps not known yet, amounts, prices and money are shown in plain digits: rounding to
    a guessed step could hide digits.
    """
    out: dict[str, Any] = {}
    quote_asset = precision is not None and bool(precision.quote) and detail.get("asset") == precision.quote
    for name, value in detail.items():
        kind = DETAIL_KINDS.get(name) if precision is not None else None
        if name == "amount" and quote_asset:
            kind = Figure.BALANCE  # a transfer of the quote asset is money as the wallet booked it, not coins
        if kind is None and isinstance(value, Decimal):
            out[name] = format(value, "f") if value.is_finite() else str(value)  # never a repr, never an exponent
            continue
        if kind is None or value is None or isinstance(value, bool):
            out[name] = value
            continue
        try:
            number = Decimal(str(value))
        except ArithmeticError:
            out[name] = value
            continue
        if not number.is_finite():
            out[name] = str(value)
            continue
        assert precision is not None
        shown = render(number if kind not in (Figure.TIME, Figure.SECONDS) else float(number), kind, precision)
        out[name] = format(Decimal(shown), "f") if isinstance(shown, str) and kind not in (Figure.TIME,) else shown
    return out
