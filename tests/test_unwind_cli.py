"""`hedgebot unwind` end to end on the paper venue: killed half-way, run again, and closed for good."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import SYMBOL, clean_env, paper_settings_dict, write_toml

pytestmark = pytest.mark.realtime

REPO = Path(__file__).resolve().parents[1]
D = Decimal


def _config(tmp_path: Path) -> Path:
    data = paper_settings_dict(tmp_path, tick_seconds=0.5)
    data["daemon"]["status_interval_seconds"] = 0.3
    data["http"] = {"enabled": False}
    return write_toml(tmp_path / "unwind.toml", data)


def _env(crashpoint: str | None = None) -> dict[str, str]:
    env = clean_env()
    if crashpoint:
        env["HEDGEBOT_CRASHPOINT"] = crashpoint
    return env


def _hedgebot(args: list[str], log: Path, crashpoint: str | None = None, timeout: float = 60) -> int:
    with log.open("a") as out:
        proc = subprocess.run(
            [sys.executable, "-m", "hedgebot.commands.main", *args], cwd=REPO, env=_env(crashpoint), stdout=out,
            stderr=subprocess.STDOUT, timeout=timeout, stdin=subprocess.DEVNULL,
        )
    return proc.returncode


def _run_daemon_until(config: Path, state: Path, log: Path, done, limit: float = 30) -> dict:
    """Run the daemon until the status file satisfies `done`, then SIGTERM it; return that status."""
    with log.open("a") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "hedgebot.commands.main", "run", "--config", str(config)], cwd=REPO, env=_env(),
            stdout=out, stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + limit
    status: dict = {}
    try:
        while time.monotonic() < deadline:
            path = state / "status.json"
            if path.exists():
                data = json.loads(path.read_text())
                if data["pid"] == proc.pid and data["hedges"] and done(data["hedges"][0]):
                    status = data["hedges"][0]
                    break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0, log.read_text()[-3000:]
    assert status, f"the daemon never reached the expected state:\n{log.read_text()[-3000:]}"
    return status


def _venue(state: Path) -> dict:
    return json.loads((state / "paper-paper.json").read_text())


@pytest.mark.slow
def test_unwind_killed_half_way_completes_when_run_again_without_repeating_a_slice_and_stays_closed(tmp_path: Path) -> None:
    config, state, log = _config(tmp_path), tmp_path / "state", tmp_path / "run.log"
    _run_daemon_until(config, state, log, lambda h: h["state"] == "hedged")
    assert D(_venue(state)["legs"][f"{SYMBOL}|short"][0]) == D("2")

    args = ["unwind", "--config", str(config), "--hedge", "btc-core", "--sell-spot", "--slices", "4", "--yes"]
    assert _hedgebot(["unwind", "--config", str(config), "--hedge", "btc-core", "--sell-spot", "--slices", "4", "--plan"], log) == 0
    assert "buy back 0.5 of the short" in log.read_text()
    # SIGKILL right after the venue filled the second short slice, before the journal heard of it.
    code = _hedgebot(args, log, crashpoint="action_sent:3")
    assert code == -signal.SIGKILL, log.read_text()[-3000:]
    venue = _venue(state)
    assert D(venue["legs"][f"{SYMBOL}|short"][0]) == D("1") and D(venue["spot"]["BTC"]) == D("1.5")
    assert _hedgebot(args, log) == 0, log.read_text()[-3000:]

    venue = _venue(state)
    short, spot = D(venue["legs"][f"{SYMBOL}|short"][0]), D(venue["spot"]["BTC"])
    assert short == 0 and spot == 0, (short, spot)
    unwind_orders = [o for o in venue["orders"].values() if o["timestamp"] and (o["position_side"] == "short" and o["side"] == "buy" or o["position_side"] is None)]
    kinds = ["short" if o["position_side"] == "short" else "spot" for o in sorted(unwind_orders, key=lambda o: int(o["order_id"].split("-")[1]))]
    assert kinds == ["short", "spot"] * 4, "each slice once, a short slice before each spot slice"
    assert all(D(o["filled"]) == D("0.5") for o in unwind_orders)

    db = sqlite3.connect(state / "journal.sqlite")
    trail = [json.loads(row[0]) for row in db.execute("SELECT detail FROM intents WHERE detail LIKE '%\"unwind\"%' AND status = 'done' ORDER BY id")]
    held_short, held_spot = D("2"), D("2")
    for step in trail:
        if step.get("position_side") == "short":
            held_short -= D(step["amount"])
        elif step.get("side") == "sell":
            held_spot -= D(step["amount"])
        assert held_short <= held_spot, "never net short at any step"
    moved = [s for s in trail if s.get("reason") == "unwind: margin back to spot"]
    assert len(moved) == 1 and D(moved[0]["amount"]) > 0, "the released margin went back to spot"
    assert D(venue["spot"]["USDT"]) > D("10000") + D(moved[0]["amount"]), "sale proceeds and margin are in spot"
    requests = db.execute("SELECT command, taken_by, result FROM requests ORDER BY id").fetchall()
    assert [r[0] for r in requests] == ["unwind", "unwind"] and "already under way" in requests[1][2]

    # A daemon restarted on the same config leaves the unwound hedge closed.
    orders = len(venue["orders"])
    status = _run_daemon_until(config, state, log, lambda h: h["state"] != "starting" and h.get("trading_state") == "closed")
    time.sleep(0)  # the status above came from a tick of the new daemon
    venue = _venue(state)
    assert len(venue["orders"]) == orders and D(venue["legs"][f"{SYMBOL}|short"][0]) == 0
    assert "resume" in status["trading_reason"]

    # Unwinding a closed hedge again does nothing and says so.
    assert _hedgebot(args, log) == 0
    assert "already closed; nothing done" in log.read_text()
    db = sqlite3.connect(state / "journal.sqlite")
    assert [r[0] for r in db.execute("SELECT command FROM requests ORDER BY id")] == ["unwind", "unwind"], "no new unwind journaled"


@pytest.mark.parametrize("scheduled", [
    {"schedule": [{"name": "fomc", "ratio": "1", "event": "FOMC", "before_hours": 24, "after_hours": 12}]},
    {"until": "after:FOMC"},
], ids=["window-around-an-event", "until-after-an-event"])
def test_unwind_plans_a_hedge_whose_schedule_names_a_calendar_event(tmp_path: Path, capsys, scheduled: dict) -> None:
    import time
    from decimal import Decimal

    from hedgebot.clock import RealClock
    from hedgebot.config import Settings
    from hedgebot.exchange.factory import build_venue

    data = paper_settings_dict(tmp_path, ratio="0.5", **scheduled)
    data["calendar"] = {"events": [{"name": "FOMC", "at": "2099-12-16T19:00:00Z"}]}
    data["http"] = {"enabled": False}
    config = write_toml(tmp_path / "hedgebot.toml", data)
    settings = Settings(**data)
    (tmp_path / "state").mkdir(parents=True, exist_ok=True)
    setup = build_venue(settings.accounts[0], RealClock(), settings.daemon.state_dir)
    assert setup.simulated is not None
    setup.simulated.update_price(SYMBOL, time.time(), Decimal("50000"))  # the account has been trading: it has a price
    setup.simulated.save()
    from hedgebot.commands.main import main

    code = main(["unwind", "--config", str(config), "--hedge", "btc-core", "--plan"])
    captured = capsys.readouterr()
    assert code == 0, f"`hedgebot unwind --plan` exited {code}: {captured.err.strip()}"


@pytest.mark.slow
def test_unwind_run_here_logs_in_the_configured_format(tmp_path: Path) -> None:
    data = paper_settings_dict(tmp_path, tick_seconds=0.5)
    data["daemon"].update(status_interval_seconds=0.3, log_format="json")
    data["http"] = {"enabled": False}
    config = write_toml(tmp_path / "unwind.toml", data)
    state, log = tmp_path / "state", tmp_path / "log.txt"
    _run_daemon_until(config, state, log, lambda h: h["state"] == "hedged")
    log.write_text("")
    assert _hedgebot(["unwind", "--config", str(config), "--hedge", "btc-core", "--yes"], log) == 0, log.read_text()[-3000:]
    logged = [line for line in log.read_text().splitlines() if "order_filled" in line]
    assert logged, log.read_text()[-3000:]
    for line in logged:
        record = json.loads(line)  # the daemon's log_format = "json", not the console renderer
        assert record["event"] == "order_filled" and record["reason"] == "unwind: short slice", record
