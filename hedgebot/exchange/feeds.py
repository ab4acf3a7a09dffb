"""Price sources for the paper venue: a synthetic path, a candle file, or live public prices."""

from __future__ import annotations

import csv
import io
import math
import random
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Protocol

from hedgebot.exchange.port import BadData, VenueUnavailable
from hedgebot.ops.figures import iso_utc

_CENT = Decimal("0.01")
_YEAR = 365.0 * 24 * 3600


@dataclass(frozen=True)
class Candle:
    """One price interval; a single price is a candle with open = high = low = close."""

    time: float
    open: Decimal
    high: Decimal
    low: Decimal
    close: Decimal

    @classmethod
    def point(cls, time: float, price: Decimal) -> Candle:
        """Return a candle holding one price."""
        return cls(time, price, price, price, price)


class PriceFeed(Protocol):
    """Anything that yields candles, one at a time."""

    async def next(self) -> Candle | None:
        """Return the next candle, or None when the feed has ended."""
        ...


class SyntheticFeed:
    """A seeded geometric Brownian motion with occasional jumps.

    `volatility` and `drift` are annualised; `jump_probability` is per step
    and a jump moves the price by ±`jump_size` (as a fraction).
    """

    def __init__(
        self,
        start_price: Decimal,
        step_seconds: float,
        *,
        volatility: float = 0.8,
        drift: float = 0.0,
        jump_probability: float = 0.0,
        jump_size: float = 0.05,
        seed: int = 1,
        start_time: float = 0.0,
    ) -> None:
        if start_price <= 0:
            raise ValueError(f"start_price must be positive, got {start_price}")
        self._price = float(start_price)
        self._step = step_seconds
        self._vol = volatility
        self._drift = drift
        self._jump_p = jump_probability
        self._jump = jump_size
        self._rng = random.Random(seed)
        self._time = start_time

    def _move(self) -> float:
        dt = self._step / _YEAR
        shock = self._rng.gauss(0.0, 1.0)
        growth = (self._drift - 0.5 * self._vol**2) * dt + self._vol * math.sqrt(dt) * shock
        if self._jump_p and self._rng.random() < self._jump_p:
            growth += math.log1p(self._jump if self._rng.random() < 0.5 else -self._jump)
        return self._price * math.exp(growth)

    async def next(self) -> Candle:
        """Return the next step of the path."""
        opened = self._price
        self._price = self._move()
        self._time += self._step
        o = Decimal(repr(opened)).quantize(_CENT)
        c = Decimal(repr(self._price)).quantize(_CENT)
        return Candle(self._time, o, max(o, c), min(o, c), c)


def _decimal(value: str, where: str) -> Decimal:
    try:
        number = Decimal(value)
    except (InvalidOperation, ValueError) as exc:
        raise BadData(f"{where}: {value!r} is not a number") from exc
    if not number.is_finite() or number <= 0:
        raise BadData(f"{where}: price {value!r} must be positive and finite")
    return number


_TIME_COLUMNS = ("date", "open_time", "unix", "unix timestamp", "timestamp", "time")


