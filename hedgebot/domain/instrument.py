"""What a hedge's instrument says about itself, and the arithmetic that follows from it.

An instrument is a contract the hedge trades: a USDⓈ-margined (linear) or a
coin-margined (inverse) future, perpetual or delivered at an expiry. The
keeper, the policy and the guard ask the instrument, never its name, for:

- the size of one contract and the unit of amounts (coins for linear
  contracts, contracts of a fixed quote face value for inverse ones);
- the asset that margins it;
- its profit and loss and its notional, in that margin asset;
- its liquidation price;
- its expiry.

Inverse arithmetic. A leg of F quote units of face value (contracts × contract
size) entered at EP, backed by a wallet WB of the base coin, has

    PnL(P) = s·F·(1/EP − 1/P)                 (s = +1 long, −1 short)
    maintenance(P) = F/P·MMR − cum

and is liquidated where WB + Σ PnL = Σ maintenance. That is linear in y = 1/P:

    y = (WB + Σ cum + Σ s·F/EP) / (Σ F·MMR + Σ s·F)

which is Binance's COIN-M liquidation formula ("How to Calculate Liquidation
Price of COIN-M Futures Contracts": maintenance taken at the liquidation
price, WB the isolated or cross wallet). A short whose wallet covers its face
value at entry (1x or less) gives y ≤ 0: no rally can liquidate it, because
the coins it is backed by rise with the price it loses on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from hedgebot.domain import margin as linear_margin
from hedgebot.domain.model import ONE, ZERO, Bracket, Leg, PositionSide, floor_to_step

_MAX_FIXED_POINT_ROUNDS = 32


class Settlement(StrEnum):
    """How a contract's profit and loss is paid: in the quote (linear) or in the base coin (inverse)."""

    LINEAR = "linear"
    INVERSE = "inverse"


class InstrumentKind(StrEnum):
    """The instruments a hedge may name in its configuration."""

    USDM_PERP = "usdm-perp"
    COINM_PERP = "coinm-perp"
    USDM_QUARTERLY = "usdm-quarterly"
    COINM_QUARTERLY = "coinm-quarterly"
    # Not a contract: the hedge chooses, at opening and at each roll window, between the perpetual and the
    # quarterly of its symbol's margin kind (HedgeConfig.contract_kinds), by their carry.
    CHEAPEST = "cheapest"
    # Long European puts on the asset (a protective put), kept by hedgebot.engine.put_leg, not by a futures leg.
    PUT = "put"

    @property
    def option(self) -> bool:
        """Tell whether the hedge holds options rather than a futures leg."""
        return self is InstrumentKind.PUT

    @property
    def settlement(self) -> Settlement:
        """Return whether this kind of contract is linear or inverse (cheapest: ask the hedge's symbol instead)."""
        return Settlement.INVERSE if self.value.startswith("coinm") else Settlement.LINEAR

    @property
    def delivers(self) -> bool:
        """Tell whether this kind of contract expires and is delivered."""
        return self.value.endswith("quarterly")

    @property
    def chooses(self) -> bool:
        """Tell whether the hedge chooses its contract by carry rather than naming one."""
        return self is InstrumentKind.CHEAPEST

    @property
    def follows_delivery(self) -> bool:
        """Tell whether a hedge on this instrument may hold a delivery contract, so it follows the delivery calendar."""
        return self.delivers or self.chooses

    @classmethod
    def of(cls, settlement: Settlement, delivers: bool) -> InstrumentKind:
        """Return the contract kind of this settlement that delivers, or the perpetual one."""
        if settlement is Settlement.INVERSE:
            return cls.COINM_QUARTERLY if delivers else cls.COINM_PERP
        return cls.USDM_QUARTERLY if delivers else cls.USDM_PERP


class HedgeSide(StrEnum):
    """Which leg a hedge holds: a short against coins held, a long against coins to be bought."""

    SHORT = "short"
    LONG = "long"

    @property
    def position_side(self) -> PositionSide:
        """Return the hedge-mode position side of the leg."""
        return PositionSide.SHORT if self is HedgeSide.SHORT else PositionSide.LONG


def _sign(side: PositionSide) -> Decimal:
    return ONE if side is PositionSide.LONG else -ONE


