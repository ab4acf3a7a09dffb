"""A recorded implied-volatility surface: implied volatilities by expiry and strike, interpolated between the points.

The file is CSV with the header `expiry,strike,iv`, one point a line:
`expiry` an ISO date (the expiry is 08:00 UTC that day, Deribit's and
Binance's hour) or an ISO date-time with its offset; `strike` in the quote
currency; `iv` a fraction (0.55 = 55 % a year). Blank lines and lines starting
with `#` are skipped.

Between points the IV is linear in strike within an expiry, and linear in
total variance (IV² × years) across expiries at that strike; beyond the
edges it is flat: below the lowest strike a slice's lowest-strike IV, before
the first live expiry the first one's IV, after the last the last one's IV.
Expiries already past are left out; when all are past the last one stands.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path

from hedgebot.domain.put_plan import MAX_VOLATILITY, YEAR_SECONDS, PutQuote

HEADER = ("expiry", "strike", "iv")
_EXPIRY_HOUR = 8


class SurfaceError(ValueError):
    """A volatility surface file that cannot be read: the message names the file, the line and the value."""


@dataclass(frozen=True)
class VolSurface:
    """Implied volatilities at (expiry in epoch seconds, strike) points; `iv()` interpolates between them."""

    slices: tuple[tuple[float, tuple[tuple[float, float], ...]], ...]  # (expiry, ((strike, iv), ...)), both sorted

    @classmethod
    def of_points(cls, points: Iterable[tuple[float, float, float]]) -> VolSurface:
        """Return the surface through (expiry, strike, iv) points (at least one, no point twice)."""
        by_expiry: dict[float, dict[float, float]] = {}
        for expiry, strike, iv in points:
            by_expiry.setdefault(expiry, {})[strike] = iv
        if not by_expiry:
            raise ValueError("a volatility surface needs at least one point")
        return cls(tuple((e, tuple(sorted(by_expiry[e].items()))) for e in sorted(by_expiry)))

    @classmethod
    def of_puts(cls, puts: Iterable[PutQuote]) -> VolSurface:
        """Return the surface of a recorded chain's puts: each put with a sensible IV is a point."""
        points = [(p.expiry, float(p.strike), p.iv) for p in puts if p.iv is not None and 0 < p.iv <= MAX_VOLATILITY]
        return cls.of_points(points)

    def iv(self, strike: float, expiry: float, now: float) -> float:
        """Return the implied volatility of a put at `strike` expiring at `expiry`, seen at `now`."""
        live = [(e, s) for e, s in self.slices if e > now]
        if not live:
            return _in_strike(self.slices[-1][1], strike)
        years = (expiry - now) / YEAR_SECONDS
        first_years = (live[0][0] - now) / YEAR_SECONDS
        if years <= first_years:
            return _in_strike(live[0][1], strike)
        for (e0, s0), (e1, s1) in zip(live, live[1:], strict=False):
            y0, y1 = (e0 - now) / YEAR_SECONDS, (e1 - now) / YEAR_SECONDS
            if years <= y1:
                w0, w1 = _in_strike(s0, strike) ** 2 * y0, _in_strike(s1, strike) ** 2 * y1
                variance = w0 + (w1 - w0) * (years - y0) / (y1 - y0)
                return math.sqrt(max(variance, 0.0) / years)
        return _in_strike(live[-1][1], strike)

    def to_csv(self) -> str:
        """Return the surface as the file `load_surface` reads."""
        lines = [",".join(HEADER)]
        for expiry, points in self.slices:
            stamp = datetime.fromtimestamp(expiry, UTC).isoformat()
            lines.extend(f"{stamp},{strike:g},{iv:.6f}" for strike, iv in points)
        return "\n".join(lines) + "\n"


def _in_strike(points: tuple[tuple[float, float], ...], strike: float) -> float:
    """Return the IV at `strike` linear between a slice's points, flat beyond its lowest and highest strike."""
    if strike <= points[0][0]:
        return points[0][1]
    for (k0, v0), (k1, v1) in zip(points, points[1:], strict=False):
        if strike <= k1:
            return v0 + (v1 - v0) * (strike - k0) / (k1 - k0)
    return points[-1][1]


def _expiry(text: str) -> float:
    """Return an ISO date (08:00 UTC) or an ISO date-time with an offset as epoch seconds, or raise ValueError."""
    text = text.strip()
    if len(text) == 10:
        day = datetime.strptime(text, "%Y-%m-%d")  # noqa: DTZ007 - a calendar day; the hour and zone are added below
        return datetime(day.year, day.month, day.day, _EXPIRY_HOUR, tzinfo=UTC).timestamp()
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError("has no UTC offset")
    return moment.timestamp()


def _number(text: str) -> float:
    value = float(Decimal(text.strip()))
    if not math.isfinite(value):
        raise ValueError
    return value


def load_surface(path: Path) -> VolSurface:
    """Read a surface file (`expiry,strike,iv`), or raise SurfaceError naming the file, the line and the value."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SurfaceError(f"volatility surface {path}: no such file") from None
    except IsADirectoryError:
        raise SurfaceError(f"volatility surface {path}: is a directory, not a file") from None
    except UnicodeDecodeError:
        raise SurfaceError(f"volatility surface {path}: not UTF-8 text") from None
    except OSError as exc:
        raise SurfaceError(f"volatility surface {path}: cannot be read ({exc.strerror})") from None
    rows = [(n, row) for n, row in enumerate(csv.reader(text.splitlines()), start=1)
            if row and any(c.strip() for c in row) and not row[0].lstrip().startswith("#")]
    if not rows:
        raise SurfaceError(f"volatility surface {path}: empty (expected the header {','.join(HEADER)} and one point a line)")
    line, header = rows[0]
    if tuple(c.strip().lower() for c in header) != HEADER:
        raise SurfaceError(f"volatility surface {path} line {line}: header is {','.join(header)!r}, expected {','.join(HEADER)!r}")
    if len(rows) == 1:
        raise SurfaceError(f"volatility surface {path}: has a header but no points")
    points: dict[tuple[float, float], int] = {}
    values: list[tuple[float, float, float]] = []
    for line, row in rows[1:]:
        where = f"volatility surface {path} line {line}"
        if len(row) != len(HEADER):
            raise SurfaceError(f"{where}: {','.join(row)!r} has {len(row)} fields, expected 3 (expiry,strike,iv)")
        try:
            expiry = _expiry(row[0])
        except ValueError:
            raise SurfaceError(f"{where}: expiry {row[0].strip()!r} is not an ISO date (2027-01-29) or date-time with offset") from None
        try:
            strike = _number(row[1])
        except (ValueError, InvalidOperation):
            raise SurfaceError(f"{where}: strike {row[1].strip()!r} is not a number") from None
        try:
            iv = _number(row[2])
        except (ValueError, InvalidOperation):
            raise SurfaceError(f"{where}: iv {row[2].strip()!r} is not a number") from None
        if strike <= 0:
            raise SurfaceError(f"{where}: strike {row[1].strip()} is not above 0")
        if not 0 < iv <= MAX_VOLATILITY:
            raise SurfaceError(f"{where}: iv {row[2].strip()} is not above 0 and at most {MAX_VOLATILITY:g} (a fraction: 0.55 = 55 %)")
        if (expiry, strike) in points:
            raise SurfaceError(
                f"{where}: expiry {row[0].strip()} strike {row[1].strip()} is given twice (first on line {points[expiry, strike]})"
            )
        points[expiry, strike] = line
        values.append((expiry, strike, iv))
    return VolSurface.of_points(values)
