"""`hedgebot compare --hedge NAME`: what each instrument the exchange offers for a hedge's asset would cost.

For the hedge's asset, every contract its exchange lists (a USDⓈ-margined and a
coin-margined perpetual; delivery contracts where the venue lists them) is
priced as if the hedge held it, from the account's own balances:

- the carrying cost: a perpetual's funding over the last 30 days at a year's
  pace, a delivery contract's basis to the perpetual's mark per year until it
  is delivered; what the leg receives (+) or pays, a year and over the
  hedge's horizon;
- the margin the whole target locks up at the hedge's leverage, and what
  share of the target the balances fund;
- the runway of the target once opened.

Nothing is ordered or changed. A paper account offers the markets it lists (and
their quarterlies, where `quarterlies = true`), priced on a fresh paper venue
from its starting balances; a live Binance account is read on both its USDⓈ-M and its COIN-M side with the
same key (Binance serves both from one key); other exchanges list both kinds
on one venue.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_HALF_EVEN, Decimal
from typing import Any

from pydantic import ValidationError

from hedgebot import affordability
from hedgebot.clock import Clock
from hedgebot.config import AccountConfig, HedgeConfig
from hedgebot.domain.basis import FUNDING_HISTORY_SECONDS, annual_basis, carrying_cost, funding_annual_rate, years_left
from hedgebot.domain.delivery import parse_delivery_symbol
from hedgebot.domain.fundability import fundability
from hedgebot.domain.instrument import InstrumentKind
from hedgebot.domain.model import Market
from hedgebot.domain.runway import runway_price
from hedgebot.exchange.port import ExchangeError, ExchangePort
from hedgebot.ops.figures import Figure, Precision, percent, render
from hedgebot.redact import redact

HISTORY_SECONDS = FUNDING_HISTORY_SECONDS  # the recent funding a perpetual's carry is averaged over


@dataclass(frozen=True)
class Candidate:
    """One instrument the hedge could hold, priced from the account's balances (None: the figure is unknown)."""

    instrument: InstrumentKind
    symbol: str
    margin_asset: str = ""
    annual_rate: Decimal | None = None  # the carry a year as a fraction of the notional; positive: a short receives it
    per_year: Decimal | None = None  # what the hedge's leg receives (+) or pays (-) a year, in the margin asset
    over_horizon: Decimal | None = None  # the same until the hedge ends (or the contract is delivered)
    horizon: str = ""
    carry_source: str = ""
    margin_locked: Decimal | None = None
    funded_share: Decimal | None = None  # the share of the target the balances fund
    runway: Decimal | None = None  # the rally (short) or fall (long) the sources pay for, as a fraction of the price
    unlimited_runway: bool = False
    precision: Precision = Precision()
    problem: str = ""  # why the instrument cannot be priced or held (then the figures are None)


def variant(hedge: HedgeConfig, instrument: InstrumentKind, symbol: str) -> HedgeConfig:
    """Return the hedge as it would be on another instrument; coin-margined, it sells no coins for margin."""
    data: dict[str, Any] = hedge.model_dump()
    data.update(instrument=instrument, symbol=symbol)
    for choosing in ("cheapest_among", "switch_advantage"):
        data.pop(choosing)  # a cheapest hedge priced on one contract: its limits on choosing do not apply there
    if instrument.settlement.value == "inverse":
        guard = data["margin_guard"]
        guard["sources"] = [s for s in guard["sources"] if s != "sell_spot"] or ["futures_wallet"]
        guard["fund_target_by_selling"] = False
        data["until_sell_spot"] = False
    return HedgeConfig.model_validate(data)


