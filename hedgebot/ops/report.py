"""What each hedge earned, paid and risked over a period, read from the journal (`hedgebot report`, `history`).

Per hedge: funding received and paid, fees, margin added and released,
orders, time spent outside the band, the worst liquidation distance the
journal recorded, and the hedge's PnL beside the unhedged holding's. The
ledger (`--csv`) lists every fill, funding payment, transfer and margin
change as one row, so the totals can be checked line by line. This module may NOT write to
the journal, nor know a command's arguments (hedgebot.commands.report).
"""

from __future__ import annotations

import csv
import io
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hedgebot.ops.figures import Figure, Precision, booked, iso_utc, percent, render
from hedgebot.ops.tally import number
from hedgebot.ops.watch import LIQUIDATION_LOW
from hedgebot.store.journal import Event, Intent, IntentStatus, Journal

ZERO = Decimal(0)
LEDGER_COLUMNS = ("time", "account", "hedge", "type", "symbol", "side", "amount", "price", "fee", "asset", "exchange_id", "client_id", "note")


@dataclass(frozen=True)
class LedgerRow:
    """One money movement: a fill, a funding payment, a margin change or a transfer."""

    at: float
    account: str
    hedge: str
    type: str  # fill | funding | margin | transfer
    symbol: str
    side: str
    amount: Decimal  # base units for fills (face value for coin-margined ones); the margin asset for funding (+ received), margin (+ added) and transfers
    price: Decimal | None
    fee: Decimal
    asset: str
    exchange_id: str
    client_id: str
    note: str = ""

    def to_csv(self) -> list[str]:
        """Return the row's cells."""
        return [
            iso_utc(self.at), self.account, self.hedge, self.type, self.symbol, self.side, booked(self.amount),
            "" if self.price is None else format(self.price, "f"), booked(self.fee), self.asset, self.exchange_id, self.client_id, self.note,
        ]


