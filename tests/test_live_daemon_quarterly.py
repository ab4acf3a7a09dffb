"""A live quarterly short started as a user starts one (`hedgebot run --live`), against the emulator as its own
process listing Binance's quarterlies: it holds the nearest contract more than roll_before from delivery, and
killed with SIGKILL mid-run after a lost answer, it resumes without a second order."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hedgebot.domain.delivery import quarterly_expiries
from tests.emulator_rig import EmulatorProcess, assert_every_order_is_one_done_intent, live_config, wait_until
from tests.test_live_daemon_coinm import start

pytestmark = [pytest.mark.slow, pytest.mark.realtime]


def short_on(state: dict[str, Any], symbol: str) -> Decimal:
    return Decimal(state["positions"].get(f"{symbol}|SHORT", {}).get("amount", "0"))


def test_a_live_quarterly_daemon_holds_the_nearest_contract_and_resumes_after_a_kill_without_a_second_order(tmp_path: Path) -> None:
    now = datetime.now(UTC).timestamp()
    near, far = [e for e in quarterly_expiries(now, 3) if e - now > 3 * 86400][:2]
    days = tuple(datetime.fromtimestamp(e, UTC).strftime("%y%m%d") for e in (near, far))
    held = f"BTCUSDT_{days[0]}"
    emulator = EmulatorProcess(tmp_path, quarterlies=days)
    emulator.start()
    daemon = None
    try:
        emulator.control("account", {"dual_side": True})
        config = live_config(tmp_path, emulator.url, instrument="usdm-quarterly", max_order="0.5")
        log = tmp_path / "daemon.log"
        # The first order's answer is lost after it executed: the daemon must find it by its client id.
        emulator.control("fault", {"kind": "timeout_after", "path": "/fapi/v1/order", "method": "POST", "delay": 12})
        daemon = start(config, log)
        wait_until(lambda: short_on(emulator.control("state"), held) >= Decimal("0.5"), 90,
                   lambda: f"the quarterly hedge to open; log:\n{log.read_text()[-3000:]}")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        emulator.control("deposit", {"wallet": "spot", "asset": "BTC", "amount": "0.5"})
        daemon = start(config, log)
        wait_until(lambda: short_on(emulator.control("state"), held) >= Decimal("1.49"), 90,
                   lambda: f"the restarted daemon to hedge 1.5 BTC on {held}; log:\n{log.read_text()[-3000:]}")
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
        emulator.stop()
    state = assert_every_order_is_one_done_intent(emulator.state, tmp_path / "state" / "journal.sqlite")
    assert short_on(state, "BTCUSDT") == 0 and short_on(state, f"BTCUSDT_{days[1]}") == 0, "only the nearest contract"
    assert short_on(state, held) <= Decimal("1.5")
    assert not [k for k in state["orders"] if k.startswith("spot|")]


def test_a_live_daemon_killed_during_its_roll_resumes_it_without_a_duplicate_leg(tmp_path: Path) -> None:
    now = datetime.now(UTC).timestamp()
    roll_before = 2 * 3600  # the least roll_before allowed
    near = now + roll_before + 25  # the daemon holds it for 25 s, then rolls
    far = next(e for e in quarterly_expiries(now, 3) if e - now > 3 * 86400)
    near_symbol = "BTCUSDT_" + datetime.fromtimestamp(near, UTC).strftime("%y%m%d")
    far_symbol = "BTCUSDT_" + datetime.fromtimestamp(far, UTC).strftime("%y%m%d")
    emulator = EmulatorProcess(tmp_path, quarterlies=(f"@{near}", f"@{far}"))
    emulator.start()
    daemon = None
    try:
        emulator.control("account", {"dual_side": True})
        config = live_config(tmp_path, emulator.url, instrument="usdm-quarterly", max_order="0.5", roll_before=roll_before)
        log = tmp_path / "daemon.log"
        daemon = start(config, log)
        # 1 BTC in spot: two slices of 0.5 open the short on the near contract.
        wait_until(lambda: short_on(emulator.control("state"), near_symbol) == 1, 60,
                   lambda: f"the hedge to open; log:\n{log.read_text()[-3000:]}")
        # The roll's first order executes and its answer hangs: the daemon is killed with it in flight.
        emulator.control("fault", {"kind": "timeout_after", "path": "/fapi/v1/order", "method": "POST", "delay": 20})
        wait_until(lambda: not emulator.control("faults")["faults"] and short_on(emulator.control("state"), far_symbol) > 0, 90,
                   lambda: f"the roll's first order; log:\n{log.read_text()[-3000:]}")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        assert short_on(emulator.control("state"), near_symbol) == 1, "killed between the open and its buy-back"
        daemon = start(config, log)
        wait_until(lambda: short_on(emulator.control("state"), far_symbol) == 1 and short_on(emulator.control("state"), near_symbol) == 0,
                   120, lambda: f"the restarted daemon to finish the roll; log:\n{log.read_text()[-3000:]}")
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
        emulator.stop()
    state = assert_every_order_is_one_done_intent(emulator.state, tmp_path / "state" / "journal.sqlite")
    sold = sum(Decimal(o["executedQty"]) for k, o in state["orders"].items() if k.startswith(f"futures|{far_symbol}|") and o["side"] == "SELL")
    bought = sum(Decimal(o["executedQty"]) for k, o in state["orders"].items() if k.startswith(f"futures|{near_symbol}|") and o["side"] == "BUY")
    assert (sold, bought) == (1, 1), "each coin opened once on the next contract and bought back once"
    assert short_on(state, "BTCUSDT") == 0