def price_candidate(
    hedge: HedgeConfig, instrument: InstrumentKind, market: Market, price: Decimal, spot: dict[str, Decimal],
    futures: dict[str, Decimal], annual_rate: Decimal | None, carry_source: str, horizon_years: Decimal | None, horizon: str,
) -> Candidate:
    """Return one instrument's figures for the hedge at `price` from these balances."""
    # A quarterly hedge names its market without the expiry; the contract it would hold is `market`.
    named = parse_delivery_symbol(market.symbol)
    try:
        held = variant(hedge, instrument, named[0] if named is not None else market.symbol)
    except ValidationError as exc:
        reason = "; ".join(str(e.get("msg", "")) for e in exc.errors())
        return Candidate(instrument, market.symbol, problem=f"the hedge's settings do not fit it: {reason}")
    f = fundability(market, price, spot, futures, held.policy(), held.leverage)
    runway = runway_price(affordability.opened(market, price, spot, futures, held), held.policy())
    fraction: Decimal | None = None
    unlimited = runway is not None and (not runway.is_finite() or runway <= 0)
    if runway is not None and not unlimited:
        fraction = runway / price - 1 if held.side.value == "short" else 1 - runway / price
    per_year = over = None
    if annual_rate is not None and f.target > 0:
        notional = f.target if market.inverse else f.target * price
        cost = carrying_cost(notional, annual_rate, held.side.position_side, carry_source, horizon_years)
        per_year, over = cost.per_year, cost.over_horizon
    return Candidate(
        instrument, market.symbol, market.margin_asset, annual_rate, per_year, over, horizon, carry_source, f.needed,
        (f.affordable / f.target) if f.target > 0 else None, fraction, unlimited, Precision.of(market),
    )


# ---- where the candidates come from ---------------------------------------------------------


def _instrument_of(market: Market) -> InstrumentKind:
    delivers = getattr(market, "expiry", None) is not None
    if market.inverse:
        return InstrumentKind.COINM_QUARTERLY if delivers else InstrumentKind.COINM_PERP
    return InstrumentKind.USDM_QUARTERLY if delivers else InstrumentKind.USDM_PERP


async def venue_candidates(
    hedge: HedgeConfig, venue: ExchangePort, symbols: Sequence[str], clock: Clock, ends_at: float | None,
) -> list[Candidate]:
    """Return a candidate for each of `symbols` the venue lists (and their delivery contracts), read from the exchange."""
    now = clock.now()
    out: list[Candidate] = []
    for symbol in symbols:
        try:
            market = await venue.load_market(symbol)
        except ExchangeError as exc:
            out.append(Candidate(_kind(symbol), symbol, problem=f"not offered here ({redact(str(exc))})"))
            continue
        try:
            spot_balances = await venue.fetch_spot_balances()
            wallet = await venue.fetch_futures_balance(market.margin_asset)
            mark = (await venue.fetch_mark_price(symbol)).price
            settlements = await venue.fetch_funding_rates(symbol, now - HISTORY_SECONDS)
        except ExchangeError as exc:
            out.append(Candidate(_instrument_of(market), symbol, problem=f"cannot be read: {redact(str(exc))}"))
            continue
        spot = {market.base: spot_balances.get(market.base, Decimal(0)), market.margin_asset: spot_balances.get(market.margin_asset, Decimal(0))}
        futures = {market.margin_asset: wallet.wallet}
        yearly = funding_annual_rate(settlements)
        horizon_years = affordability.horizon_years(ends_at, now)
        horizon = "until the hedge ends" if horizon_years is not None else ""
        out.append(price_candidate(
            hedge, _instrument_of(market), market, mark, spot, futures, yearly,
            f"{len(settlements)} settlements in the last 30 days" if settlements else "no settlement in the last 30 days",
            horizon_years, horizon,
        ))
        out += await _delivery_candidates(hedge, venue, market, mark, spot, futures, now, ends_at)
    return out