@dataclass
class HedgeReport:
    """One hedge's figures over the period."""

    account: str
    hedge: str
    quote: str = ""
    funding_received: Decimal = ZERO
    funding_paid: Decimal = ZERO
    fees: Decimal = ZERO
    margin_added: Decimal = ZERO
    margin_released: Decimal = ZERO
    orders: Counter[str] = field(default_factory=Counter)
    seconds_outside_band: float = 0.0
    worst_distance: Decimal | None = None
    first_price: Decimal | None = None
    last_price: Decimal | None = None
    exposure_at_start: Decimal | None = None
    short_at_start: Decimal = ZERO
    short_at_end: Decimal = ZERO
    short_cash: Decimal = ZERO  # quote received for selling the short minus paid for buying it back (coins, inverse)
    precision: Precision = field(default_factory=Precision)  # the market's steps the figures are shown at
    # A coin-margined short: its amounts are face value, its PnL and every money figure in the coin.
    inverse: bool = False
    margin_locked: Decimal | None = None  # the margin behind the leg at its last trade in the period
    runway: Decimal | None = None  # the runway at its last trade, as a fraction of the mark (None: unlimited or unknown)
    seconds: float = 0.0  # the period's length, from its start (or the journal's first event) to its end
    # ratio = "beta": the beta hedged with, the rolling correlation and the out-of-sample variance reduction, as last
    # journaled in the period (beta_figures events; None: not a beta hedge, or no candle in the period).
    beta: Decimal | None = None
    correlation: Decimal | None = None
    hedge_effectiveness: Decimal | None = None

    @property
    def funding_a_year(self) -> Decimal | None:
        """Return the period's net funding at a year's pace: the leg's carrying cost as it was paid (+ received)."""
        if self.seconds < 86400:  # less than a day annualises one settlement's noise
            return None
        return (self.funding_received - self.funding_paid) * Decimal(365 * 86400) / Decimal(str(self.seconds))

    @property
    def hedge_pnl(self) -> Decimal | None:
        """Return the short's PnL over the period: trading at the period's prices, plus funding, minus fees."""
        if self.first_price is None or self.last_price is None:
            return None
        if self.inverse:  # a short of face F is coins F/P owed: held from the first price, bought back at the last
            trading = self.short_cash - self.short_at_start / self.first_price + self.short_at_end / self.last_price
        else:
            trading = self.short_cash + self.short_at_start * self.first_price - self.short_at_end * self.last_price
        return trading + self.funding_received - self.funding_paid - self.fees

    @property
    def holding_pnl(self) -> Decimal | None:
        """Return what the exposure held at the start gained or lost unhedged over the period."""
        if self.first_price is None or self.last_price is None or self.exposure_at_start is None:
            return None
        change = self.exposure_at_start * (self.last_price - self.first_price)
        return change / self.last_price if self.inverse else change  # inverse: in coins at the last price, as hedge_pnl

    def to_json(self) -> dict[str, Any]:
        """Return the report as JSON-ready data: each figure as a string at its kind (money as booked, so rows add up)."""
        shown = self.precision
        money = {
            "funding_received": self.funding_received, "funding_paid": self.funding_paid, "fees": self.fees,
            "margin_added": self.margin_added, "margin_released": self.margin_released,
        }
        return {
            "account": self.account, "hedge": self.hedge, "quote": self.quote,
            **{name: render(value, Figure.BALANCE, shown) for name, value in money.items()},
            "orders": dict(self.orders), "seconds_outside_band": render(self.seconds_outside_band, Figure.SECONDS, shown),
            "worst_liquidation_distance": render(self.worst_distance, Figure.RATIO, shown),
            "funding_a_year": render(self.funding_a_year, Figure.BALANCE, shown),
            "margin_locked": render(self.margin_locked, Figure.BALANCE, shown),
            "runway": render(self.runway, Figure.RATIO, shown),
            "hedge_pnl": render(self.hedge_pnl, Figure.BALANCE, shown),
            "holding_pnl": render(self.holding_pnl, Figure.BALANCE, shown),
            "first_price": render(self.first_price, Figure.PRICE, shown),
            "last_price": render(self.last_price, Figure.PRICE, shown),
            **{name: render(value, Figure.AMOUNT, shown) for name, value in (
                ("exposure_at_start", self.exposure_at_start), ("short_at_start", self.short_at_start),
                ("short_at_end", self.short_at_end),
            )},
            **{name: render(getattr(self, name), Figure.RATIO, shown) for name in ("beta", "correlation", "hedge_effectiveness")},
        }


@dataclass(frozen=True)
class Period:
    """The times a report covers, in seconds since the epoch (None: open)."""

    since: float | None = None
    until: float | None = None

    def holds(self, at: float) -> bool:
        """Tell whether `at` lies in the period."""
        return (self.since is None or at >= self.since) and (self.until is None or at < self.until)


def _intent_time(intent: Intent) -> float:
    stamp = number((intent.outcome or {}).get("timestamp"))
    return float(stamp) if stamp is not None else intent.updated_at


def ledger(journal: Journal, hedges: Sequence[tuple[str, str]], period: Period) -> list[LedgerRow]:
    """Return every fill, funding payment, margin change and transfer of these hedges in the period, oldest first."""
    rows: list[LedgerRow] = []
    for account, hedge in hedges:
        for intent in journal.intents(account, hedge):
            if intent.status is not IntentStatus.DONE or not period.holds(_intent_time(intent)):
                continue
            row = _intent_row(intent)
            if row is not None:
                rows.append(row)
        for event in journal.events(account, hedge, kind="funding"):
            if period.holds(event.at):
                d = event.detail
                rows.append(LedgerRow(
                    event.at, account, hedge, "funding", str(d.get("symbol", "")), str(d.get("side", "")),
                    number(d.get("amount")) or ZERO, number(d.get("price")), ZERO, _quote(str(d.get("symbol", ""))), "", "",
                    f"rate {d['rate']}" if d.get("rate") is not None else str(d.get("detail", "")),
                ))
    rows.sort(key=lambda r: (r.at, r.account, r.hedge))
    return rows


