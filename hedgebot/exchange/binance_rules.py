"""Paper defaults taken from Binance USDⓈ-M: market rules and maintenance brackets.

Brackets as Binance's API served them in October 2024 for BTCUSDT and ETHUSDT
(notional floor, cap, maintenance margin rate, maintenance amount "cum").
Live accounts must read the current table from the exchange instead.
"""

from __future__ import annotations

from decimal import Decimal

from hedgebot.domain.model import Bracket, Market

_RAW_BRACKETS: dict[str, list[tuple[int, int, str, int]]] = {
    "BTC": [
        (0, 50_000, "0.004", 0),
        (50_000, 600_000, "0.005", 50),
        (600_000, 3_000_000, "0.0065", 950),
        (3_000_000, 12_000_000, "0.01", 11_450),
        (12_000_000, 70_000_000, "0.02", 131_450),
        (70_000_000, 100_000_000, "0.025", 481_450),
        (100_000_000, 230_000_000, "0.05", 2_981_450),
        (230_000_000, 480_000_000, "0.1", 14_481_450),
        (480_000_000, 600_000_000, "0.125", 26_481_450),
        (600_000_000, 800_000_000, "0.15", 41_481_450),
        (800_000_000, 1_200_000_000, "0.25", 121_481_450),
        (1_200_000_000, 1_800_000_000, "0.5", 421_481_450),
    ],
    "ETH": [
        (0, 50_000, "0.004", 0),
        (50_000, 600_000, "0.005", 50),
        (600_000, 3_000_000, "0.0065", 950),
        (3_000_000, 12_000_000, "0.01", 11_450),
        (12_000_000, 50_000_000, "0.02", 131_450),
        (50_000_000, 65_000_000, "0.025", 381_450),
        (65_000_000, 150_000_000, "0.05", 2_006_450),
        (150_000_000, 320_000_000, "0.1", 9_506_450),
        (320_000_000, 400_000_000, "0.125", 17_506_450),
        (400_000_000, 530_000_000, "0.15", 27_506_450),
        (530_000_000, 800_000_000, "0.25", 80_506_450),
        (800_000_000, 1_200_000_000, "0.5", 280_506_450),
    ],
}

# amount step, minimum amount, minimum notional (USDT), price tick
_RULES: dict[str, tuple[str, str, str, str]] = {
    "BTC": ("0.001", "0.001", "100", "0.10"),
    "ETH": ("0.001", "0.001", "20", "0.01"),
}

DEFAULT_TAKER_FEE = Decimal("0.0005")


def default_brackets(base: str) -> tuple[Bracket, ...] | None:
    """Return Binance's bracket table for BTC or ETH USDT perpetuals, if known."""
    rows = _RAW_BRACKETS.get(base.upper())
    if rows is None:
        return None
    return tuple(Bracket(Decimal(f), Decimal(c), Decimal(r), Decimal(a)) for f, c, r, a in rows)


def default_market(symbol: str) -> Market | None:
    """Return paper rules for a known `BASE/USDT:USDT` contract, or None."""
    base, _, rest = symbol.partition("/")
    quote = rest.partition(":")[0]
    rules = _RULES.get(base.upper())
    brackets = default_brackets(base)
    if rules is None or brackets is None or quote != "USDT":
        return None
    step, minimum, min_notional, tick = (Decimal(v) for v in rules)
    return Market(symbol, base, quote, step, minimum, min_notional, brackets, taker_fee=DEFAULT_TAKER_FEE, price_step=tick)
