"""`hedgebot plan-put` on recorded Deribit, Binance and OKX chains, and its answers to bad input."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from hedgebot.commands import main as cli, plan_put as cli_put
from hedgebot.exchange.option_chains import client_for
from tests.exchange.ccxt_recorder import RecordingSession
from tests.exchange.option_books import NOW, BinanceOptionsBook, DeribitOptionsBook, OkxOptionsBook
from tests.helpers import paper_settings_dict, write_toml


def _config(tmp_path: Path, exchange: str = "binanceusdm", **hedge: Any) -> Path:
    data = paper_settings_dict(tmp_path, **hedge)
    data["accounts"][0]["exchange"] = exchange
    return write_toml(tmp_path / "hedgebot.toml", data)


def _factory(book: Any, sessions: list[RecordingSession]) -> Callable[[str], Any]:
    def build(venue: str) -> Any:
        session = RecordingSession(book.routes())
        sessions.append(session)
        return client_for(venue, {"session": session, "enableRateLimit": False})

    return build


def _run(argv: list[str], book: Any = None, sessions: list[RecordingSession] | None = None) -> int:
    args = cli.build_parser().parse_args(argv)
    return cli_put.cmd_plan_put(args, client_factory=_factory(book, sessions if sessions is not None else []), now=NOW)


def _pick(out: str) -> str:
    return next(line for line in out.splitlines() if line.startswith("pick:"))


@pytest.mark.parametrize(
    ("venue", "book", "symbol"),
    [
        ("deribit", DeribitOptionsBook, "BTC/USD:BTC-270129-75000-P"),
        ("binance", BinanceOptionsBook, "BTC/USDT:USDT-270129-75000-P"),
        ("okx", OkxOptionsBook, "BTC/USD:BTC-270129-75000-P"),
    ],
)
def test_plan_put_picks_the_strike_nearest_the_floor_in_the_first_expiry_covering_the_horizon_and_reprices_it_within_2_percent(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], venue: str, book: Any, symbol: str,
) -> None:
    config = _config(tmp_path)
    code = _run(["plan-put", "--config", str(config), "--hedge", "btc-core", "--floor", "0.85", "--days", "30", "--venue", venue], book())
    out = capsys.readouterr().out
    assert code == 0, out
    pick = _pick(out)
    # Floor 0.85 of the 90000 index is 76500: 75000 is the nearest strike; 29 Jan is the first expiry past 30 days.
    assert symbol in pick and "strike 75000" in pick
    error = float(re.search(r"IV [\d.]+ \w+ \(([+-][\d.]+)%\)", pick).group(1))  # type: ignore[union-attr]
    assert abs(error) < 2.0
    # 2 BTC held, ratio 1: the puts guarantee 2 x 75000 at expiry.
    assert "guarantee 150000.00 USDT" in pick
    assert "expected funding received" in out and "margin locked" in out and "runway" in out


def test_plan_put_prints_each_put_with_strike_expiry_premium_iv_delta_and_protection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert _run(["plan-put", "--config", str(config), "--hedge", "btc-core", "--venue", "binance"], BinanceOptionsBook()) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.lstrip().startswith("*"))
    # strike, expiry, days, premium 1920, per year (1920/90000*365/57), IV 54.2 %, Binance's delta, 2 contracts, cost, protection
    assert re.search(r"75000\s+2027-01-29 08:00\s+57\.0\s+1920\.00\s+13\.7%\s+54\.2%\s+-0\.169\s+2\s+3840\.00\s+150000\.00", row), row


def test_plan_put_on_deribit_shows_deribits_own_delta_from_its_ticker(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = DeribitOptionsBook()
    config = _config(tmp_path)
    assert _run(["plan-put", "--config", str(config), "--hedge", "btc-core", "--venue", "deribit"], book) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.lstrip().startswith("*"))
    assert "-0.156" in row
    assert "BTC-29JAN27-75000-P" in book.ticker_requests


def test_plan_put_sends_no_key_and_asks_for_the_hedges_coin(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    sessions: list[RecordingSession] = []
    config = _config(tmp_path, exchange="okx")
    assert _run(["plan-put", "--config", str(config), "--hedge", "btc-core"], OkxOptionsBook(), sessions) == 0
    sent = sessions[0].requests
    assert {r.path for r in sent} >= {"/api/v5/public/opt-summary", "/api/v5/public/mark-price", "/api/v5/market/index-tickers"}
    assert all(r.query.get("uly", "BTC-USD") == "BTC-USD" for r in sent)
    assert not any("OK-ACCESS-KEY" in r.headers or "OK-ACCESS-SIGN" in r.headers for r in sent)


def _bad(argv: list[str], capsys: pytest.CaptureFixture[str], book: Any = None) -> str:
    with pytest.raises(SystemExit) as exit_:
        _run(argv, book)
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("flag", "value", "said"),
    [("--floor", "1.2", "--floor 1.2 must lie strictly between 0 and 1"), ("--floor", "0", "--floor 0 must lie"),
     ("--floor", "abc", "--floor 'abc' is not a number"), ("--days", "0", "--days 0 must be more than 0"),
     ("--days", "-3", "--days -3 must be more than 0"), ("--days", "nan", "--days nan must be more than 0")],
)
def test_plan_put_refuses_a_floor_outside_0_1_and_days_not_above_0_naming_the_value(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, said: str,
) -> None:
    config = _config(tmp_path)
    err = _bad(["plan-put", "--config", str(config), "--hedge", "btc-core", flag, value], capsys)
    assert said in err


def test_plan_put_refuses_an_unknown_hedge_naming_it_and_the_known_ones(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path)
    assert _run(["plan-put", "--config", str(config), "--hedge", "eth-core"], BinanceOptionsBook()) == 2
    err = capsys.readouterr().err
    assert "--hedge 'eth-core' is not in the config (hedges: paper/btc-core)" in err


def test_plan_put_refuses_an_exchange_with_no_options_and_names_the_venues(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = _config(tmp_path, exchange="aster")
    assert _run(["plan-put", "--config", str(config), "--hedge", "btc-core"], BinanceOptionsBook()) == 2
    err = capsys.readouterr().err
    assert "exchange 'aster' of account 'paper' has no options hedgebot reads: pass --venue deribit|binance|okx" in err


def test_plan_put_refuses_a_chain_with_no_sensible_quote_and_says_why(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = BinanceOptionsBook()
    book.chain = [(e, k, iv, "0", d) for e, k, iv, _, d in book.chain]  # every mark zero: nothing worth paying
    config = _config(tmp_path)
    assert _run(["plan-put", "--config", str(config), "--hedge", "btc-core"], book) == 2
    err = capsys.readouterr().err
    assert "binance BTC chain: none of the 10 puts has a sensible quote" in err and "mark 0" in err
    assert "Traceback" not in err


def test_plan_put_leaves_out_a_put_without_implied_volatility_and_says_how_many(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    book = BinanceOptionsBook()
    book.chain = [(e, k, "" if k == 75000 and e == "270129" else iv, m, d) for e, k, iv, m, d in book.chain]
    config = _config(tmp_path)
    assert _run(["plan-put", "--config", str(config), "--hedge", "btc-core"], book) == 0
    out = capsys.readouterr().out
    assert "strike 80000" in _pick(out)  # the 75000 put has no volatility; 80000 is the next nearest 76500
    assert "left out for want of a sensible quote: 1 puts" in out


def test_plan_put_refuses_a_coin_the_venue_lists_no_puts_on(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = paper_settings_dict(tmp_path, asset="ETH", symbol="ETH/USDT:USDT")
    data["accounts"][0]["paper"]["spot"] = {"ETH": "10"}
    data["accounts"][0]["paper"]["markets"][0]["symbol"] = "ETH/USDT:USDT"
    config = write_toml(tmp_path / "eth.toml", data)
    assert _run(["plan-put", "--config", str(config), "--hedge", "btc-core"], BinanceOptionsBook()) == 2
    assert "binance lists no ETH puts" in capsys.readouterr().err


def test_plan_put_saves_the_chains_surface_and_a_paper_book_on_it_prices_a_put_at_the_chains_iv(
    tmp_path: Path, capsys: pytest.CaptureFixture[str],
) -> None:
    from decimal import Decimal

    from hedgebot.domain.vol_surface import load_surface
    from hedgebot.exchange.paper_options import PaperOptions, PutSeries
    from tests.exchange.option_books import NOW

    surface_path = tmp_path / "surface.csv"
    config = _config(tmp_path)
    code = _run(["plan-put", "--config", str(config), "--hedge", "btc-core", "--venue", "binance", "--save-surface", str(surface_path)],
                BinanceOptionsBook())
    out = capsys.readouterr().out
    assert code == 0 and f"written to {surface_path}" in out, out
    surface = load_surface(surface_path)
    book = PaperOptions("BTC", "USDT", {}, lambda: Decimal(90000), lambda: NOW, lambda: 0.6, spread=Decimal(0), tick=Decimal("0.0001"),
                        surface=surface)
    # The recorded chain's 75000 put of 29 Jan 2027 as the book now prices it, against the chain's own IV.
    expiry = next(e for e, _ in surface.slices if e > NOW + 30 * 86400)
    iv = dict(next(points for e, points in surface.slices if e == expiry))[75000.0]
    quote = book.quote_of(PutSeries(Decimal(75000), expiry))
    assert quote is not None and quote.volatility == pytest.approx(iv)


def test_plan_put_refuses_a_surface_path_it_cannot_write_naming_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "no-such-dir" / "surface.csv"
    code = _run(["plan-put", "--config", str(_config(tmp_path)), "--hedge", "btc-core", "--venue", "binance", "--save-surface", str(target)],
                BinanceOptionsBook())
    captured = capsys.readouterr()
    assert code != 0 and f"cannot write the surface to {target}" in captured.err + captured.out