def _quote(symbol: str) -> str:
    """Return the asset a symbol's fees and funding are paid in: its settlement asset (the coin, coin-margined)."""
    if ":" in symbol:
        return symbol.rpartition(":")[2]
    return symbol.partition("/")[2]


def _intent_row(intent: Intent) -> LedgerRow | None:
    out = intent.outcome or {}
    detail = intent.detail
    at = _intent_time(intent)
    if intent.kind == "order":
        filled = number(out.get("filled")) or ZERO
        if filled == 0:
            return None
        symbol = str(out.get("symbol") or detail.get("symbol", ""))
        side = str(out.get("side") or detail.get("side", ""))
        position = out.get("position_side") or detail.get("position_side")
        return LedgerRow(
            at, intent.account, intent.hedge, "fill", symbol, f"{side} {position}" if position else side,
            filled, number(out.get("average_price")), number(out.get("fee")) or ZERO, _quote(symbol),
            str(out.get("order_id", "")), intent.client_id, str(detail.get("reason", "")),
        )
    amount = number(out.get("amount")) if out.get("amount") is not None else number(detail.get("amount"))
    if intent.kind == "margin":
        return LedgerRow(
            at, intent.account, intent.hedge, "margin", str(detail.get("symbol", "")), "add" if (amount or 0) > 0 else "release",
            amount or ZERO, None, ZERO, str(out.get("asset", "")), str(out.get("venue_id", "")), intent.client_id,
            str(detail.get("reason", "")),
        )
    if intent.kind == "transfer":
        return LedgerRow(
            at, intent.account, intent.hedge, "transfer", "", f"{detail.get('from', '')}->{detail.get('to', '')}",
            amount or ZERO, None, ZERO, str(detail.get("asset", out.get("asset", ""))), str(out.get("venue_id", "")),
            intent.client_id, str(detail.get("reason", "")),
        )
    return None


DONE_EVENTS = {"order": "order_filled", "margin": "margin_adjusted", "transfer": "transferred"}


def untold_outcomes(journal: Journal, account: str, hedge: str) -> list[Event]:
    """Return an event for each done intent whose own event is missing from the journal, stamped at its outcome.

    Journals written before outcome and event shared a transaction can hold a fill without its
    `order_filled` (a crash between the two, or a settlement at start-up that only said `intent_settled`);
    `history` shows those from the intents, so it lists every fill that `report --csv` lists.
    """
    told = {
        str(event.detail.get("client_id"))
        for kind in DONE_EVENTS.values()
        for event in journal.events(account, hedge, kind=kind)
    }
    untold = []
    for intent in journal.intents(account, hedge):
        if intent.status is not IntentStatus.DONE or intent.client_id in told or intent.kind not in DONE_EVENTS:
            continue
        out = intent.outcome or {}
        figures = {k: out[k] for k in ("filled", "average_price", "fee", "status") if k in out}
        detail = {"client_id": intent.client_id, **intent.detail, **figures, "from_intent": True}
        untold.append(Event(0, intent.updated_at, account, hedge, DONE_EVENTS[intent.kind], "info", detail))
    return untold


def build_reports(
    journal: Journal, hedges: Sequence[tuple[str, str, str]], period: Period, now: float,
    precision_of: Callable[[str, str], Precision] = lambda account, hedge: Precision(),
) -> list[HedgeReport]:
    """Return one report per (account, hedge, symbol) over the period, its figures shown at `precision_of` the hedge."""
    rows = ledger(journal, [(a, h) for a, h, _ in hedges], period)
    reports = []
    for account, hedge, symbol in hedges:
        base, settle = symbol.partition("/")[0], symbol.rpartition(":")[2]
        report = HedgeReport(account, hedge, _quote(symbol), precision=precision_of(account, hedge), inverse=base == settle)
        events = journal.events(account, hedge)
        intents = journal.intents(account, hedge)
        _orders_and_short(report, intents, period, symbol)
        for row in rows:
            if (row.account, row.hedge) == (account, hedge):
                _add_row(report, row)
        _prices(report, events, rows, period, account, hedge)
        _band_and_distance(report, events, period, now)
        _beta(report, events, period)
        reports.append(report)
    return reports


