"""Paper defaults taken from Binance USDⓈ-M and COIN-M: market rules and maintenance brackets.

USDⓈ-M brackets as Binance's API served them in October 2024 for BTCUSDT and ETHUSDT
(notional floor, cap, maintenance margin rate, maintenance amount "cum"). The COIN-M
BTCUSD table is shaped like Binance's (tiers by notional in BTC, each "cum" following
Binance's rule so maintenance is continuous across tiers), not a recorded copy.
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

# COIN-M (inverse) perpetuals: notional floor, cap (in coins), maintenance margin rate, cum (in coins).
_RAW_COINM_BRACKETS: dict[str, list[tuple[str, str, str, str]]] = {
    "BTC": [
        ("0", "5", "0.004", "0"), ("5", "10", "0.005", "0.005"), ("10", "20", "0.01", "0.055"),
        ("20", "50", "0.025", "0.355"), ("50", "100", "0.05", "1.605"), ("100", "200", "0.1", "6.605"),
        ("200", "400", "0.125", "11.605"), ("400", "1000", "0.25", "61.605"), ("1000", "1500", "0.5", "311.605"),
    ],
}
# COIN-M contract size in USD (100 for BTC, 10 for every other coin) and price tick.
_COINM_RULES: dict[str, tuple[str, str]] = {"BTC": ("100", "0.1")}
COIN_STEP = Decimal("0.00000001")  # coins are booked to 8 decimals


def default_coinm_market(symbol: str) -> Market | None:
    """Return paper rules for a known `BASE/USD:BASE` coin-margined perpetual, or None."""
    base, _, rest = symbol.partition("/")
    quote, _, settle = rest.partition(":")
    rules, rows = _COINM_RULES.get(base.upper()), _RAW_COINM_BRACKETS.get(base.upper())
    if rules is None or rows is None or quote != "USD" or settle != base:
        return None
    size, tick = (Decimal(v) for v in rules)
    brackets = tuple(Bracket(Decimal(f), Decimal(c), Decimal(r), Decimal(a)) for f, c, r, a in rows)
    return Market(
        symbol, base, quote, amount_step=size, min_amount=size, min_notional=Decimal(0), brackets=brackets,
        contract_size=size, margin_step=COIN_STEP, price_step=tick, taker_fee=DEFAULT_TAKER_FEE, inverse=True,
    )


def default_brackets(base: str) -> tuple[Bracket, ...] | None:
    """Return Binance's bracket table for BTC or ETH USDT perpetuals, if known."""
    rows = _RAW_BRACKETS.get(base.upper())
    if rows is None:
        return None
    return tuple(Bracket(Decimal(f), Decimal(c), Decimal(r), Decimal(a)) for f, c, r, a in rows)


def default_market(symbol: str) -> Market | None:
    """Return paper rules for a known `BASE/USDT:USDT` contract (or coin-margined `BASE/USD:BASE`), or None."""
    coinm = default_coinm_market(symbol)
    if coinm is not None:
        return coinm
    base, _, rest = symbol.partition("/")
    quote = rest.partition(":")[0]
    rules = _RULES.get(base.upper())
    brackets = default_brackets(base)
    if rules is None or brackets is None or quote != "USDT":
        return None
    step, minimum, min_notional, tick = (Decimal(v) for v in rules)
    return Market(symbol, base, quote, step, minimum, min_notional, brackets, taker_fee=DEFAULT_TAKER_FEE, price_step=tick)
