"""`hedgebot backtest --sweep`: replay every combination of settings in parallel and compare them.

A sweep names keys and their candidate values (`--sweep leverage=2,3,5 --sweep futures=20000,50000`).
Each combination is one ordinary replay (the same keeper, paper venue and journal as `hedgebot backtest`),
run in a process pool on every core by default, or on a Dask cluster (`--executor dask://HOST:PORT`).
A worker reads the inputs itself from the same files, once per process, so nothing large is shipped
to it. Outputs: sweep.csv and sweep.json (one row per combination) and heatmap.png of one figure.
It may NOT read inputs or replay in its own way: each combination goes through .replay as `backtest` does.
"""

from __future__ import annotations

import argparse
import csv
import itertools
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from multiprocessing import get_context
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hedgebot.commands.args import EXIT_BAD_INPUT, EXIT_OK
from hedgebot.commands.backtest.outputs import summary_of
from hedgebot.commands.backtest.replay import (
    BadInput,
    InputFiles,
    ReplayInputs,
    load_inputs,
    replay_once,
    warn_of_gaps,
    with_exchange_balances,
)
from hedgebot.commands.preflight import writable_problem
from hedgebot.config import HedgeConfig
from hedgebot.ops.figures import Figure, Precision, number, text

# Keys that set a starting balance rather than a hedge setting.
FUTURES_KEY = "futures"  # the futures wallet's margin asset (the symbol's settle currency)
SPOT_KEY = "spot"  # the spot wallet's coin (the hedge's asset)

# The table's figures, each with its kind and which way is worse (for the heat map over further keys).
COLUMNS: dict[str, tuple[Figure | None, str]] = {
    "liquidations": (None, "max"),
    "min_liquidation_distance": (Figure.RATIO, "min"),
    "min_runway": (Figure.RATIO, "min"),
    "hedge_value_volatility": (Figure.RATIO, "max"),
    "fees_quote": (Figure.MONEY, "max"),
    "funding_quote": (Figure.MONEY, "min"),
    "coins_sold": (Figure.AMOUNT, "max"),
    "margin_added_quote": (Figure.MONEY, "max"),
    "time_under_hedged_ratio": (Figure.RATIO, "max"),
    "critical_alerts": (None, "max"),
    "orders": (None, "max"),
}
DEFAULT_FIGURE = "min_liquidation_distance"


@dataclass(frozen=True)
class Axis:
    """One swept key and its candidate values, as given."""

    key: str
    values: tuple[str, ...]


Combination = tuple[tuple[str, str], ...]


def parse_axis(text_: str) -> Axis:
    """Parse `KEY=V1,V2,...`; raise BadInput naming the argument."""
    key, sep, values = text_.partition("=")
    key = key.strip()
    items = tuple(v.strip() for v in values.split(",")) if sep else ()
    if not key or not items or any(not v for v in items):
        raise BadInput(f"--sweep {text_!r}: use KEY=V1,V2,... e.g. --sweep leverage=2,3,5 --sweep futures=20000,50000")
    if len(set(items)) != len(items):
        raise BadInput(f"--sweep {text_!r}: a value is given twice")
    return Axis(key, items)


def combinations(axes: Sequence[Axis]) -> list[Combination]:
    """Return every combination of the axes' values, the first axis slowest."""
    return [tuple(zip((a.key for a in axes), values, strict=True)) for values in itertools.product(*(a.values for a in axes))]


def label(combination: Combination) -> str:
    """Return `leverage=3 futures=50000`."""
    return " ".join(f"{k}={v}" for k, v in combination)


def _balance(key: str, value: str) -> Decimal:
    try:
        amount = Decimal(value)
    except InvalidOperation:
        amount = Decimal("NaN")
    if not amount.is_finite() or amount < 0 or amount > Decimal("1e12"):
        raise BadInput(f"--sweep {key}={value}: a balance from 0 to 1e12 is needed")
    return amount


