"""What an action whose outcome is not known yet is taken to have done, for the plan made meanwhile."""

from __future__ import annotations

from hedgebot.domain.in_flight import as_if_carried_out
from hedgebot.domain.model import OrderSide, PlaceOrder, PositionSide
from tests.helpers import D, short_leg, snapshot


def test_a_short_bought_back_at_a_loss_in_flight_leaves_the_loss_out_of_the_free_balance() -> None:
    before = snapshot(short=short_leg("2", entry="50000"), mark_price=D(60000), previous_price=D(60000), futures_free=D(1000))
    margin = before.short.margin
    buy_back = PlaceOrder(OrderSide.BUY, D("1"), PositionSide.SHORT, True, "lockstep")
    after = as_if_carried_out(before, [buy_back])
    # Half the isolated margin is freed, and the 10,000 lost on the coin bought back is realised out of it.
    assert after.short.size == D(1) and abs(after.futures_free - (D(1000) + margin / 2 - D(10000))) < D("1e-18")
    assert after.futures_wallet == before.futures_wallet - D(10000)


def _coin_margined_view(**overrides):
    """A 1x coin-margined short of 10 BTC at 30,000 backed by its own coins, 5 more BTC in spot."""
    from hedgebot.domain.model import Leg, MarginMode, PositionSide
    from hedgebot.exchange.binance_rules import default_market
    from tests.helpers import D, snapshot

    market = default_market("BTC/USD:BTC")
    base = dict(market=market, mark_price=D(30000), spot_asset=D(5), spot_quote=D(5), futures_free=D(0),
                futures_wallet=D(10), short=Leg(PositionSide.SHORT, D(300000), D(30000), D(10)),
                margin_mode=MarginMode.ISOLATED, leverage=1)
    return snapshot(**{**base, **overrides})


def test_an_open_buy_back_of_an_inverse_short_realises_its_pnl_in_coins_never_in_face_value_times_price() -> None:
    from hedgebot.domain.in_flight import as_if_carried_out
    from hedgebot.domain.model import OrderSide, PlaceOrder, PositionSide
    from hedgebot.domain.policy import exposure_of
    from tests.helpers import D, hedge_config

    policy = hedge_config(symbol="BTC/USD:BTC", instrument="coinm-perp", leverage=1).policy()
    view = _coin_margined_view(mark_price=D(30300))
    before = exposure_of(view, policy)
    after = as_if_carried_out(view, [PlaceOrder(OrderSide.BUY, D(100), PositionSide.SHORT, True, "over-hedged")])
    # One contract of 100 USD bought back: its loss is 100 x (1/30000 - 1/30300) coins, a few satoshi-thousandths.
    assert abs(exposure_of(after, policy) - before) < D("0.0001")
    assert after.futures_wallet < view.futures_wallet and view.futures_wallet - after.futures_wallet < D("0.0001")


def test_an_open_transfer_of_coins_to_the_coin_margined_wallet_is_not_counted_twice() -> None:
    from hedgebot.domain.in_flight import as_if_carried_out
    from hedgebot.domain.model import Transfer, Wallet
    from hedgebot.domain.policy import exposure_of
    from tests.helpers import D, hedge_config

    policy = hedge_config(symbol="BTC/USD:BTC", instrument="coinm-perp", leverage=1).policy()
    view = _coin_margined_view()
    moved = as_if_carried_out(view, [Transfer("BTC", D(3), Wallet.SPOT, Wallet.FUTURES, "margin top-up")])
    assert moved.spot_asset == D(2) and moved.futures_wallet == D(13)
    assert exposure_of(moved, policy) == exposure_of(view, policy)  # the same 15 coins, wherever they sit
