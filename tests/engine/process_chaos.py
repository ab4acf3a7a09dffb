"""Chaos over real daemon processes on one account of the exchange emulator, sharing a real PostgreSQL journal.

Three `hedgebot run --live` processes share one config's account and journal, each under its own API key of the
account, so the emulator can tell whose request is whose. A seeded schedule hits them with:
- SIGSTOP of the leader for longer than the lease, then SIGCONT (it must stand down and never send again);
- SIGKILL of the leader (a replacement process is started, as an orchestrator would);
- every PostgreSQL connection terminated (`pg_terminate_backend`);
- a PostgreSQL restart;
- the emulator's faults on the next orders (executed after a timeout, timeouts after execution, lost answers);
with the holding changed after most of them, so that only a leader can bring the hedge back.

Judged from the emulator's own request log and executions and the journal, never from the daemons' words:
- duplicate executions: an order carried out twice, or an execution with no journaled intent;
- stale requests: a request a daemon signed after a newer epoch than its own was committed (the lease's events
  say which daemon took which epoch and when), or before it held any epoch; writes among them are
  the moments the account had two writers;
- recoveries: real seconds from each failure to the hedge back in band (the bound the issue sets is
  lease_seconds + 2 ticks from a leader's death).
Used by tests/engine/test_process_chaos.py (two schedules in `make test`) and bench/chaos_processes.py (50).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import psycopg.errors

from hedgebot.exchange.ratelimit import PACER_BURST
from tests.emulator_rig import PROCESS_KEY, PROCESS_SECRET, EmulatorProcess, shared_journal_config, start_live_daemon
from tests.postgres_server import PostgresServer

LEASE, MARGIN, TICK, BAND = 3.0, 1.0, 0.5, Decimal("0.02")
SETTLE_SECONDS = 30.0  # Binance's settle delay for an order of unknown outcome (hedgebot.exchange.dialects.base)
FAILURES = ("sigstop", "sigkill", "terminate", "restart", "faults")
KEYS = [(PROCESS_KEY, PROCESS_SECRET)] + [(f"chaos-key-{i}", f"chaos-secret-{i}") for i in range(1, 8)]
EXTRA_KEYS = tuple(f"{key}:{secret}" for key, secret in KEYS[1:])
# The emulator's faults a leader may meet on its next orders, each one of Binance's documented unknown outcomes.
FAULTS = (
    {"kind": "execute_later", "path": "/fapi/v1/order", "method": "POST", "count": 1, "delay": 2.0},
    {"kind": "timeout_after", "path": "/fapi/v1/order", "method": "POST", "count": 1, "delay": 2.0},
    {"kind": "drop_after", "path": "/fapi/v1/order", "method": "POST", "count": 1},
    {"kind": "server_error", "path": "/fapi/v1/order", "method": "POST", "count": 2},
)


@dataclass
class ProcessChaosFigures:
    """What one schedule did and measured."""

    seed: int
    failures: list[str] = field(default_factory=list)
    orders: int = 0
    duplicates: int = 0
    unjournaled: int = 0
    stale_requests: int = 0
    two_writers: int = 0
    epochs: int = 0
    recoveries: list[tuple[str, float]] = field(default_factory=list)  # (failure, real seconds to back in band)
    # For each failure after which another epoch was taken: (failure, seconds to the lease taken, to back in band).
    takeovers: list[tuple[str, float, float]] = field(default_factory=list)
    stale: list[str] = field(default_factory=list)  # each stale request: who, what, when, under which epochs
    unrecovered: list[str] = field(default_factory=list)  # failures after which the hedge was not back in band in time


@dataclass
class DaemonProcess:
    """One daemon process and the API key it signs with."""

    name: str
    key: str
    process: subprocess.Popen[bytes]
    log: Path


def _start(root: Path, name: str, key: str, secret: str, url: str, pg_url: str) -> DaemonProcess:
    log = root / f"{name}.log"
    config = shared_journal_config(root, name, url, pg_url, lease=LEASE, margin=MARGIN, status_interval_seconds=1)
    return DaemonProcess(name, key, start_live_daemon(config, log, key, secret), log)


def _lease(pg_url: str) -> tuple[str, int] | None:
    """Return the holder and epoch of the account's current, unexpired lease (None while nobody holds it)."""
    try:
        with psycopg.connect(pg_url, connect_timeout=2) as conn:
            row = conn.execute(
                "SELECT holder, epoch FROM leases WHERE account = 'binance-main' AND expires_at > clock_timestamp()"
            ).fetchone()
    except (psycopg.OperationalError, psycopg.errors.UndefinedTable):
        return None  # the server is restarting, or no daemon has migrated the journal yet
    return (row[0], int(row[1])) if row else None


