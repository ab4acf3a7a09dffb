"""Coins held outside the account, as a custody system counts them in a file it writes.

A hedge may count coins kept in cold storage or at a broker (`[accounts.hedges.exposure] file`).
The custody system writes what it holds, with the time it counted, as JSON:

    {"at": "2026-12-04T05:00:00Z", "holdings": {"BTC": "12.5", "ETH": "300"}}

or as CSV with a header naming `asset`, `amount` and `at` (the rows of the asset with the latest `at` count,
added up: one per wallet, say):

    asset,amount,at
    BTC,12.5,2026-12-04T05:00:00Z

`at` is ISO 8601 (UTC unless it says otherwise) or seconds (or milliseconds) since the epoch. A `.json`
file is read as JSON and a `.csv` one as CSV; another name by its first character. The keeper reads the
file at every look; this module only parses it and says, naming the field and value, what is wrong.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

# A count stamped further ahead of our clock than this is refused: the custody system's clock is wrong.
FUTURE_TOLERANCE_SECONDS = 300.0
MAX_FILE_BYTES = 1_000_000
# An epoch number above this is read as milliseconds (in seconds it would be past the year 5000).
MILLISECONDS_FROM = 1e11


class CustodyFileError(ValueError):
    """The custody file cannot be read or says something that is not a count."""


@dataclass(frozen=True)
class CustodyCount:
    """How many coins of one asset the custody system holds, and when it counted them."""

    amount: Decimal
    at: float  # seconds since the epoch
    price: Decimal | None = None  # the asset's price where the coins are held, when the source can say


def read_custody_file(path: Path, asset: str, now: float) -> CustodyCount:
    """Return the count of `asset` in the custody file at `path`; raise CustodyFileError saying what is wrong."""
    try:
        raw = path.read_bytes()[: MAX_FILE_BYTES + 1]
    except OSError as exc:
        raise CustodyFileError(f"custody file {path}: {exc.strerror or exc}") from None
    if len(raw) > MAX_FILE_BYTES:
        raise CustodyFileError(f"custody file {path} is larger than {MAX_FILE_BYTES} bytes")
    try:
        text = raw.decode("utf-8-sig")  # a spreadsheet's CSV may start with a byte-order mark
    except UnicodeDecodeError:
        raise CustodyFileError(f"custody file {path} is not UTF-8 text") from None
    if not text.strip():
        raise CustodyFileError(f"custody file {path} is empty")
    as_json = path.suffix.lower() == ".json" or (path.suffix.lower() != ".csv" and text.lstrip()[:1] in "{[")
    count = _from_json(text, path, asset) if as_json else _from_csv(text, path, asset)
    if count.at > now + FUTURE_TOLERANCE_SECONDS:
        raise CustodyFileError(
            f"custody file {path}: at {_iso(count.at)} is {count.at - now:.0f}s ahead of this machine's clock"
        )
    return count


def _from_json(text: str, path: Path, asset: str) -> CustodyCount:
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise CustodyFileError(f"custody file {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise CustodyFileError(f"custody file {path}: expected a JSON object with 'at' and 'holdings', got {type(data).__name__}")
    holdings = data.get("holdings")
    if not isinstance(holdings, dict):
        raise CustodyFileError(f"custody file {path}: 'holdings' must be an object of asset to amount, got {holdings!r}"[:300])
    if asset not in holdings:
        raise CustodyFileError(f"custody file {path}: holdings has no {asset} (it lists {', '.join(map(str, holdings)) or 'nothing'})"[:300])
    return CustodyCount(_amount(holdings[asset], path, f"holdings.{asset}"), _time(data.get("at"), path, "at"))


def _from_csv(text: str, path: Path, asset: str) -> CustodyCount:
    reader = csv.DictReader(io.StringIO(text))
    header = [name.strip() for name in reader.fieldnames or []]
    missing = [name for name in ("asset", "amount", "at") if name not in header]
    if missing:
        raise CustodyFileError(f"custody file {path}: the CSV header lacks {', '.join(missing)} (it has {header})"[:300])
    counts: list[CustodyCount] = []
    for line, row in enumerate(reader, start=2):
        row = {str(k).strip(): v for k, v in row.items() if k is not None}
        if (row.get("asset") or "").strip() != asset:
            continue
        counts.append(CustodyCount(_amount(row.get("amount"), path, f"line {line} amount"), _time(row.get("at"), path, f"line {line} at")))
    if not counts:
        raise CustodyFileError(f"custody file {path}: no row for {asset}")
    # The latest count holds; its rows (one per wallet, say) add up.
    at = max(c.at for c in counts)
    return CustodyCount(sum((c.amount for c in counts if c.at == at), Decimal(0)), at)


def _amount(value: Any, path: Path, field: str) -> Decimal:
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        raise CustodyFileError(f"custody file {path}: {field} {str(value)[:40]!r} is not a number") from None
    if not amount.is_finite() or amount < 0:
        raise CustodyFileError(f"custody file {path}: {field} {str(value)[:40]!r} is not an amount of coins (finite, 0 or more)")
    return amount


def _time(value: Any, path: Path, field: str) -> float:
    if isinstance(value, bool) or value is None or str(value).strip() == "":
        raise CustodyFileError(f"custody file {path}: {field} is missing (the time the coins were counted)")
    text = str(value).strip()
    try:
        seconds = float(text)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise CustodyFileError(f"custody file {path}: {field} {text[:40]!r} is not an ISO 8601 time or epoch seconds") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        return moment.timestamp()
    if not math.isfinite(seconds) or seconds <= 0:
        raise CustodyFileError(f"custody file {path}: {field} {text[:40]!r} is not a time")
    if seconds > MILLISECONDS_FROM:
        seconds /= 1000  # epoch milliseconds, as many systems write them (seconds this large would be past year 5000)
    if seconds > MILLISECONDS_FROM:
        raise CustodyFileError(f"custody file {path}: {field} {text[:40]!r} is not a time (epoch seconds or milliseconds)")
    return seconds


def _iso(seconds: float) -> str:
    try:
        return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, ValueError, OSError):
        return f"{seconds:.0f} (epoch seconds)"