def _add_row(report: HedgeReport, row: LedgerRow) -> None:
    if row.type == "fill":
        report.fees += row.fee
    elif row.type == "funding":
        if row.amount >= 0:
            report.funding_received += row.amount
        else:
            report.funding_paid += -row.amount
    elif row.type == "margin":
        if row.amount > 0:
            report.margin_added += row.amount
        else:
            report.margin_released += -row.amount


def _orders_and_short(report: HedgeReport, intents: Iterable[Intent], period: Period, symbol: str) -> None:
    moved = ZERO
    for intent in intents:
        if intent.kind != "order":
            continue
        at = _intent_time(intent)
        if period.holds(at):
            report.orders[intent.status.value] += 1
        out = intent.outcome or {}
        if intent.status is not IntentStatus.DONE or out.get("position_side") != "short" or out.get("symbol", symbol) != symbol:
            continue
        filled = number(out.get("filled")) or ZERO
        signed = filled if out.get("side") == "sell" else -filled
        if period.since is not None and at < period.since:
            report.short_at_start += signed
        elif period.holds(at):
            price = number(out.get("average_price")) or ZERO
            if report.inverse:  # selling face F at p takes on F/p coins owed; buying it back at q pays them off
                report.short_cash -= signed / price if price > 0 else ZERO
            else:
                report.short_cash += signed * price
            moved += signed
    report.short_at_end = report.short_at_start + moved


def _prices(report: HedgeReport, events: Sequence[Event], rows: Sequence[LedgerRow], period: Period, account: str, hedge: str) -> None:
    seen: list[tuple[float, Decimal]] = []
    for event in events:
        price = number(event.detail.get("mark")) or (number(event.detail.get("price")) if event.kind == "funding" else None)
        if price is not None and period.holds(event.at):
            seen.append((event.at, price))
    for row in rows:
        if (row.account, row.hedge) == (account, hedge) and row.type == "fill" and row.price is not None and ":" in row.symbol:
            seen.append((row.at, row.price))
    if seen:
        seen.sort(key=lambda p: p[0])
        report.first_price, report.last_price = seen[0][1], seen[-1][1]
    exposures = [(e.at, number(e.detail.get("exposure"))) for e in events if number(e.detail.get("exposure")) is not None]
    before = [x for at, x in exposures if period.since is not None and at < period.since]
    inside = [x for at, x in exposures if period.holds(at)]
    report.exposure_at_start = before[-1] if before else (inside[0] if inside else None)


def _beta(report: HedgeReport, events: Sequence[Event], period: Period) -> None:
    """Take a beta hedge's figures from the last beta_figures event in the period."""
    for event in events:
        if event.kind == "beta_figures" and period.holds(event.at):
            for name in ("beta", "correlation", "hedge_effectiveness"):
                setattr(report, name, number(event.detail.get(name)))


def _band_and_distance(report: HedgeReport, events: Sequence[Event], period: Period, now: float) -> None:
    start = period.since if period.since is not None else float("-inf")
    end = period.until if period.until is not None else now
    out_since: float | None = None
    for event in events:
        if event.kind == "band_left":
            out_since = event.at
        elif event.kind in ("band_returned", "band_unwatched") and out_since is not None:
            report.seconds_outside_band += max(0.0, min(event.at, end) - max(out_since, start))
            out_since = None
        if not period.holds(event.at):
            continue
        if event.kind in ("hedge_opened", "rebalanced"):
            locked = number(event.detail.get("margin_locked"))
            report.margin_locked = locked if locked is not None else report.margin_locked
            report.runway = number(event.detail.get("runway"))
        if event.kind in ("alert", "alert_resolved") and event.detail.get("code") != LIQUIDATION_LOW:
            continue
        for key in ("distance", "worst_distance"):
            value = number(event.detail.get(key))
            if value is not None and (report.worst_distance is None or value < report.worst_distance):
                report.worst_distance = value
    if out_since is not None:
        report.seconds_outside_band += max(0.0, end - max(out_since, start))
    first = start if period.since is not None else (events[0].at if events else end)
    report.seconds = max(0.0, end - first)


