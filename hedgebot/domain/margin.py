"""Maintenance margin, liquidation price, and margin sizing.

One linear rule covers isolated and cross margin alike (Binance USDⓈ-M):
a set of legs backed by wallet balance WB is liquidated at the mark price P where

    WB + Σ s·Q·(P − EP) = Σ (Q·P·MMR − cum)

with s = +1 for a long leg and −1 for a short one. Solving for P gives

    P = (WB + Σ cum − Σ s·Q·EP) / (Σ Q·MMR − Σ s·Q)

An isolated leg is the one-leg case with WB = the leg's margin; under cross
margin WB is the futures wallet and every leg of the contract takes part.
MMR and cum come from the bracket that holds each leg's notional *at the
liquidation price*, so the bracket is searched, not taken at the entry price.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

from hedgebot.domain.model import ZERO, Bracket, Leg, Market, PositionSide, ceil_to_step, floor_to_step

_MAX_FIXED_POINT_ROUNDS = 32


def bracket_for(notional: Decimal, brackets: Sequence[Bracket]) -> Bracket:
    """Return the bracket whose range holds `notional` (the last one beyond the table)."""
    if not brackets:
        raise ValueError("a market needs at least one maintenance bracket")
    for bracket in brackets:
        if bracket.holds(notional):
            return bracket
    return brackets[-1] if notional >= brackets[-1].notional_floor else brackets[0]


def maintenance_margin(notional: Decimal, brackets: Sequence[Bracket]) -> Decimal:
    """Return the maintenance margin of a leg with this notional."""
    bracket = bracket_for(notional, brackets)
    return notional * bracket.maint_margin_rate - bracket.maint_amount


def _sign(side: PositionSide) -> Decimal:
    return Decimal(1) if side is PositionSide.LONG else Decimal(-1)


@dataclass(frozen=True)
class _Term:
    sign: Decimal
    size: Decimal
    entry: Decimal
    bracket: Bracket


def _solve(wallet: Decimal, terms: Sequence[_Term]) -> Decimal | None:
    numerator = wallet
    denominator = ZERO
    for t in terms:
        numerator += t.bracket.maint_amount - t.sign * t.size * t.entry
        denominator += t.size * t.bracket.maint_margin_rate - t.sign * t.size
    if denominator == 0:
        return None
    price = numerator / denominator
    return price if price > 0 else None


def _terms_at(price: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket]) -> list[_Term]:
    return [
        _Term(_sign(leg.side), leg.size, leg.entry_price, bracket_for(leg.size * price, brackets))
        for leg in legs
        if leg.size > 0
    ]


def liquidation_price_of(wallet: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket]) -> Decimal | None:
    """Return the mark price at which `legs` backed by `wallet` are liquidated.

    Returns None when no positive price liquidates them (no open leg, or a long
    with more margin than it could lose).
    """
    open_legs = [leg for leg in legs if leg.size > 0]
    if not open_legs:
        return None
    if len(open_legs) == 1:
        leg = open_legs[0]
        # Exact search, as Binance describes: the bracket must hold Q × LP.
        for bracket in brackets:
            price = _solve(wallet, [_Term(_sign(leg.side), leg.size, leg.entry_price, bracket)])
            if price is not None and price > 0 and bracket.holds(leg.size * price):
                return price
    # Several legs (cross, hedge mode) or a price right on a bracket edge:
    # iterate brackets to a fixed point starting from the entry notional.
    price = max(leg.entry_price for leg in open_legs)
    solved: Decimal | None = None
    for _ in range(_MAX_FIXED_POINT_ROUNDS):
        solved = _solve(wallet, _terms_at(price, open_legs, brackets))
        if solved is None or solved <= 0:
            return None
        if solved == price:
            break
        price = solved
    return solved


def _as_decimal(value: object, name: str) -> Decimal:
    number = value if isinstance(value, Decimal) else Decimal(str(value))
    if not number.is_finite():
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return number


def _as_brackets(brackets: Sequence[Bracket] | Sequence[Sequence[object]]) -> list[Bracket]:
    table = [
        b if isinstance(b, Bracket) else Bracket(*(_as_decimal(v, "bracket") for v in b))  # type: ignore[arg-type]
        for b in brackets
    ]
    if not table:
        raise ValueError("brackets must hold at least one bracket")
    return sorted(table, key=lambda b: b.notional_floor)


def liquidation_price(
    side: str | PositionSide,
    size: Decimal,
    entry_price: Decimal,
    margin: Decimal,
    brackets: Sequence[Bracket] | Sequence[Sequence[object]],
) -> Decimal:
    """Return the liquidation price of one isolated leg (Binance USDⓈ-M rule).

    `side` is "long" or "short"; `margin` is the leg's isolated wallet balance;
    `brackets` are `Bracket`s or (notional_floor, notional_cap,
    maint_margin_rate, maint_amount) tuples. A long so well margined that no
    positive price liquidates it returns 0.
    """
    position_side = PositionSide(str(side).lower())
    size = _as_decimal(size, "size")
    entry_price = _as_decimal(entry_price, "entry_price")
    margin = _as_decimal(margin, "margin")
    brackets = _as_brackets(brackets)
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    if entry_price <= 0:
        raise ValueError(f"entry_price must be positive, got {entry_price}")
    leg = Leg(position_side, size, entry_price, margin)
    price = liquidation_price_of(margin, [leg], brackets)
    return price if price is not None else ZERO


def distance_to_liquidation(side: PositionSide, liquidation: Decimal | None, mark: Decimal) -> Decimal | None:
    """Return how far the mark must move, as a fraction of it, to liquidate."""
    if liquidation is None or mark <= 0:
        return None
    if side is PositionSide.SHORT:
        return (liquidation - mark) / mark
    return (mark - liquidation) / mark


def wallet_for_liquidation_at(price: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket]) -> Decimal:
    """Return the wallet balance that puts the liquidation price of `legs` at `price`."""
    terms = _terms_at(price, legs, brackets)
    wallet = ZERO
    for t in terms:
        wallet += price * (t.size * t.bracket.maint_margin_rate - t.sign * t.size)
        wallet -= t.bracket.maint_amount - t.sign * t.size * t.entry
    return wallet


def _breakpoints(legs: Sequence[Leg], brackets: Sequence[Bracket]) -> list[Decimal]:
    """Return the prices at which some leg's notional enters a new bracket, ascending."""
    points = {b.notional_floor / leg.size for leg in legs if leg.size > 0 for b in brackets if b.notional_floor > 0}
    return sorted(points)