async def _delivery_candidates(
    hedge: HedgeConfig, venue: ExchangePort, perpetual: Market, spot_price: Decimal, spot: dict[str, Decimal],
    futures: dict[str, Decimal], now: float, ends_at: float | None,
) -> list[Candidate]:
    """Price each tradable delivery contract of the perpetual's market by its basis to the perpetual's mark."""
    lister = getattr(venue, "fetch_delivery_contracts", None)
    if lister is None:
        return []
    try:
        contracts = await lister(perpetual.symbol)
    except (ExchangeError, NotImplementedError):
        return []
    out = []
    for contract in contracts:
        if not contract.tradable:
            continue
        try:
            market = await venue.load_market(contract.symbol)
            mark = (await venue.fetch_mark_price(contract.symbol)).price
        except ExchangeError as exc:
            out.append(Candidate(_kind(contract.symbol, True), contract.symbol, problem=f"cannot be read: {redact(str(exc))}"))
            continue
        rate = annual_basis(mark, spot_price, now, contract.expiry)
        end = contract.expiry if ends_at is None else min(ends_at, contract.expiry)
        horizon_years = years_left(now, end)
        out.append(price_candidate(
            hedge, _instrument_of(market), market, mark, spot, futures, rate, "basis to the perpetual's mark",
            horizon_years, "until delivery" if end == contract.expiry else "until the hedge ends",
        ))
    return out


def _kind(symbol: str, delivers: bool = False) -> InstrumentKind:
    base, _, settle = symbol.partition(":")
    inverse = base.partition("/")[0] == settle.partition("-")[0]
    if inverse:
        return InstrumentKind.COINM_QUARTERLY if delivers else InstrumentKind.COINM_PERP
    return InstrumentKind.USDM_QUARTERLY if delivers else InstrumentKind.USDM_PERP


def perpetual_symbols(hedge: HedgeConfig) -> tuple[str, str]:
    """Return the USDⓈ-margined and coin-margined perpetuals of the hedge's asset, in ccxt's names."""
    quote = hedge.symbol.partition("/")[2].partition(":")[0]
    linear_quote = "USDT" if quote in ("USD", hedge.asset) else quote
    return f"{hedge.asset}/{linear_quote}:{linear_quote}", f"{hedge.asset}/USD:{hedge.asset}"


# ---- output ---------------------------------------------------------------------------------


def render_table(hedge: HedgeConfig, account: AccountConfig, candidates: Sequence[Candidate]) -> str:
    """Return the candidates as one block per instrument, the hedge's own marked."""
    lines = [f"hedgebot compare: {account.name}/{hedge.name}, a {hedge.side.value} of {hedge.asset} at ratio {hedge.ratio}, "
             f"{hedge.leverage}x {hedge.margin_mode.value}, from the account's balances (nothing ordered)", ""]
    for c in candidates:
        own = "  (held now)" if c.symbol == hedge.symbol else ""
        lines.append(f"{c.instrument.value:<16} {c.symbol}{own}")
        if c.problem:
            lines.append(f"  {c.problem}")
            lines.append("")
            continue

        def money(value: Decimal, rounding: str = ROUND_HALF_EVEN) -> str:
            return f"{Decimal(render(value, Figure.MONEY, c.precision, rounding)):,f} {c.margin_asset}"

        if c.per_year is None:
            lines.append(f"  carrying cost: unknown ({c.carry_source})")
        else:
            verb = "receives" if c.per_year >= 0 else "pays"
            over = f", {money(abs(c.over_horizon))} {c.horizon}" if c.over_horizon is not None else ""
            lines.append(
                f"  carrying cost: {percent(c.annual_rate, 2)} a year ({c.carry_source}); the {hedge.side.value} {verb} "
                f"about {money(abs(c.per_year))} a year{over}"
            )
        assert c.margin_locked is not None
        funded = "" if c.funded_share is None else f"; the balances fund {percent(min(c.funded_share, Decimal(1)), 2)} of the target"
        lines.append(f"  margin locked: {money(c.margin_locked, ROUND_CEILING)} for the whole target{funded}")
        if c.unlimited_runway:
            lines.append("  runway: no limit found (the sources pay for any move against the leg)")
        elif c.runway is not None:
            lines.append(f"  runway: {percent(c.runway, 1)} {'above' if hedge.side.value == 'short' else 'below'} the price")
        lines.append("")
    lines.append("carrying cost: funding (perpetuals) or basis (delivery contracts) on the target's notional; a short receives a "
                 "positive rate, a long pays it. Past funding does not promise future funding.")
    return "\n".join(lines)
