"""SIGHUP reload: ratios, bands and guard settings apply at the next tick; an invalid file is
rejected and the running config stays; accounts added or removed need a restart."""

from __future__ import annotations

from hedgebot.clock import SimClock
from hedgebot.config import load_config
from hedgebot.engine.daemon import Daemon
from tests.helpers import D, SYMBOL, paper_settings_dict, write_toml


async def started(tmp_path):
    data = paper_settings_dict(tmp_path)
    path = write_toml(tmp_path / "hedgebot.toml", data)
    clock = SimClock()
    daemon = Daemon(load_config(path), clock)
    await daemon.start()
    await clock.advance(3)
    return daemon, clock, data, path


async def test_a_changed_ratio_band_and_guard_apply_at_the_next_tick(tmp_path) -> None:
    daemon, clock, data, path = await started(tmp_path)
    try:
        venue = daemon.accounts[0].venue
        assert (await venue.fetch_legs(SYMBOL)).short.size == D("2")
        hedge = data["accounts"][0]["hedges"][0]
        hedge.update(ratio="0.5", band="0.05", margin_guard={"trigger": "0.25", "target": "0.4"})
        write_toml(path, data)
        result = daemon.reload_file(path)
        assert result.error is None and result.needs_restart == []
        assert result.applied == ["hedge paper/btc-core: ratio, band, margin_guard"]
        await clock.advance(1)
        assert (await venue.fetch_legs(SYMBOL)).short.size == D("1")
        keeper = daemon.keepers[0]
        assert keeper.policy.band == D("0.05") and keeper.policy.guard.trigger == D("0.25")
        [event] = daemon.journal.events(kind="config_reloaded")
        assert event.severity == "info" and "ratio, band, margin_guard" in event.detail["message"]
    finally:
        await daemon.stop()


async def test_an_invalid_file_is_rejected_with_a_message_and_the_old_config_stays(tmp_path) -> None:
    daemon, clock, data, path = await started(tmp_path)
    try:
        data["accounts"][0]["hedges"][0]["ratio"] = "1.5"
        write_toml(path, data)
        result = daemon.reload_file(path)
        assert "accounts[0].hedges[0].ratio" in result.error and "1.5" in result.error
        assert daemon.keepers[0].hedge.ratio == D("1")
        [event] = daemon.journal.events(kind="config_reload_rejected")
        assert event.severity == "warning" and "the running config stays in force" in event.detail["message"]
        path.write_text("this is [not toml")
        assert "not valid TOML" in daemon.reload_file(path).error
        await clock.advance(3)
        assert (await daemon.accounts[0].venue.fetch_legs(SYMBOL)).short.size == D("2")
    finally:
        await daemon.stop()


async def test_adding_an_account_says_it_needs_a_restart_and_still_applies_the_rest(tmp_path) -> None:
    daemon, clock, data, path = await started(tmp_path)
    try:
        second = {**data["accounts"][0], "name": "second"}
        data["accounts"].append(second)
        data["accounts"][0]["hedges"][0]["ratio"] = "0.5"
        write_toml(path, data)
        result = daemon.reload_file(path)
        assert result.needs_restart == ["account 'second' was added: adding an account needs a restart"]
        assert result.applied == ["hedge paper/btc-core: ratio"]
        assert [a.config.name for a in daemon.accounts] == ["paper"]
        [event] = daemon.journal.events(kind="config_reloaded")
        assert event.severity == "warning" and "adding an account needs a restart" in event.detail["message"]
    finally:
        await daemon.stop()


async def test_removing_an_account_or_changing_leverage_needs_a_restart(tmp_path) -> None:
    daemon, clock, data, path = await started(tmp_path)
    try:
        data["accounts"][0]["name"] = "renamed"
        write_toml(path, data)
        assert daemon.reload_file(path).needs_restart == [
            "account 'renamed' was added: adding an account needs a restart",
            "account 'paper' was removed: removing an account needs a restart",
        ]
        data["accounts"][0]["name"] = "paper"
        data["accounts"][0]["hedges"][0].update(leverage=5, band="0.03")
        write_toml(path, data)
        result = daemon.reload_file(path)
        assert result.needs_restart == ["hedge paper/btc-core: leverage changed: needs a restart"]
        assert result.applied == ["hedge paper/btc-core: band"]
        assert daemon.keepers[0].hedge.leverage == 3 and daemon.keepers[0].hedge.band == D("0.03")
    finally:
        await daemon.stop()


async def test_a_reload_that_changes_the_side_needs_a_restart_and_keeps_the_short(tmp_path) -> None:
    daemon, clock, data, path = await started(tmp_path)
    try:
        data["accounts"][0]["hedges"][0].update(side="long", amount="2")
        write_toml(path, data)
        result = daemon.reload_file(path)
        assert result.needs_restart == [
            "hedge paper/btc-core: side changed: needs a restart; "
            "the hedge's other changes go with it and wait for the restart as well"
        ]
        await clock.advance(3)
        assert daemon.keepers[0].hedge.side.value == "short"
        assert (await daemon.accounts[0].venue.fetch_legs(SYMBOL)).short.size == D("2")
    finally:
        await daemon.stop()