def _root_between(wallet: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket], low: Decimal, high: Decimal | None) -> Decimal | None:
    """Return the price in [low, high] where equity meets maintenance, with brackets fixed inside the interval."""
    probe = (low + high) / 2 if high is not None else low * 2 if low > 0 else Decimal(1)
    price = _solve(wallet, _terms_at(probe, legs, brackets))
    if price is None or price < low or (high is not None and price > high):
        return None
    return price


def liquidation_prices(
    wallet: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket], mark: Decimal
) -> tuple[Decimal | None, Decimal | None]:
    """Return the nearest prices below and above `mark` at which `legs` backed by `wallet` are liquidated.

    Equity minus maintenance is linear in the price between bracket edges, so
    each interval is solved exactly, walking away from the mark both ways.
    A side with no liquidation (a net-short account cannot be liquidated by a
    fall, nor a net-long one by a rise, unless the brackets make it so) is None.
    """
    open_legs = [leg for leg in legs if leg.size > 0]
    if not open_legs or mark <= 0:
        return None, None
    if wallet_for_liquidation_at(mark, open_legs, brackets) >= wallet:
        return mark, mark  # already at or past maintenance
    edges = _breakpoints(open_legs, brackets)
    upper = [e for e in edges if e > mark]
    lower = [e for e in reversed(edges) if e < mark]
    above: Decimal | None = None
    low = mark
    for high in [*upper, None]:
        above = _root_between(wallet, open_legs, brackets, low, high)
        if above is not None or high is None:
            break
        low = high
    below: Decimal | None = None
    high_edge = mark
    for low_edge in [*lower, ZERO]:
        below = _root_between(wallet, open_legs, brackets, low_edge, high_edge)
        if below is not None:
            break
        high_edge = low_edge
    if below is not None and below <= 0:
        below = None
    return below, above


