"""The `hedgebot` command end to end: the paper demo, SIGTERM, status and history."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from hedgebot.commands.main import main

REPO = Path(__file__).resolve().parents[1]


def _wait_for(proc: subprocess.Popen, log: Path, needles: list[str], limit: float) -> str:
    """Wait until every needle is in the log (or the process dies, or `limit` passes)."""
    deadline = time.monotonic() + limit
    text = ""
    while time.monotonic() < deadline and proc.poll() is None:
        text = log.read_text()
        if all(n in text for n in needles):
            return text
        time.sleep(0.2)
    return log.read_text()


@pytest.mark.slow
def test_paper_demo_opens_the_hedge_rebalances_and_stops_on_sigterm_without_touching_positions(tmp_path, capsys) -> None:
    state = tmp_path / "state"
    env = {
        **os.environ, "HEDGEBOT_DAEMON__STATE_DIR": str(state), "HEDGEBOT_JOURNAL__PATH": str(state / "journal.sqlite"),
        "HEDGEBOT_HTTP__PORT": "0",  # any free port: another daemon on this machine may hold the default
    }
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hedgebot.commands.main", "run", "--config", "config/paper.toml"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        text = _wait_for(proc, log, ['"hedge_opened"', '"rebalanced"'], limit=60)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(timeout=30)
    assert '"hedge_opened"' in text and '"rebalanced"' in text, text[-3000:]
    assert code == 0
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    opened = next(e for e in lines if e["event"] == "hedge_opened")
    assert abs(Decimal(opened["short"]) - Decimal(opened["exposure"])) <= Decimal("0.001")
    assert lines[-1]["event"] == "daemon_stopped"
    # The balances recorded at the clean stop read as an exchange shows them, not as 29-digit sums.
    snapshot = next(e for e in lines if e["event"] == "account_snapshot")
    wallets = {k: v for k, v in snapshot.items() if k.startswith(("spot ", "futures "))}
    assert wallets and all(-Decimal(v).as_tuple().exponent <= 8 for v in wallets.values()), wallets

    # The short is still there, and every fill on the venue is in the journal.
    venue = json.loads((state / "paper-paper.json").read_text())
    short = Decimal(venue["legs"]["BTC/USDT:USDT|short"][0])
    assert short > 0
    net = sum(
        (Decimal(o["filled"]) if o["side"] == "sell" else -Decimal(o["filled"]))
        for o in venue["orders"].values() if o["position_side"] == "short"
    )
    assert net == short

    os.environ["HEDGEBOT_DAEMON__STATE_DIR"] = str(state)
    os.environ["HEDGEBOT_JOURNAL__PATH"] = str(state / "journal.sqlite")
    try:
        capsys.readouterr()
        assert main(["status", "--config", "config/paper.toml", "--json"]) == 0
        status = json.loads(capsys.readouterr().out)
        assert [h["name"] for h in status] == ["btc-core"]
        for key in ("account", "name", "exposure", "short", "target", "ratio", "drift", "state"):
            assert key in status[0]
        assert Decimal(status[0]["short"]) == short and status[0]["state"] == "stopped"
        assert status[0]["daemon_running"] is False
        assert main(["status", "--config", "config/paper.toml"]) == 0
        assert "not running" in capsys.readouterr().out
        assert main(["history", "--config", "config/paper.toml", "--hedge", "btc-core"]) == 0
        trail = capsys.readouterr().out
        assert "order_filled" in trail and "paper_spot_change" in trail and "rebalanced" in trail
        assert main(["history", "--config", "config/paper.toml", "--hedge", "nope"]) == 2
    finally:
        del os.environ["HEDGEBOT_DAEMON__STATE_DIR"], os.environ["HEDGEBOT_JOURNAL__PATH"]


def test_status_before_any_run_says_so(tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("HEDGEBOT_DAEMON__STATE_DIR", str(tmp_path / "empty"))
    assert main(["status", "--config", "config/paper.toml"]) == 1
    assert "has not run" in capsys.readouterr().err


def test_unknown_arguments_exit_2(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["run", "--config", "config/paper.toml", "--turbo"])
    assert exit_info.value.code == 2


def test_status_shows_the_runway_as_a_price_and_a_percentage_above_the_mark(tmp_path, capsys) -> None:
    import asyncio
    import re

    from hedgebot.clock import SimClock
    from hedgebot.config import load_config
    from hedgebot.engine.daemon import Daemon
    from tests.helpers import paper_settings_dict, write_toml

    config = write_toml(tmp_path / "hedgebot.toml", paper_settings_dict(tmp_path))

    async def run_briefly() -> None:
        clock = SimClock()
        daemon = Daemon(load_config(config), clock)
        await daemon.start()
        await clock.advance(3)
        await daemon.stop()

    asyncio.run(run_briefly())
    capsys.readouterr()
    assert main(["status", "--config", str(config)]) == 0
    lines = capsys.readouterr().out.splitlines()
    header, row = lines[1], lines[2]
    assert "runway" in header
    assert re.search(r" \d+\.\d{2} \(\+\d+\.\d%\) ", row), row


def test_history_lists_a_fill_whose_event_an_older_journal_lacks_with_amount_price_and_fee(tmp_path, capsys) -> None:
    from hedgebot.clock import SimClock
    from hedgebot.store.journal import IntentStatus, Journal
    from tests.helpers import paper_settings_dict, write_toml

    config = write_toml(tmp_path / "hedgebot.toml", paper_settings_dict(tmp_path))
    journal = Journal(tmp_path / "state" / "journal.sqlite", SimClock(start=1_700_000_000.0))
    intent = journal.begin("paper", "btc-core", "order", {"symbol": "BTC/USDT:USDT", "side": "sell", "amount": "0.5"})
    # What a crash between outcome and event used to leave: the outcome, no order_filled.
    journal.finish(intent.client_id, IntentStatus.DONE, {"filled": "0.5", "average_price": "50010", "fee": "10.0"})
    journal.close()
    capsys.readouterr()
    assert main(["history", "--config", str(config), "--hedge", "btc-core", "--json"]) == 0
    fills = [e for e in json.loads(capsys.readouterr().out) if e["kind"] == "order_filled"]
    assert [(f["client_id"], f["filled"], f["average_price"], f["fee"]) for f in fills] == [
        (intent.client_id, "0.5", "50010", "10.0")
    ]
    assert main(["report", "--config", str(config), "--csv"]) == 0
    rows = [line.split(",") for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[11], r[6], r[7], r[8]) for r in rows if r[3] == "fill"] == [(intent.client_id, "0.5", "50010", "10.0")]


def test_history_never_shows_a_signed_request_url_even_from_an_older_journal(tmp_path, capsys) -> None:
    import sqlite3

    from hedgebot.clock import SimClock
    from hedgebot.store.journal import Journal
    from tests.helpers import paper_settings_dict, write_toml

    data = paper_settings_dict(tmp_path)
    config = write_toml(tmp_path / "hedgebot.toml", data)
    journal_path = Path(data["journal"]["path"])
    Journal(journal_path, SimClock()).close()
    signed = (
        "binanceusdm POST https://fapi.binance.com/fapi/v1/order?symbol=BTCUSDT&timestamp=1764740000000"
        "&signature=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 RequestTimeout"
    )
    with sqlite3.connect(journal_path) as db:  # written as a journal from before redaction holds it
        db.execute(
            "INSERT INTO events (at, account, hedge, kind, severity, detail) VALUES (?, ?, ?, ?, ?, ?)",
            (1_764_740_000.0, "paper", "btc-core", "order_failed", "warning", json.dumps({"error": signed})),
        )
    for extra in ([], ["--json"]):
        assert main(["history", "--config", str(config), "--hedge", "btc-core", *extra]) == 0
        out = capsys.readouterr().out
        assert "fapi/v1/order" in out and "9f86d081" not in out and "1764740000000" not in out


def test_the_status_table_shows_the_same_digits_as_status_json_and_the_distance_as_a_percentage(tmp_path, capsys) -> None:
    import asyncio
    import json as json_module
    from decimal import Decimal

    from hedgebot.clock import SimClock
    from hedgebot.config import load_config
    from hedgebot.engine.daemon import Daemon
    from tests.helpers import paper_settings_dict, write_toml

    config = write_toml(tmp_path / "hedgebot.toml", paper_settings_dict(tmp_path))

    async def run_briefly() -> None:
        clock = SimClock()
        daemon = Daemon(load_config(config), clock)
        await daemon.start()
        await clock.advance(3)
        await daemon.stop()

    asyncio.run(run_briefly())
    capsys.readouterr()
    assert main(["status", "--config", str(config), "--json"]) == 0
    hedge = json_module.loads(capsys.readouterr().out)[0]
    assert main(["status", "--config", str(config)]) == 0
    row = capsys.readouterr().out.splitlines()[2].split()
    assert row[2:7] == [hedge["exposure"], hedge["short"], hedge["target"], hedge["ratio"], hedge["drift"]], (row, hedge)
    assert row[7] == f"{Decimal(hedge['distance']) * 100:.2f}%", (row, hedge)


def test_history_shows_each_figure_at_its_kinds_precision_with_times_in_iso_utc(tmp_path, capsys) -> None:
    from hedgebot.clock import SimClock
    from hedgebot.store.journal import Journal
    from tests.helpers import paper_settings_dict, write_toml

    config = write_toml(tmp_path / "hedgebot.toml", paper_settings_dict(tmp_path))
    journal = Journal(tmp_path / "state" / "journal.sqlite", SimClock(start=1_700_000_000.0))
    journal.record_event("paper", "btc-core", "alert", "warning", {
        "code": "liquidation_distance_low", "distance": "0.18765432109876543210987654", "since": 1_699_999_000.5,
        "short": "1.23400000000", "liquidation_price": "61234.56789", "margin_lost": "1E+1", "lasted_seconds": 12.345,
    })
    journal.close()
    capsys.readouterr()
    assert main(["history", "--config", str(config), "--hedge", "btc-core"]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    for shown in ("distance=0.1877", "since=2023-11-14T21:56:40.500Z", "short=1.234 ", "liquidation_price=61234.6",
                  "margin_lost=10.00", "lasted_seconds=12"):
        assert shown in line + " ", line
