"""Request weight in /metrics: what each live account spent on its exchange host, and the share its reads keep to."""

from __future__ import annotations

import asyncio

from prometheus_client import generate_latest

from hedgebot.config import Settings
from hedgebot.engine.daemon import Daemon
from hedgebot.ops.metrics import build_registry
from tests.emulator_rig import KEY, SECRET, emulator_rig
from tests.helpers import paper_settings_dict


async def test_metrics_show_the_weight_each_live_account_sent_its_host_and_the_share_its_reads_keep_to(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("HB_TEST_KEY", KEY)
    monkeypatch.setenv("HB_TEST_SECRET", SECRET)
    async with emulator_rig() as rig:
        data = paper_settings_dict(tmp_path)
        account = data["accounts"][0]
        account.pop("paper", None)
        account.update(
            name="main", mode="live", api_base_url=rig.url, streams=False, weight_share=0.5,
            credentials={"api_key": {"env": "HB_TEST_KEY"}, "secret": {"env": "HB_TEST_SECRET"}},
        )
        daemon = Daemon(Settings(**data), rig.clock, allow_live=True)
        await daemon.start()
        try:
            loop = asyncio.get_running_loop()
            end = loop.time() + 20
            while rig.short() == 0:
                assert loop.time() < end, "the live account never hedged"
                await asyncio.sleep(0.01)
            metrics = generate_latest(build_registry(daemon.ops)).decode()
        finally:
            await daemon.stop()
    host = f'host="{rig.url}"'
    sent = [line for line in metrics.splitlines() if line.startswith("hedgebot_request_weight_total{") and 'account="main"' in line]
    assert sent and all(host in line for line in sent), metrics
    assert sum(float(line.rsplit(" ", 1)[1]) for line in sent) > 0  # the start-up checks and the first tick's reads
    allowed = f'hedgebot_request_weight_account_allowed{{account="main",family="fapi",{host}}} 960.0'
    assert allowed in metrics, metrics  # half of the 80 % of Binance's 2,400 the daemon keeps to
    assert f'hedgebot_request_weight_limit{{family="fapi",{host}}} 2400.0' in metrics


async def test_with_streams_healthy_one_live_hedge_costs_under_two_weight_a_minute_over_an_hour(tmp_path) -> None:
    # One live daemon on the emulator, its user-data and mark streams up, a 10 s tick, 65 simulated minutes.
    from decimal import Decimal

    from hedgebot.exchange.ratelimit import gates_for

    def sent() -> dict[str, int]:
        totals: dict[str, int] = {}
        for gate in gates_for(rig.clock).gates.values():
            for (_account, family), weight in gate.weight_sent.items():
                totals[family] = totals.get(family, 0) + weight
        return totals

    async with emulator_rig(streams=True) as rig:
        # The rig publishes the mark once per jump of virtual time, and a quiet daemon's sleeps jump up to 30 s at once
        # (Binance pushes it every second): a wider staleness limit keeps that artefact from reading as a silent stream.
        data = paper_settings_dict(tmp_path, tick_seconds=10, staleness_seconds=90)
        account = data["accounts"][0]
        account.pop("paper", None)
        account.update(mode="live", credentials={"api_key": {"env": "HB_UNUSED"}, "secret": {"env": "HB_UNUSED"}})
        data["http"] = {"enabled": False}
        venue = rig.daemon_venue()
        daemon = Daemon(Settings(**data), rig.clock, allow_live=True, venue_factory=lambda _a: venue)
        rig.publish_mark_every_second({"mark": Decimal("50000")})
        await daemon.start()
        loop = asyncio.get_running_loop()
        end = loop.time() + 120  # real seconds: a guard, never the measure
        try:
            while rig.short() == 0 or daemon.stream_status()[account["name"]]["polling"]:
                assert loop.time() < end, "the hedge never opened with its streams up"
                await asyncio.sleep(0.01)
            before, started = sent(), rig.clock.now()
            while rig.clock.now() - started < 65 * 60:
                assert loop.time() < end, "virtual time stopped moving"
                await asyncio.sleep(0.01)
            after, minutes = sent(), (rig.clock.now() - started) / 60
            assert not daemon.stream_status()[account["name"]]["polling"]
            metrics = generate_latest(build_registry(daemon.ops)).decode()
        finally:
            await daemon.stop()
    spent = {family: after.get(family, 0) - before.get(family, 0) for family in after}
    assert sum(spent.values()) / minutes <= 2.0, spent
    assert spent["api"] >= 3 * 20, "the spot account (weight 20) is still reconciled every 20 minutes"
    served = [line for line in metrics.splitlines() if line.startswith("hedgebot_account_reads_total{") and 'source="stream"' in line]
    assert {'figure="legs"', 'figure="futures"', 'figure="spot"'} <= {part for line in served for part in line.split(",")}, served