def _pid_of(holder: str) -> int:
    return int(holder.split(":")[1])


def _in_band(emulator: EmulatorProcess) -> bool:
    state = emulator.control("state")
    spot = Decimal(state["spot"].get("BTC", "0"))
    short = Decimal(state["positions"].get("BTCUSDT|SHORT", {}).get("amount", "0"))
    return abs(short - spot) <= BAND * spot


def _wait(condition: Any, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def run_process_schedule(
    seed: int, pg_url: str, server: PostgresServer, emulator: EmulatorProcess, root: Path, events: int = 4,
) -> ProcessChaosFigures:
    """Run one seeded schedule of `events` failures over three daemon processes and judge what the account saw."""
    rng = random.Random(seed)
    figures = ProcessChaosFigures(seed)
    free_keys = list(KEYS)
    daemons: list[DaemonProcess] = []
    stopped: list[DaemonProcess] = []
    serial = iter(range(1, 1000))

    def spawn() -> DaemonProcess:
        key, secret = free_keys.pop(0)
        daemon = _start(root, f"d{next(serial)}", key, secret, emulator.url, pg_url)
        daemons.append(daemon)
        return daemon

    def leader() -> DaemonProcess | None:
        lease = _lease(pg_url)
        if lease is None:
            return None
        pid = _pid_of(lease[0])
        return next((d for d in daemons if d.process.pid == pid and d.process.poll() is None), None)

    def recover(failure: str, since: float, since_wall: float, unknown_orders: int) -> None:
        # Back in band under a leader that is alive and not frozen. Each order the emulator's faults leave of
        # unknown outcome is settled only after the venue's settle delay (30 s on Binance), by design.
        limit = 60 + SETTLE_SECONDS * unknown_orders
        ok = _wait(lambda: (led := leader()) is not None and led not in stopped and _in_band(emulator), limit)
        if not ok:
            figures.unrecovered.append(f"{failure}: not back in band within {limit:g} s; " + _tails(daemons))
            return
        back = time.monotonic() - since
        figures.recoveries.append((failure, back))
        with psycopg.connect(pg_url) as conn:
            (taken,) = conn.execute("SELECT min(at) FROM events WHERE kind = 'lease_taken' AND at > %s", (since_wall,)).fetchone()
        if taken is not None:
            figures.takeovers.append((failure, float(taken) - since_wall, back))

    try:
        first = spawn()
        began = time.monotonic()
        if not _wait(lambda: leader() is first and _in_band(emulator), 60):
            raise AssertionError(f"seed {seed}: the first daemon did not hedge; " + _tails(daemons))
        figures.recoveries.append(("start", time.monotonic() - began))
        spawn()
        spawn()
        # Standbys run a while before a failure, as they do in service: long enough that their request pacing has
        # regained its burst (PACER_BURST units at ccxt's 50 ms each, counted from when a venue is built). A standby
        # younger than that lets a warm one take over first; these two have no warmer one to let go.
        time.sleep(LEASE + PACER_BURST * 0.05)
        carried = 0  # order faults an earlier fault set left untaken: they meet the next orders, whoever sends them
        for _ in range(events):
            failure = rng.choice(FAILURES)
            figures.failures.append(failure)
            if failure in ("sigstop", "sigkill"):  # a death needs a leader: after a restart one may be taking over
                _wait(lambda: leader() is not None, 60)
            led = leader()
            since, since_wall = time.monotonic(), time.time()
            unknown = carried
            if failure == "sigstop" and led is not None:
                led.process.send_signal(signal.SIGSTOP)
                stopped.append(led)
            elif failure == "sigkill" and led is not None:
                led.process.send_signal(signal.SIGKILL)
                led.process.wait(10)
                spawn()  # the orchestrator starts a replacement, which stands by
            elif failure == "terminate":
                with psycopg.connect(pg_url, autocommit=True) as conn:
                    conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE pid <> pg_backend_pid() "
                                 "AND datname = current_database()")
            elif failure == "restart":
                server.restart()
            elif failure == "faults":  # never a death that found no leader to kill
                for _fault in range(rng.randint(1, 2)):
                    fault = rng.choice(FAULTS)
                    emulator.control("fault", fault)
                    unknown += int(fault["count"])
            if failure == "faults" or rng.random() < 0.7:
                emulator.control("deposit", {"wallet": "spot", "asset": "BTC", "amount": rng.choice(["0.1", "0.25", "0.5"])})
            # A failure whose recovery also met faults left from an earlier set is told apart: the time to settle
            # those orders is the exchange's, not the takeover's.
            recover(failure + ("+carried faults" if carried else ""), since, since_wall, unknown)
            carried = sum(int(f["count"]) for f in emulator.control("faults")["faults"] if f["path"] == "/fapi/v1/order")
            for frozen in stopped:  # woken after the takeover: it must stand down and never send again
                frozen.process.send_signal(signal.SIGCONT)
            stopped.clear()
            time.sleep(rng.uniform(0.5, 1.5))
        time.sleep(LEASE)  # the woken leaders' tasks run a few times: any request they sent is in the log by now
    finally:
        for daemon in daemons:
            if daemon.process.poll() is None:
                daemon.process.send_signal(signal.SIGCONT)
                daemon.process.send_signal(signal.SIGTERM)
        for daemon in daemons:
            try:
                daemon.process.wait(30)
            except subprocess.TimeoutExpired:
                daemon.process.kill()
                daemon.process.wait(10)
    _judge(figures, pg_url, emulator, daemons)
    return figures


