"""A live account started as a user starts one (`--live`, keys from the environment), against the emulator.

The emulator runs as its own process with its book on disk, so it can be
stopped and started again under the running daemon, as an exchange outage
would look.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_rig import PROCESS_KEY as KEY
from tests.emulator_rig import PROCESS_SECRET as SECRET
from tests.emulator_rig import EmulatorProcess, assert_every_order_is_one_done_intent, live_config, wait_until
from tests.helpers import clean_env

REPO = Path(__file__).resolve().parents[1]

pytestmark = [pytest.mark.slow, pytest.mark.realtime]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    process = EmulatorProcess(tmp_path)
    process.start()
    try:
        yield process
    finally:
        process.stop()


def short_of(state: dict[str, Any]) -> Decimal:
    return Decimal(state["positions"].get("BTCUSDT|SHORT", {}).get("amount", "0"))


def test_a_live_daemon_hedges_tops_up_on_a_rally_and_rides_out_an_exchange_restart(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = live_config(tmp_path, emulator.url)
    env = clean_env()
    env.update(HB_BINANCE_KEY=KEY, HB_BINANCE_SECRET=SECRET, PYTHONUNBUFFERED="1")
    env["HEDGEBOT_HTTP__PORT"] = "0"  # any free port: another daemon on this machine may hold the default
    log = tmp_path / "daemon.log"
    with log.open("w") as out:
        daemon = subprocess.Popen(
            [sys.executable, "-m", "hedgebot.commands.main", "run", "--config", str(config), "--live"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        def hedged(amount: str) -> Callable[[], bool]:
            return lambda: short_of(emulator.control("state")) == Decimal(amount)

        wait_until(hedged("1"), 60, lambda: f"the hedge to open; log:\n{log.read_text()[-3000:]}")
        state = emulator.control("state")
        assert state["dual_side"] and state["symbols"]["BTCUSDT"]["margin_type"] == "ISOLATED"

        for price in ("55000", "60000", "64000"):  # a rally the jump guard accepts step by step
            emulator.control("mark", {"symbol": "BTCUSDT", "price": price})
            time.sleep(1.5)
        wait_until(lambda: bool(emulator.control("state")["margin_history"]), 30, "a margin top-up on the rally")
        assert {row["positionSide"] for row in emulator.control("state")["margin_history"]} == {"SHORT"}

        emulator.stop()  # the exchange goes away mid-run ...
        time.sleep(2.0)
        assert daemon.poll() is None, f"the daemon died with the exchange:\n{log.read_text()[-3000:]}"
        emulator.start()  # ... and comes back with its book
        emulator.control("deposit", {"wallet": "spot", "asset": "BTC", "amount": "0.5"})
        wait_until(hedged("1.5"), 60, lambda: f"the daemon to resume; log:\n{log.read_text()[-3000:]}")
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
        code = daemon.wait(timeout=30)
    assert code == 0, log.read_text()[-3000:]

    state = assert_every_order_is_one_done_intent(emulator.state, tmp_path / "state" / "journal.sqlite")
    assert short_of(state) == Decimal(state["spot"]["BTC"]) == Decimal("1.5")
