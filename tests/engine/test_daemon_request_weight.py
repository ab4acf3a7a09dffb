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
