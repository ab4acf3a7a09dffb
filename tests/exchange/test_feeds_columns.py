"""The columnar candle reader (Arrow) reads every layout exactly as `read_candles` does, and refuses what it refuses, in its words."""

from __future__ import annotations

from pathlib import Path

import pytest

from hedgebot.exchange.feeds import CandleColumns, _fast_columns, read_candle_columns, read_candles
from hedgebot.exchange.port import BadData
from tests.helpers import D, shared_file

LAYOUTS = {
    "freqtrade": "date,open,high,low,close,volume\n2020-01-01T00:00:00Z,7195.24,7196.25,7175.46,7177.02,511.8\n"
    "2020-01-01T01:00:00Z,7177.02,7230,7175.71,7216.27,883.05\n",
    "freqtrade_offsets": "date,open,high,low,close,volume\n2020-01-01 00:00:00+00:00,1.5,2,1,1.5,1\n2020-01-01 03:00:00+02:00,1.5,2,1,1.5,1\n",
    "naive_iso_with_millis": "date,open,high,low,close\n2020-01-01 00:00:00.250,1,2,0.5,1\n2020-01-01T00:01:00.500,1,2,0.5,1\n",
    "binance_headerless_ms": "1584048420000,5659.41,5671.28,5625.23,5627.84,426.186,1584048479999,1,1,1,1,0\n"
    "1584048480000,5627.84,5640,5600.1,5610,1,1584048539999,1,1,1,1,0\n",
    "binance_header_us": "open_time,open,high,low,close,volume\n1735689600000000,1,2,0.5,1,1\n1735689660000000,1,2,0.5,1,1\n",
    "unix_seconds": "timestamp,open,high,low,close\n1600000000,1e2,1.5E2,0.5e2,100\n1600000060,100,150,50,100.0\n",
    "cryptodatadownload_newest_first": "https://www.CryptoDataDownload.com\nunix,date,symbol,open,high,low,close,Volume BTC\n"
    "1609462800000,2021-01-01 01:00:00,BTC/USDT,29000,29100,28900,29050,10\n1609459200000,2021-01-01 00:00:00,BTC/USDT,28900,29010,28800,29000,10\n",
    "tied_floats_exact_text": "date,open,high,low,close\n2020-01-01T00:00:00Z,30000.0,30000.00,29999,30000\n2020-01-01T00:01:00Z,1,1,1,1\n",
    "bom_and_blank_lines": "\ufeffdate,open,high,low,close\n\n2020-01-01T00:00:00Z,1,2,0.5,1\n\n2020-01-01T00:01:00Z,1,2,0.5,1\n",
}


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_layout_reads_as_the_same_candles_as_read_candles(layout: str, tmp_path: Path) -> None:
    path = tmp_path / f"{layout}.csv"
    path.write_text(LAYOUTS[layout], encoding="utf-8")
    columns = read_candle_columns(path)
    assert isinstance(columns, CandleColumns)
    assert list(columns) == read_candles(path)


def test_the_common_layouts_are_read_by_arrow_not_row_by_row(tmp_path: Path) -> None:
    for layout in ("freqtrade", "binance_headerless_ms", "cryptodatadownload_newest_first", "naive_iso_with_millis"):
        path = tmp_path / f"{layout}.csv"
        path.write_text(LAYOUTS[layout])
        assert _fast_columns(path) is not None, layout


BAD = {
    "negative price": ("date,open,high,low,close,volume\n2020-01-01T00:00:00Z,1,2,0.5,1.5,1\n2020-01-01T01:00:00Z,1,2,0.5,-3,1\n", r"bad\.csv:3: price '-3'"),
    "not a number": ("date,open,high,low,close\n2020-01-01T00:00:00Z,1,2,0.5,abc\n", r"bad\.csv:2: 'abc' is not a number"),
    "infinite": ("date,open,high,low,close\n2020-01-01T00:00:00Z,1,inf,0.5,1\n", r"bad\.csv:2: price 'inf' must be positive and finite"),
    "high below close": ("date,open,high,low,close,volume\n2020-01-01T00:00:00Z,1,0.9,0.5,1.5,1\n", "high/low do not bound"),
    "low above open by the text only": ("date,open,high,low,close\n2020-01-01T00:00:00Z,1,2,1.0000000000000000001,1\n", "high/low do not bound"),
    "bad time": ("date,open,high,low,close\n2020-13-01T00:00:00Z,1,2,0.5,1\n", r"bad\.csv:2: bad time '2020-13-01T00:00:00Z'"),
    "repeated row": (
        "date,open,high,low,close\n2020-01-01T00:00:00Z,1,2,0.5,1\n2020-01-01T00:00:00Z,1,2,0.5,1\n",
        r"bad\.csv:3: time 2020-01-01T00:00:00Z does not follow 2020-01-01T00:00:00Z",
    ),
    "short row": ("date,open,high,low,close\n2020-01-01T00:00:00Z,1,2,0.5,1\n2020-01-01T00:01:00Z,1,2\n", r"bad\.csv:3: expected time,open,high,low,close but found 3"),
    "unknown header": ("when,o,h,l,c\n2020-01-01T00:00:00Z,1,2,0.5,1\n", "unrecognised header"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_a_bad_file_is_refused_with_read_candles_message_naming_the_line_field_and_value(case: str, tmp_path: Path) -> None:
    text, message = BAD[case]
    path = tmp_path / "bad.csv"
    path.write_text(text)
    with pytest.raises(BadData, match=message):
        read_candle_columns(path)


def test_a_file_that_is_not_utf8_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    path.write_bytes(b"date,open,high,low,close\n2020-01-01T00:00:00Z,1,2,0.5,1\n2020-01-01T00:01:00Z,1,2,0.5,1\xe9\n")
    with pytest.raises(BadData, match=r"latin\.csv:3: not UTF-8"):
        read_candle_columns(path)


def test_the_shipped_history_reads_as_the_same_candles_and_slices_by_time() -> None:
    path = shared_file("BTCUSDT-1h-spot-2020-2021.csv")
    columns = read_candle_columns(path)
    assert list(columns) == read_candles(path)
    assert columns[-1] == read_candles(path)[-1] and columns[0].open == D("7195.24")
    year = columns.between(1_609_459_200, 1_640_995_199)
    assert [c.time for c in year] == [c.time for c in read_candles(path) if 1_609_459_200 <= c.time <= 1_640_995_199]
