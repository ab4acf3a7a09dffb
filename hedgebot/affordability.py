"""What a hedge's balances afford, told in words: the runway and fundability lines of `check`.

`check` prints them for a paper account from its starting balances, and
`check --exchange` for a live account from the balances the exchange reports.
Both read the same domain figures (`domain.runway`, `domain.fundability`) and
show every number through `ops.figures`; this module only words them.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import ROUND_CEILING, ROUND_FLOOR, ROUND_HALF_EVEN, Decimal

from hedgebot.config import HedgeConfig
from hedgebot.domain.basis import annual_basis_from_funding, carrying_cost, years_left
from hedgebot.domain.fundability import fundability
from hedgebot.domain.instrument import HedgeSide
from hedgebot.domain.model import Market, Snapshot
from hedgebot.domain.runway import opening_snapshot, runway_price
from hedgebot.ops.figures import Figure, Precision, percent, render


def opened(market: Market, price: Decimal, spot: dict[str, Decimal], futures: dict[str, Decimal], hedge: HedgeConfig) -> Snapshot:
    """Return the account as it would be just after opening the hedge's target from these balances."""
    return opening_snapshot(market, price, spot, futures, hedge.policy(), hedge.leverage, hedge.margin_mode)


def runway_line(snapshot: Snapshot, hedge: HedgeConfig, basis: str) -> str:
    """Say how far a move the margin sources pay for before the hedge's leg reaches the guard's trigger."""
    price = snapshot.mark_price
    shown = Precision.of(snapshot.market)
    at = render(price, Figure.PRICE, shown)
    runway = runway_price(snapshot, hedge.policy())
    side = hedge.side.value
    if runway is None:
        return f"runway: no {side} to guard ({basis})"
    short = hedge.side is HedgeSide.SHORT
    beyond = "above" if short else "below"
    if not runway.is_finite() or runway <= 0:
        return f"runway: no limit found {beyond} {at} (the sources pay for any {'rally' if short else 'fall'}; {basis})"
    # A short is in danger on a rally (its runway lies above the price), a long on a fall (below it).
    fraction = runway / price - 1 if short else 1 - runway / price
    note = "" if fraction >= hedge.margin_guard.runway_warning else " - below the runway warning"
    return (
        f"runway: the margin sources keep the {side} above its trigger {'up' if short else 'down'} to "
        # Rounded toward the price: the runway never reads as more room than there is.
        f"{render(runway, Figure.PRICE, shown, ROUND_FLOOR if short else ROUND_CEILING)} "
        f"({percent(fraction, 1)} {beyond} {at}; {basis}){note}"
    )


def fundability_lines(
    market: Market, price: Decimal, spot: dict[str, Decimal], futures: dict[str, Decimal], hedge: HedgeConfig, basis: str,
) -> list[str]:
    """Say whether these balances pay for the hedge's whole target, and, when not, what would close the gap."""
    f = fundability(market, price, spot, futures, hedge.policy(), hedge.leverage)
    shown = Precision.of(market)

    # What a user must bring (a deposit, coins to sell) is rounded up, what is held or can be opened down:
    # acting on the figure shown closes the gap.
    def amount(value: Decimal, rounding: str = ROUND_HALF_EVEN) -> str:
        return f"{render(value, Figure.AMOUNT, shown, rounding)} {hedge.asset}"

    def money(value: Decimal, rounding: str) -> str:
        return f"{Decimal(render(value, Figure.MONEY, shown, rounding)):,f} {market.margin_asset}"

    guard = hedge.margin_guard
    trigger = f", guard trigger {percent(guard.trigger, 0)}" if guard.enabled else ""
    # On a coin-margined contract the spot source is the coins themselves.
    held = ", ".join(f"{'spot coins' if market.inverse and name == 'spot stablecoin' else name} {money(value, ROUND_FLOOR)}"
                     for name, value in f.sources)
    head = (
        f"fundability: a {hedge.side.value} of {amount(f.target)} at {render(price, Figure.PRICE, shown)} needs "
        f"{money(f.needed, ROUND_CEILING)} of margin and fees at {hedge.leverage}x{trigger}; the sources hold "
        f"{money(f.available, ROUND_FLOOR)} ({held}; {basis})"
    )
    if f.funded:
        return [head + ": funded"]
    share = f.affordable / f.target if f.target > 0 else Decimal(0)
    if f.sells_itself and f.sell is not None:
        return [head, (
            f"  the guard funds it by selling {amount(f.sell, ROUND_CEILING)} (fund_target_by_selling); "
            f"the rest, {amount(f.target - f.sell * hedge.policy().sale_ratio, ROUND_FLOOR)}, is fully hedged"
        )]
    # A coin-margined hedge's deposit would be coins, which raise its target as much as its margin: no deposit closes it.
    ways = [] if market.inverse else [f"deposit {money(f.deposit or Decimal(0), ROUND_CEILING)}"]
    if f.sell is not None:
        ways.append(f"sell {amount(f.sell, ROUND_CEILING)} (or let the guard do it: margin_guard.fund_target_by_selling = true)")
    if f.ratio is not None:
        ways.append(f"lower ratio to {f.ratio}")
    ways.append(f"raise leverage to {f.leverage}x" if f.leverage is not None
                else f"no leverage pays for it without putting the {hedge.side.value} inside the guard's trigger")
    return [head, (
        f"  UNDER-FUNDED: only {amount(f.affordable, ROUND_FLOOR)} of the {amount(f.target)} target can be opened "
        f"({percent(share, 2)}); to close the gap: " + "; or ".join(ways)
    )]


