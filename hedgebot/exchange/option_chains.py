"""Read a venue's puts on one coin through unmodified ccxt: Deribit, Binance options, OKX options.

Public endpoints only (no key needed). What each venue is asked:
- Deribit: instruments, then `get_book_summary_by_currency` (kind option: mark in the coin,
  mark_iv in percent, underlying_price the forward the option is priced on,
  estimated_delivery_price the index), then `ticker` for the delta of each put shown.
- Binance: eapi exchangeInfo, `mark` (mark in USDT, markIV a fraction, delta) and `index`.
- OKX: instruments (instType OPTION, uly COIN-USD), `opt-summary` (markVol, fwdPx, deltaBS),
  `mark-price` (instType OPTION: mark in the coin) and the index ticker.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from hedgebot.domain.put_plan import PutQuote

VENUES = ("deribit", "binance", "okx")
# The account exchanges whose own options venue is read when --venue is not given.
DEFAULT_VENUE = {"binanceusdm": "binance", "binance": "binance", "okx": "okx", "deribit": "deribit"}


class ChainError(Exception):
    """The venue's chain could not be read or made sense of."""


@dataclass(frozen=True)
class Chain:
    """A venue's listed puts on one coin, and the coin's index price there."""

    venue: str
    asset: str
    spot: Decimal
    settle: str
    puts: list[PutQuote]


def _dec(value: Any, what: str) -> Decimal:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ChainError(f"{what} is {value!r}, not a number") from None
    if not number.is_finite():
        raise ChainError(f"{what} is {value!r}, not a number")
    return number


def _opt_float(value: Any) -> float | None:
    try:
        return float(value) if value is not None and value != "" else None
    except (TypeError, ValueError):
        return None


def _opt_dec(value: Any) -> Decimal:
    try:
        number = Decimal(str(value)) if value is not None and value != "" else Decimal("NaN")
    except (InvalidOperation, ValueError):
        return Decimal("NaN")
    return number


def client_for(venue: str, config: dict[str, Any] | None = None) -> Any:
    """Return an unmodified ccxt.async_support client for `venue`'s options markets only."""
    import ccxt.async_support as ccxt_async

    settings: dict[str, Any] = dict(config or {})
    options = dict(settings.pop("options", {}))
    if venue == "binance":
        options.setdefault("fetchMarkets", {"types": ["option"]})
        options.setdefault("fetchCurrencies", False)
    elif venue == "okx":
        options.setdefault("fetchMarkets", {"types": ["option"]})
    elif venue != "deribit":
        raise ChainError(f"venue {venue!r} has no options hedgebot reads (one of {', '.join(VENUES)})")
    settings["options"] = options
    client = getattr(ccxt_async, venue)(settings)
    if venue == "okx":
        # With keys, load_markets would read currencies from a signed endpoint that needs more than read access.
        client.has["fetchCurrencies"] = False
    return client


def _puts_of(client: Any, asset: str, settle: Callable[[dict[str, Any]], bool]) -> dict[str, dict[str, Any]]:
    return {
        m["id"]: m for m in client.markets.values()
        if m.get("option") and m.get("optionType") == "put" and m.get("base") == asset and settle(m)
    }


def _quote(market: dict[str, Any], mark: Any, underlying: Any, iv: float | None, delta: float | None, coin: bool) -> PutQuote:
    step = _opt_dec((market.get("precision") or {}).get("amount"))
    minimum = _opt_dec(((market.get("limits") or {}).get("amount") or {}).get("min"))
    amount_step = step if step.is_finite() and step > 0 else (minimum if minimum.is_finite() and minimum > 0 else Decimal(1))
    size = _opt_dec(market.get("contractSize"))
    return PutQuote(
        symbol=market["symbol"], strike=_dec(market.get("strike"), f"strike of {market['symbol']}"),
        expiry=float(market["expiry"]) / 1000, mark=_opt_dec(mark), underlying=_opt_dec(underlying),
        iv=iv, delta=delta, contract_size=size if size.is_finite() and size > 0 else Decimal(1),
        amount_step=amount_step, coin_quoted=coin,
    )


