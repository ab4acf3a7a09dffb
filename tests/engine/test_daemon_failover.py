"""Failover between two real daemon processes on one PostgreSQL journal and one (emulated) Binance account.

The leader is frozen with SIGSTOP past its lease, as a stalled VM or a stuck
process would be. The standby must take the lease under the next epoch,
reconcile, and answer a change the leader never saw; the leader, woken with
SIGCONT, must never send another request. Each daemon trades under its own
API key of the same account, so the emulator can tell whose request is whose.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest

from tests.emulator_rig import PROCESS_KEY, PROCESS_SECRET, EmulatorProcess, shared_journal_config, start_live_daemon, wait_until

STANDBY_KEY, STANDBY_SECRET = "standby-key", "standby-secret"
LEASE, MARGIN = 3.0, 1.0

pytestmark = [pytest.mark.slow, pytest.mark.realtime]


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[EmulatorProcess]:
    process = EmulatorProcess(tmp_path, extra_keys=(f"{STANDBY_KEY}:{STANDBY_SECRET}",))
    process.start()
    try:
        yield process
    finally:
        process.stop()


def config(tmp_path: Path, name: str, url: str, pg_url: str) -> Path:
    """Write one daemon's config: its own state directory, the shared journal, the account on the emulator."""
    return shared_journal_config(tmp_path, name, url, pg_url, lease=LEASE, margin=MARGIN)


def start(config_path: Path, log: Path, key: str, secret: str, *flags: str) -> subprocess.Popen[bytes]:
    return start_live_daemon(config_path, log, key, secret, *flags)


def short(emulator: EmulatorProcess) -> Decimal:
    return Decimal(emulator.control("state")["positions"].get("BTCUSDT|SHORT", {}).get("amount", "0"))


def events(pg_url: str, kind: str) -> list[dict[str, Any]]:
    with psycopg.connect(pg_url) as conn:
        rows = conn.execute("SELECT at, detail FROM events WHERE kind = %s ORDER BY id", (kind,)).fetchall()
    return [{"at": at, **json.loads(detail)} for at, detail in rows]


def log_events(log: Path, kind: str) -> list[dict[str, Any]]:
    out = []
    for line in log.read_text().splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("event") == kind:
            out.append(record)
    return out


@pytest.mark.parametrize("failure", ["SIGSTOP", "SIGKILL"])
def test_a_leader_frozen_or_killed_never_sends_again_and_the_standby_takes_over_and_hedges(
    tmp_path: Path, emulator: EmulatorProcess, pg_url: str, failure: str,
) -> None:
    leader_log, standby_log = tmp_path / "leader.log", tmp_path / "standby.log"
    leader = start(config(tmp_path, "leader", emulator.url, pg_url), leader_log, PROCESS_KEY, PROCESS_SECRET)
    standby: subprocess.Popen[bytes] | None = None
    try:
        wait_until(lambda: short(emulator) == Decimal("1"), 60, lambda: f"the leader to hedge; log:\n{leader_log.read_text()[-3000:]}")
        standby = start(config(tmp_path, "standby", emulator.url, pg_url), standby_log, STANDBY_KEY, STANDBY_SECRET, "--standby")
        wait_until(lambda: bool(log_events(standby_log, "daemon_started")), 60, lambda: f"the standby to start; log:\n{standby_log.read_text()[-3000:]}")
        time.sleep(LEASE)  # the standby polls the lease a few times meanwhile, and sends nothing
        assert [r for r in emulator.control("requests")["requests"] if r["key"] == STANDBY_KEY] == []

        leader.send_signal(getattr(signal, failure))
        stopped_at = time.time()
        emulator.control("deposit", {"wallet": "spot", "asset": "BTC", "amount": "0.5"})  # only a leader can answer it
        wait_until(lambda: short(emulator) == Decimal("1.5"), 60, lambda: f"the standby to take over and hedge; log:\n{standby_log.read_text()[-3000:]}")
        hedged_at = time.time()
        taken = events(pg_url, "lease_taken")
        assert [e["epoch"] for e in taken] == [1, 2]
        takeover_seconds = taken[-1]["at"] - stopped_at
        steps = [e["step"] for e in events(pg_url, "reconcile_step") if e["epoch"] == 2]
        assert steps == ["open_intents_settled", "legs_wallets_funds_compared"]

        woken_at = time.time()
        if failure == "SIGSTOP":
            leader.send_signal(signal.SIGCONT)
            wait_until(lambda: bool(log_events(leader_log, "lease_lost")), 30, lambda: f"the woken leader to stand down; log:\n{leader_log.read_text()[-3000:]}")
            time.sleep(LEASE)  # the woken leader's keeper and lease task run a few times
            assert leader.poll() is None and log_events(leader_log, "lease_lost")[0]["epoch"] == 1
        assert standby.poll() is None

        log = emulator.control("requests")
        by_leader_after_wake = [r for r in log["requests"] if r["key"] == PROCESS_KEY and r["at"] >= woken_at + 0.1]
        assert by_leader_after_wake == []
        # Judged by when the leader signed each request (a request in flight at SIGSTOP may be handled later);
        # 0.1 s allows for the exchange-time offset ccxt adds to the stamp.
        by_leader_after_stop = [
            r for r in log["requests"] if r["key"] == PROCESS_KEY and r.get("signed_at", r["at"]) >= stopped_at + 0.1
        ]
        assert by_leader_after_stop == []
        assert len(log["executions"]) == len(set(log["executions"]))  # no order carried out twice
        with psycopg.connect(pg_url) as conn:
            rows = conn.execute("SELECT client_id, status, lease_epoch FROM intents WHERE kind = 'order' ORDER BY id").fetchall()
        assert {status for _, status, _ in rows} == {"done"}
        assert [epoch for _, _, epoch in rows] == sorted(epoch for _, _, epoch in rows) and rows[-1][2] == 2
        assert all(cid[7:11] == f"{epoch:04d}" for cid, _, epoch in rows)  # the epoch in each client id
        executed = {key.split("|", 2)[2] for key in log["executions"] if key.startswith("futures|")}
        assert executed == {cid for cid, _, _ in rows}  # every execution is one journaled intent, and back
        print(f"\ntakeover after {failure}: lease taken {takeover_seconds:.2f}s after {failure} (lease {LEASE}s), hedged again "
              f"{hedged_at - stopped_at:.2f}s after it")
    finally:
        for process in (leader, standby):
            if process is not None and process.poll() is None:
                process.send_signal(signal.SIGCONT)
                process.send_signal(signal.SIGTERM)
        for process in (leader, standby):
            if process is not None:
                process.wait(timeout=30)
