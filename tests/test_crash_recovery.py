"""SIGKILL the paper daemon at random moments and at the worst ones; it must recover without doubling anything."""

from __future__ import annotations

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import time
from decimal import Decimal
from pathlib import Path

import pytest

from tests.helpers import clean_env, paper_settings_dict, write_toml

pytestmark = pytest.mark.realtime

REPO = Path(__file__).resolve().parents[1]
SEED = 20261121


def _config(tmp_path: Path) -> Path:
    data = paper_settings_dict(tmp_path, max_order="0.2", tick_seconds=0.1)
    data["daemon"]["status_interval_seconds"] = 0.2
    paper = data["accounts"][0]["paper"]
    paper["markets"][0]["feed"].update(step_seconds=0.05)
    paper["script"] = [{"asset": "BTC", "every_seconds": 0.4, "amounts": ["0.7", "-0.5", "0.3", "-0.6"]}]
    return write_toml(tmp_path / "crash.toml", data)


def _start(config: Path, log: Path, crashpoint: str | None) -> subprocess.Popen:
    env = clean_env()
    env["HEDGEBOT_HTTP__PORT"] = "0"  # any free port: another daemon on this machine may hold the default
    if crashpoint:
        env["HEDGEBOT_CRASHPOINT"] = crashpoint
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "-m", "hedgebot.commands.main", "run", "--config", str(config)], cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


@pytest.mark.slow
def test_repeated_sigkills_leave_no_duplicated_order_and_a_hedge_within_its_band(tmp_path: Path) -> None:
    print(f"\ncrash test seed {SEED}")
    rng = random.Random(SEED)
    config = _config(tmp_path)
    state = tmp_path / "state"
    log = tmp_path / "daemon.log"
    self_kills = 0
    for run in range(10):
        crashpoint = None
        if run % 3 == 0:
            crashpoint = f"{rng.choice(['intent_journaled', 'action_sent'])}:{rng.randint(1, 4)}"
        proc = _start(config, log, crashpoint)
        try:
            code = proc.wait(timeout=rng.uniform(0.8, 2.5))
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            code = proc.wait(timeout=10)
        if crashpoint and code == -signal.SIGKILL:
            self_kills += 1
        assert code == -signal.SIGKILL, f"run {run} ({crashpoint}) exited {code}:\n{log.read_text()[-2000:]}"
    assert self_kills >= 2, "the crash points were reached"

    # A last, clean run settles what the kills left open, then stops on SIGTERM.
    proc = _start(config, log, None)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        status_file = state / "status.json"
        if status_file.exists():
            data = json.loads(status_file.read_text())
            if data["pid"] == proc.pid and data["hedges"][0]["state"] == "hedged":
                break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=20) == 0

    venue = json.loads((state / "paper-paper.json").read_text())
    db = sqlite3.connect(state / "journal.sqlite")
    intents = {row[0]: (row[1], json.loads(row[2] or "{}")) for row in db.execute("SELECT client_id, status, outcome FROM intents WHERE kind = 'order'")}
    open_left = db.execute("SELECT COUNT(*) FROM intents WHERE status IN ('pending', 'unknown')").fetchone()[0]
    statuses = {s for s, _ in intents.values()}
    print(f"orders on the venue: {len(venue['orders'])}, intents: {len(intents)}, statuses: {sorted(statuses)}")

    # Every order the venue executed belongs to exactly one journaled intent, recorded as done with the same fill.
    assert venue["orders"], "the daemon traded"
    for cid, order in venue["orders"].items():
        assert cid in intents, f"venue order {cid} has no intent: a duplicate or a lost record"
        status, outcome = intents[cid]
        assert status == "done" and Decimal(outcome["filled"]) == Decimal(order["filled"])
    done = [cid for cid, (s, _) in intents.items() if s == "done"]
    assert sorted(done) == sorted(venue["orders"])
    assert open_left == 0
    assert "absent" in statuses or "done" in statuses

    short = Decimal(venue["legs"]["BTC/USDT:USDT|short"][0])
    spot = Decimal(venue["spot"]["BTC"])
    assert abs(short - spot) <= spot * Decimal("0.02") + Decimal("0.001"), (short, spot)