def read_candles(path: Path) -> list[Candle]:
    """Read a candle file, oldest first; raise BadData naming the file and line of the first bad row.

    Layouts: freqtrade's `date,open,high,low,close,volume`; Binance's kline CSV
    (with or without its header); CryptoDataDownload's CSV (a banner line, a
    header with `unix`/`date`, rows newest first). Times are the candle's open,
    as ISO 8601 (UTC unless it says otherwise) or Unix s, ms or µs.
    """
    candles: list[tuple[float, int, Candle]] = []
    try:
        text = read_utf8(path)
    except ValueError as exc:
        raise BadData(str(exc)) from None
    with io.StringIO(text, newline="") as handle:
        rows: Iterator[list[str]] = csv.reader(handle)
        line_no, header = _find_header(path, rows)
        if header is None:
            return []
        columns = [c.strip().lower() for c in header]
        time_col = next((columns.index(name) for name in _TIME_COLUMNS if name in columns), None)
        if time_col is not None and all(name in columns for name in ("open", "high", "low", "close")):
            price_cols = [columns.index(name) for name in ("open", "high", "low", "close")]
        elif _looks_numeric(header[0]):
            time_col, price_cols = 0, [1, 2, 3, 4]  # Binance klines without a header
            rows = _prepend(header, rows)
            line_no -= 1
        else:
            raise BadData(_unrecognised(path, line_no, header))
        width = max(time_col, *price_cols) + 1
        for line_no, row in enumerate(rows, start=line_no + 1):
            if not row or not "".join(row).strip():
                continue
            where = f"{path}:{line_no}"
            if len(row) < width:
                raise BadData(f"{where}: expected time,open,high,low,close but found {len(row)} column(s)")
            try:
                when = _parse_time(row[time_col])
            except ValueError as exc:
                raise BadData(f"{where}: bad time {row[time_col]!r}") from exc
            o, h, low, c = (_decimal(row[i], where) for i in price_cols)
            if not (low <= min(o, c) and h >= max(o, c)):
                raise BadData(f"{where}: high/low do not bound open/close: {[row[i] for i in price_cols]}")
            candles.append((when, line_no, Candle(when, o, h, low, c)))
    if len(candles) > 1 and candles[0][0] > candles[-1][0]:
        candles.reverse()  # CryptoDataDownload writes newest first
    for (before, _, _), (when, line, _) in zip(candles, candles[1:], strict=False):
        if when <= before:
            raise BadData(f"{path}:{line}: time {iso_utc(when)} does not follow {iso_utc(before)}: rows out of order or repeated")
    return [candle for _, _, candle in candles]


class CandleColumns(Sequence[Candle]):
    """Candles held as columns: float arrays for searches and statistics, the file's own text for exact prices.

    A `Candle` (of Decimals, parsed from the same text `read_candles` parses)
    is built only when one is asked for, so a replay that looks at few candles
    never builds the rest.
    """

    def __init__(self, time: Any, floats: tuple[Any, Any, Any, Any], texts: tuple[Any, Any, Any, Any]) -> None:
        self._time = time
        self._floats = floats
        self._texts = texts  # each a sequence of str: a list, or a pyarrow string array
        self._raw: list[tuple[Any, memoryview] | None] = [None] * 4  # an Arrow column's offsets and bytes, once read

    @classmethod
    def of(cls, candles: Sequence[Candle]) -> CandleColumns:
        """Return the candles as columns."""
        import numpy as np

        count = len(candles)
        time = np.fromiter((c.time for c in candles), float, count)
        fields = ("open", "high", "low", "close")
        floats = tuple(np.fromiter((float(getattr(c, f)) for c in candles), float, count) for f in fields)
        texts = tuple([str(getattr(c, f)) for c in candles] for f in fields)
        return cls(time, floats, texts)  # type: ignore[arg-type]

    def float_columns(self) -> tuple[Any, Any, Any, Any, Any]:
        """Return time, open, high, low and close as float arrays."""
        return (self._time, *self._floats)

    def __len__(self) -> int:
        return len(self._time)

    def _text(self, column: int, index: int) -> str:
        """Return the file's text of price `column` (open, high, low, close) of candle `index`."""
        texts = self._texts[column]
        if isinstance(texts, list):
            return texts[index]
        raw = self._raw[column]
        if raw is None:
            raw = self._raw[column] = _string_buffers(texts)
        if raw is None:
            return texts[index].as_py()  # type: ignore[no-any-return]
        offsets, data = raw
        # Straight from Arrow's buffers: a pyarrow scalar costs microseconds, and a leap reads a few candles each.
        return str(data[offsets[index] : offsets[index + 1]], "utf-8")

    def candle(self, index: int) -> Candle:
        """Return candle `index` with its exact prices."""
        if index < 0:
            index += len(self._time)
        if not 0 <= index < len(self._time):
            raise IndexError(index)
        o, h, low, c = (Decimal(self._text(k, index)) for k in range(4))
        return Candle(float(self._time[index]), o, h, low, c)

    def __getitem__(self, key: Any) -> Any:
        if isinstance(key, slice):
            start, stop, step = key.indices(len(self._time))
            if step != 1:
                return [self.candle(i) for i in range(start, stop, step)]
            return CandleColumns(
                self._time[start:stop], tuple(f[start:stop] for f in self._floats),  # type: ignore[arg-type]
                tuple(t[start:stop] for t in self._texts),  # type: ignore[arg-type]
            )
        return self.candle(int(key))

    def __iter__(self) -> Iterator[Candle]:
        for index in range(len(self._time)):
            yield self.candle(index)

    def between(self, start: float | None, end: float | None) -> CandleColumns:
        """Return the candles whose time is at least `start` and at most `end` (None: no bound)."""
        import numpy as np

        first = 0 if start is None else int(np.searchsorted(self._time, start, side="left"))
        last = len(self._time) if end is None else int(np.searchsorted(self._time, end, side="right"))
        return self[first:max(first, last)]


