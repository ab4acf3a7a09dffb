"""status.json at scale: each hedge's status is rendered once per new status, not once per round of the writer."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

from hedgebot.clock import SimClock
from hedgebot.config import load_config
from hedgebot.engine.daemon import Daemon
from hedgebot.engine.keeper import HedgeStatus
from tests.helpers import paper_settings_dict, write_toml


async def test_a_status_not_replaced_since_the_last_round_is_not_rendered_again_and_the_file_stays_true(
    tmp_path: Path, monkeypatch,
) -> None:
    data = paper_settings_dict(tmp_path, tick_seconds=10)
    data["daemon"]["status_interval_seconds"] = 1
    settings = load_config(write_toml(tmp_path / "hedgebot.toml", data))
    rendered: list[HedgeStatus] = []  # the statuses themselves: a freed status's id() may be reused by the next
    original = HedgeStatus.to_json

    def counting(self: HedgeStatus) -> dict:
        rendered.append(self)
        return original(self)

    monkeypatch.setattr(HedgeStatus, "to_json", counting)
    clock = SimClock()
    daemon = Daemon(settings, clock)
    await daemon.start()
    try:
        await clock.advance(60)  # 60 rounds of the writer, about 6 ticks of the hedge
        by_writer = len(rendered)
        assert by_writer < 20, f"{by_writer} renders for 60 rounds: unchanged statuses were rendered again"
        assert len({id(status) for status in rendered}) == len(rendered)  # no status rendered twice
        daemon.write_status()
        written = json.loads((tmp_path / "state" / "status.json").read_text())["hedges"]
        assert written == [original(daemon.keepers[0].status)]  # what the file says is the hedge's latest status
    finally:
        await daemon.stop()


async def test_the_status_file_is_rewritten_only_when_a_status_changed_or_a_heartbeat_is_due(tmp_path: Path, monkeypatch) -> None:
    data = paper_settings_dict(tmp_path, tick_seconds=10)
    data["daemon"]["status_interval_seconds"] = 1
    settings = load_config(write_toml(tmp_path / "hedgebot.toml", data))
    clock = SimClock()
    daemon = Daemon(settings, clock)
    writes: list[float] = []
    original = Daemon._write_status_document

    def counting(self: Daemon, document: dict) -> None:
        writes.append(clock.now())
        original(self, document)

    monkeypatch.setattr(Daemon, "_write_status_document", counting)
    await daemon.start()
    try:
        await clock.advance(120)  # 120 rounds of the writer, about 12 ticks of the hedge
        assert 1 <= len(writes) <= 12 + 120 / 30, f"{len(writes)} writes in 120 rounds: unchanged statuses were written again"
        await clock.advance(1)  # a status replaced by the last tick is written at the writer's next round
        written = json.loads((tmp_path / "state" / "status.json").read_text())
        assert written["hedges"] == [daemon.keepers[0].status.to_json()]  # the file still says the latest status
        gaps = [b - a for a, b in zip(writes, writes[1:], strict=False)]
        assert max(gaps) <= 30 + 1  # the heartbeat keeps updated_at fresh while nothing changes
    finally:
        await daemon.stop()


async def test_a_status_write_that_failed_is_retried_at_the_next_round_once_the_disk_recovers(tmp_path: Path, monkeypatch) -> None:
    data = paper_settings_dict(tmp_path, tick_seconds=60)
    data["daemon"]["status_interval_seconds"] = 1
    settings = load_config(write_toml(tmp_path / "hedgebot.toml", data))
    clock = SimClock()
    daemon = Daemon(settings, clock)
    disk_full = False
    original = Daemon._write_status_document

    def flaky(self: Daemon, document: dict) -> None:
        if disk_full:
            raise OSError(28, "No space left on device")
        original(self, document)

    monkeypatch.setattr(Daemon, "_write_status_document", flaky)
    await daemon.start()
    try:
        await clock.advance(5)
        before = daemon.keepers[0].status
        disk_full = True
        await clock.advance(57)  # the hedge ticks at 60 s: its new status cannot be written
        assert daemon.keepers[0].status is not before
        disk_full = False
        await clock.advance(2)  # the disk is back: the next round writes what the last one could not
        written = json.loads((tmp_path / "state" / "status.json").read_text())
        assert written["hedges"] == [daemon.keepers[0].status.to_json()], "the file still shows the status from before the failure"
    finally:
        await daemon.stop()


async def test_a_heartbeat_rewrite_serializes_no_hedge_again_and_reads_as_the_same_document(tmp_path: Path, monkeypatch) -> None:
    data = paper_settings_dict(tmp_path, tick_seconds=10)
    settings = load_config(write_toml(tmp_path / "hedgebot.toml", data))
    clock = SimClock()
    daemon = Daemon(settings, clock)
    await daemon.start()
    try:
        await clock.advance(30)
        daemon.write_status()
        first = json.loads((tmp_path / "state" / "status.json").read_text())
        serialized: list[object] = []
        dumps = json.dumps

        def counting(value, *args, **kwargs):  # type: ignore[no-untyped-def]
            serialized.append(value)
            return dumps(value, *args, **kwargs)

        monkeypatch.setattr("hedgebot.engine.daemon.json.dumps", counting)
        daemon.write_status()  # nothing changed since: the hedge's line is reused as it was
        again = json.loads((tmp_path / "state" / "status.json").read_text())
        hedges_again = [v for v in serialized if isinstance(v, dict) and ("exposure" in v or v.get("hedges"))]
        assert not hedges_again, "a hedge whose status was not replaced was serialized again"
        assert again["hedges"] == first["hedges"] and again["hedges"][0]["state"] == "hedged"
        assert again["pid"] == first["pid"] and "streams" in again
    finally:
        await daemon.stop()


async def written_by_the_worker(path: Path, patience: float = 30.0) -> dict:
    """Return the status file once a worker thread has written a hedged status into it (or, past `patience` real
    seconds, whatever it holds). The thread renders in real time while simulated time runs on without it."""
    deadline = time.monotonic() + patience
    while True:
        try:
            document = json.loads(path.read_text())
            if document["hedges"] and document["hedges"][0]["state"] == "hedged" or time.monotonic() > deadline:
                return document
        except (FileNotFoundError, ValueError):
            if time.monotonic() > deadline:
                raise
        await asyncio.to_thread(time.sleep, 0.02)


async def test_on_the_real_clock_the_status_writer_renders_hedges_off_the_event_loop(tmp_path: Path, monkeypatch) -> None:
    import threading

    data = paper_settings_dict(tmp_path, tick_seconds=10)
    data["daemon"]["status_interval_seconds"] = 1
    settings = load_config(write_toml(tmp_path / "hedgebot.toml", data))
    threads: list[str] = []
    original = HedgeStatus.to_json

    def counting(self: HedgeStatus) -> dict:
        threads.append(threading.current_thread().name)
        return original(self)

    monkeypatch.setattr(HedgeStatus, "to_json", counting)
    clock = SimClock()
    daemon = Daemon(settings, clock)
    daemon._real_time = True  # as on the real clock: the writer's work goes to a worker thread
    await daemon.start()
    try:
        await clock.advance(30)
        written = (await written_by_the_worker(tmp_path / "state" / "status.json"))["hedges"]
        loop_thread = threading.current_thread().name
        assert threads and loop_thread not in threads, threads
        assert written[0]["state"] == "hedged"
    finally:
        await daemon.stop()
