"""The runway: the price up to which the configured margin sources keep the short above its trigger."""

from __future__ import annotations

from decimal import Decimal

from hedgebot.domain.margin import liquidation_price_of, short_topup_needed
from hedgebot.domain.model import HedgePolicy
from hedgebot.domain.runway import runway_price
from tests.helpers import D, hedge_config, short_leg, snapshot

TRIGGER = D("0.20")


def guarded(*sources: str) -> HedgePolicy:
    return hedge_config(margin_guard={"sources": list(sources)}).policy()


def _account(**overrides: object):
    base: dict[str, object] = {
        "spot_asset": D("1"), "short": short_leg("1"), "futures_free": D("10000"), "spot_quote": D("5000"),
    }
    base.update(overrides)
    return snapshot(**base)


def test_the_runway_is_where_the_listed_sources_run_out_of_margin_for_the_trigger() -> None:
    s = _account()
    price = runway_price(s, guarded("futures_wallet", "spot_stablecoin"))
    assert price is not None and price > s.mark_price
    # At the runway the top-up back to the trigger needs exactly the 15,000 USDT the two sources hold.
    need = short_topup_needed(s.short, [], s.short.margin, price, TRIGGER, s.market.brackets, D("0.000001"))
    assert abs(need - D("15000")) < D("0.01")
    expected = liquidation_price_of(s.short.margin + D("15000"), [s.short], s.market.brackets)
    assert expected is not None and abs(price - expected / (1 + TRIGGER)) < D("0.01")


def test_only_the_configured_sources_count_toward_the_runway() -> None:
    s = _account()
    both = runway_price(s, guarded("futures_wallet", "spot_stablecoin"))
    wallet_only = runway_price(s, guarded("futures_wallet"))
    none_listed = runway_price(s, hedge_config(margin_guard={"enabled": False}).policy())
    assert both is not None and wallet_only is not None and none_listed is not None
    assert none_listed < wallet_only < both
    # With the guard off the runway is the short's own trigger price: the mark at which it is `trigger` from liquidation.
    own = liquidation_price_of(s.short.margin, [s.short], s.market.brackets)
    assert own is not None and abs(none_listed - own / (1 + TRIGGER)) < D("0.01")


def test_selling_a_fully_hedged_coin_pays_for_any_realistic_rally() -> None:
    # Each coin sold at P pays for the loss of the short it hedges at P; only the fees
    # (0.15 % of a price hundreds of times higher) finally outgrow the coin's entry value.
    s = _account(futures_free=D("0"), spot_quote=D("0"), spot_asset=D("1"))
    price = runway_price(s, guarded("sell_spot"))
    assert price is not None and s.mark_price * 100 < price < Decimal("Infinity")


def test_selling_spot_that_hedges_only_part_of_the_short_gives_a_finite_runway() -> None:
    # 2 BTC short but only 0.5 BTC of coins to sell: the sale runs out.
    s = _account(short=short_leg("2"), spot_asset=D("0.5"), futures_free=D("0"), spot_quote=D("0"))
    limited = runway_price(s, guarded("sell_spot"))
    without = runway_price(s, guarded("futures_wallet"))
    assert limited is not None and without is not None and without < limited < Decimal("Infinity")


def test_no_short_has_no_runway() -> None:
    assert runway_price(snapshot(), guarded("futures_wallet")) is None
