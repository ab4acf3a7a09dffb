"""A backtest's results as files and lines: summary.json, equity.csv, trades.csv, alerts.csv, the printed summary.

Owns each figure's precision (money at the margin step, prices at the price step, ratios to 4 places), the
headline a user must read first, and the policies' comparison table. It may NOT read an input or run a replay.
"""

from __future__ import annotations

import csv
import dataclasses
import json
import math
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.backtest import BacktestResult
from hedgebot.commands.args import iso
from hedgebot.ops.figures import RATIO_PLACES, Figure, Precision, number, percent, text

# The kind of each summary figure: money at the margin step, prices at the price step, ratios to 4 places.
_KINDS: dict[str, Figure] = {
    **{key: Figure.MONEY for key in (
        "fees_quote", "funding_quote", "margin_added_quote", "hedged_value_start", "hedged_value_end", "unhedged_value_end",
    )},
    **{key: Figure.RATIO for key in (
        "hedge_value_volatility", "unhedged_value_volatility", "max_abs_drift_ratio", "time_outside_band_ratio",
        "time_under_hedged_ratio", "min_liquidation_distance", "min_runway",
    )},
    **{key: Figure.PRICE for key in ("price_first", "price_last", "price_peak")},
    **{key: Figure.SECONDS for key in ("time_under_hedged_seconds", "interval_seconds")},
}
# Ratios a person reads as percentages, printed beside the ratio.
_PERCENTAGES = frozenset({"min_liquidation_distance", "min_runway", "time_outside_band_ratio", "time_under_hedged_ratio",
                          "hedge_value_volatility", "unhedged_value_volatility", "max_abs_drift_ratio"})


def _plain(key: str, value: Any, precision: Precision) -> Any:
    kind = _KINDS.get(key)
    if kind is not None:
        return number(value, kind, precision)
    if isinstance(value, Decimal):
        return number(value, Figure.MONEY, precision)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _duration(seconds: float) -> str:
    hours = seconds / 3600
    return f"{hours / 24:.1f} days" if hours >= 48 else f"{hours:.1f} h"


def headline(result: BacktestResult) -> str | None:
    """Return what the user must read first: a hedge that never reached its target, or was under it for a while."""
    m = result.metrics
    under = float(m.get("time_under_hedged_seconds") or 0.0)
    ratio = float(m.get("time_under_hedged_ratio") or 0.0)
    if m.get("target_reached") is False:
        return (
            f"the hedge NEVER reached its target: under-hedged for the whole run ({_duration(under)}, {ratio:.2%} of the time); "
            f"final short {result.final_short} against an exposure of {result.final_exposure}"
        )
    if under > 0:
        return f"the hedge was under its target for {_duration(under)} ({ratio:.2%} of the time)"
    return None


def summary_of(result: BacktestResult) -> dict[str, Any]:
    """Return summary.json's fields, what must be read first at the top; each figure at its kind's precision."""
    precision = Precision.of(result.market)
    data: dict[str, Any] = {}
    top = headline(result)
    if top is not None:
        data["warning"] = top
    data.update({key: _plain(key, value, precision) for key, value in result.metrics.items()})
    data["start"] = iso(result.metrics["start"])
    data["end"] = iso(result.metrics["end"])
    data["critical_alerts"] = result.critical_alerts
    data["keeper_wakes"] = result.keeper_wakes
    data["topup_sources"] = result.topup_sources
    data["price_first"] = number(result.first_price, Figure.PRICE, precision)
    data["price_last"] = number(result.last_price, Figure.PRICE, precision)
    data["price_peak"] = number(result.peak_price, Figure.PRICE, precision)
    return data


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """Write summary.json."""
    path.write_text(json.dumps(summary, indent=2) + "\n")


def _cell(value: Any, kind: Figure, precision: Precision) -> str:
    shown = text(value, kind, precision)
    return "" if shown in ("-", "unlimited") else shown


def _places(kind: Figure, precision: Precision) -> int | None:
    """Return the decimal places `text` shows a figure of `kind` at (None: every digit)."""
    step = {Figure.PRICE: precision.price, Figure.MONEY: precision.money, Figure.AMOUNT: precision.amount}.get(kind, RATIO_PLACES)
    if step is None:
        return None
    return -min(int(step.normalize().as_tuple().exponent), 0)


def _cells(values: Sequence[float], kind: Figure, precision: Precision) -> list[str]:
    """Return `_cell` of each float, formatting most of them straight from the float.

    `text` rounds the float's shortest repr half to even. Where that repr is
    not a tie at the shown places and the float is far finer than them,
    rounding the float itself (as format does, half to even) gives the same
    digits; every other value goes through `_cell`.
    """
    places = _places(kind, precision)
    if places is None:
        return [_cell(v, kind, precision) for v in values]
    shape = f"{{:.{places}f}}".format
    fine = 2.0**52 * 10.0 ** -(places + 1)  # below this, a float's spacing is far under the last place shown
    tie = "5"
    out: list[str] = []
    append = out.append
    last_shown = ""
    last_text = ""
    for value in values:
        shown = repr(value)
        if shown == last_shown:
            append(last_text)
            continue
        dot = shown.find(".")
        if dot < 0 or "e" in shown or not (0 < abs(value) < fine) or shown[dot + 1 + places :] == tie:
            last_text = _cell(value, kind, precision)
        else:
            last_text = shape(value)
        last_shown = shown
        append(last_text)
    return out


