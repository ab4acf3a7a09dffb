"""The backtest's chart: six panels sharing one time axis, drawn with matplotlib's Agg backend.

Liquidations, margin top-ups and spot sales are marked on the price; data gaps
are shaded on every panel and no line is drawn across them; a `--compare` lane
is drawn beside the configured one. This module may NOT compute a figure: it draws the
result it is handed.
"""

from __future__ import annotations

import bisect
import math
from array import array
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from hedgebot.backtest import BacktestResult, TradeRow
from hedgebot.config import HedgeConfig

# More points than this are thinned to each stretch's extremes: a year of
# minutes would otherwise draw half a million segments nobody can see.
_MAX_POINTS = 4000


def _thin(times: array, values: array, gaps: list[tuple[float, float]] | None = None) -> tuple[list[datetime], list[float]]:
    """Return at most about _MAX_POINTS points, keeping each stretch's lowest and highest value; break the line at `gaps`."""
    n = len(times)
    stride = max(1, n // (_MAX_POINTS // 2))
    xs: list[float] = []
    ys: list[float] = []
    for start in range(0, n, stride):
        chunk = range(start, min(start + stride, n))
        if stride == 1:
            xs.append(times[start])
            ys.append(values[start])
            continue
        lo = min(chunk, key=values.__getitem__)
        hi = max(chunk, key=values.__getitem__)
        for i in sorted({lo, hi}):
            xs.append(times[i])
            ys.append(values[i])
    if gaps:
        xs, ys = _break_at(xs, ys, gaps)
    return [datetime.fromtimestamp(t, UTC) for t in xs], ys


def _break_at(xs: list[float], ys: list[float], gaps: list[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """Insert a NaN between two points that straddle a gap, so no line is drawn where there was no data."""
    out_x: list[float] = []
    out_y: list[float] = []
    # A point is a candle's close time; the gap's end is the open of the first candle after it.
    ends = sorted(b for _, b in gaps)
    k = 0
    for i, x in enumerate(xs):
        if i > 0:
            while k < len(ends) and ends[k] < xs[i - 1]:
                k += 1
            if k < len(ends) and xs[i - 1] <= ends[k] < x:
                out_x.append((xs[i - 1] + x) / 2)
                out_y.append(math.nan)
        out_x.append(x)
        out_y.append(ys[i])
    return out_x, out_y


def spot_sale(row: TradeRow) -> bool:
    """Tell whether a trades row is a sale of the spot coin (spot symbols have no settle suffix)."""
    return row.kind == "order" and ":" not in row.symbol and row.side.startswith("sell") and row.amount > 0


def marks(result: BacktestResult) -> dict[str, list[float]]:
    """Return the times of the liquidations, margin top-ups and spot sales the chart marks."""
    found: dict[str, list[float]] = {"liquidation": [], "topup": [], "spot sale": []}
    for row in result.trades:
        if row.kind == "liquidation":
            found["liquidation"].append(row.time)
        elif row.kind == "topup":
            found["topup"].append(row.time)
        elif spot_sale(row):
            found["spot sale"].append(row.time)
    return found


def _price_at(times: array, prices: array, when: float) -> float:
    index = min(max(bisect.bisect_left(times, when), 0), len(times) - 1)
    return prices[index]


def write_chart(
    path: Path, result: BacktestResult, hedge: HedgeConfig, title: str, compare: tuple[str, BacktestResult] | None = None
) -> None:
    """Write chart.png: see `draw_chart`."""
    fig = draw_chart(result, hedge, title, compare)
    import matplotlib.pyplot as plt  # after draw_chart chose the Agg backend

    fig.savefig(path, dpi=100)
    plt.close(fig)


def draw_chart(
    result: BacktestResult, hedge: HedgeConfig, title: str, compare: tuple[str, BacktestResult] | None = None
) -> Any:
    """Return the figure: price with liquidations, top-ups and spot sales; exposure and short; drift with the band; liquidation
    distance with trigger and target; cumulative fees and funding; hedged vs unhedged value; gaps shaded; the
    `compare` lane beside the configured one."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = result.equity
    t = e["time"]
    gaps = result.gaps
    policy = hedge.policy()
    fig, axes = plt.subplots(6, 1, figsize=(12, 16), sharex=True, constrained_layout=True)
    fig.suptitle(title, fontsize=13)

    ax = axes[0]
    ax.plot(*_thin(t, gaps=gaps, values=e["price"]), color="black", linewidth=0.8)
    styles = {
        "liquidation": {"marker": "X", "color": "tab:red", "s": 80, "zorder": 5},
        "topup": {"marker": "^", "color": "tab:green", "s": 14, "zorder": 4},
        "spot sale": {"marker": "v", "color": "tab:orange", "s": 18, "zorder": 4},
    }
    for name, times in marks(result).items():
        if times:
            ax.scatter([datetime.fromtimestamp(x, UTC) for x in times], [_price_at(t, e["price"], x) for x in times],
                       label=f"{name} ({len(times)})", **styles[name])
    if any(marks(result).values()):
        ax.legend(loc="upper left", fontsize=8)
    ax.set_ylabel("price")
    ax.set_title("Price (close)", loc="left", fontsize=10)

    ax = axes[1]
    ax.plot(*_thin(t, gaps=gaps, values=e["exposure"]), label="exposure (coins held)", color="tab:blue", linewidth=1.0)
    ax.plot(*_thin(t, gaps=gaps, values=e["short"]), label="short", color="tab:red", linewidth=1.0, linestyle="--")
    if compare is not None and compare[1].equity:
        c = compare[1].equity
        ax.plot(*_thin(c["time"], gaps=gaps, values=c["short"]), label=f"short, {compare[0]}", color="tab:olive",
                linewidth=0.8, linestyle=":")
    ax.set_ylabel(hedge.asset)
    ax.set_title("Exposure and short", loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[2]
    drift = array("d", (d * 100 for d in e["drift_ratio"]))
    ax.plot(*_thin(t, gaps=gaps, values=drift), color="tab:purple", linewidth=0.8, label="drift (short − target) / target")
    band = float(policy.band) * 100
    ax.axhline(band, color="grey", linestyle=":", label=f"band ±{band:g} %")
    ax.axhline(-band, color="grey", linestyle=":")
    ax.set_ylabel("%")
    ax.set_title("Drift from the target, with the band", loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[3]
    finite = array("d", (d * 100 if d != float("inf") else float("nan") for d in e["liquidation_distance"]))
    ax.plot(*_thin(t, gaps=gaps, values=finite), color="tab:orange", linewidth=0.8, label="distance to liquidation (at the candle's high)")
    guard = policy.guard
    if guard.enabled:
        ax.axhline(float(guard.trigger) * 100, color="tab:red", linestyle="--", label=f"guard trigger {float(guard.trigger):.0%}")
        ax.axhline(float(guard.target) * 100, color="tab:green", linestyle="--", label=f"guard target {float(guard.target):.0%}")
    ax.set_ylabel("%")
    ax.set_ylim(bottom=0)
    ax.set_title("Liquidation distance", loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[4]
    fee_t, fee_v, fund_t, fund_v = [t[0]], [0.0], [t[0]], [0.0]
    for row in result.trades:
        if row.fee:
            fee_t.append(row.time)
            fee_v.append(fee_v[-1] + float(row.fee))
        if row.kind == "funding":
            fund_t.append(row.time)
            fund_v.append(fund_v[-1] + float(row.quote_amount))
    fee_t.append(t[-1])
    fee_v.append(fee_v[-1])
    fund_t.append(t[-1])
    fund_v.append(fund_v[-1])
    ax.step([datetime.fromtimestamp(x, UTC) for x in fee_t], fee_v, where="post", color="tab:red", label="fees paid")
    ax.step([datetime.fromtimestamp(x, UTC) for x in fund_t], fund_v, where="post", color="tab:green", label="funding received (+) / paid (−)")
    ax.axhline(0, color="grey", linewidth=0.5)
    ax.set_ylabel("quote")
    ax.set_title("Cumulative fees and funding", loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[5]
    ax.plot(*_thin(t, gaps=gaps, values=e["hedged_value"]), color="tab:blue", linewidth=1.0, label="hedged account")
    ax.plot(*_thin(t, gaps=gaps, values=e["unhedged_value"]), color="tab:gray", linewidth=1.0, label="the same holdings, unhedged")
    if compare is not None and compare[1].equity:
        c = compare[1].equity
        ax.plot(*_thin(c["time"], gaps=gaps, values=c["hedged_value"]), color="tab:olive", linewidth=0.8, linestyle=":",
                label=f"hedged account, {compare[0]}")
    ax.set_ylabel("quote")
    ax.set_title("Account value: hedged vs unhedged", loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    for ax in axes:
        ax.grid(True, alpha=0.3)
        for a, b in gaps:
            ax.axvspan(datetime.fromtimestamp(a, UTC), datetime.fromtimestamp(b, UTC), color="grey", alpha=0.25, linewidth=0)
    if gaps:
        axes[0].text(0.99, 0.02, f"shaded: {len(gaps)} data gap{'s' if len(gaps) > 1 else ''}", transform=axes[0].transAxes,
                     ha="right", va="bottom", fontsize=8, color="dimgrey")
    return fig
