"""Fundability: the margin a hedge's whole target needs, what its sources hold, and what closes a gap."""

from __future__ import annotations

from dataclasses import replace

from hedgebot.domain.fundability import fundability
from hedgebot.domain.model import HedgePolicy, MarginGuard
from tests.helpers import D, btc_market

SELLING = ("futures_wallet", "sell_spot")


def _policy(**guard: object) -> HedgePolicy:
    return HedgePolicy(ratio=D(1), band=D("0.02"), min_order=D("0.001"), max_order=D(5), guard=MarginGuard(**guard))  # type: ignore[arg-type]


def test_ten_coins_and_fifty_thousand_of_margin_at_3x_fund_about_half_the_target_and_say_what_closes_the_gap() -> None:
    f = fundability(btc_market(), D(29000), {"BTC": D(10)}, {"USDT": D(50000)}, _policy(sources=SELLING), 3)
    assert not f.funded and f.target == D(10)
    # 10 BTC at 29,000 and 3x: 96,667 of initial margin plus the opening fee.
    assert D("96666") < f.needed < D("97000") and f.available == D(50000)
    assert D("5.1") < f.affordable < D("5.2")
    assert f.deposit == f.needed - f.available
    # Selling x coins: (10 - x) * 29,000 / 3 = 50,000 + 29,000 x, so x = 1.207 before fees.
    assert f.sell is not None and D("1.207") <= f.sell <= D("1.22")
    assert f.ratio is not None and D("0.51") < f.ratio < D("0.52")
    assert f.leverage is None  # 6x would pay, but it puts the short inside the guard's 20 % trigger


def test_from_an_empty_wallet_the_coins_to_sell_are_n_over_l_plus_1() -> None:
    for leverage in (2, 3, 4):
        f = fundability(btc_market(), D(30000), {"BTC": D(12)}, {}, _policy(sources=SELLING, trigger=D("0.15"), target=D("0.18")), leverage)
        assert f.sell is not None
        assert abs(f.sell - D(12) / (leverage + 1)) <= D("0.02"), (leverage, f.sell)


def test_a_funded_target_needs_nothing_and_a_higher_leverage_is_offered_only_outside_the_trigger() -> None:
    funded = fundability(btc_market(), D(30000), {"BTC": D(1)}, {"USDT": D(20000)}, _policy(), 3)
    assert funded.funded and funded.deposit is None and funded.sell is None
    # 2x needs 15,000; 9,000 pays for 4x (25 % of notional, outside the 20 % trigger): raise leverage to 4x.
    short = fundability(btc_market(), D(30000), {"BTC": D(1)}, {"USDT": D(9000)}, _policy(), 2)
    assert short.leverage == 4 and short.sell is None  # sell_spot is not among the sources
    assert replace(short, sells_itself=False).sells_itself is False