def carry_line(
    market: Market, price: Decimal, coins: Decimal, hedge: HedgeConfig, rates: Sequence[Decimal], interval_hours: Decimal,
    source: str, horizon_years: Decimal | None = None,
) -> str:
    """Say what the hedge's leg costs to carry: its funding from `rates` (recent history or the config), a year and over its horizon.

    A short receives a positive rate and a long pays it; the money is the contract's margin asset
    (the coin for a coin-margined contract, whose notional is its coins).
    """
    shown = Precision.of(market)
    if not rates or coins <= 0 or price <= 0:
        return f"carrying cost: no funding figure ({source})"
    yearly = annual_basis_from_funding(list(rates), interval_hours)
    notional = coins if market.inverse else coins * price  # in the margin asset
    cost = carrying_cost(notional, yearly, hedge.side.position_side, source, horizon_years)
    verb = "receives" if cost.per_year >= 0 else "pays"

    def money(value: Decimal) -> str:
        return f"{Decimal(render(abs(value), Figure.MONEY, shown, ROUND_HALF_EVEN)):,f} {market.margin_asset}"

    per = sum(rates, Decimal(0)) / len(rates)
    over = "" if cost.over_horizon is None else f", {money(cost.over_horizon)} until it ends"
    return (
        f"carrying cost: funding averaged {percent(per, 4)} per {interval_hours.normalize():f} h ({percent(yearly, 2)} a year, {source}); "
        f"a {hedge.side.value} of {render(coins, Figure.AMOUNT, Precision(market.amount_step if not market.inverse else None))} "
        f"{hedge.asset} {verb} about {money(cost.per_year)} a year{over}"
    )


def margin_line(market: Market, price: Decimal, spot: dict[str, Decimal], futures: dict[str, Decimal], hedge: HedgeConfig) -> str:
    """Say the margin the hedge's whole target locks up: what it needs at its leverage and the guard's trigger."""
    f = fundability(market, price, spot, futures, hedge.policy(), hedge.leverage)
    shown = Precision.of(market)
    locked = f"{Decimal(render(f.needed, Figure.MONEY, shown, ROUND_CEILING)):,f} {market.margin_asset}"
    value = f.target * price if not market.inverse else f.target
    share = f" ({percent(f.needed / value, 2)} of the hedged value)" if value > 0 else ""
    return f"margin locked: {locked} for the {hedge.side.value}'s whole target at {hedge.leverage}x{share}"


def horizon_years(ends_at: float | None, now: float) -> Decimal | None:
    """Return the years from `now` until the hedge ends (None: it has no end, or it has passed)."""
    if ends_at is None or ends_at <= now:
        return None
    return years_left(now, ends_at)


def beta_largest_line(market: Market, price: Decimal, worth: Decimal, beta_max: Decimal, basis: str) -> str:
    """Say the largest short a beta hedge may hold: beta_max x its holdings' worth / the instrument's price."""
    shown = Precision.of(market)
    largest = beta_max * worth / price if price > 0 else Decimal(0)
    return (
        f"beta sizing: the short is beta x the holdings' worth / {market.base}'s price, at most "
        f"{render(largest, Figure.AMOUNT, shown, ROUND_CEILING)} {market.base} at {render(price, Figure.PRICE, shown)} "
        f"(beta_max {beta_max} x {Decimal(render(worth, Figure.MONEY, shown, ROUND_CEILING)):,f} {market.quote} of holdings; "
        f"{basis}); runway, fundability, margin and carry follow the beta once estimated (`hedgebot status`)"
    )
