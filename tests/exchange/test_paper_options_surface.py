"""The paper options book prices puts on a recorded volatility surface: at a point's IV on the grid, interpolated
between points, dearer low strikes on a skew, a recorded chain repriced within 2 %; bad surface files are refused
naming the file, the line and the value."""

from __future__ import annotations

import asyncio
import math
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from hedgebot.domain.options import OptionKind, black_scholes
from hedgebot.domain.put_plan import YEAR_SECONDS
from hedgebot.domain.vol_surface import SurfaceError, VolSurface, load_surface
from hedgebot.exchange.option_chains import client_for, read_puts
from hedgebot.exchange.paper_options import PaperOptions, PutSeries
from tests.exchange.ccxt_recorder import RecordingSession
from tests.exchange.option_books import NOW, BinanceOptionsBook
from tests.helpers import paper_settings_dict, write_toml

D = Decimal
START = datetime(2026, 1, 5, 12, tzinfo=UTC).timestamp()
JAN = datetime(2026, 1, 30, 8, tzinfo=UTC).timestamp()
MAR = datetime(2026, 3, 27, 8, tzinfo=UTC).timestamp()
SURFACE = """expiry,strike,iv
2026-01-30,40000,0.80
2026-01-30,50000,0.60
2026-03-27,40000,0.70
2026-03-27,50000,0.55
"""


def _book(surface: VolSurface | None, *, price: Decimal = D(50000), now: float = START, flat: float = 0.6) -> PaperOptions:
    wallet = {"USDT": D(100000)}
    return PaperOptions("BTC", "USDT", wallet, lambda: price, lambda: now, lambda: flat, spread=D(0), tick=D("0.0001"),
                        surface=surface)


def _surface(tmp_path: Path, text: str = SURFACE) -> VolSurface:
    path = tmp_path / "surface.csv"
    path.write_text(text)
    return load_surface(path)


def _bs(strike: float, expiry: float, iv: float, spot: float = 50000.0, now: float = START) -> float:
    return black_scholes(OptionKind.PUT, spot, strike, (expiry - now) / YEAR_SECONDS, iv).price


def test_a_put_on_a_surface_point_is_priced_at_that_points_iv(tmp_path: Path) -> None:
    book = _book(_surface(tmp_path))
    quote = book.quote_of(PutSeries(D(40000), JAN))
    assert quote is not None and quote.volatility == pytest.approx(0.80)
    assert float(quote.mark) == pytest.approx(_bs(40000, JAN, 0.80), abs=1e-3)


def test_a_put_between_strikes_is_priced_at_the_iv_linear_in_strike(tmp_path: Path) -> None:
    book = _book(_surface(tmp_path))
    quote = book.quote_of(PutSeries(D(45000), JAN))
    assert quote is not None and quote.volatility == pytest.approx(0.70)
    assert float(quote.mark) == pytest.approx(_bs(45000, JAN, 0.70), abs=1e-3)


def test_a_put_between_expiries_is_priced_at_the_iv_linear_in_total_variance(tmp_path: Path) -> None:
    feb = datetime(2026, 2, 27, 8, tzinfo=UTC).timestamp()
    book = _book(_surface(tmp_path))
    quote = book.quote_of(PutSeries(D(50000), feb))
    y0, y1, y = ((e - START) / YEAR_SECONDS for e in (JAN, MAR, feb))
    variance = 0.60**2 * y0 + (0.55**2 * y1 - 0.60**2 * y0) * (y - y0) / (y1 - y0)
    assert quote is not None and quote.volatility == pytest.approx(math.sqrt(variance / y))
    assert 0.55 < quote.volatility < 0.60


def test_beyond_the_surfaces_edges_the_iv_is_flat(tmp_path: Path) -> None:
    book = _book(_surface(tmp_path))
    low = book.quote_of(PutSeries(D(30000), JAN))
    high = book.quote_of(PutSeries(D(70000), JAN))
    late = book.quote_of(PutSeries(D(40000), datetime(2026, 6, 26, 8, tzinfo=UTC).timestamp()))
    early = book.quote_of(PutSeries(D(50000), datetime(2026, 1, 9, 8, tzinfo=UTC).timestamp()))
    assert low is not None and low.volatility == pytest.approx(0.80)
    assert high is not None and high.volatility == pytest.approx(0.60)
    assert late is not None and late.volatility == pytest.approx(0.70)
    assert early is not None and early.volatility == pytest.approx(0.60)


def test_a_skewed_surface_makes_a_low_strike_put_dearer_than_one_flat_volatility_would(tmp_path: Path) -> None:
    series = PutSeries(D(40000), JAN)
    skewed = _book(_surface(tmp_path)).quote_of(series)
    flat = _book(None, flat=0.60).quote_of(series)  # the at-the-money IV of the same surface
    assert skewed is not None and flat is not None
    assert skewed.mark > flat.mark * 2  # 80 % against 60 % far out of the money: much dearer


def test_the_surface_of_a_recorded_chain_reprices_each_of_its_puts_within_2_percent_of_its_mark(tmp_path: Path) -> None:
    async def read() -> object:
        client = client_for("binance", {"session": RecordingSession(BinanceOptionsBook().routes()), "enableRateLimit": False})
        try:
            return await read_puts(client, "binance", "BTC")
        finally:
            await client.close()

    chain = asyncio.run(read())
    puts = [p for p in chain.puts if p.iv is not None]  # type: ignore[attr-defined]
    assert puts
    path = tmp_path / "chain.csv"
    path.write_text(VolSurface.of_puts(puts).to_csv())
    surface = load_surface(path)
    checked = 0
    for put in puts:
        book = _book(surface, price=put.underlying, now=NOW)
        quote = book.quote_of(PutSeries(put.strike, put.expiry))
        assert quote is not None
        if put.mark >= D(50):  # a mark of a few ticks is all rounding
            assert abs(quote.mark - put.mark) <= put.mark * D("0.02"), (put.symbol, quote.mark, put.mark)
            checked += 1
    assert checked >= 2