# ---- output ---------------------------------------------------------------------------


def _money(value: Decimal | None, precision: Precision, kind: Figure = Figure.MONEY) -> str:
    """Return money (or a price) at the market's step, with thousands separated."""
    return "-" if value is None else f"{Decimal(render(value, kind, precision)):,f}"  # never an exponent (0E-8)


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h {minutes:02d}m {secs:02d}s"


def render_table(reports: Sequence[HedgeReport], period: Period) -> str:
    """Return the reports as a human table: one column per hedge."""
    since = iso_utc(period.since) if period.since is not None else "the start of the journal"
    until = iso_utc(period.until) if period.until is not None else "now"
    names = [f"{r.account}/{r.hedge}" for r in reports]
    lines = [
        ("funding received", [f"{_money(r.funding_received, r.precision)} {r.quote}" for r in reports]),
        ("funding paid", [f"{_money(r.funding_paid, r.precision)} {r.quote}" for r in reports]),
        ("fees", [f"{_money(r.fees, r.precision)} {r.quote}" for r in reports]),
        ("margin added", [f"{_money(r.margin_added, r.precision)} {r.quote}" for r in reports]),
        ("margin released", [f"{_money(r.margin_released, r.precision)} {r.quote}" for r in reports]),
        ("orders filled", [str(r.orders.get("done", 0)) for r in reports]),
        ("orders not done", [str(sum(v for k, v in r.orders.items() if k != "done")) for r in reports]),
        ("time outside band", [_duration(r.seconds_outside_band) for r in reports]),
        ("worst liq. distance", [percent(r.worst_distance) for r in reports]),
        ("price first -> last", [
            f"{_money(r.first_price, r.precision, Figure.PRICE)} -> {_money(r.last_price, r.precision, Figure.PRICE)}"
            for r in reports
        ]),
        ("funding at a year's pace", [f"{_money(r.funding_a_year, r.precision)} {r.quote}" for r in reports]),
        ("margin locked (last)", [f"{_money(r.margin_locked, r.precision)} {r.quote}" for r in reports]),
        ("runway (last)", [percent(r.runway) if r.runway is not None else "-" for r in reports]),
        ("hedge PnL", [f"{_money(r.hedge_pnl, r.precision)} {r.quote}" for r in reports]),
        ("unhedged holding PnL", [f"{_money(r.holding_pnl, r.precision)} {r.quote}" for r in reports]),
    ]
    if any(r.beta is not None for r in reports):
        lines.append(("beta / correlation", [
            f"{render(r.beta, Figure.RATIO, r.precision) or '-'} / {render(r.correlation, Figure.RATIO, r.precision) or '-'}"
            for r in reports
        ]))
        lines.append(("hedge effectiveness", [percent(r.hedge_effectiveness) if r.hedge_effectiveness is not None else "-" for r in reports]))
    width = max(len(label) for label, _ in lines)
    columns = [max(len(name), *(len(cells[i]) for _, cells in lines)) for i, name in enumerate(names)]
    out = [f"hedgebot report from {since} to {until}", ""]
    out.append(" " * width + "  " + "  ".join(name.rjust(w) for name, w in zip(names, columns, strict=True)))
    for label, cells in lines:
        out.append(label.ljust(width) + "  " + "  ".join(cell.rjust(w) for cell, w in zip(cells, columns, strict=True)))
    out.append("")
    out.append("hedge PnL: the short's trading result at the period's first and last prices, plus funding, minus fees.")
    out.append("unhedged holding PnL: the exposure held at the start, valued at the same two prices.")
    out.append("funding at a year's pace: the period's net funding (received less paid) scaled to a year; the leg's carrying cost.")
    return "\n".join(out)


def render_csv(rows: Sequence[LedgerRow]) -> str:
    """Return the ledger as CSV with a header row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(LEDGER_COLUMNS)
    for row in rows:
        writer.writerow(row.to_csv())
    return buffer.getvalue()
