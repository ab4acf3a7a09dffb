"""The paper options book lists Deribit's expiries, prices puts by Black-Scholes, never fills above the ask or below
the bid, pays premium from the quote wallet, and settles held puts to their intrinsic value at expiry."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from hedgebot.domain.options import OptionKind, black_scholes
from hedgebot.exchange.paper_options import (
    OptionOrderRefused, PaperOptions, PutSeries, deribit_expiries, deribit_fee, realised_volatility,
)
from hedgebot.exchange.port import InsufficientFunds

D = Decimal
START = datetime(2026, 1, 5, 12, tzinfo=UTC).timestamp()  # a Monday


class World:
    def __init__(self) -> None:
        self.price = D(50000)
        self.now = START
        self.wallet: dict[str, Decimal] = {"USDT": D(10000), "BTC": D(1)}
        self.book = PaperOptions("BTC", "USDT", self.wallet, lambda: self.price, lambda: self.now, lambda: 0.6)


def _month_put(world: World) -> PutSeries:
    expiry = datetime(2026, 1, 30, 8, tzinfo=UTC).timestamp()  # the last Friday of January
    return PutSeries(D(42500), expiry)


def _at(*args: int) -> float:
    return datetime(*args, tzinfo=UTC).timestamp()


def test_the_book_lists_deribits_dailies_weeklies_monthlies_and_quarterlies_at_eight_utc() -> None:
    expiries = deribit_expiries(START)
    assert expiries[:3] == [_at(2026, 1, 6, 8), _at(2026, 1, 7, 8), _at(2026, 1, 8, 8)]  # dailies
    assert {_at(2026, 1, 9, 8), _at(2026, 1, 16, 8), _at(2026, 1, 23, 8)} <= set(expiries)  # weekly Fridays
    assert {_at(2026, 1, 30, 8), _at(2026, 2, 27, 8), _at(2026, 3, 27, 8)} <= set(expiries)  # last Fridays
    assert {_at(2026, 6, 26, 8), _at(2026, 9, 25, 8), _at(2026, 12, 25, 8)} <= set(expiries)  # quarterlies
    assert all(datetime.fromtimestamp(e, UTC).hour == 8 for e in expiries)


def test_strikes_sit_on_a_round_grid_around_the_price() -> None:
    world = World()
    strikes = sorted({s.strike for s in world.book.listed()})
    assert strikes[0] == D(25000) and strikes[-1] == D(75000) and strikes[1] - strikes[0] == D(500)


def test_a_put_is_quoted_at_black_scholes_with_the_ask_above_and_the_bid_below() -> None:
    world = World()
    series = _month_put(world)
    quote = world.book.quote_of(series)
    assert quote is not None
    expected = black_scholes(OptionKind.PUT, 50000.0, 42500.0, (series.expiry - START) / (365 * 86400), 0.6).price
    assert abs(float(quote.mark) - expected) < 1e-6
    assert quote.bid < quote.mark < quote.ask and quote.ask <= quote.mark * D("1.02") + D("0.5")
    assert -0.5 < quote.delta < 0


def test_a_limit_buy_below_the_ask_is_cancelled_and_pays_nothing() -> None:
    world = World()
    series = _month_put(world)
    quote = world.book.quote_of(series)
    assert quote is not None
    assert world.book.place_limit("c1", series, "buy", D("0.1"), quote.ask - D("0.5")) is None
    assert world.wallet["USDT"] == D(10000) and not world.book.held


def test_a_limit_buy_above_the_ask_fills_at_the_ask_never_at_its_limit_and_pays_from_the_quote_wallet() -> None:
    world = World()
    series = _month_put(world)
    quote = world.book.quote_of(series)
    assert quote is not None
    fill = world.book.place_limit("c1", series, "buy", D("0.1"), quote.ask + D(100))
    assert fill is not None and fill.price == quote.ask
    assert fill.fee == deribit_fee(D(50000), quote.ask, D("0.1"))
    assert world.wallet["USDT"] == D(10000) - quote.ask * D("0.1") - fill.fee
    assert world.book.held == {series: D("0.1")}


def test_the_same_client_id_never_buys_twice() -> None:
    world = World()
    series = _month_put(world)
    first = world.book.place_limit("c1", series, "buy", D("0.1"), D(5000))
    again = world.book.place_limit("c1", series, "buy", D("0.1"), D(5000))
    assert again == first and world.book.held[series] == D("0.1") and world.book.find_fill("c1") == first


def test_selling_puts_not_held_is_refused_since_the_book_writes_no_puts() -> None:
    world = World()
    with pytest.raises(OptionOrderRefused, match="only 0 held"):
        world.book.place_limit("c1", _month_put(world), "sell", D("0.1"), D("0.5"))


def test_a_purchase_the_quote_wallet_cannot_pay_is_refused() -> None:
    world = World()
    world.wallet["USDT"] = D(10)
    with pytest.raises(InsufficientFunds, match="spot USDT 10"):
        world.book.place_limit("c1", _month_put(world), "buy", D(1), D(5000))
    assert not world.book.held


def test_an_unlisted_strike_or_amount_off_the_step_is_refused() -> None:
    world = World()
    series = _month_put(world)
    with pytest.raises(OptionOrderRefused, match="not listed"):
        world.book.place_limit("c1", PutSeries(D(42501), series.expiry), "buy", D("0.1"), D(5000))
    with pytest.raises(OptionOrderRefused, match="step"):
        world.book.place_limit("c2", series, "buy", D("0.15"), D(5000))


def test_a_held_put_settles_to_its_intrinsic_value_at_expiry_in_the_quote_wallet() -> None:
    world = World()
    series = _month_put(world)
    world.book.place_limit("c1", series, "buy", D(1), D(5000))
    cash = world.wallet["USDT"]
    world.now, world.price = series.expiry + 60, D(35000)
    settled = world.book.settle_expired()
    assert [s.payoff for s in settled] == [D(7500)] and world.wallet["USDT"] == cash + D(7500)
    assert not world.book.held


def test_a_put_above_water_at_expiry_settles_worthless() -> None:
    world = World()
    series = _month_put(world)
    world.book.place_limit("c1", series, "buy", D(1), D(5000))
    cash = world.wallet["USDT"]
    world.now, world.price = series.expiry, D(60000)
    assert [s.payoff for s in world.book.settle_expired()] == [D(0)] and world.wallet["USDT"] == cash


def test_no_volatility_gives_no_quote() -> None:
    world = World()
    world.book.volatility = lambda: 0.0
    assert world.book.quote_of(_month_put(world)) is None


def test_the_books_holdings_and_fills_survive_a_restore() -> None:
    world = World()
    series = _month_put(world)
    fill = world.book.place_limit("c1", series, "buy", D(1), D(5000))
    other = World()
    other.book.restore(world.book.to_dict())
    assert other.book.held == world.book.held and other.book.find_fill("c1") == fill


def test_realised_volatility_of_alternating_moves_matches_their_size() -> None:
    closes = [100.0 * (1.01 if i % 2 else 1.0) for i in range(101)]
    daily = realised_volatility(closes, 86400)
    assert abs(daily - 0.00995 * 1.0 * (365 ** 0.5) * (100 / 99) ** 0.5) < 0.01
