"""`hedgebot report`: per-hedge figures and a CSV ledger that add up to the journal's own numbers."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from decimal import Decimal
from pathlib import Path

from hedgebot.commands.main import main
from hedgebot.clock import SimClock
from hedgebot.ops.report import Period, build_reports, ledger, render_csv, render_table
from hedgebot.store.journal import IntentStatus, Journal
from tests.helpers import D, SYMBOL, paper_run, paper_settings_dict, write_toml

T0 = 1_700_000_000.0


def handmade_journal() -> Journal:
    """A journal with one of everything, at known times."""
    clock = SimClock(start=T0)
    journal = Journal(":memory:", clock)

    def order(at: float, side: str, filled: str, price: str, fee: str, status: IntentStatus = IntentStatus.DONE) -> None:
        intent = journal.begin("acct", "btc", "order", {"symbol": SYMBOL, "side": side, "amount": filled, "position_side": "short", "reason": "test"})
        outcome = {"order_id": f"ex-{intent.seq}", "symbol": SYMBOL, "side": side, "position_side": "short", "filled": filled,
                   "average_price": price, "fee": fee, "status": "filled", "timestamp": at}
        journal.finish(intent.client_id, status, outcome if status is IntentStatus.DONE else {"error": "no"})

    def movement(at: float, kind: str, amount: str) -> None:
        detail = {"symbol": SYMBOL, "amount": amount, "reason": "test"} if kind == "margin" else {"asset": "USDT", "amount": amount, "from": "spot", "to": "futures", "reason": "test"}
        intent = journal.begin("acct", "btc", kind, detail)
        journal.finish(intent.client_id, IntentStatus.DONE, {"venue_id": f"mv-{intent.seq}", "kind": kind, "asset": "USDT", "amount": amount, "timestamp": at})

    order(T0 + 10, "sell", "2", "50000", "50")
    journal.record_event("acct", "btc", "hedge_opened", "info", {"exposure": "2", "short": "2", "target": "2", "mark": "50000", "distance": "0.33"}, at=T0 + 10)
    order(T0 + 20, "sell", "1", "51000", "25.5", IntentStatus.REJECTED)
    journal.record_event("acct", "btc", "funding", "info", {"symbol": SYMBOL, "side": "short", "amount": "10", "price": "50500", "rate": "0.0001"}, at=T0 + 100)
    journal.record_event("acct", "btc", "funding", "info", {"symbol": SYMBOL, "side": "short", "amount": "-4", "price": "50200", "rate": "-0.00004"}, at=T0 + 200)
    journal.record_event("acct", "btc", "band_left", "info", {"exposure": "2.5"}, at=T0 + 300)
    movement(T0 + 320, "margin", "100")
    journal.record_event("acct", "btc", "alert", "warning", {"code": "liquidation_distance_low", "distance": "0.18"}, at=T0 + 330)
    journal.record_event("acct", "btc", "alert", "warning", {"code": "trading_blocked", "distance": "0.01"}, at=T0 + 331)
    journal.record_event("acct", "btc", "band_returned", "info", {"seconds_outside": 60}, at=T0 + 360)
    movement(T0 + 400, "margin", "-40")
    movement(T0 + 410, "transfer", "40")
    order(T0 + 500, "buy", "0.5", "49000", "12.25")
    journal.record_event("acct", "btc", "rebalanced", "info", {"exposure": "1.5", "short": "1.5", "target": "1.5", "mark": "49000", "distance": "0.35"}, at=T0 + 500)
    return journal


def test_the_report_sums_funding_fees_margin_orders_band_time_and_pnl() -> None:
    journal = handmade_journal()
    [report] = build_reports(journal, [("acct", "btc", SYMBOL)], Period(), now=T0 + 1000)
    assert (report.funding_received, report.funding_paid) == (D("10"), D("4"))
    assert report.fees == D("62.25")
    assert (report.margin_added, report.margin_released) == (D("100"), D("40"))
    assert dict(report.orders) == {"done": 2, "rejected": 1}
    assert report.seconds_outside_band == 60
    assert report.worst_distance == D("0.18")  # only the liquidation alert's distance counts, not another alert's field
    assert (report.first_price, report.last_price) == (D("50000"), D("49000"))
    # Short: sold 2 at 50,000, bought 0.5 back at 49,000; 1.5 left, valued at 49,000.
    assert report.hedge_pnl == D("100000") - D("24500") - D("1.5") * D("49000") + D("10") - D("4") - D("62.25")
    assert report.holding_pnl == D("2") * (D("49000") - D("50000"))
    table = render_table([report], Period())
    assert "acct/btc" in table and "62.25 USDT" in table and "0h 01m 00s" in table and "18.00%" in table


def test_a_period_counts_only_what_happened_inside_it() -> None:
    journal = handmade_journal()
    period = Period(T0 + 150, T0 + 450)
    [report] = build_reports(journal, [("acct", "btc", SYMBOL)], period, now=T0 + 1000)
    assert (report.funding_received, report.funding_paid, report.fees) == (D("0"), D("4"), D("0"))
    assert (report.margin_added, report.margin_released) == (D("100"), D("40"))
    assert report.short_at_start == D("2") and report.short_at_end == D("2") and report.exposure_at_start == D("2")
    assert [r.type for r in ledger(journal, [("acct", "btc")], period)] == ["funding", "margin", "margin", "transfer"]


def test_the_csv_has_one_row_per_movement_with_the_exchanges_ids() -> None:
    journal = handmade_journal()
    rows = list(csv.DictReader(io.StringIO(render_csv(ledger(journal, [("acct", "btc")], Period())))))
    assert [(r["type"], r["amount"], r["exchange_id"]) for r in rows] == [
        ("fill", "2", "ex-1"), ("funding", "10", ""), ("funding", "-4", ""), ("margin", "100", "mv-3"),
        ("margin", "-40", "mv-4"), ("transfer", "40", "mv-5"), ("fill", "0.5", "ex-6"),
    ]
    assert rows[0]["time"] == "2023-11-14T22:13:30Z" and rows[0]["price"] == "50000" and rows[0]["fee"] == "50"


async def test_on_a_paper_run_the_report_and_csv_add_up_to_the_journal(tmp_path, capsys) -> None:
    path = await paper_run(tmp_path)

    capsys.readouterr()
    assert main(["report", "--config", str(path), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert main(["report", "--config", str(path), "--json"]) == 0
    [figures] = json.loads(capsys.readouterr().out)["hedges"]
    assert main(["report", "--config", str(path)]) == 0
    assert "paper/btc-core" in capsys.readouterr().out

    db = sqlite3.connect(tmp_path / "state" / "journal.sqlite")
    fills = [json.loads(o) for (o,) in db.execute("SELECT outcome FROM intents WHERE kind = 'order' AND status = 'done'")]
    funding = [Decimal(json.loads(d)["amount"]) for (d,) in db.execute("SELECT detail FROM events WHERE kind = 'funding'")]
    assert len(fills) >= 3 and len(funding) >= 3  # the run traded and paid funding
    csv_fills = [r for r in rows if r["type"] == "fill"]
    csv_funding = [Decimal(r["amount"]) for r in rows if r["type"] == "funding"]
    assert len(csv_fills) == len(fills) and len(csv_funding) == len(funding)
    assert sum(Decimal(r["fee"]) for r in csv_fills) == sum(Decimal(f["fee"]) for f in fills) == Decimal(figures["fees"])
    assert sum(Decimal(r["amount"]) for r in csv_fills) == sum(Decimal(f["filled"]) for f in fills)
    assert sorted(r["exchange_id"] for r in csv_fills) == sorted(f["order_id"] for f in fills)
    received = sum((a for a in funding if a > 0), Decimal(0))
    paid = -sum((a for a in funding if a < 0), Decimal(0))
    assert (Decimal(figures["funding_received"]), Decimal(figures["funding_paid"])) == (received, paid)
    assert sum(csv_funding) == received - paid
    assert figures["orders"]["done"] == len(fills)
    net_short = sum(Decimal(f["filled"]) * (1 if f["side"] == "sell" else -1) for f in fills if f["position_side"] == "short")
    assert Decimal(figures["short_at_end"]) == net_short


def test_bad_report_arguments_exit_2_with_a_message(tmp_path, capsys) -> None:
    path = write_toml(tmp_path / "hedgebot.toml", paper_settings_dict(tmp_path))
    assert main(["report", "--config", str(path), "--since", "yesterday"]) == 2
    assert "--since 'yesterday' is not a date" in capsys.readouterr().err
    assert main(["report", "--config", str(path), "--since", "2026-11-02", "--until", "2026-11-01"]) == 2
    assert "is not after --since" in capsys.readouterr().err
    assert main(["report", "--config", str(path), "--account", "nobody"]) == 2
    assert "--account 'nobody' is not in" in capsys.readouterr().err
    assert main(["report", "--config", str(path)]) == 1
    assert "no journal at" in capsys.readouterr().err


def _live_pepe_journal(tmp_path) -> Path:
    """A live Binance account hedging PEPE, whose steps no local table knows, with a journal of its fills."""
    data = paper_settings_dict(tmp_path, name="pepe", asset="PEPE", symbol="PEPE/USDT:USDT", max_order="100000000")
    account = data["accounts"][0]
    del account["paper"]
    account.update(name="binance", mode="live", credentials={"api_key": {"env": "HB_UNSET_KEY"}, "secret": {"env": "HB_UNSET_SECRET"}})
    path = write_toml(tmp_path / "live.toml", data)
    (tmp_path / "state").mkdir()
    journal = Journal(str(tmp_path / "state" / "journal.sqlite"), SimClock(start=T0))
    for at, side, filled, price in ((T0 + 10, "sell", "50000000", "0.00001234"), (T0 + 500, "buy", "10000000", "0.000013015")):
        intent = journal.begin("binance", "pepe", "order", {"symbol": "PEPE/USDT:USDT", "side": side, "amount": filled, "position_side": "short", "reason": "test"})
        journal.finish(intent.client_id, IntentStatus.DONE, {"order_id": f"ex-{intent.seq}", "symbol": "PEPE/USDT:USDT", "side": side, "position_side": "short",
                                                              "filled": filled, "average_price": price, "fee": "0.30851", "status": "filled", "timestamp": at})
    journal.record_event("binance", "pepe", "hedge_opened", "info", {"exposure": "50000000", "short": "50000000", "target": "50000000", "mark": "0.00001234", "distance": "0.33"}, at=T0 + 10)
    transfer = journal.begin("binance", "pepe", "transfer", {"asset": "USDT", "amount": "12.345678", "from": "spot", "to": "futures", "reason": "fund the short"})
    journal.finish(transfer.client_id, IntentStatus.DONE, {"venue_id": "mv-3", "kind": "transfer", "asset": "USDT", "amount": "12.345678", "timestamp": T0 + 20})
    journal.record_event("binance", "pepe", "transferred", "info", {"asset": "USDT", "amount": "12.345678", "from": "spot", "to": "futures"}, at=T0 + 20)
    journal.record_event("binance", "pepe", "rebalanced", "info", {"exposure": "40000000", "short": "40000000", "target": "40000000", "mark": "0.000013015", "distance": "0.35"}, at=T0 + 500)
    journal.close()
    return path


def test_a_hedge_whose_market_steps_are_not_known_shows_every_digit_in_report_history_and_csv_not_a_guessed_step(tmp_path, capsys) -> None:
    path = _live_pepe_journal(tmp_path)
    capsys.readouterr()
    assert main(["report", "--config", str(path), "--json"]) == 0
    [figures] = json.loads(capsys.readouterr().out)["hedges"]
    assert (figures["first_price"], figures["last_price"]) == ("0.00001234", "0.000013015")  # not "0.00"
    assert (figures["short_at_start"], figures["short_at_end"]) == ("0", "40000000")
    assert main(["report", "--config", str(path)]) == 0
    assert "0.00001234 -> 0.000013015" in capsys.readouterr().out
    assert main(["history", "--config", str(path), "--hedge", "pepe"]) == 0
    history = capsys.readouterr().out
    assert "mark=0.00001234" in history and "mark=0.000013015" in history
    assert "amount=12.345678 asset=USDT" in history  # the quote asset moved exactly as booked, not 12.35 nor 12.346
    assert main(["report", "--config", str(path), "--csv"]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["price"] for r in rows if r["type"] == "fill"] == ["0.00001234", "0.000013015"]


def test_the_csv_writes_a_fills_price_whole_even_past_eight_decimals() -> None:
    clock = SimClock(start=T0)
    journal = Journal(":memory:", clock)
    intent = journal.begin("acct", "shib", "order", {"symbol": "SHIB/USDT:USDT", "side": "sell", "amount": "1000000", "position_side": "short", "reason": "test"})
    journal.finish(intent.client_id, IntentStatus.DONE, {"order_id": "ex-1", "symbol": "SHIB/USDT:USDT", "side": "sell", "position_side": "short",
                                                          "filled": "1000000", "average_price": "0.000008123456", "fee": "0.004061728", "status": "filled", "timestamp": T0})
    [row] = csv.DictReader(io.StringIO(render_csv(ledger(journal, [("acct", "shib")], Period()))))
    assert row["price"] == "0.000008123456"  # a price is not booked money: no 8-decimal cut


def test_a_coin_margined_shorts_report_counts_its_pnl_in_coins_and_a_full_hedge_nets_to_nothing() -> None:
    from hedgebot.ops.report import HedgeReport

    # 10 BTC hedged at 1x: 300,000 USD of face sold at 30,000 and held while BTC doubled.
    report = HedgeReport("main", "btc", "BTC", inverse=True, first_price=D(30000), last_price=D(60000),
                         exposure_at_start=D(10), short_at_start=D(300000), short_at_end=D(300000))
    assert report.hedge_pnl == D(-5)  # 300,000 x (1/60,000 - 1/30,000) coins
    assert report.holding_pnl == D(5)  # the coins' dollar gain, in coins at the last price
    assert report.hedge_pnl + report.holding_pnl == 0
    sold = HedgeReport("main", "btc", "BTC", inverse=True, first_price=D(30000), last_price=D(60000), exposure_at_start=D(10),
                       short_cash=-D(300000) / D(30000), short_at_end=D(300000))  # sold inside the period at 30,000
    assert sold.hedge_pnl == D(-5)


def test_the_report_says_the_funding_at_a_years_pace_and_the_margin_and_runway_at_the_last_trade() -> None:
    journal = Journal(":memory:", SimClock(T0))
    day = 86400.0
    journal.record_event("acct", "btc", "hedge_opened", "info", {"exposure": "2", "short": "2", "target": "2", "mark": "50000",
                                                                   "distance": "0.33", "margin_locked": "33400", "runway": "0.45"}, at=T0)
    for n in range(30):  # a month of 3 settlements a day, 10 USDT each, one paid back each day
        for k, amount in enumerate(("10", "10", "-10")):
            journal.record_event("acct", "btc", "funding", "info", {"symbol": SYMBOL, "side": "short", "amount": amount,
                                                                      "price": "50000", "rate": "0.0001"}, at=T0 + n * day + k * 8 * 3600 + 1)
    journal.record_event("acct", "btc", "rebalanced", "info", {"exposure": "2.2", "short": "2.2", "target": "2.2", "mark": "51000",
                                                                 "distance": "0.31", "margin_locked": "37000", "runway": "0.40"}, at=T0 + 20 * day)
    [report] = build_reports(journal, [("acct", "btc", SYMBOL)], Period(), now=T0 + 30 * day)
    assert report.funding_received - report.funding_paid == D("300")
    assert report.funding_a_year == D("3650")  # 300 USDT over 30 days
    assert (report.margin_locked, report.runway) == (D("37000"), D("0.40"))
    table = render_table([report], Period())
    assert "3,650 USDT" in table and "37,000 USDT" in table and "40.00%" in table, table
    assert report.to_json()["funding_a_year"] == "3650" and report.to_json()["margin_locked"] == "37000"
    # A period shorter than a day says no yearly pace: one settlement's sign would be read as a year's.
    [short] = build_reports(journal, [("acct", "btc", SYMBOL)], Period(T0, T0 + 3600), now=T0 + 30 * day)
    assert short.funding_a_year is None
