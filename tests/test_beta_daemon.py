"""A beta hedge in the paper daemon: the holding's market is fed like any other, the keeper estimates the beta on
the candles it serves, and `status` shows beta, correlation and hedge effectiveness."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

from hedgebot.commands.main import main
from tests.helpers import paper_settings_dict, write_toml


def test_the_paper_daemon_keeps_a_beta_hedge_and_status_shows_its_beta_and_correlation(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    from hedgebot.clock import SimClock
    from hedgebot.config import load_config
    from hedgebot.engine.daemon import Daemon

    data = paper_settings_dict(
        tmp_path, name="eth-by-btc", asset="ETH", ratio="beta", beta_timeframe="1m", beta_half_life=10,
        beta_min_observations=5, correlation_window=5, tick_seconds=30, max_order="5",
        beta_min="0.5",  # two independent synthetic feeds: the estimate is near 0, the clamp holds it at 0.5
    )
    paper = data["accounts"][0]["paper"]
    paper["spot"] = {"ETH": "10", "USDT": "10000"}
    paper["markets"].append(
        {"symbol": "ETH/USDT:USDT", "feed": {"kind": "synthetic", "start_price": "3000", "step_seconds": 1, "volatility": 0.5, "seed": 4}}
    )
    config = write_toml(tmp_path / "hedgebot.toml", data)

    metrics: list[str] = []

    async def run() -> None:
        from aiohttp.test_utils import make_mocked_request

        from hedgebot.ops.http import OpsServer

        clock = SimClock()
        daemon = Daemon(load_config(config), clock)
        await daemon.start()
        await clock.advance(9 * 60)
        answer = await OpsServer(daemon.ops, daemon.settings.http).metrics(make_mocked_request("GET", "/metrics"))
        metrics.append(answer.body.decode() if isinstance(answer.body, bytes) else answer.text)
        await daemon.stop()

    asyncio.run(run())
    labels = 'account="paper",hedge="eth-by-btc"'
    for name in ("hedgebot_beta", "hedgebot_correlation", "hedgebot_hedge_effectiveness"):
        assert re.search(rf"^{name}{{{labels}}} \S+$", metrics[0], re.M), name
    assert re.search(rf"^hedgebot_beta{{{labels}}} 0.5$", metrics[0], re.M)
    capsys.readouterr()
    assert main(["status", "--config", str(config), "--json"]) == 0
    [hedge] = json.loads(capsys.readouterr().out)
    assert hedge["beta_estimate"] is not None and hedge["correlation"] is not None, hedge
    assert hedge["beta"] == "0.5000" and hedge["short"] not in (None, "0", "0.000")
    # 0.5 x 10 ETH x the ETH price / the BTC price, within the band (2 %) and the prices' moves since
    assert abs(float(hedge["short"]) / (0.5 * 10 * 3000 / 50000) - 1) < 0.1, hedge
    assert main(["status", "--config", str(config)]) == 0
    assert "correlation" in capsys.readouterr().out