def _tails(daemons: list[DaemonProcess]) -> str:
    return "\n".join(f"--- {d.name}:\n{d.log.read_text()[-1500:]}" for d in daemons)


def _judge(figures: ProcessChaosFigures, pg_url: str, emulator: EmulatorProcess, daemons: list[DaemonProcess]) -> None:
    log = emulator.control("requests")
    executions = [key for key in log["executions"] if key.startswith("futures|")]
    figures.duplicates = len(executions) - len(set(executions))
    with psycopg.connect(pg_url) as conn:
        journaled = {cid for (cid,) in conn.execute("SELECT client_id FROM intents WHERE kind = 'order'")}
        taken = [
            (float(at), json.loads(detail)) for at, detail in
            conn.execute("SELECT at, detail FROM events WHERE kind = 'lease_taken' ORDER BY id").fetchall()
        ]
    executed = {key.split("|", 2)[2] for key in executions}
    figures.orders = len(executed)
    figures.unjournaled = len(executed - journaled)
    figures.epochs = len(taken)
    # Which daemon (by its key) took which epoch, and when the journal had it.
    key_of_pid = {d.process.pid: d.key for d in daemons}
    epochs = sorted((at, int(detail["epoch"]), key_of_pid.get(_pid_of(detail["holder"]))) for at, detail in taken)
    for request in log["requests"]:
        key = request.get("key")
        if not key or request.get("path", "").startswith("/_emulator"):
            continue
        # The stamp may be off by ccxt's exchange-time offset (under 0.1 s): each side gets the benefit of the doubt.
        signed = float(request.get("signed_at") or request["at"])
        committed = [(at, epoch, holder) for at, epoch, holder in epochs if at <= signed - 0.1]
        own = [epoch for at, epoch, holder in epochs if holder == key and at <= signed + 0.1]
        newest = max((epoch for _at, epoch, _holder in committed), default=None)
        if newest is not None and (not own or own[-1] < newest):
            figures.stale_requests += 1
            figures.stale.append(
                f"{request.get('method')} {request.get('path')} by {key} signed {signed:.3f} "
                f"(its epochs {own}, newest {newest}; taken {[(round(a, 3), e, h) for a, e, h in committed]})"
            )
            if request.get("method") in ("POST", "DELETE", "PUT"):
                figures.two_writers += 1