def nearer_liquidation(
    wallet: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket], mark: Decimal
) -> tuple[Decimal | None, Decimal | None]:
    """Return the nearer of the two liquidation prices and its distance from `mark` (a fraction, never negative)."""
    return LINEAR.nearer_liquidation(wallet, legs, brackets, mark)


def margin_gap(legs: Sequence[Leg], wallet: Decimal, mark: Decimal, target_distance: Decimal, brackets: Sequence[Bracket]) -> Decimal:
    """Return the wallet missing (positive) or spare (negative) for `legs` to sit `target_distance` from liquidation both ways.

    The wallet that puts the liquidation at a price is piecewise linear in
    that price, so its largest value over the band [mark(1-d), mark(1+d)] is
    at an end or a bracket edge.
    """
    return _gap_between(legs, wallet, mark * (1 - target_distance), mark * (1 + target_distance), brackets)


def _gap_between(legs: Sequence[Leg], wallet: Decimal, low: Decimal, high: Decimal, brackets: Sequence[Bracket]) -> Decimal:
    """Return the wallet missing (positive) or spare (negative) for no liquidation price to fall inside [low, high]."""
    open_legs = [leg for leg in legs if leg.size > 0]
    if not open_legs:
        return -wallet
    prices = [p for p in (low, high, *_breakpoints(open_legs, brackets)) if low <= p <= high and p > 0]
    return max(wallet_for_liquidation_at(p, open_legs, brackets) for p in prices) - wallet


def short_margin_gap(
    short: Leg,
    other_legs: Sequence[Leg],
    wallet: Decimal,
    mark: Decimal,
    target_distance: Decimal,
    brackets: Sequence[Bracket],
) -> Decimal:
    """Return the margin missing (positive) or spare (negative) for the short to sit `target_distance` from liquidation.

    `wallet` is the short's isolated margin (with no other legs) or the cross
    wallet (with the contract's other legs); under cross margin a LONG leg
    larger than the short puts the danger below the mark, which counts too.
    """
    return margin_gap([short, *other_legs], wallet, mark, target_distance, brackets)


def short_topup_needed(
    short: Leg, other_legs: Sequence[Leg], wallet: Decimal, mark: Decimal, target_distance: Decimal,
    brackets: Sequence[Bracket], step: Decimal,
) -> Decimal:
    """Return the margin to add, rounded up to `step`, so the short sits `target_distance` away (0 if it already does)."""
    gap = short_margin_gap(short, other_legs, wallet, mark, target_distance, brackets)
    return ceil_to_step(gap, step) if gap > 0 else ZERO


def short_release_possible(
    short: Leg, other_legs: Sequence[Leg], wallet: Decimal, mark: Decimal, target_distance: Decimal,
    brackets: Sequence[Bracket], step: Decimal,
) -> Decimal:
    """Return the margin, rounded down to `step`, that can leave while the short stays `target_distance` away."""
    spare = -short_margin_gap(short, other_legs, wallet, mark, target_distance, brackets)
    return floor_to_step(spare, step) if spare > 0 else ZERO


def margin_ratio(leg: Leg, mark: Decimal, brackets: Sequence[Bracket], margin_balance: Decimal | None = None) -> Decimal | None:
    """Return maintenance margin over the margin backing the leg (1 means liquidation).

    Isolated legs are backed by their own margin plus unrealised PnL; under
    cross margin give the wallet as `margin_balance`.
    """
    if leg.size <= 0 or mark <= 0:
        return None
    pnl = (mark - leg.entry_price) * leg.size * _sign(leg.side)
    backing = (margin_balance if margin_balance is not None else leg.margin) + pnl
    if backing <= 0:
        return None
    return maintenance_margin(leg.size * mark, brackets) / backing


