"""A live instrument = "cheapest" hedge started as a user starts one (`hedgebot run --live`), against the emulator as
its own process: it chooses its contract from the funding the exchange settled and the quarterly's mark, and,
killed with SIGKILL in the middle of a move to another contract (the move's first order executed, its answer
lost), resumes the move with one leg: no order twice."""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from hedgebot.clock import RealClock
from hedgebot.domain.delivery import quarterly_expiries
from hedgebot.store.journal import Journal
from tests.emulator_rig import EmulatorProcess, assert_every_order_is_one_done_intent, live_config, wait_until
from tests.test_live_daemon_coinm import start
from tests.test_live_daemon_quarterly import short_on

pytestmark = [pytest.mark.slow, pytest.mark.realtime]


def test_a_live_cheapest_daemon_killed_during_a_move_between_contracts_resumes_it_with_one_leg(tmp_path: Path) -> None:
    now = datetime.now(UTC).timestamp()
    roll_before = 2 * 3600  # the least roll_before allowed
    near = now + roll_before + 45  # the daemon holds it for 45 s, then chooses again
    far = next(e for e in quarterly_expiries(now, 3) if e - now > 3 * 86400)
    near_symbol = "BTCUSDT_" + datetime.fromtimestamp(near, UTC).strftime("%y%m%d")
    far_symbol = "BTCUSDT_" + datetime.fromtimestamp(far, UTC).strftime("%y%m%d")
    emulator = EmulatorProcess(tmp_path, quarterlies=(f"@{near}", f"@{far}"))
    emulator.start()
    daemon = None
    try:
        emulator.control("account", {"dual_side": True})
        for _ in range(3):  # a short pays funding lately (-10.95 % a year); the quarterlies are at the perpetual's mark
            emulator.control("funding", {"symbol": "BTCUSDT", "rate": "-0.0001"})
        config = live_config(tmp_path, emulator.url, instrument="cheapest", max_order="0.5", roll_before=roll_before)
        log = tmp_path / "daemon.log"
        daemon = start(config, log)
        wait_until(lambda: short_on(emulator.control("state"), near_symbol) == 1, 40,
                   lambda: f"the hedge to open on the quarterly; log:\n{log.read_text()[-3000:]}")
        # Funding turns: the perpetual now pays a short 0.02 % every 8 h on average, the next quarterly nothing.
        for _ in range(9):
            emulator.control("funding", {"symbol": "BTCUSDT", "rate": "0.0003"})
        # The move's first order executes and its answer hangs: the daemon is killed with it in flight.
        emulator.control("fault", {"kind": "timeout_after", "path": "/fapi/v1/order", "method": "POST", "delay": 20})
        wait_until(lambda: not emulator.control("faults")["faults"] and short_on(emulator.control("state"), "BTCUSDT") > 0, 90,
                   lambda: f"the move's first order; log:\n{log.read_text()[-3000:]}")
        daemon.send_signal(signal.SIGKILL)
        daemon.wait(timeout=10)
        assert short_on(emulator.control("state"), near_symbol) == 1, "killed between the open and its buy-back"
        daemon = start(config, log)
        wait_until(lambda: short_on(emulator.control("state"), "BTCUSDT") == 1 and short_on(emulator.control("state"), near_symbol) == 0,
                   120, lambda: f"the restarted daemon to finish the move; log:\n{log.read_text()[-3000:]}")
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(timeout=30)
        emulator.stop()
    path = tmp_path / "state" / "journal.sqlite"
    state = assert_every_order_is_one_done_intent(emulator.state, path)
    sold = sum(Decimal(o["executedQty"]) for k, o in state["orders"].items() if k.startswith("futures|BTCUSDT|") and o["side"] == "SELL")
    bought = sum(Decimal(o["executedQty"]) for k, o in state["orders"].items() if k.startswith(f"futures|{near_symbol}|") and o["side"] == "BUY")
    assert (sold, bought) == (1, 1), "each coin opened once on the perpetual and bought back once on the quarterly"
    assert short_on(state, far_symbol) == 0
    journal = Journal(str(path), RealClock())
    try:
        chosen = [(e.detail["contract"], e.detail["when"]) for e in journal.events(kind="instrument_chosen")]
    finally:
        journal.close()
    near_ccxt = "BTC/USDT:USDT-" + near_symbol.split("_")[1]
    assert chosen[0] == (near_ccxt, "opening") and ("BTC/USDT:USDT", "roll window") in chosen, chosen
