"""A live coin-margined short started as a user starts one (`hedgebot run --live`, keys from the environment),
against the emulator's COIN-M (/dapi/) as its own process: killed with SIGKILL mid-run and started again, it
sends no order twice and keeps the coins hedged."""

from __future__ import annotations

import signal
import subprocess
import sys
import tomllib
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from tests.emulator_rig import PROCESS_KEY as KEY
from tests.emulator_rig import PROCESS_SECRET as SECRET
from tests.emulator_rig import REPO, EmulatorProcess, assert_every_order_is_one_done_intent, live_config, wait_until
from tests.helpers import clean_env, write_toml

pytestmark = [pytest.mark.slow, pytest.mark.realtime]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    process = EmulatorProcess(tmp_path, coinm="0.5")
    process.start()
    try:
        yield process
    finally:
        process.stop()


def contracts(state: dict[str, Any]) -> Decimal:
    return Decimal(state["positions"].get("BTCUSD_PERP|SHORT", {}).get("amount", "0"))


def coinm_config(tmp_path: Path, url: str) -> Path:
    config = live_config(
        tmp_path, url, symbol="BTC/USD:BTC", instrument="coinm-perp", leverage=1, min_order="0.001",
        margin_guard={"sources": ["futures_wallet", "spot_stablecoin"]},
    )
    data = tomllib.loads(config.read_text())
    data["accounts"][0]["exchange"] = "binancecoinm"
    return write_toml(tmp_path / "coinm.toml", data)


def start(config: Path, log: Path) -> subprocess.Popen[bytes]:
    env = clean_env()
    env.update(HB_BINANCE_KEY=KEY, HB_BINANCE_SECRET=SECRET, PYTHONUNBUFFERED="1")
    env["HEDGEBOT_HTTP__PORT"] = "0"
    with log.open("a") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hedgebot.commands.main", "run", "--config", str(config), "--live"],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )


def test_a_live_coin_m_daemon_killed_mid_run_resumes_without_a_second_order(tmp_path: Path, emulator: EmulatorProcess) -> None:
    config = coinm_config(tmp_path, emulator.url)
    log = tmp_path / "daemon.log"
    # The first order's answer is lost after it executed: the daemon must find it by its client id.
    emulator.control("fault", {"kind": "timeout_after", "path": "/dapi/v1/order", "method": "POST", "delay": 12})
    daemon = start(config, log)
    try:
        def short_at_least(n: int) -> Callable[[], bool]:
            return lambda: contracts(emulator.control("state")) >= n

        # 1 BTC in spot and 0.5 in the COIN-M wallet at 50,000: 1.5 BTC, about 750 contracts less the fee.
        wait_until(short_at_least(745), 90, lambda: f"the coin-m hedge to open; log:\n{log.read_text()[-3000:]}")
        state = emulator.control("state")
        assert state["coinm_dual_side"] and state["symbols"]["BTCUSD_PERP"]["margin_type"] == "ISOLATED"
        assert not state["dual_side"]  # USDⓈ-M's position mode is not COIN-M's: untouched
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        emulator.control("deposit", {"wallet": "spot", "asset": "BTC", "amount": "0.5"})
        daemon = start(config, log)
        wait_until(short_at_least(995), 90, lambda: f"the restarted daemon to hedge the new coins; log:\n{log.read_text()[-3000:]}")
    finally:
        if daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
    book = assert_every_order_is_one_done_intent(emulator.state, tmp_path / "state" / "journal.sqlite", Decimal(100))
    requests = emulator.control("requests")
    assert len(requests["executions"]) == len(set(requests["executions"])) == len(
        [k for k in book["orders"] if k.startswith("futures|")]
    )
    assert not [k for k in book["orders"] if k.startswith("spot|")]  # no coin sold
    paths = [(r["method"], r["path"]) for r in requests["requests"]]
    assert ("GET", "/dapi/v1/order") in paths  # the lost answer was settled by a lookup, not by a second order
    assert emulator.control("faults")["faults"] == []  # and the fault was taken