# ---- the rule of a market: linear (USDⓈ-margined) or inverse (coin-margined) ----------------------------


class MarginRule:
    """The margin arithmetic of linear contracts: leg sizes in coins, margin and PnL in the quote.

    The policy, the guard and the paper venue ask a market's rule (`rule_for`) and never its name; the
    inverse rule below answers the same questions for coin-margined contracts.
    """

    inverse = False

    def coins(self, size: Decimal, price: Decimal) -> Decimal:
        """Return how many coins a leg of `size` stands for at `price`."""
        return size

    def size_for(self, coins: Decimal, price: Decimal) -> Decimal:
        """Return the leg size that stands for `coins` at `price` (before rounding to the market's step)."""
        return coins

    def notional(self, size: Decimal, price: Decimal) -> Decimal:
        """Return a leg's notional at `price`, in the margin asset (what the brackets are read by)."""
        return size * price

    def pnl(self, leg: Leg, mark: Decimal) -> Decimal:
        """Return a leg's profit or loss at `mark`, in the margin asset."""
        return leg.unrealized_pnl(mark)

    def maintenance(self, size: Decimal, price: Decimal, brackets: Sequence[Bracket]) -> Decimal:
        """Return the maintenance margin of a leg of `size` at `price`, in the margin asset."""
        return maintenance_margin(self.notional(size, price), brackets)

    def bracket_at(self, size: Decimal, price: Decimal, brackets: Sequence[Bracket]) -> Bracket:
        """Return the bracket a leg of `size` sits in at `price`."""
        return bracket_for(self.notional(size, price), brackets)

    def liquidation_price_of(self, wallet: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket]) -> Decimal | None:
        """Return the mark at which `legs` backed by `wallet` are liquidated (None: no positive price does)."""
        return liquidation_price_of(wallet, legs, brackets)

    def liquidation_prices(
        self, wallet: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket], mark: Decimal
    ) -> tuple[Decimal | None, Decimal | None]:
        """Return the nearest liquidation prices below and above `mark` (None: none that side)."""
        return liquidation_prices(wallet, legs, brackets, mark)

    def nearer_liquidation(
        self, wallet: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket], mark: Decimal
    ) -> tuple[Decimal | None, Decimal | None]:
        """Return the nearer of the two liquidation prices and its distance from `mark`."""
        below, above = self.liquidation_prices(wallet, legs, brackets, mark)
        options = []
        if above is not None:
            options.append((above, (above - mark) / mark))
        if below is not None:
            options.append((below, (mark - below) / mark))
        if not options:
            return None, None
        return min(options, key=lambda option: option[1])

    def margin_gap(
        self, legs: Sequence[Leg], wallet: Decimal, mark: Decimal, target_distance: Decimal, brackets: Sequence[Bracket]
    ) -> Decimal:
        """Return the wallet missing (positive) or spare (negative) for `legs` to sit `target_distance` away both ways."""
        return margin_gap(legs, wallet, mark, target_distance, brackets)

    def topup_needed(
        self, leg: Leg, other_legs: Sequence[Leg], wallet: Decimal, mark: Decimal, target_distance: Decimal,
        brackets: Sequence[Bracket], step: Decimal,
    ) -> Decimal:
        """Return the margin to add, rounded up to `step`, so the leg sits `target_distance` away (0 if it does)."""
        gap = self.margin_gap([leg, *other_legs], wallet, mark, target_distance, brackets)
        return ceil_to_step(gap, step) if gap > 0 else ZERO

    def release_possible(
        self, leg: Leg, other_legs: Sequence[Leg], wallet: Decimal, mark: Decimal, target_distance: Decimal,
        brackets: Sequence[Bracket], step: Decimal,
    ) -> Decimal:
        """Return the margin, rounded down to `step`, that can leave while the leg stays `target_distance` away."""
        spare = -self.margin_gap([leg, *other_legs], wallet, mark, target_distance, brackets)
        return floor_to_step(spare, step) if spare > 0 else ZERO


