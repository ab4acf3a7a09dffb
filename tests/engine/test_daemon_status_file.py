"""status.json at scale: each hedge's status is rendered once per new status, not once per round of the writer."""

from __future__ import annotations

import json
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
