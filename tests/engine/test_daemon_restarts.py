"""The daemon across restarts and replays: paper state, the demo script, replay time, renamed hedges."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from hedgebot.commands.main import main
from hedgebot.clock import SimClock
from hedgebot.config import Settings, load_config
from hedgebot.engine.daemon import Daemon
from tests.helpers import D, paper_settings_dict, write_toml


async def _run_for(settings: Settings, seconds: float, clock: SimClock | None = None) -> Daemon:
    clock = clock or SimClock()
    daemon = Daemon(settings, clock)
    await daemon.start()
    try:
        await clock.advance(seconds)
    finally:
        await daemon.stop()
    return daemon


async def test_a_restored_paper_account_says_so_and_warns_when_the_configs_starting_balances_changed(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    await _run_for(Settings(**data), 3)
    data["accounts"][0]["paper"]["spot"]["BTC"] = "3"
    with capture_logs() as logs:
        await _run_for(Settings(**data), 1)
    restored = next(e for e in logs if e["event"] == "paper_account_restored")
    assert restored["file"] == str(tmp_path / "state" / "paper-paper.json")
    changed = next(e for e in logs if e["event"] == "paper_starting_balances_changed")
    assert changed["log_level"] == "warning"
    assert changed["config"]["spot"]["BTC"] == "3" and changed["created_with"]["spot"]["BTC"] == "2"
    assert "delete" in changed["note"] and "paper-paper.json" in changed["note"]
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    assert "start afresh" in readme.lower()


def _script_changes(daemon: Daemon) -> list[tuple[float, str]]:
    return [(e.at, e.detail["amount"]) for e in daemon.journal.events(kind="paper_spot_change")] if daemon.journal else []


async def test_the_demo_script_starts_after_start_after_seconds_and_resumes_its_cycle_after_a_restart(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["paper"]["script"] = [
        {"asset": "BTC", "every_seconds": 8, "start_after_seconds": 4, "amounts": ["0.5", "-0.8", "0.3"]}
    ]
    clock = SimClock()
    start = clock.now()
    daemon = Daemon(Settings(**data), clock)
    await daemon.start()
    await clock.advance(13)
    first_run = [(e.at - start, e.detail["amount"]) for e in daemon.journal.events(kind="paper_spot_change")]
    await daemon.stop()
    assert first_run == [(4.0, "0.5"), (12.0, "-0.8")]
    restart = clock.now()
    again = Daemon(Settings(**data), clock)
    await again.start()
    await clock.advance(5)
    second_run = [
        (e.at - restart, e.detail["amount"]) for e in again.journal.events(kind="paper_spot_change") if e.at > restart
    ]
    await again.stop()
    assert second_run == [(4.0, "0.3")]


def _utc(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp()


@pytest.mark.parametrize("funding", ["file", "constant"])
async def test_a_replay_daemon_pays_funding_at_the_replayed_settlement_times_and_history_shows_each(tmp_path, capsys, funding) -> None:
    rows = ["date,open,high,low,close,volume"]
    for hour in range(24):
        rows.append(f"2021-01-01T{hour:02d}:00:00Z,29000,29050,28950,29000,1")
    (tmp_path / "candles.csv").write_text("\n".join(rows) + "\n")
    (tmp_path / "funding.csv").write_text(
        "calc_time,funding_interval_hours,last_funding_rate\n"
        + "".join(f"{int(_utc(f'2021-01-01T{h:02d}:00:00')) * 1000 + 3},8,0.0003\n" for h in (0, 8, 16))
    )
    data = paper_settings_dict(tmp_path)
    market = data["accounts"][0]["paper"]["markets"][0]
    market["feed"] = {"kind": "replay", "path": str(tmp_path / "candles.csv"), "step_seconds": 1}
    market["funding"] = {"file": str(tmp_path / "funding.csv")} if funding == "file" else {"rate": "0.0003", "interval_hours": 8}
    config = write_toml(tmp_path / "c.toml", data)
    daemon = await _run_for(load_config(config), 30)
    payments = [e for e in _journal_events(tmp_path) if e[0] == "funding"]
    assert [t for _, t, _ in payments] == [_utc("2021-01-01T08:00:00"), _utc("2021-01-01T16:00:00")]
    assert all(D(amount) > 0 for _, _, amount in payments)  # positive rate: the short receives
    status = json.loads((tmp_path / "state" / "status.json").read_text())
    assert status["updated_at"].startswith("2021-01-01T") and status["hedges"][0]["updated_at"].startswith("2021-01-01T")
    assert daemon.keepers[0].status.state == "stopped"
    capsys.readouterr()
    assert main(["history", "--config", str(config), "--hedge", "btc-core"]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if " funding " in line]
    assert [line[:19] for line in lines] == ["2021-01-01 08:00:00", "2021-01-01 16:00:00"]
    assert all("rate=0.0003" in line for line in lines)


def _journal_events(tmp_path: Path) -> list[tuple[str, float, str]]:
    from hedgebot.store.journal import Journal

    journal = Journal(tmp_path / "state" / "journal.sqlite", SimClock())
    try:
        return [(e.kind, e.at, e.detail.get("amount", "")) for e in journal.events()]
    finally:
        journal.close()


async def test_a_renamed_hedge_is_named_as_the_holder_of_the_short_not_blamed_on_a_manual_trade(tmp_path) -> None:
    data = paper_settings_dict(tmp_path)
    await _run_for(Settings(**data), 3)
    data["accounts"][0]["hedges"][0]["name"] = "btc-main"
    daemon = await _run_for(Settings(**data), 1)
    from hedgebot.store.journal import Journal

    journal = Journal(tmp_path / "state" / "journal.sqlite", SimClock())
    try:
        assert journal.events(kind="position_differs_from_journal") == []
        held = journal.events(hedge="btc-main", kind="short_held_by_unconfigured_hedge")
    finally:
        journal.close()
    assert len(held) == 1 and held[0].detail["hedges"] == ["btc-core"]
    assert "no longer configured" in held[0].detail["note"] and "manual" not in held[0].detail["note"]
    assert daemon.keepers[0].status.state == "stopped"


async def test_a_fast_replay_repeats_a_lasting_alert_on_the_watchers_clock_not_every_replayed_quarter_hour(tmp_path) -> None:
    rows = ["date,open,high,low,close,volume"]
    rows += [f"2021-01-{1 + hour // 24:02d}T{hour % 24:02d}:00:00Z,29000,29050,28950,29000,1" for hour in range(48)]
    (tmp_path / "candles.csv").write_text("\n".join(rows) + "\n")
    data = paper_settings_dict(tmp_path)
    paper = data["accounts"][0]["paper"]
    paper["futures"] = {"USDT": "5000"}  # affords about half the short: under-hedged for as long as it runs
    paper["markets"][0]["feed"] = {"kind": "replay", "path": str(tmp_path / "candles.csv"), "step_seconds": 0.5}
    clock = SimClock()
    daemon = Daemon(Settings(**data), clock)
    await daemon.start()
    try:
        await clock.advance(30)  # two replayed days go by in 24 seconds
        alerts = [e.detail["state"] for e in daemon.journal.events(kind="alert") if e.detail["code"] == "under_hedged_no_margin"]
        assert alerts == ["raised"]
        await clock.advance(900)  # a quarter of an hour of the watcher's time
        alerts = [e.detail["state"] for e in daemon.journal.events(kind="alert") if e.detail["code"] == "under_hedged_no_margin"]
        assert alerts == ["raised", "repeated"]
    finally:
        await daemon.stop()
