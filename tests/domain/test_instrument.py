"""Linear and inverse contract arithmetic: value locked in dollars, liquidation, rounding and expiry."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hedgebot.domain.instrument import HedgeSide, Instrument, InstrumentKind, Settlement
from hedgebot.domain.margin import bracket_for, liquidation_price_of
from hedgebot.domain.model import Bracket, Leg, PositionSide
from hedgebot.exchange.binance_rules import default_brackets
from tests.helpers import D

INF = D("1e30")


def tiered(floors_and_rates: list[tuple[str, str]]) -> tuple[Bracket, ...]:
    """Build a bracket table whose maintenance amounts follow Binance's rule.

    cum(n) = floor(n) × (MMR(n) − MMR(n−1)) + cum(n−1), so maintenance is
    continuous across bracket edges.
    """
    brackets: list[Bracket] = []
    cum, rate_before = D(0), D(0)
    for index, (floor, rate) in enumerate(floors_and_rates):
        cap = D(floors_and_rates[index + 1][0]) if index + 1 < len(floors_and_rates) else INF
        cum = D(floor) * (D(rate) - rate_before) + cum
        brackets.append(Bracket(D(floor), cap, D(rate), cum))
        rate_before = D(rate)
    return tuple(brackets)


# BTCUSD COIN-M tiers in BTC of notional, shaped like Binance's table (level 5 starts at 50 BTC, 5 %).
COIN_M_BTC = tiered([("0", "0.005"), ("5", "0.0065"), ("10", "0.01"), ("20", "0.025"), ("50", "0.05"), ("100", "0.1"), ("200", "0.125")])
BTCUSD = Instrument(InstrumentKind.COINM_PERP, D("100"), "BTC")
BTCUSDT = Instrument(InstrumentKind.USDM_PERP, D("1"), "USDT")


def close(a: Decimal, b: Decimal, rel: str = "1e-12") -> bool:
    return abs(a - b) <= abs(b) * D(rel)


def test_maintenance_amounts_follow_binance_rule_for_coin_m_tiers() -> None:
    # Binance's worked example: level 5 = 50 BTC × (5 % − 2.5 %) + level 4's amount (0.56 BTC in its table).
    table = tiered([("0", "0.005"), ("5", "0.0065"), ("10", "0.01"), ("20", "0.025"), ("50", "0.05")])
    level4, level5 = table[3], table[4]
    assert level5.maint_amount == D("50") * (D("0.05") - D("0.025")) + level4.maint_amount


def test_inverse_short_liquidation_matches_the_coin_m_formula_worked_by_hand() -> None:
    # 100 contracts of 100 USD (F = 10,000 USD) shorted at 50,000: 0.2 BTC of notional.
    # At 3x the isolated wallet is 0.2 / 3 BTC. First tier (MMR 0.5 %, cum 0):
    # LP = F × (1 − MMR) / (F / EP − WB) = 10,000 × 0.995 / (0.2 − 0.0666…) = 74,625.
    wallet = D("0.2") / 3
    lp = BTCUSD.liquidation_price(wallet, [Leg(PositionSide.SHORT, D("100"), D("50000"), wallet)], COIN_M_BTC)
    assert lp is not None and lp.quantize(D("0.01")) == D("74625.00")


def test_inverse_long_liquidation_matches_the_coin_m_formula_worked_by_hand() -> None:
    # 100 contracts long at 50,000 with 0.02 BTC (10x): LP = F × (1 + MMR) / (WB + F / EP) = 10,000 × 1.005 / 0.22.
    lp = BTCUSD.liquidation_price(D("0.02"), [Leg(PositionSide.LONG, D("100"), D("50000"), D("0.02"))], COIN_M_BTC)
    assert lp is not None and close(lp, D("10050") / D("0.22"))


@settings(max_examples=300, deadline=None)
@given(
    coins=st.decimals(min_value=D("0.01"), max_value=D("500"), places=4),
    entry=st.decimals(min_value=D("1000"), max_value=D("200000"), places=2),
    posted=st.decimals(min_value=D("0"), max_value=D("1"), places=3),
    move=st.decimals(min_value=D("0.05"), max_value=D("20"), places=3),
)
def test_property_an_inverse_short_matched_to_the_coins_held_keeps_the_dollar_value_flat(
    coins: Decimal, entry: Decimal, posted: Decimal, move: Decimal
) -> None:
    # The holder keeps `coins`: a share `posted` sits in the COIN-M wallet as collateral (still theirs),
    # the rest in spot, and the short's face value is what all of them were worth at the entry.
    in_wallet, in_spot = coins * posted, coins * (1 - posted)
    contracts = coins * entry / BTCUSD.contract_size
    assert close(BTCUSD.coins(contracts, entry), coins)
    mark = entry * move
    wallet_after = in_wallet + BTCUSD.pnl(PositionSide.SHORT, contracts, entry, mark)
    assert close((in_spot + wallet_after) * mark, coins * entry)


@settings(max_examples=300, deadline=None)
@given(
    contracts=st.integers(min_value=1, max_value=200_000),
    entry=st.decimals(min_value=D("1000"), max_value=D("200000"), places=2),
    cover=st.decimals(min_value=D("1"), max_value=D("3"), places=3),
)
def test_property_an_inverse_short_at_one_x_or_less_has_no_liquidation_price_on_a_rally(
    contracts: int, entry: Decimal, cover: Decimal
) -> None:
    wallet = BTCUSD.notional(D(contracts), entry) * cover  # the coins posted cover the face value at entry
    short = Leg(PositionSide.SHORT, D(contracts), entry, wallet)
    assert BTCUSD.liquidation_price(wallet, [short], COIN_M_BTC) is None


@settings(max_examples=300, deadline=None)
@given(
    contracts=st.integers(min_value=1, max_value=500_000),
    entry=st.decimals(min_value=D("1000"), max_value=D("200000"), places=2),
    leverage=st.decimals(min_value=D("1.5"), max_value=D("20"), places=2),
    side=st.sampled_from([PositionSide.SHORT, PositionSide.LONG]),
)
def test_property_at_the_inverse_liquidation_price_equity_meets_maintenance(
    contracts: int, entry: Decimal, leverage: Decimal, side: PositionSide
) -> None:
    size = D(contracts)
    wallet = BTCUSD.notional(size, entry) / leverage
    lp = BTCUSD.liquidation_price(wallet, [Leg(side, size, entry, wallet)], COIN_M_BTC)
    assert lp is not None
    equity = wallet + BTCUSD.pnl(side, size, entry, lp)
    assert abs(equity - BTCUSD.maintenance(size, lp, COIN_M_BTC)) <= D("1e-12") * BTCUSD.notional(size, lp)
    # Where the leverage leaves initial margin above maintenance (as the exchange's leverage caps
    # ensure), it lies on the losing side of the entry, and halfway there the leg is still safe.
    if 1 / leverage <= 2 * bracket_for(BTCUSD.notional(size, entry), COIN_M_BTC).maint_margin_rate:
        return
    assert (lp > entry) if side is PositionSide.SHORT else (lp < entry)
    halfway = (entry + lp) / 2
    assert wallet + BTCUSD.pnl(side, size, entry, halfway) > BTCUSD.maintenance(size, halfway, COIN_M_BTC)


@settings(max_examples=200, deadline=None)
@given(
    size=st.decimals(min_value=D("0.001"), max_value=D("500"), places=3),
    entry=st.decimals(min_value=D("1000"), max_value=D("100000"), places=2),
    leverage=st.integers(min_value=1, max_value=50),
    side=st.sampled_from([PositionSide.SHORT, PositionSide.LONG]),
)
def test_property_a_linear_instrument_liquidates_where_the_usdm_rule_says(
    size: Decimal, entry: Decimal, leverage: int, side: PositionSide
) -> None:
    brackets = default_brackets("BTC")
    assert brackets is not None
    wallet = size * entry / leverage
    leg = Leg(side, size, entry, wallet)
    assert BTCUSDT.liquidation_price(wallet, [leg], brackets) == liquidation_price_of(wallet, [leg], brackets)
    # A contract of 0.001 coins: 1,000 contracts are the same coin as one of size 1.
    milli = Instrument(InstrumentKind.USDM_PERP, D("0.001"), "USDT")
    assert milli.liquidation_price(wallet, [Leg(side, size * 1000, entry, wallet)], brackets) == liquidation_price_of(wallet, [leg], brackets)


def test_contracts_for_coins_round_down_to_the_step_so_a_growing_leg_never_overshoots() -> None:
    # 1.2345 BTC at 61,000 is 75,304.5 USD: 753 contracts of 100 USD, not 754.
    assert BTCUSD.contracts_for(D("1.2345"), D("61000"), D("1")) == D("753")
    assert BTCUSD.coins(D("753"), D("61000")) <= D("1.2345")
    assert BTCUSDT.contracts_for(D("1.2345"), D("61000"), D("0.001")) == D("1.234")


def test_a_cross_inverse_short_and_long_share_one_liquidation_price() -> None:
    # Hedge mode, cross: a 300-contract short and a 100-contract long at 40,000, 0.3 BTC wallet.
    legs = [Leg(PositionSide.SHORT, D("300"), D("40000")), Leg(PositionSide.LONG, D("100"), D("40000"))]
    lp = BTCUSD.liquidation_price(D("0.3"), legs, COIN_M_BTC)
    net = Leg(PositionSide.SHORT, D("200"), D("40000"))
    # Same entry, so the net short's PnL is the two legs' together; only maintenance (on both legs) differs.
    assert lp is not None
    equity = D("0.3") + sum(BTCUSD.pnl(leg.side, leg.size, leg.entry_price, lp) for leg in legs)
    maintenance = sum(BTCUSD.maintenance(leg.size, lp, COIN_M_BTC) for leg in legs)
    assert close(equity, maintenance, "1e-20")
    alone = BTCUSD.liquidation_price(D("0.3"), [net], COIN_M_BTC)
    assert alone is not None and alone > lp  # a long beside the short only adds maintenance


def test_instrument_kinds_say_how_they_settle_and_whether_they_expire() -> None:
    assert InstrumentKind("coinm-perp").settlement is Settlement.INVERSE
    assert InstrumentKind("usdm-quarterly").settlement is Settlement.LINEAR
    assert InstrumentKind("coinm-quarterly").delivers and not InstrumentKind("usdm-perp").delivers
    assert HedgeSide("long").position_side is PositionSide.LONG
    quarterly = Instrument(InstrumentKind.USDM_QUARTERLY, D("1"), "USDT", expiry=1_000.0)
    assert quarterly.seconds_to_expiry(400.0) == 600.0 and quarterly.seconds_to_expiry(2_000.0) == 0.0
    assert BTCUSD.seconds_to_expiry(0.0) is None
    with pytest.raises(ValueError, match="needs an expiry"):
        Instrument(InstrumentKind.COINM_QUARTERLY, D("100"), "BTC")
    with pytest.raises(ValueError, match="has no expiry"):
        Instrument(InstrumentKind.COINM_PERP, D("100"), "BTC", expiry=1.0)
    with pytest.raises(ValueError, match="contract_size"):
        Instrument(InstrumentKind.COINM_PERP, D("0"), "BTC")