@pytest.mark.slow
def test_repeated_sigkills_of_a_live_daemon_on_the_emulator_leave_no_duplicated_order(tmp_path: Path) -> None:
    from tests.emulator_rig import (
        PROCESS_KEY,
        PROCESS_SECRET,
        EmulatorProcess,
        assert_every_order_is_one_done_intent,
        live_config,
        wait_until,
    )

    seed = SEED + 1
    print(f"\ncrash test on the emulator, seed {seed}")
    rng = random.Random(seed)
    emulator = EmulatorProcess(tmp_path, futures="200000")
    emulator.start()
    try:
        config = live_config(tmp_path, emulator.url, tick_seconds=0.2, max_order="0.3")
        log = tmp_path / "daemon.log"
        env = clean_env()
        env.update(HB_BINANCE_KEY=PROCESS_KEY, HB_BINANCE_SECRET=PROCESS_SECRET, PYTHONUNBUFFERED="1")

        def start(crashpoint: str | None) -> subprocess.Popen:
            run_env = dict(env, HEDGEBOT_CRASHPOINT=crashpoint) if crashpoint else env
            with log.open("a") as out:
                return subprocess.Popen(
                    [sys.executable, "-m", "hedgebot.commands.main", "run", "--config", str(config), "--live"],
                    cwd=REPO, env=run_env, stdout=out, stderr=subprocess.STDOUT,
                )

        self_kills = 0
        for run, change in enumerate(["0.9", "-0.6", "0.7", "-0.5", "0.4", "-0.3"]):
            # The spot holding moves between runs, so every run has trading to do.
            emulator.control("deposit", {"wallet": "spot", "asset": "BTC", "amount": change})
            crashpoint = f"{rng.choice(['intent_journaled', 'action_sent'])}:{rng.randint(1, 2)}" if run % 2 == 0 else None
            proc = start(crashpoint)
            try:
                code = proc.wait(timeout=rng.uniform(2.5, 4.5))
            except subprocess.TimeoutExpired:
                proc.send_signal(signal.SIGKILL)
                code = proc.wait(timeout=10)
            if crashpoint and code == -signal.SIGKILL:
                self_kills += 1
            assert code == -signal.SIGKILL, f"run {run} ({crashpoint}) exited {code}:\n{log.read_text()[-2000:]}"
        assert self_kills >= 1, "a crash point was reached"

        # A last, clean run settles what the kills left open and brings the hedge back, then stops on SIGTERM.
        proc = start(None)
        spot = Decimal(emulator.control("state")["spot"]["BTC"])
        wait_until(
            lambda: Decimal(emulator.control("state")["positions"].get("BTCUSDT|SHORT", {}).get("amount", "0")) == spot,
            60, lambda: f"the hedge to be whole again; log:\n{log.read_text()[-2000:]}",
        )
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
    finally:
        emulator.stop()

    assert_every_order_is_one_done_intent(emulator.state, tmp_path / "state" / "journal.sqlite")


def _hedgebot(config: Path, *args: str) -> str:
    env = clean_env()
    done = subprocess.run(
        [sys.executable, "-m", "hedgebot.commands.main", *args, "--config", str(config)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.slow
def test_a_sigkill_right_after_an_outcome_is_journaled_leaves_every_fill_in_history_and_the_csv(tmp_path: Path) -> None:
    config = _config(tmp_path)
    log = tmp_path / "daemon.log"
    for crashpoint in ("outcome_journaled:1", "outcome_journaled:2"):
        proc = _start(config, log, crashpoint)
        try:
            code = proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=10)
            raise AssertionError(f"the daemon never reached {crashpoint}:\n{log.read_text()[-2000:]}") from None
        assert code == -signal.SIGKILL, log.read_text()[-2000:]
    # A clean run settles anything left open; SIGTERM once the hedge is hedged.
    proc = _start(config, log, None)
    status_file = tmp_path / "state" / "status.json"
    deadline = time.monotonic() + 30
    try:
        while time.monotonic() < deadline:
            if status_file.exists():
                data = json.loads(status_file.read_text())
                if data["pid"] == proc.pid and data["hedges"][0]["state"] == "hedged":
                    break
            time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=20) == 0

    db = sqlite3.connect(tmp_path / "state" / "journal.sqlite")
    done = {row[0]: json.loads(row[1]) for row in db.execute("SELECT client_id, outcome FROM intents WHERE kind = 'order' AND status = 'done'")}
    filled = {cid for cid, outcome in done.items() if Decimal(outcome.get("filled") or 0) > 0}
    assert len(filled) >= 2
    history = json.loads(_hedgebot(config, "history", "--hedge", "btc-core", "--json"))
    fills = {e["client_id"]: e for e in history if e["kind"] == "order_filled"}
    assert set(fills) == filled, "every fill the journal holds is in history"
    for cid, event in fills.items():
        assert Decimal(event["filled"]) == Decimal(done[cid]["filled"])
        assert event["average_price"] is not None and event["fee"] is not None
    csv_rows = [line.split(",") for line in _hedgebot(config, "report", "--csv").splitlines()[1:]]
    assert {row[11] for row in csv_rows if row[3] == "fill"} == filled, "history and report --csv list the same fills"