@dataclass(frozen=True)
class Instrument:
    """One tradeable contract: its kind, contract size, margin asset and expiry.

    `contract_size` is in base coins per contract for a linear contract (1 on
    Binance USDⓈ-M, where amounts are coins) and in quote units per contract
    for an inverse one (100 USD for BTCUSD on Binance COIN-M). Leg sizes given
    to its methods are in contracts.
    """

    kind: InstrumentKind
    contract_size: Decimal
    margin_asset: str
    expiry: float | None = None  # delivery time, epoch seconds; None for a perpetual

    def __post_init__(self) -> None:
        if self.contract_size <= 0:
            raise ValueError(f"contract_size must be positive, got {self.contract_size}")
        if self.kind.delivers and self.expiry is None:
            raise ValueError(f"a {self.kind.value} contract needs an expiry")
        if not self.kind.delivers and self.expiry is not None:
            raise ValueError(f"a {self.kind.value} contract has no expiry")

    @property
    def settlement(self) -> Settlement:
        """Return whether the contract is linear or inverse."""
        return self.kind.settlement

    def coins(self, contracts: Decimal, price: Decimal) -> Decimal:
        """Return how many base coins `contracts` stand for at `price`."""
        if self.settlement is Settlement.LINEAR:
            return contracts * self.contract_size
        return contracts * self.contract_size / price

    def contracts_for(self, coins: Decimal, price: Decimal, step: Decimal) -> Decimal:
        """Return the contracts that stand for `coins` at `price`, rounded down to `step`.

        Rounding down keeps a growing leg from overshooting its target; the
        policy's band absorbs the remainder.
        """
        if self.settlement is Settlement.LINEAR:
            return floor_to_step(coins / self.contract_size, step)
        return floor_to_step(coins * price / self.contract_size, step)

    def face(self, contracts: Decimal) -> Decimal:
        """Return the face value of `contracts`: coins (linear) or quote units (inverse)."""
        return contracts * self.contract_size

    def notional(self, contracts: Decimal, price: Decimal) -> Decimal:
        """Return the notional of `contracts` at `price`, in the margin asset."""
        if self.settlement is Settlement.LINEAR:
            return contracts * self.contract_size * price
        return contracts * self.contract_size / price

    def pnl(self, side: PositionSide, contracts: Decimal, entry: Decimal, mark: Decimal) -> Decimal:
        """Return the leg's profit or loss at `mark`, in the margin asset."""
        face = self.face(contracts)
        if self.settlement is Settlement.LINEAR:
            return _sign(side) * face * (mark - entry)
        return _sign(side) * face * (ONE / entry - ONE / mark)

    def maintenance(self, contracts: Decimal, price: Decimal, brackets: Sequence[Bracket]) -> Decimal:
        """Return the leg's maintenance margin at `price`, in the margin asset."""
        return linear_margin.maintenance_margin(self.notional(contracts, price), brackets)

    def liquidation_price(self, wallet: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket]) -> Decimal | None:
        """Return the mark at which `legs` (sizes in contracts) backed by `wallet` are liquidated, or None.

        None means no positive price liquidates them: no open leg, a long with
        more margin than it could lose, or an inverse short backed by at least
        its face value in coins.
        """
        open_legs = [leg for leg in legs if leg.size > 0]
        if not open_legs:
            return None
        if self.settlement is Settlement.LINEAR:
            scaled = [Leg(leg.side, self.face(leg.size), leg.entry_price, leg.margin) for leg in open_legs]
            return linear_margin.liquidation_price_of(wallet, scaled, brackets)
        return self._inverse_liquidation(wallet, open_legs, brackets)

    def _inverse_liquidation(self, wallet: Decimal, legs: Sequence[Leg], brackets: Sequence[Bracket]) -> Decimal | None:
        if len(legs) == 1:
            # Exact search, as Binance describes: the bracket must hold the notional at the liquidation price.
            for bracket in brackets:
                price = _inverse_solve(wallet, [(legs[0], self.face(legs[0].size), bracket)])
                if price is not None and bracket.holds(self.notional(legs[0].size, price)):
                    return price
        price = max(leg.entry_price for leg in legs)
        solved: Decimal | None = None
        for _ in range(_MAX_FIXED_POINT_ROUNDS):
            terms = [
                (leg, self.face(leg.size), linear_margin.bracket_for(self.notional(leg.size, price), brackets))
                for leg in legs
            ]
            solved = _inverse_solve(wallet, terms)
            if solved is None or solved == price:
                break
            price = solved
        return solved

    def seconds_to_expiry(self, now: float) -> float | None:
        """Return the seconds left before delivery (never negative), or None for a perpetual."""
        if self.expiry is None:
            return None
        return max(0.0, self.expiry - now)


def _inverse_solve(wallet: Decimal, terms: Sequence[tuple[Leg, Decimal, Bracket]]) -> Decimal | None:
    numerator = wallet
    denominator = ZERO
    for leg, face, bracket in terms:
        sign = _sign(leg.side)
        numerator += bracket.maint_amount + sign * face / leg.entry_price
        denominator += face * bracket.maint_margin_rate + sign * face
    if denominator == 0:
        return None
    inverse_price = numerator / denominator
    return ONE / inverse_price if inverse_price > 0 else None

