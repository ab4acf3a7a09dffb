"""The backtest's chart: six panels sharing one time axis, drawn with matplotlib's Agg backend."""

from __future__ import annotations

from array import array
from datetime import UTC, datetime
from pathlib import Path

from hedgebot.backtest import BacktestResult
from hedgebot.config import HedgeConfig

# More points than this are thinned to each stretch's extremes: a year of
# minutes would otherwise draw half a million segments nobody can see.
_MAX_POINTS = 4000


def _thin(times: array, values: array) -> tuple[list[datetime], list[float]]:
    """Return at most about _MAX_POINTS points, keeping each stretch's lowest and highest value."""
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
    return [datetime.fromtimestamp(t, UTC) for t in xs], ys


def write_chart(path: Path, result: BacktestResult, hedge: HedgeConfig, title: str) -> None:
    """Draw price; exposure and short; drift with the band; liquidation distance with trigger and target;
    cumulative fees and funding; hedged vs unhedged value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    e = result.equity
    t = e["time"]
    policy = hedge.policy()
    fig, axes = plt.subplots(6, 1, figsize=(12, 16), sharex=True, constrained_layout=True)
    fig.suptitle(title, fontsize=13)

    ax = axes[0]
    ax.plot(*_thin(t, e["price"]), color="black", linewidth=0.8)
    ax.set_ylabel("price")
    ax.set_title("Price (close)", loc="left", fontsize=10)

    ax = axes[1]
    ax.plot(*_thin(t, e["exposure"]), label="exposure (coins held)", color="tab:blue", linewidth=1.0)
    ax.plot(*_thin(t, e["short"]), label="short", color="tab:red", linewidth=1.0, linestyle="--")
    ax.set_ylabel(hedge.asset)
    ax.set_title("Exposure and short", loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[2]
    drift = array("d", (d * 100 for d in e["drift_ratio"]))
    ax.plot(*_thin(t, drift), color="tab:purple", linewidth=0.8, label="drift (short − target) / target")
    band = float(policy.band) * 100
    ax.axhline(band, color="grey", linestyle=":", label=f"band ±{band:g} %")
    ax.axhline(-band, color="grey", linestyle=":")
    ax.set_ylabel("%")
    ax.set_title("Drift from the target, with the band", loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)

    ax = axes[3]
    finite = array("d", (d * 100 if d != float("inf") else float("nan") for d in e["liquidation_distance"]))
    ax.plot(*_thin(t, finite), color="tab:orange", linewidth=0.8, label="distance to liquidation (at the candle's high)")
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
    ax.plot(*_thin(t, e["hedged_value"]), color="tab:blue", linewidth=1.0, label="hedged account")
    ax.plot(*_thin(t, e["unhedged_value"]), color="tab:gray", linewidth=1.0, label="the same holdings, unhedged")
    ax.set_ylabel("quote")
    ax.set_title("Account value: hedged vs unhedged", loc="left", fontsize=10)
    ax.legend(loc="upper left", fontsize=8)
    for ax in axes:
        ax.grid(True, alpha=0.3)
    fig.savefig(path, dpi=100)
    plt.close(fig)