def _string_buffers(column: Any) -> tuple[Any, memoryview] | None:
    """Return an Arrow string column's offsets and bytes, or None when it is not a plain string array."""
    import numpy as np
    import pyarrow as pa

    if column.type != pa.string():
        return None
    _, offsets, data = column.buffers()
    if offsets is None or data is None:
        return None
    return np.frombuffer(offsets, dtype=np.int32)[column.offset : column.offset + len(column) + 1], memoryview(data)


# A time the fast reader takes as the slow one would: ISO 8601 date and time, with or without a zone.
_ISO = r"^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}:\d{2}(?:\.\d{3}|\.\d{6})?)?"
_ZONE = r"(?:Z|[+-]\d{2}:\d{2})$"


def read_candle_columns(path: Path) -> CandleColumns:
    """Read a candle file as `read_candles` does, as columns; raise BadData as it does for a bad file.

    Arrow's CSV reader parses the file; whatever it cannot vouch for (a
    layout, a cell, an order it does not take exactly as `read_candles`
    would) is left to `read_candles`, whose result, or message naming the
    file, line, field and value, is the answer.
    """
    columns = _fast_columns(path)
    return columns if columns is not None else CandleColumns.of(read_candles(path))


def _fast_columns(path: Path) -> CandleColumns | None:
    """Return the file's candles when Arrow reads them exactly as `read_candles` would, else None."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc
    from pyarrow import csv as pacsv

    data = path.read_bytes()
    if data.startswith(b"\xef\xbb\xbf"):
        data = data[3:]
    try:
        head = data[:4096].decode("utf-8")
    except UnicodeDecodeError:
        return None
    lines = head.splitlines()[:5]
    if len(lines) < 5 and len(data) > 4096:
        return None
    try:
        line_no, header = _find_header(path, csv.reader(lines))
    except BadData:
        return None
    if header is None:
        return None
    names = [c.strip().lower() for c in header]
    time_col = next((names.index(name) for name in _TIME_COLUMNS if name in names), None)
    if time_col is not None and all(name in names for name in ("open", "high", "low", "close")):
        price_cols = [names.index(name) for name in ("open", "high", "low", "close")]
        skip = line_no
    elif _looks_numeric(header[0]):
        time_col, price_cols = 0, [1, 2, 3, 4]
        skip = line_no - 1
    else:
        return None
    wanted = [time_col, *price_cols]
    try:
        table = pacsv.read_csv(
            pa.BufferReader(data),
            read_options=pacsv.ReadOptions(skip_rows=skip, autogenerate_column_names=True),
            convert_options=pacsv.ConvertOptions(
                include_columns=[f"f{i}" for i in wanted], column_types={f"f{i}": pa.string() for i in wanted},
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowKeyError, pa.ArrowTypeError, ValueError):
        return None
    if table.num_rows == 0:
        return None
    columns = [table.column(f"f{i}").combine_chunks() for i in wanted]
    if any(c.null_count for c in columns):
        return None
    time = _fast_times(columns[0])
    if time is None:
        return None
    texts = columns[1:]
    try:
        floats = [pc.cast(t, pa.float64()).to_numpy() for t in texts]
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    if not all(bool(np.all(np.isfinite(f) & (f > 0))) for f in floats):
        return None
    o, h, low, c = floats
    if not (bool(np.all(low <= np.minimum(o, c))) and bool(np.all(h >= np.maximum(o, c)))):
        return None
    # Two texts may differ yet round to one float: where the floats tie, the exact prices judge.
    tied = ((low == o) & ~pc.equal(texts[2], texts[0]).to_numpy(zero_copy_only=False)) | (
        (low == c) & ~pc.equal(texts[2], texts[3]).to_numpy(zero_copy_only=False)
    ) | ((h == o) & ~pc.equal(texts[1], texts[0]).to_numpy(zero_copy_only=False)) | (
        (h == c) & ~pc.equal(texts[1], texts[3]).to_numpy(zero_copy_only=False)
    )
    for index in np.flatnonzero(tied):
        do, dh, dl, dc = (Decimal(t[int(index)].as_py()) for t in texts)
        if not (dl <= min(do, dc) and dh >= max(do, dc)):
            return None
    if len(time) > 1 and time[0] > time[-1]:
        order = np.arange(len(time) - 1, -1, -1)
        time = time[order]
        floats = [f[order] for f in floats]
        texts = [t.take(pa.array(order)) for t in texts]
    if len(time) > 1 and not bool(np.all(time[1:] > time[:-1])):
        return None
    return CandleColumns(time, tuple(floats), tuple(texts))  # type: ignore[arg-type]


# YYYY-MM-DDTHH:MM:SSZ, byte by byte: "d" a digit, any other byte itself.
_UTC_SECONDS = b"dddd-dd-ddTdd:dd:ddZ"


def _all_utc_seconds(column: Any) -> bool:
    """Tell whether every text of an Arrow string column is a time written exactly as `_UTC_SECONDS`, judged all at once."""
    import numpy as np

    raw = _string_buffers(column)
    if raw is None:
        return False
    offsets, data = raw
    width = len(_UTC_SECONDS)
    if len(offsets) < 2 or not bool(np.all(np.diff(offsets) == width)):
        return False
    cells = np.frombuffer(data, dtype=np.uint8, count=int(offsets[-1] - offsets[0]), offset=int(offsets[0])).reshape(-1, width)
    template = np.frombuffer(_UTC_SECONDS, dtype=np.uint8)
    digit = template == ord("d")
    digits = cells[:, digit]
    return bool(np.all((digits >= ord("0")) & (digits <= ord("9")))) and bool(np.all(cells[:, ~digit] == template[~digit]))


def _fast_times(column: Any) -> Any:
    """Return the times as floats, as `_parse_time` reads each, or None where Arrow might read one otherwise."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if _all_utc_seconds(column):
        # Each is YYYY-MM-DDTHH:MM:SSZ, which the patterns below take as zoned: Arrow reads it as they would.
        try:
            return pc.cast(column, pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy() / 1_000_000
        except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
            return None
    text = pc.utf8_trim_whitespace(column)
    if pc.all(pc.match_substring_regex(text, r"^[0-9]{1,18}$")).as_py():
        values = pc.cast(text, pa.int64()).to_numpy()
        import numpy as np

        return np.where(values > 10**14, values / 1_000_000, np.where(values > 10**11, values / 1000, values.astype(float)))
    if not pc.all(pc.match_substring_regex(text, _ISO + "(?:" + _ZONE[:-1] + ")?$")).as_py():
        return None
    zoned = pc.match_substring_regex(text, _ISO + _ZONE)
    try:
        if pc.all(zoned).as_py():
            stamps = pc.cast(text, pa.timestamp("us", tz="UTC"))
        elif not pc.any(zoned).as_py():
            stamps = pc.cast(text, pa.timestamp("us"))  # no zone: UTC, as `_iso_time` takes it
        else:
            return None
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        return None
    return stamps.cast(pa.int64()).to_numpy() / 1_000_000


CANDLE_LAYOUTS = (
    "freqtrade's header date,open,high,low,close,volume, Binance's kline CSV (open_time,open,high,low,close,...) "
    "or CryptoDataDownload's (unix,date,symbol,open,high,low,close,...)"
)


def _unrecognised(path: Path, line_no: int, header: list[str]) -> str:
    return f"{path}:{line_no}: unrecognised header {','.join(header)!r}: expected {CANDLE_LAYOUTS}"


def read_utf8(path: Path) -> str:
    """Return a text file's contents; raise ValueError naming the file and line of the first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        raise ValueError(f"{path}:{line}: not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8") from None


def _find_header(path: Path, rows: Iterator[list[str]]) -> tuple[int, list[str] | None]:
    """Skip banner lines (a URL, a title: fewer than five cells); return the header's line number and cells."""
    first: tuple[int, list[str]] | None = None
    for line_no, row in enumerate(rows, start=1):
        if first is None and "".join(row).strip():
            first = (line_no, row)
        if len([c for c in row if c.strip()]) >= 5:
            return line_no, row
        if line_no >= 5:
            break
    if first is not None:
        # Lines, but none with a time and four prices: a file of some other kind.
        raise BadData(_unrecognised(path, *first))
    return 0, None


def _looks_numeric(text: str) -> bool:
    return text.strip().isdigit()


def _parse_time(text: str) -> float:
    text = text.strip()
    if text.isdigit():
        return _millis_time(text)
    return _iso_time(text)


def _prepend(first: list[str], rest: Iterator[list[str]]) -> Iterator[list[str]]:
    yield first
    yield from rest


def _iso_time(text: str) -> float:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _millis_time(text: str) -> float:
    value = int(text)
    # Seconds, milliseconds, or (Binance spot klines since 2025) microseconds.
    if value > 10**14:
        return value / 1_000_000
    return value / 1000 if value > 10**11 else float(value)


class ReplayFeed:
    """Candles replayed from memory (read once with `read_candles`); the daemon lives in their time (`hedgebot.replay_clock`)."""

    def __init__(self, candles: Sequence[Candle], loop: bool = False) -> None:
        self._candles = candles
        self._index = 0
        self._loop = loop

    async def next(self) -> Candle | None:
        """Return the next candle; at the end, stop or start over."""
        if self._index >= len(self._candles):
            if not self._loop or not self._candles:
                return None
            self._index = 0
        candle = self._candles[self._index]
        self._index += 1
        return candle


class LiveFeed:
    """Public mark prices polled through ccxt (no keys needed)."""

    def __init__(self, exchange_id: str, symbol: str, exchange: Any | None = None) -> None:
        self.symbol = symbol
        if exchange is None:
            import ccxt.async_support as ccxt_async

            # One request per poll, paced by our own loop on the monotonic clock: ccxt's throttle counts on
            # the wall clock and would hold the poll for the length of a step back.
            exchange = getattr(ccxt_async, exchange_id)({"enableRateLimit": False})
        self._exchange = exchange

    async def next(self) -> Candle:
        """Fetch the current mark price (falling back to the last trade)."""
        import ccxt

        try:
            if self._exchange.has.get("fetchMarkPrice"):
                ticker = await self._exchange.fetch_mark_price(self.symbol)
                raw = ticker.get("markPrice") or ticker.get("last")
            else:
                ticker = await self._exchange.fetch_ticker(self.symbol)
                raw = ticker.get("last")
            stamp = ticker.get("timestamp")
        except ccxt.NetworkError as exc:
            raise VenueUnavailable(f"live price for {self.symbol}: {exc}") from exc
        except ccxt.ExchangeError as exc:
            raise BadData(f"live price for {self.symbol}: {exc}") from exc
        if raw is None:
            raise BadData(f"live price for {self.symbol}: the exchange sent no price")
        price = _decimal(str(raw), f"{self._exchange.id} {self.symbol}")
        if not stamp:
            raise BadData(f"live price for {self.symbol}: the exchange sent no timestamp, so its age is unknown")
        return Candle.point(float(stamp) / 1000, price)

    async def close(self) -> None:
        """Close the exchange session."""
        await self._exchange.close()

