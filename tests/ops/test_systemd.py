"""sd_notify: READY once started, the watchdog fed from the event loop, STOPPING on the way out."""

from __future__ import annotations

import socket

from hedgebot.clock import SimClock
from hedgebot.engine.daemon import Daemon
from hedgebot.ops import systemd
from tests.ops.support import paper_settings


def listen(tmp_path, monkeypatch) -> socket.socket:
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.setblocking(False)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    return sock


def received(sock: socket.socket) -> list[str]:
    out = []
    while True:
        try:
            out.append(sock.recv(4096).decode())
        except BlockingIOError:
            return out


def test_notify_does_nothing_outside_systemd(monkeypatch) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.delenv("WATCHDOG_USEC", raising=False)
    assert systemd.notify("READY=1") is False
    assert systemd.watchdog_interval() is None


def test_the_watchdog_is_fed_at_half_its_timeout_only_for_this_process(monkeypatch) -> None:
    monkeypatch.setenv("WATCHDOG_USEC", "60000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    assert systemd.watchdog_interval() == 30.0
    monkeypatch.setenv("WATCHDOG_PID", "1")
    assert systemd.watchdog_interval() is None


async def test_the_daemon_says_ready_feeds_the_watchdog_and_says_stopping(tmp_path, monkeypatch) -> None:
    sock = listen(tmp_path, monkeypatch)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    clock = SimClock()
    daemon = Daemon(paper_settings(tmp_path), clock)
    await daemon.start()
    await clock.advance(3)
    messages = received(sock)
    assert messages[0] == "READY=1\nSTATUS=hedging"
    assert messages[1:] == ["WATCHDOG=1"] * 4  # at 0, 1, 2 and 3 s: every half of the 2 s timeout
    await daemon.stop()
    assert received(sock)[0] == "STOPPING=1"
    sock.close()


async def test_a_dead_task_makes_the_daemon_unhealthy_and_stops_feeding_the_watchdog(tmp_path, monkeypatch) -> None:
    sock = listen(tmp_path, monkeypatch)
    monkeypatch.setenv("WATCHDOG_USEC", "2000000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    clock = SimClock()
    daemon = Daemon(paper_settings(tmp_path), clock)
    await daemon.start()
    await clock.advance(3)
    assert daemon.ops.healthy()
    received(sock)

    def broken() -> None:
        raise RuntimeError("a bug in the status writer")

    working = daemon.write_status
    monkeypatch.setattr(daemon, "write_status", broken)  # the status writer dies at its next round
    await clock.advance(3)
    assert not daemon.ops.healthy()
    assert "status writer" in daemon.ops.dead_tasks and not daemon.ops.ready()[0]
    received(sock)
    await clock.advance(5)
    assert "WATCHDOG=1" not in received(sock), "systemd is left to restart a daemon that cannot do its work"
    assert [e.detail["task"] for e in daemon.journal.events(kind="daemon_task_failed")] == ["status writer"]
    monkeypatch.setattr(daemon, "write_status", working)
    await daemon.stop()
    sock.close()