def _times(values: Sequence[float]) -> list[str]:
    """Return `iso` of each time; whole seconds all at once."""
    import numpy as np

    times = np.asarray(values, dtype=float)
    if len(times) and bool(np.all(times == np.floor(times))) and bool(np.all(np.abs(times) < 2.0**53)):
        stamps = np.datetime_as_string(times.astype(np.int64).astype("datetime64[s]"), unit="s")
        return [f"{t}Z" for t in stamps.tolist()]
    return [iso(t) for t in values]


def write_equity(path: Path, result: BacktestResult) -> None:
    """Write equity.csv: the account's value over time, hedged and unhedged, with the hedge's state."""
    e = result.equity
    precision = Precision.of(result.market)
    if result.market is not None and result.market.inverse:
        # Its values are dollars (not its coin margin's 8 decimals) and its exposure and short coins, to the satoshi.
        precision = dataclasses.replace(precision, amount=Decimal("0.00000001"), money=Decimal("0.01"))
    columns = [
        _times(e["time"]),
        *(
            _cells(e[name], kind, precision)
            for name, kind in (
                ("price", Figure.PRICE), ("hedged_value", Figure.MONEY), ("unhedged_value", Figure.MONEY),
                ("exposure", Figure.AMOUNT), ("short", Figure.AMOUNT), ("drift_ratio", Figure.RATIO),
                ("liquidation_distance", Figure.RATIO),
            )
        ),
    ]
    if len({len(c) for c in columns}) > 1:
        raise ValueError("the equity series differ in length")
    with path.open("w", newline="") as handle:
        handle.write("time,price,hedged_value,unhedged_value,exposure,short,drift_ratio,liquidation_distance\n")
        handle.writelines(",".join(row) + "\n" for row in zip(*columns, strict=True))


def write_alerts(path: Path, result: BacktestResult) -> None:
    """Write alerts.csv: each alert with its code, severity, and the times it was raised and resolved."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["code", "severity", "raised_at", "resolved_at", "lasted_seconds", "message", "resolved_message"])
        for row in result.alert_rows:
            lasted = "" if row.resolved_at is None else f"{row.resolved_at - row.raised_at:.0f}"
            writer.writerow([
                row.code, row.severity, iso(row.raised_at), "" if row.resolved_at is None else iso(row.resolved_at), lasted,
                row.message, row.resolved_message,
            ])


def write_trades(path: Path, result: BacktestResult) -> None:
    """Write trades.csv: every order, top-up, transfer, funding payment, spot change and liquidation."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["time", "kind", "symbol_or_asset", "side", "amount", "price", "fee", "quote_amount", "detail"])
        precision = Precision.of(result.market)
        base = result.market.base if result.market is not None else None
        for row in result.trades:
            coins = row.kind in ("order", "liquidation") or row.symbol == base
            writer.writerow([
                iso(row.time), row.kind, row.symbol, row.side,
                _cell(row.amount, Figure.AMOUNT if coins else Figure.MONEY, precision), _cell(row.price, Figure.PRICE, precision),
                _cell(row.fee, Figure.MONEY, precision), _cell(row.quote_amount, Figure.MONEY, precision), row.detail,
            ])


def print_summary(summary: dict[str, Any], precision: Precision | None = None) -> None:
    """Print the summary's fields, one a line, each figure at its kind's precision."""
    precision = precision or Precision()
    if "warning" in summary:
        print(f"WARNING: {summary['warning']}")
    for key, value in summary.items():
        if key in ("comparison", "warning"):
            continue
        shown = text(value, _KINDS.get(key), precision) if isinstance(value, float) else value
        if key in _PERCENTAGES and isinstance(value, float):
            shown = f"{shown} ({percent(value)})"
        elif key == "time_under_hedged_seconds" and isinstance(value, int) and value:
            shown = f"{value} ({_duration(value)})"
        elif isinstance(value, dict):  # counts by name, in words (a dict's repr reads like debugger output)
            shown = ", ".join(f"{name} {count}" for name, count in value.items()) or "none"
        elif key == "instrument_choices":  # one choice a line: when, what was chosen, what it compared
            shown = "none" if not value else "".join(
                f"\n    {c['at']} {c['when']}: {c['contract']} ("
                + ", ".join(f"{symbol} {percent(rate) if rate is not None else 'unknown'}" for symbol, rate in c["carries"].items())
                + ")"
                for c in value
            )
        print(f"  {key:<28} {shown}")


def comparison_table(rows: Sequence[tuple[str, BacktestResult]]) -> str:
    """Return the policies side by side: orders, fees, time outside the band, hedge-value volatility, liquidations."""
    head = f"{'policy':<22} {'orders':>7} {'fees':>12} {'outside band':>13} {'hedge vol':>10} {'liquidations':>13}"
    lines = [head, "-" * len(head)]
    for name, result in rows:
        m = result.metrics
        vol = m["hedge_value_volatility"]
        lines.append(
            f"{name:<22} {m['orders']:>7} {float(m['fees_quote']):>12.2f} {m['time_outside_band_ratio']:>12.2%} "
            f"{'-' if vol is None else f'{vol:.2%}':>10} {m['liquidations']:>13}"
        )
    return "\n".join(lines)

