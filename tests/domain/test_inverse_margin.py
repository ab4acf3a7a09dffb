"""The inverse margin rule: the guard's questions (liquidation, distance, top-up) answered for coin-margined legs."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from hedgebot.domain.margin import INVERSE, LINEAR, rule_for
from hedgebot.domain.model import Leg, Market, PositionSide
from tests.domain.test_instrument import BTCUSD, COIN_M_BTC, close
from tests.helpers import D

prices = st.decimals(min_value=D(1000), max_value=D(200000), places=1)
faces = st.integers(min_value=1, max_value=5000).map(lambda n: D(100) * n)  # contracts of 100 USD
margins = st.decimals(min_value=D("0.01"), max_value=D(50), places=4)
sides = st.sampled_from([PositionSide.SHORT, PositionSide.LONG])


@settings(max_examples=200, deadline=None)
@given(side=sides, face=faces, entry=prices, wallet=margins)
def test_property_the_inverse_rule_liquidates_where_the_coin_m_formula_says(side, face, entry, wallet) -> None:
    leg = Leg(side, face, entry, wallet)
    ours = INVERSE.liquidation_price_of(wallet, [leg], COIN_M_BTC)
    formula = BTCUSD.liquidation_price(wallet, [Leg(side, face / BTCUSD.contract_size, entry, wallet)], COIN_M_BTC)
    assert (ours is None) == (formula is None)
    if ours is not None:
        assert close(ours, formula, "1e-9")


@settings(max_examples=200, deadline=None)
@given(face=faces, entry=prices, mark=prices, wallet=margins, distance=st.decimals(min_value=D("0.05"), max_value=D("0.6"), places=2))
def test_property_a_short_topped_up_by_its_margin_gap_sits_exactly_that_far_from_liquidation(face, entry, mark, wallet, distance) -> None:
    short = Leg(PositionSide.SHORT, face, entry, wallet)
    gap = INVERSE.margin_gap([short], wallet, mark, distance, COIN_M_BTC)
    funded = wallet + max(gap, D(0))
    liquidation = INVERSE.liquidation_price_of(funded, [Leg(PositionSide.SHORT, face, entry, funded)], COIN_M_BTC)
    if liquidation is not None:
        assert liquidation >= mark * (1 + distance) * (1 - D("1e-9"))  # never nearer than asked
        if gap > 0:
            assert close(liquidation, mark * (1 + distance), "1e-9")  # and no more margin than needed


@settings(max_examples=100, deadline=None)
@given(face=faces, entry=prices)
def test_property_an_inverse_short_backed_by_its_face_value_in_coins_has_no_liquidation_on_a_rally(face, entry) -> None:
    coins = face / entry  # 1x: the wallet holds the coins the short is worth at entry
    short = Leg(PositionSide.SHORT, face, entry, coins)
    below, above = INVERSE.liquidation_prices(coins, [short], COIN_M_BTC, entry)
    assert above is None
    assert INVERSE.margin_gap([short], coins, entry, D("0.9"), COIN_M_BTC) <= 0  # no rally can reach it


@settings(max_examples=100, deadline=None)
@given(face=faces, entry=prices, mark=prices)
def test_property_an_inverse_short_matched_to_the_coins_keeps_their_dollar_value(face, entry, mark) -> None:
    coins = face / entry
    short = Leg(PositionSide.SHORT, face, entry, coins)
    value = (coins + INVERSE.pnl(short, mark)) * mark  # the collateral coins plus the short's PnL, in dollars
    assert close(value, face, "1e-20")
    assert close(INVERSE.coins(face, mark) * mark, face)


def test_a_market_says_its_rule_and_its_margin_asset_from_what_it_is() -> None:
    linear = Market("BTC/USDT:USDT", "BTC", "USDT", D("0.001"), D("0.001"), D(100), ())
    inverse = Market("BTC/USD:BTC", "BTC", "USD", D(100), D(100), D(0), (), contract_size=D(100), inverse=True)
    assert rule_for(linear) is LINEAR and linear.margin_asset == "USDT"
    assert rule_for(inverse) is INVERSE and inverse.margin_asset == "BTC"
    assert INVERSE.size_for(D("0.5"), D(60000)) == D(30000) and INVERSE.notional(D(30000), D(60000)) == D("0.5")