def _mirror(leg: Leg) -> Leg:
    """Return the linear leg an inverse leg is, in the reciprocal price (1/P): see `InverseMarginRule`."""
    side = PositionSide.SHORT if leg.side is PositionSide.LONG else PositionSide.LONG
    entry = 1 / leg.entry_price if leg.entry_price > 0 else ZERO
    return Leg(side, leg.size, entry, leg.margin)


class InverseMarginRule(MarginRule):
    """The margin arithmetic of inverse (coin-margined) contracts: leg sizes in quote units of face value.

    A leg of face value F entered at EP, backed by W coins, has PnL(P) = s·F·(1/EP − 1/P) and maintenance
    F/P·MMR − cum. In the reciprocal price x = 1/P that is exactly a linear leg of the opposite side, size F
    and entry 1/EP, whose notional F·x is the inverse notional in coins. So every question is answered by
    the linear rule on mirrored legs at 1/P, and its prices are turned back: a liquidation above the mark
    in P is one below the mark in x. An inverse short backed by its face value in coins (1x) mirrors a
    fully margined long, which no price liquidates.
    """

    inverse = True

    def coins(self, size: Decimal, price: Decimal) -> Decimal:
        """Return how many coins a leg of face value `size` stands for at `price`."""
        return size / price

    def size_for(self, coins: Decimal, price: Decimal) -> Decimal:
        """Return the face value that stands for `coins` at `price`."""
        return coins * price

    def notional(self, size: Decimal, price: Decimal) -> Decimal:
        """Return a leg's notional at `price`, in coins."""
        return size / price

    def pnl(self, leg: Leg, mark: Decimal) -> Decimal:
        """Return a leg's profit or loss at `mark`, in coins."""
        if leg.size <= 0 or leg.entry_price <= 0:
            return ZERO
        sign = Decimal(1) if leg.side is PositionSide.LONG else Decimal(-1)
        return sign * leg.size * (1 / leg.entry_price - 1 / mark)

    def liquidation_price_of(self, wallet: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket]) -> Decimal | None:
        """Return the mark at which `legs` backed by `wallet` coins are liquidated (None: no positive price does)."""
        mirrored = liquidation_price_of(wallet, [_mirror(leg) for leg in legs], brackets)
        if mirrored is None or mirrored * max((leg.entry_price for leg in legs), default=Decimal(0)) < _NO_PRICE:
            return None  # no positive reciprocal price (rounding may leave a hair above 0): no finite price liquidates
        return 1 / mirrored

    def liquidation_prices(
        self, wallet: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket], mark: Decimal
    ) -> tuple[Decimal | None, Decimal | None]:
        """Return the nearest liquidation prices below and above `mark` (None: none that side)."""
        if mark <= 0:
            return None, None
        below, above = liquidation_prices(wallet, [_mirror(leg) for leg in legs], brackets, 1 / mark)
        if below is not None and below * mark < _NO_PRICE:
            below = None  # a root at x = 0 (rounding puts it a hair above): no finite price liquidates
        return (1 / above if above else None), (1 / below if below else None)

    def margin_gap(
        self, legs: Sequence[Leg], wallet: Decimal, mark: Decimal, target_distance: Decimal, brackets: Sequence[Bracket]
    ) -> Decimal:
        """Return the coins missing (positive) or spare (negative) for `legs` to sit `target_distance` away both ways."""
        high = 1 / (mark * (1 - target_distance)) if target_distance < 1 else Decimal("1e30")
        return _gap_between([_mirror(leg) for leg in legs], wallet, 1 / (mark * (1 + target_distance)), high, brackets)


_NO_PRICE = Decimal("1e-12")  # a reciprocal price this small against the mark's stands for none at all

LINEAR = MarginRule()
INVERSE = InverseMarginRule()


def rule_for(market: Market) -> MarginRule:
    """Return the margin rule of `market`: linear, or inverse for a coin-margined contract."""
    return INVERSE if market.inverse else LINEAR