@pytest.mark.parametrize(
    ("text", "named"),
    [
        ("", "empty"),
        ("expiry,strike,iv\n", "no points"),
        ("expiry,strike,vol\n2026-01-30,40000,0.8\n", "line 1: header is 'expiry,strike,vol'"),
        ("expiry,strike,iv\n2026-01-30,40000,0.8\n2026-01-30,45000,abc\n", "line 3: iv 'abc' is not a number"),
        ("expiry,strike,iv\n2026-01-30,4x,0.8\n", "line 2: strike '4x' is not a number"),
        ("expiry,strike,iv\n2026-01-30,40000,-0.2\n", "line 2: iv -0.2 is not above 0"),
        ("expiry,strike,iv\n2026-13-30,40000,0.5\n", "line 2: expiry '2026-13-30'"),
        ("expiry,strike,iv\n2026-01-30,40000,0.5\n2026-01-30,40000.0,0.6\n", "line 3: expiry 2026-01-30 strike 40000.0 is given twice (first on line 2)"),
        ("expiry,strike,iv\n2026-01-30,40000\n", "line 2: '2026-01-30,40000' has 2 fields"),
    ],
)
def test_a_bad_surface_file_is_refused_naming_the_file_the_line_and_the_value(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "surface.csv"
    path.write_text(text)
    with pytest.raises(SurfaceError) as refused:
        load_surface(path)
    assert str(path) in str(refused.value) and named in str(refused.value), str(refused.value)


def test_check_refuses_a_config_whose_surface_file_is_missing_or_bad_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from hedgebot.commands.main import main

    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["paper"]["option_volatility_surface"] = "missing.csv"
    assert main(["check", "--config", str(write_toml(tmp_path / "h.toml", data))]) != 0
    err = capsys.readouterr()
    assert "option_volatility_surface" in err.err + err.out and "missing.csv: no such file" in err.err + err.out
    assert "Traceback" not in err.err + err.out
    (tmp_path / "bad.csv").write_text("expiry,strike,iv\n2026-01-30,40000,-1\n")
    data["accounts"][0]["paper"]["option_volatility_surface"] = "bad.csv"
    assert main(["check", "--config", str(write_toml(tmp_path / "h.toml", data))]) != 0
    err = capsys.readouterr()
    assert "bad.csv line 2: iv -1 is not above 0" in err.err + err.out


def test_check_names_the_surface_a_paper_put_book_prices_at(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hedgebot.commands.main import main

    (tmp_path / "surface.csv").write_text(SURFACE)
    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["paper"]["option_volatility_surface"] = "surface.csv"
    data["accounts"][0]["hedges"] = [{
        "name": "btc-put", "asset": "BTC", "symbol": "BTC/USDT:USDT", "ratio": "1", "instrument": "put", "floor": "0.85",
        "expiry_days": 30, "max_premium_per_order": "1000", "max_premium_per_month": "3000",
    }]
    assert main(["check", "--config", str(write_toml(tmp_path / "h.toml", data))]) == 0
    assert f"Black-Scholes at the surface in {tmp_path / 'surface.csv'}" in capsys.readouterr().out


def test_a_paper_accounts_put_leg_prices_at_the_configured_surface(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from hedgebot.config import load_config
    from hedgebot.engine.put_leg import paper_put_leg

    (tmp_path / "surface.csv").write_text(SURFACE)
    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["paper"]["option_volatility_surface"] = "surface.csv"
    data["accounts"][0]["hedges"] = [{
        "name": "btc-put", "asset": "BTC", "symbol": "BTC/USDT:USDT", "ratio": "1", "instrument": "put", "floor": "0.85",
        "expiry_days": 30, "max_premium_per_order": "1000", "max_premium_per_month": "3000",
    }]
    account = load_config(write_toml(tmp_path / "h.toml", data)).accounts[0]
    simulated = SimpleNamespace(
        spot={"USDT": D(1000)}, marks={"BTC/USDT:USDT": (D(50000),)}, clock=SimpleNamespace(now=lambda: START),
        _changed=lambda: None,
    )
    from hedgebot.clock import SimClock
    from hedgebot.ops.events import EventLog
    from hedgebot.store.journal import Journal

    clock = SimClock(START)
    journal = Journal(tmp_path / "journal.sqlite", clock)
    leg = paper_put_leg(account, account.hedges[0], None, simulated, clock, journal, EventLog(journal), tmp_path)  # type: ignore[arg-type]
    quote = leg.book.quote_of(PutSeries(D(45000), JAN))  # type: ignore[attr-defined]
    assert quote is not None and quote.volatility == pytest.approx(0.70)  # the surface's, not option_volatility's 0.6


def test_run_refuses_a_surface_with_a_point_given_twice_naming_the_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from hedgebot.commands.main import main

    (tmp_path / "s.csv").write_text("expiry,strike,iv\n2027-01-29,70000,0.5\n2027-01-29,70000,0.6\n")
    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["paper"]["option_volatility_surface"] = "s.csv"
    assert main(["run", "--config", str(write_toml(tmp_path / "h.toml", data))]) == 2
    said = capsys.readouterr()
    assert "s.csv line 3: expiry 2027-01-29 strike 70000 is given twice (first on line 2)" in said.err + said.out
    assert "Traceback" not in said.err + said.out
