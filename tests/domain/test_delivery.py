"""Binance's quarterly calendar: the last Friday of March, June, September and December at 08:00 UTC, and
ccxt's delivery symbols that carry the date."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from hedgebot.domain.delivery import delivery_symbol, is_quarterly_expiry, parse_delivery_symbol, quarterly_expiries


def test_every_quarterly_delivers_on_the_last_friday_of_its_quarter_month_at_eight_utc() -> None:
    expiries = quarterly_expiries(datetime(2019, 12, 31, tzinfo=UTC).timestamp(), 40)
    for expiry in expiries:
        day = datetime.fromtimestamp(expiry, UTC)
        assert day.month in (3, 6, 9, 12) and day.weekday() == 4 and (day.hour, day.minute) == (8, 0)
        assert (day + timedelta(days=7)).month != day.month, "the last Friday of the month"
        assert is_quarterly_expiry(expiry)
    assert len({datetime.fromtimestamp(e, UTC).strftime("%Y-%m") for e in expiries}) == 40, "one per quarter, none skipped"


def test_the_delivery_dates_binance_published_are_the_calendar_s() -> None:
    # BTCUSD 0925 delivered 2020-09-25 (Binance's FAQ example); BTCUSDT_260327 delivers 2026-03-27.
    after = datetime(2020, 9, 1, tzinfo=UTC).timestamp()
    assert delivery_symbol("BTC/USD:BTC", quarterly_expiries(after, 1)[0]) == "BTC/USD:BTC-200925"
    assert parse_delivery_symbol("BTC/USDT:USDT-260327") == ("BTC/USDT:USDT", datetime(2026, 3, 27, 8, tzinfo=UTC).timestamp())


def test_a_quarterly_past_its_delivery_minute_is_not_listed_again() -> None:
    expiry = datetime(2026, 3, 27, 8, tzinfo=UTC).timestamp()
    assert quarterly_expiries(expiry - 1, 1) == [expiry]
    assert quarterly_expiries(expiry, 1)[0] > expiry


def test_symbols_without_a_valid_date_suffix_are_not_delivery_symbols() -> None:
    assert parse_delivery_symbol("BTC/USDT:USDT") is None
    assert parse_delivery_symbol("BTC/USDT:USDT-261399") is None
    assert not is_quarterly_expiry(datetime(2026, 3, 20, 8, tzinfo=UTC).timestamp())