def _with_setting(hedge: dict[str, Any], key: str, value: str) -> None:
    """Set a (dotted) hedge setting in the hedge's dumped config; refuse a key the hedge has not."""
    *path, last = key.split(".")
    node = hedge
    for part in path:
        child = node.get(part) if isinstance(node, dict) else None
        if not isinstance(child, dict):
            raise BadInput(f"--sweep {key}: the hedge has no setting {key!r}")
        node = child
    if last not in node:
        raise BadInput(
            f"--sweep {key}: the hedge has no setting {key!r} (sweep {FUTURES_KEY}, {SPOT_KEY}, "
            "or a hedge setting such as leverage, ratio, band, margin_guard.trigger)"
        )
    node[last] = value


def apply(inputs: ReplayInputs, combination: Combination) -> tuple[HedgeConfig, dict[str, Decimal], dict[str, Decimal]]:
    """Return the hedge config and balances of one combination; raise BadInput naming a bad key or value."""
    spot, futures = dict(inputs.spot), dict(inputs.futures)
    dumped = inputs.hedge.model_dump(mode="json", exclude_unset=False)
    changed = False
    margin_asset = inputs.hedge.symbol.rsplit(":", 1)[-1]
    for key, value in combination:
        if key == FUTURES_KEY:
            futures[margin_asset] = _balance(key, value)
        elif key == SPOT_KEY:
            spot[inputs.hedge.asset] = _balance(key, value)
        else:
            _with_setting(dumped, key, value)
            changed = True
    if not changed:
        return inputs.hedge, spot, futures
    try:
        hedge = HedgeConfig.model_validate(dumped)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "hedge"
        raise BadInput(f"--sweep {label(combination)}: {where}: {first['msg']}") from None
    return hedge, spot, futures


@lru_cache(maxsize=2)
def _inputs_in_this_process(files: InputFiles) -> ReplayInputs:
    return load_inputs(files, lambda _message: None)  # the parent already printed the warnings


def run_combination(files: InputFiles, combination: Combination) -> dict[str, Any]:
    """Replay one combination (in a worker) and return its row: the keys' values and the table's figures."""
    inputs = _inputs_in_this_process(files)
    hedge, spot, futures = apply(inputs, combination)
    result = replay_once(inputs, hedge, spot, futures, record_equity=False)
    summary = summary_of(result)
    precision = Precision.of(inputs.market)
    row: dict[str, Any] = dict(combination)
    for column, (kind, _worse) in COLUMNS.items():
        if column == "coins_sold":
            row[column] = number(result.coins_sold, Figure.AMOUNT, precision)
        else:
            row[column] = summary.get(column)
    if "warning" in summary:
        row["warning"] = summary["warning"]
    return row


def _local_pool(workers: int) -> Executor:
    # spawn, not fork: a forked child would inherit whatever threads and handles the parent holds.
    return ProcessPoolExecutor(max_workers=workers, mp_context=get_context("spawn"))


def _dask_client(url: str) -> Any:
    address = url.removeprefix("dask://")
    if not address or address == url:
        raise BadInput(f"--executor {url!r}: use dask://HOST:PORT, the address of a Dask scheduler")
    try:
        from distributed import Client
    except ImportError:
        raise BadInput(f"--executor {url!r}: Dask is not installed; pip install 'hedgebot[cluster]'") from None
    try:
        return Client(f"tcp://{address}", timeout=10, set_as_default=False)
    except (OSError, TimeoutError) as exc:
        raise BadInput(f"--executor {url!r}: no Dask scheduler answered ({exc})") from None


