"""Why a planned purchase is never hedged with a coin-margined long (hedgebot refuses it): the domain's own arithmetic.

A long on an inverse contract is margined in the coin. For a purchase still to make, those coins must be
bought first (which is the purchase itself), and then the account holds them AND the long: twice the exposure.
A rise pays twice the purchase's extra cost, a fall loses twice, and even at 1x a halving of the price
liquidates the long and takes the coins backing it. A USDⓈ-M long against stablecoin locks the purchase's cost.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hedgebot.domain.margin import INVERSE, LINEAR
from hedgebot.domain.model import Leg, PositionSide
from hedgebot.exchange.binance_rules import default_brackets
from tests.domain.test_instrument import COIN_M_BTC
from tests.helpers import D

prices = st.decimals(min_value=D(5000), max_value=D(150000), places=1)
coins = st.decimals(min_value=D("0.1"), max_value=D(5), places=3)


@settings(max_examples=100, deadline=None)
@given(planned=coins, entry=prices, later=prices)
def test_property_a_coin_margined_long_backed_by_its_coins_moves_the_account_twice_as_much_as_the_purchase(planned, entry, later) -> None:
    face = planned * entry  # the long's face value in USD: the planned coins at today's price
    long = Leg(PositionSide.LONG, face, entry, planned)  # 1x: backed by the planned coins, bought now as collateral
    before = planned * entry
    after = (planned + INVERSE.pnl(long, later)) * later  # the collateral coins plus the long's PnL, in dollars
    extra_cost = planned * (later - entry)  # what the purchase costs more (or less) at the later price
    assert abs((after - before) - 2 * extra_cost) < D("1e-9")
    usdm = Leg(PositionSide.LONG, planned, entry)  # the same purchase hedged on USDⓈ-M against stablecoin
    assert LINEAR.pnl(usdm, later) == extra_cost, "a USDⓈ-M long offsets the purchase's extra cost exactly"


def test_a_coin_margined_long_at_1x_is_liquidated_by_a_halving_a_usdm_long_at_1x_is_not() -> None:
    entry, planned = D(50000), D(5)
    face = planned * entry
    inverse = INVERSE.liquidation_price_of(planned, [Leg(PositionSide.LONG, face, entry, planned)], COIN_M_BTC)
    assert inverse is not None and D(25000) < inverse < D(26500), inverse  # a fall of about 50 % takes the coins
    usdm_wallet = planned * entry  # the stablecoin a 1x USDⓈ-M long of the same coins posts
    linear = LINEAR.liquidation_price_of(usdm_wallet, [Leg(PositionSide.LONG, planned, entry, usdm_wallet)], default_brackets("BTC") or ())
    assert linear is None or linear < entry * D("0.01"), linear
