"""A live put hedge started as a user starts one (`hedgebot run --live`), against the Binance emulator with its options
desk as its own process: it buys the put, rolls it before expiry, and SIGKILLed between the roll's purchase and its
sale (the purchase's outcome not yet journaled), the restarted daemon finds the purchase by its client id and sells
the old put: each order once, no purchase twice."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_rig import KEY, REPO, SECRET, free_port, wait_until
from tests.helpers import SYMBOL, clean_env, write_toml

pytestmark = [pytest.mark.slow, pytest.mark.realtime]

DAY = 86400


def options_state(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(f"{url}/_emulator/options", timeout=5) as answer:
        return json.loads(answer.read())  # type: ignore[no-any-return]


def held(url: str) -> dict[str, float]:
    return {s: float(q) for s, q in options_state(url)["positions"].items() if float(q) > 0}


def start_daemon(config: Path, log: Path, crashpoint: str | None = None) -> subprocess.Popen[bytes]:
    env = clean_env()
    env.update(HB_BINANCE_KEY=KEY, HB_BINANCE_SECRET=SECRET, PYTHONUNBUFFERED="1", HEDGEBOT_HTTP__PORT="0")
    if crashpoint is not None:
        env["HEDGEBOT_CRASHPOINT"] = crashpoint
    with log.open("a") as out:
        return subprocess.Popen([sys.executable, "-m", "hedgebot.commands.main", "run", "--config", str(config), "--live"],
                                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT)


def test_a_live_put_daemon_killed_between_the_rolls_purchase_and_sale_resumes_without_buying_twice(tmp_path: Path) -> None:
    now = time.time()
    # The first put expires 2 days and 15 s from now; rolled 2 days less 1 s ahead, it is rolled 16 s from now.
    near, far = now + 2 * DAY + 15, now + 5 * DAY
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    emulator_log = tmp_path / "emulator.log"
    with emulator_log.open("a") as out:
        emulator = subprocess.Popen(
            [sys.executable, "-m", "hedgebot.testing.binance_options", "--port", str(port), "--key", f"{KEY}:{SECRET}",
             "--spot", "BTC=2", "--expiry", str(near), "--expiry", str(far), "--options-usdt", "20000",
             "--state", str(tmp_path / "options.json")],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )
    daemon = None
    log = tmp_path / "daemon.log"
    try:
        wait_until(lambda: _answers(url), 20, "the emulator to listen")
        config = write_toml(tmp_path / "live.toml", {
            "daemon": {"state_dir": str(tmp_path / "state"), "status_interval_seconds": 0.3, "log_format": "json"},
            "journal": {"path": str(tmp_path / "state" / "journal.sqlite")},
            "http": {"enabled": False},
            "accounts": [{
                "name": "binance-main", "mode": "live", "exchange": "binanceusdm", "api_base_url": url, "streams": False,
                "credentials": {"api_key": {"env": "HB_BINANCE_KEY"}, "secret": {"env": "HB_BINANCE_SECRET"}},
                "hedges": [{
                    "name": "btc-put", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "instrument": "put", "floor": "0.96",
                    "expiry_days": 2, "roll_before": 2 * DAY - 1, "max_premium_per_order": "10000",
                    "max_premium_per_month": "30000", "tick_seconds": 0.5,
                }],
            }],
        })
        # The second order sent is the roll's purchase: SIGKILL once the exchange has answered it, before the journal.
        daemon = start_daemon(config, log, "action_sent:2")
        daemon.wait(timeout=90)
        assert daemon.returncode == -signal.SIGKILL, log.read_text()[-3000:]
        positions = held(url)
        assert len(positions) == 2 and all(q == 2 for q in positions.values()), positions  # bought new, old not sold yet
        daemon = start_daemon(config, log)
        wait_until(lambda: len(held(url)) == 1, 60, lambda: f"the roll to end; log:\n{log.read_text()[-3000:]}")
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
        state = options_state(url) if emulator.poll() is None else {}
        emulator.send_signal(signal.SIGKILL)
        emulator.wait(timeout=10)
    orders = list(state["orders"].values())
    sides = [(o["symbol"], o["side"]) for o in orders]
    old, new = sides[0][0], sides[1][0]
    assert sides == [(old, "BUY"), (new, "BUY"), (old, "SELL")], sides
    assert len(state["executions"]) == len(set(state["executions"])) == 3, "no order executed twice"
    assert {s: float(q) for s, q in state["positions"].items()} == {new: 2.0}
    import sqlite3

    db = sqlite3.connect(tmp_path / "state" / "journal.sqlite")
    try:
        intents = dict(db.execute("SELECT client_id, status FROM intents").fetchall())
    finally:
        db.close()
    assert sorted(intents) == sorted(o["clientOrderId"] for o in orders), "every order is one journaled intent"
    assert set(intents.values()) == {"done"}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/eapi/v1/time", timeout=1):
            return True
    except OSError:
        return False