def run_sweep(
    files: InputFiles, combos: Sequence[Combination], *, workers: int = 1, executor: str | None = None,
    done: Callable[[dict[str, Any]], None] | None = None,
) -> list[dict[str, Any]]:
    """Run every combination and return their rows in the combinations' order.

    One worker runs them here, one after another; more run in a local process pool; an `executor`
    of dask://HOST:PORT sends them to that Dask cluster.
    """
    rows: dict[int, dict[str, Any]] = {}

    def finished(index: int, row: dict[str, Any]) -> None:
        rows[index] = row
        if done is not None:
            done(row)

    if executor is not None:
        client = _dask_client(executor)
        try:
            futures = [client.submit(run_combination, files, c, pure=False) for c in combos]
            for i, future in enumerate(futures):  # all run at once on the cluster; read back in order
                finished(i, future.result())
        finally:
            client.close()
    elif workers <= 1:
        for i, combination in enumerate(combos):
            finished(i, run_combination(files, combination))
    else:
        with _local_pool(min(workers, len(combos))) as pool:
            submitted = {pool.submit(run_combination, files, c): i for i, c in enumerate(combos)}
            for future in as_completed(submitted):
                finished(submitted[future], future.result())
    return [rows[i] for i in range(len(combos))]


def write_table(path: Path, axes: Sequence[Axis], rows: Sequence[dict[str, Any]]) -> None:
    """Write sweep.csv: one row per combination, the keys then the figures."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([a.key for a in axes] + list(COLUMNS))
        for row in rows:
            writer.writerow([row[a.key] for a in axes] + ["" if row.get(c) is None else row[c] for c in COLUMNS])


def table_text(axes: Sequence[Axis], rows: Sequence[dict[str, Any]], precision: Precision) -> str:
    """Return the rows as a table for the terminal."""
    shown = ["liquidations", "min_liquidation_distance", "min_runway", "hedge_value_volatility", "fees_quote",
             "funding_quote", "coins_sold"]
    heads = [a.key for a in axes] + ["liq", "min dist", "min runway", "hedge vol", "fees", "funding", "coins sold"]
    cells = [
        [str(row[a.key]) for a in axes] + [text(row.get(c), COLUMNS[c][0], precision) for c in shown] for row in rows
    ]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths, strict=True))]
    lines.append("-" * len(lines[0]))
    lines += ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def grid(axes: Sequence[Axis], rows: Sequence[dict[str, Any]], figure: str) -> list[list[float | None]]:
    """Return the figure over the first two axes (one row for a single axis), the worst over any further axes."""
    worse = COLUMNS[figure][1]
    first = axes[0]
    second = axes[1] if len(axes) > 1 else None
    cells: list[list[float | None]] = [[None] * (len(second.values) if second else 1) for _ in first.values]
    for row in rows:
        value = row.get(figure)
        if value is None:
            continue
        i = first.values.index(row[first.key])
        j = second.values.index(row[second.key]) if second else 0
        held = cells[i][j]
        if held is None or (value < held if worse == "min" else value > held):
            cells[i][j] = float(value)
    return cells


def write_heatmap(path: Path, axes: Sequence[Axis], rows: Sequence[dict[str, Any]], figure: str, title: str) -> None:
    """Draw the figure over the first two keys (the worst over any others) to a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    cells = grid(axes, rows, figure)
    values = [[math.nan if v is None else v for v in line] for line in cells]
    fig, ax = plt.subplots(figsize=(1.6 + 1.3 * len(values[0]), 1.4 + 0.6 * len(values)))
    image = ax.imshow(values, cmap="RdYlGn_r" if COLUMNS[figure][1] == "max" else "RdYlGn", aspect="auto")
    ax.set_yticks(range(len(axes[0].values)), labels=list(axes[0].values))
    ax.set_ylabel(axes[0].key)
    if len(axes) > 1:
        ax.set_xticks(range(len(axes[1].values)), labels=list(axes[1].values))
        ax.set_xlabel(axes[1].key)
    else:
        ax.set_xticks([])
    for i, line in enumerate(cells):
        for j, value in enumerate(line):
            ax.text(j, i, "-" if value is None else f"{value:.4g}", ha="center", va="center", fontsize=8)
    fig.colorbar(image, ax=ax, label=figure)
    rest = f" (worst over {', '.join(a.key for a in axes[2:])})" if len(axes) > 2 else ""
    ax.set_title(f"{title}: {figure}{rest}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """Add the sweep's arguments to the `backtest` command (which runs cmd_sweep when --sweep is given)."""
    p.add_argument(
        "--sweep", action="append", default=None, metavar="KEY=V1,V2,...",
        help="replay every combination of these values in parallel (repeat per key): a hedge setting such as "
        "leverage or margin_guard.trigger, or futures / spot (the margin asset's / the coin's starting balance)",
    )
    p.add_argument(
        "--sweep-figure", default=DEFAULT_FIGURE, choices=list(COLUMNS), help=f"the figure heatmap.png shows (default {DEFAULT_FIGURE})",
    )
    p.add_argument("--workers", type=int, default=None, help="sweep processes on this machine (default: every core)")
    p.add_argument("--executor", default=None, help="run the sweep on a Dask cluster: dask://HOST:PORT (pip install 'hedgebot[cluster]')")


def _combinations_checked(args: argparse.Namespace, inputs: ReplayInputs) -> tuple[list[Axis], list[Combination]]:
    axes = [parse_axis(t) for t in args.sweep]
    keys = [a.key for a in axes]
    if len(set(keys)) != len(keys):
        raise BadInput(f"--sweep: key {next(k for k in keys if keys.count(k) > 1)!r} is swept twice: give its values once")
    if args.compare is not None:
        raise BadInput("--compare and --sweep go separately: a sweep compares its own combinations")
    if args.workers is not None and not 1 <= args.workers <= 512:
        raise BadInput(f"--workers {args.workers}: from 1 to 512")
    combos = combinations(axes)
    if len(combos) > 10_000:
        raise BadInput(f"--sweep: {len(combos)} combinations; at most 10000 in one sweep")
    for combination in combos:
        apply(inputs, combination)  # every value is checked before anything runs
    return axes, combos


def cmd_sweep(args: argparse.Namespace) -> int:
    """Run `hedgebot backtest --sweep ...`; return the exit code."""
    def warn(message: str) -> None:
        print(f"hedgebot: warning: {message}", file=sys.stderr)

    out: Path = args.out or Path(f"sweep-{args.hedge}")
    try:
        problem = writable_problem("--out", out)
        if problem:
            raise BadInput(problem)
        # Read once here: the workers replay from these balances and never call the exchange.
        files = with_exchange_balances(InputFiles.of(args), print)
        inputs = load_inputs(files, warn)
        axes, combos = _combinations_checked(args, inputs)
        workers = args.workers or os.cpu_count() or 1
        warn_of_gaps(inputs, inputs.prices or args.prices, warn)
        out.mkdir(parents=True, exist_ok=True)
        count = iter(range(1, len(combos) + 1))

        def done(row: dict[str, Any]) -> None:
            print(f"  {next(count)}/{len(combos)} {label(tuple((a.key, row[a.key]) for a in axes))}", file=sys.stderr, flush=True)

        rows = run_sweep(files, combos, workers=workers, executor=args.executor, done=done)
    except BadInput as exc:
        print(f"hedgebot: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    write_table(out / "sweep.csv", axes, rows)
    (out / "sweep.json").write_text(json.dumps({"keys": [a.key for a in axes], "rows": rows}, indent=2) + "\n")
    names = "sweep.csv, sweep.json"
    if not args.no_chart:
        write_heatmap(out / "heatmap.png", axes, rows, args.sweep_figure, f"{inputs.hedge.name} {inputs.hedge.symbol}")
        names += ", heatmap.png"
    print(table_text(axes, rows, Precision.of(inputs.market)))
    print(f"\nwrote {out}/{names}")
    return EXIT_OK

