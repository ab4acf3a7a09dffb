"""Too many sockets: idle connections to the ops port never take the descriptors the exchange needs."""

from __future__ import annotations

import json
import os
import resource
import signal
import socket
import subprocess
import sys
import time
import tomllib
from decimal import Decimal
from pathlib import Path

import pytest

from hedgebot.ops.fdguard import OutOfFilesLog, room_for_one_more
from tests.emulator_rig import PROCESS_KEY, PROCESS_SECRET, EmulatorProcess, live_config, wait_until
from tests.helpers import clean_env, write_toml

pytestmark = pytest.mark.realtime

REPO = Path(__file__).resolve().parents[2]
# systemd's default soft limit on open files, which the daemon ran under when 1,100 connections starved it.
SYSTEMD_DEFAULT_NOFILE = 1024


def _short(emulator: EmulatorProcess) -> Decimal:
    position = emulator.control("state")["positions"].get("BTCUSDT|SHORT")
    return abs(Decimal(position["amount"])) if position else Decimal(0)


@pytest.mark.slow
def test_1100_idle_connections_under_a_1024_file_limit_leave_the_daemon_reaching_the_exchange(tmp_path: Path) -> None:
    emulator = EmulatorProcess(tmp_path, futures="200000")
    emulator.start()
    proc: subprocess.Popen[bytes] | None = None
    clients: list[socket.socket] = []
    try:
        config = live_config(tmp_path, emulator.url, tick_seconds=0.5)
        data = tomllib.loads(config.read_text())
        data["http"] = {"enabled": True, "port": 0}
        write_toml(config, data)
        log = tmp_path / "daemon.log"
        env = clean_env()
        env.update(HB_BINANCE_KEY=PROCESS_KEY, HB_BINANCE_SECRET=PROCESS_SECRET, PYTHONUNBUFFERED="1")
        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]

        def lower_limit() -> None:
            resource.setrlimit(resource.RLIMIT_NOFILE, (SYSTEMD_DEFAULT_NOFILE, hard))

        with log.open("a") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "hedgebot.commands.main", "run", "--config", str(config), "--live"],
                cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT, preexec_fn=lower_limit,
            )
        wait_until(lambda: "http_listening" in log.read_text() and _short(emulator) == Decimal("1"), 60,
                   lambda: f"the daemon to listen and hedge:\n{log.read_text()[-2000:]}")
        port = int(json.loads(next(line for line in log.read_text().splitlines() if "http_listening" in line))["port"])

        for n in range(1100):
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=2)
            except OSError:
                continue  # refused or reset at once: the limit at work
            if n % 10 == 0:
                try:
                    sock.sendall(b"GET /status HTTP/1.1\r\nHost: 127.0.0.1\r\n")  # half-sent headers
                except OSError:
                    pass
            clients.append(sock)
        # The exchange drops the daemon's connections: it must open new sockets to carry on.
        emulator.control("fault", {"kind": "drop_before", "path": "/", "count": 3})
        emulator.control("deposit", {"wallet": "spot", "asset": "BTC", "amount": "0.5"})
        wait_until(lambda: _short(emulator) == Decimal("1.5"), 45,
                   lambda: f"the daemon to hedge +0.5 BTC with 1,100 connections open:\n{log.read_text()[-3000:]}")
        assert proc.poll() is None
        written = (tmp_path / "state" / "status.json").stat().st_mtime
        wait_until(lambda: (tmp_path / "state" / "status.json").stat().st_mtime > written, 20, "the status file to be written again")
        text = log.read_text()
        assert "Too many open files" not in text and "status_not_written" not in text, "the ops port never ran the process out of descriptors"
    finally:
        for sock in clients:
            sock.close()
        if proc is not None and proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=40)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        emulator.stop()


def test_a_connection_is_admitted_only_while_the_descriptor_reserve_stays_free() -> None:
    assert room_for_one_more(256, count=lambda: 700, limit=lambda: 1024)
    assert not room_for_one_more(256, count=lambda: 768, limit=lambda: 1024)


def test_too_many_open_files_is_logged_once_a_minute_with_how_many_were_held_back() -> None:
    class Log:
        def __init__(self) -> None:
            self.lines: list[dict] = []

        def error(self, event: str, **fields: object) -> None:
            self.lines.append({"event": event, **fields})

    now = [0.0]
    log = Log()
    handler = OutOfFilesLog(log, monotonic=lambda: now[0])
    error = OSError(24, "Too many open files")
    for _ in range(500):  # accepts refused every few milliseconds for 50 s
        handler.note("socket.accept() out of system resource", error)
        now[0] += 0.1
    assert len(log.lines) == 1
    now[0] = 61.0
    handler.note("socket.accept() out of system resource", error)
    assert len(log.lines) == 2 and log.lines[1]["held_back"] == 499