async def _deribit(client: Any, asset: str) -> Chain:
    await client.load_markets()
    puts = _puts_of(client, asset, lambda m: True)
    summaries = await client.fetch_option_chain(asset)
    quotes: list[PutQuote] = []
    index = Decimal("NaN")
    for option in summaries.values():
        info = option.get("info") or {}
        market = puts.get(info.get("instrument_name"))
        if market is None:
            continue
        iv = _opt_float(info.get("mark_iv"))
        quotes.append(_quote(market, info.get("mark_price"), info.get("underlying_price"), iv / 100 if iv is not None else None, None, True))
        index = _opt_dec(info.get("estimated_delivery_price")) if not index.is_finite() else index
    if not index.is_finite() or index <= 0:
        raise ChainError(f"deribit gave no index price for {asset} options")
    return Chain("deribit", asset, index, asset, quotes)


async def deribit_deltas(client: Any, symbols: list[str]) -> dict[str, float | None]:
    """Return Deribit's own delta of each put shown (its book summary carries no greeks)."""
    deltas: dict[str, float | None] = {}
    for symbol in symbols:
        greeks = await client.fetch_greeks(symbol)
        deltas[symbol] = _opt_float(greeks.get("delta"))
    return deltas


async def _binance(client: Any, asset: str) -> Chain:
    await client.load_markets()
    puts = _puts_of(client, asset, lambda m: m.get("settle") == "USDT")
    if not puts:
        return Chain("binance", asset, Decimal(0), "USDT", [])
    index = await client.eapiPublicGetIndex({"underlying": f"{asset}USDT"})
    spot = _dec(index.get("indexPrice") if isinstance(index, dict) else None, f"binance index price of {asset}USDT")
    greeks = await client.fetch_all_greeks()
    quotes = []
    for symbol, g in greeks.items():
        market = puts.get(client.market(symbol)["id"]) if symbol in client.markets else None
        if market is None:
            continue
        quotes.append(_quote(market, g.get("markPrice"), spot, _opt_float(g.get("markImpliedVolatility")), _opt_float(g.get("delta")), False))
    return Chain("binance", asset, spot, "USDT", quotes)


async def _okx(client: Any, asset: str) -> Chain:
    underlying = f"{asset}-USD"
    client.options["defaultUnderlying"] = [underlying]
    await client.load_markets()
    puts = _puts_of(client, asset, lambda m: True)
    if not puts:
        return Chain("okx", asset, Decimal(0), asset, [])
    index = await client.publicGetMarketIndexTickers({"instId": underlying})
    rows = index.get("data") or [{}]
    spot = _dec(rows[0].get("idxPx"), f"okx index price of {underlying}")
    greeks = await client.fetch_all_greeks(None, {"uly": underlying})
    marks = await client.fetch_mark_prices(None, {"type": "option", "uly": underlying})
    quotes = []
    for symbol, g in greeks.items():
        market = puts.get(client.market(symbol)["id"]) if symbol in client.markets else None
        if market is None:
            continue
        info = g.get("info") or {}
        mark = (marks.get(symbol) or {}).get("markPrice")
        quotes.append(_quote(market, mark, info.get("fwdPx"), _opt_float(info.get("markVol")), _opt_float(info.get("deltaBS")), True))
    return Chain("okx", asset, spot, asset, quotes)


async def read_puts(client: Any, venue: str, asset: str) -> Chain:
    """Return `venue`'s listed puts on `asset` with their marks, volatilities and deltas."""
    readers = {"deribit": _deribit, "binance": _binance, "okx": _okx}
    if venue not in readers:
        raise ChainError(f"venue {venue!r} has no options hedgebot reads (one of {', '.join(VENUES)})")
    return await readers[venue](client, asset)
