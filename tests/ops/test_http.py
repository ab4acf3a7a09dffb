"""The operations endpoint: /healthz, /readyz, /metrics, /status, and its bearer token."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import re
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer, make_mocked_request
from pydantic import ValidationError

from hedgebot.config import HttpConfig, SecretRef
from hedgebot.engine.daemon import Daemon
from hedgebot.ops.health import Operations
from hedgebot.ops.http import OpsServer
from tests.emulator_rig import free_port
from tests.ops.support import paper_settings, running_daemon


class Answer:
    """An endpoint's answer, read without a socket so that simulated time stands still meanwhile."""

    def __init__(self, response: web.Response) -> None:
        self.status = response.status
        self.content_type = response.content_type
        self._body = response.body if isinstance(response.body, bytes) else response.text.encode()

    async def text(self) -> str:
        return self._body.decode()

    async def json(self) -> object:
        return json.loads(self._body)


class Caller:
    """Calls the endpoint's handlers the way the server routes them."""

    def __init__(self, server: OpsServer) -> None:
        self.server = server

    async def get(self, path: str) -> Answer:
        handler = {"/healthz": self.server.healthz, "/readyz": self.server.readyz,
                   "/metrics": self.server.metrics, "/status": self.server.status}[path]
        return Answer(await handler(make_mocked_request("GET", path)))


@pytest.fixture
async def served(tmp_path) -> AsyncIterator[tuple[Daemon, object, Caller]]:
    daemon, clock = await running_daemon(tmp_path)
    try:
        yield daemon, clock, Caller(OpsServer(daemon.ops, daemon.settings.http))
    finally:
        await daemon.stop()


async def test_healthz_is_200_while_every_keeper_ticks(served) -> None:
    daemon, clock, client = served
    response = await client.get("/healthz")
    assert response.status == 200
    assert (await response.json()) == {"ok": True, "stalled": []}


async def test_healthz_is_503_naming_the_keeper_that_stalled(served) -> None:
    daemon, clock, client = served
    keeper = daemon.keepers[0]
    never = asyncio.Event()

    async def hang() -> None:
        await never.wait()  # the venue stops answering mid-tick

    keeper.observe = hang  # type: ignore[method-assign]
    keeper.wake.set()
    limit = daemon.ops.stale_after(keeper.hedge)
    await clock.advance(limit - 10)
    assert (await client.get("/healthz")).status == 200
    await clock.advance(20)
    response = await client.get("/healthz")
    assert response.status == 503
    assert (await response.json())["stalled"] == ["paper/btc-core"]
    ready = await client.get("/readyz")
    assert ready.status == 503 and "no tick for" in (await ready.json())["reasons"][0]
    never.set()


async def test_readyz_is_200_once_started_with_fresh_data_and_503_when_a_hedge_is_halted(served) -> None:
    daemon, clock, client = served
    response = await client.get("/readyz")
    assert response.status == 200, await response.text()
    assert (await response.json()) == {"ready": True, "reasons": []}
    keeper = daemon.keepers[0]
    keeper.status = dataclasses.replace(keeper.status, state="halted", note="circuit breaker")
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["reasons"] == ["paper/btc-core: trading is halted: circuit breaker"]
    keeper.status = dataclasses.replace(keeper.status, state="hedged", trading_state="halted", trading_reason="paused by hand")
    response = await client.get("/readyz")
    assert response.status == 503
    assert (await response.json())["reasons"] == ["paper/btc-core: trading is halted: paused by hand"]
    metrics = await (await client.get("/metrics")).text()
    assert _metric(metrics, "hedgebot_hedge_halted", account="paper", hedge="btc-core") == 1
    assert _metric(metrics, "hedgebot_trading_state", state="halted", account="paper", hedge="btc-core") == 1


async def test_readyz_is_503_when_the_price_is_stale(served) -> None:
    daemon, clock, client = served
    keeper = daemon.keepers[0]
    snap = keeper.last_snapshot
    keeper.last_snapshot = dataclasses.replace(snap, price_time=snap.taken_at - 120)
    response = await client.get("/readyz")
    assert response.status == 503
    assert "price is 120s old" in (await response.json())["reasons"][0]


def _metric(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}(?:\{{(.*)\}})? (\S+)", line)
        if match and all(f'{k}="{v}"' in (match.group(1) or "") for k, v in labels.items()):
            return float(match.group(2))
    raise AssertionError(f"no {name}{{{wanted}}} in the metrics")


async def test_metrics_report_each_hedges_figures_labelled_by_account_and_hedge(served) -> None:
    daemon, clock, client = served
    response = await client.get("/metrics")
    assert response.status == 200 and response.content_type == "text/plain"
    text = await response.text()
    hedge = {"account": "paper", "hedge": "btc-core"}
    status = daemon.keepers[0].status
    assert _metric(text, "hedgebot_spot_exposure", **hedge) == 2.0
    assert _metric(text, "hedgebot_short_size", **hedge) == 2.0
    assert _metric(text, "hedgebot_short_target", **hedge) == 2.0
    assert _metric(text, "hedgebot_target_ratio", **hedge) == 1.0
    assert _metric(text, "hedgebot_actual_ratio", **hedge) == 1.0
    assert _metric(text, "hedgebot_drift", **hedge) == 0.0
    assert _metric(text, "hedgebot_liquidation_distance", **hedge) == pytest.approx(float(status.distance))
    assert 0 < _metric(text, "hedgebot_margin_ratio", **hedge) < 1
    assert _metric(text, "hedgebot_last_tick_timestamp_seconds", **hedge) == status.updated_at
    assert _metric(text, "hedgebot_orders_total", result="filled", **hedge) >= 1
    assert _metric(text, "hedgebot_fees_total", **hedge) > 0
    assert _metric(text, "hedgebot_margin_topups_total", **hedge) == 0
    assert _metric(text, "hedgebot_funding_paid_total", **hedge) == 0
    assert _metric(text, "hedgebot_venue_connected", **hedge) == 1
    assert _metric(text, "hedgebot_hedge_state", state="hedged", **hedge) == 1
    assert _metric(text, "hedgebot_hedge_state", state="blocked", **hedge) == 0
    assert _metric(text, "hedgebot_hedge_halted", **hedge) == 0
    assert _metric(text, "hedgebot_ready") == 1 and _metric(text, "hedgebot_healthy") == 1


async def test_metrics_count_exchange_errors_by_code_and_show_the_venue_unreachable(served) -> None:
    from hedgebot.exchange.port import VenueUnavailable

    daemon, clock, client = served
    keeper = daemon.keepers[0]

    async def down() -> None:
        raise VenueUnavailable("binance -1001 disconnected")

    keeper.observe = down  # type: ignore[method-assign]
    keeper.wake.set()
    await clock.advance(1)
    text = await (await client.get("/metrics")).text()
    hedge = {"account": "paper", "hedge": "btc-core"}
    assert _metric(text, "hedgebot_exchange_errors_total", code="-1001", **hedge) >= 1
    assert _metric(text, "hedgebot_venue_connected", **hedge) == 0


async def test_status_lists_every_hedge_with_its_figures_and_totals(served) -> None:
    daemon, clock, client = served
    data = await (await client.get("/status")).json()
    assert data["healthy"] is True and data["ready"] is True
    [hedge] = data["hedges"]
    assert hedge["account"] == "paper" and hedge["name"] == "btc-core"
    assert (hedge["exposure"], hedge["short"], hedge["target"], hedge["state"]) == ("2.000", "2.000", "2.000", "hedged")
    for figure in ("target_ratio", "ratio", "drift", "distance", "liquidation_price", "margin_ratio", "updated_at"):
        assert hedge[figure] is not None, figure
    assert hedge["totals"]["orders"]["filled"] >= 1 and float(hedge["totals"]["fees"]) > 0
    assert hedge["health"]["stalled"] is False
    assert data["alerts"]["senders"] == []


async def test_a_token_guards_everything_but_healthz() -> None:
    ops = Operations(HttpConfig(), lambda: 1000.0)  # no hedges yet: /healthz answers 503, but answers
    client = TestClient(TestServer(OpsServer(ops, HttpConfig(), token="s3cret-token").app(), host="127.0.0.1"))
    await client.start_server()
    try:
        assert (await client.get("/healthz")).status == 503
        for path in ("/readyz", "/metrics", "/status"):
            assert (await client.get(path)).status == 401, path
            assert (await client.get(path, headers={"Authorization": "Bearer wrong"})).status == 401, path
            assert (await client.get(path, headers={"Authorization": "Bearer s3cret-token"})).status != 401, path
    finally:
        await client.close()


def test_a_non_loopback_address_without_a_token_is_refused() -> None:
    with pytest.raises(ValidationError, match="0.0.0.0.* is not a loopback address: set a bearer token"):
        HttpConfig(host="0.0.0.0")
    assert HttpConfig(host="0.0.0.0", token=SecretRef(env="HEDGEBOT_HTTP_TOKEN")).host == "0.0.0.0"
    assert HttpConfig(host="::1").token is None


async def test_the_daemon_serves_the_endpoint_on_the_configured_address(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("TEST_HTTP_TOKEN", "tok-abcdef")
    port = free_port()
    settings = paper_settings(tmp_path, {"http": {"port": port, "token": {"env": "TEST_HTTP_TOKEN"}}})
    from hedgebot.clock import SimClock

    clock = SimClock()
    daemon = Daemon(settings, clock, serve_http=True)
    await daemon.start()
    try:
        await clock.advance(3)
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                assert response.status == 200
            async with session.get(f"http://127.0.0.1:{port}/status", headers={"Authorization": "Bearer tok-abcdef"}) as response:
                assert response.status == 200
                assert (await response.json())["hedges"][0]["name"] == "btc-core"
        # A second daemon finds the port taken: it hedges anyway, says so loudly, and keeps trying.
        other = Daemon(paper_settings(tmp_path / "other", {"http": {"port": port, "token": {"env": "TEST_HTTP_TOKEN"}}}), clock, serve_http=True)
        await other.start()
        try:
            await clock.advance(3)
            assert other.http is None and (await other.accounts[0].venue.fetch_legs("BTC/USDT:USDT")).short.size > 0
            [event] = other.journal.events(kind="http_unavailable")
            assert event.severity == "critical" and f"127.0.0.1:{port}" in event.detail["message"]
            await daemon.stop()  # the port comes free
            await clock.advance(30)
            assert other.http is not None and other.http.port == port
            assert len(other.journal.events(kind="http_unavailable")) == 1
        finally:
            await other.stop()
    finally:
        await daemon.stop()


async def test_status_shows_its_time_and_each_last_tick_as_iso_8601_utc(served) -> None:
    daemon, clock, client = served
    data = await (await client.get("/status")).json()
    iso = r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{3})?Z$"
    assert re.match(iso, data["time"]), data["time"]
    [hedge] = data["hedges"]
    assert re.match(iso, hedge["health"]["last_tick"]), hedge["health"]


async def test_readyz_is_503_while_the_keeper_holds_data_older_than_the_staleness_limit(served) -> None:
    # A keeper stuck in a retried call: its last observation is from before the outage and keeps ageing.
    daemon, clock, client = served
    keeper = daemon.keepers[0]
    snap = keeper.last_snapshot
    limit = keeper.hedge.staleness_seconds + keeper.hedge.tick_seconds
    keeper.last_snapshot = dataclasses.replace(snap, taken_at=clock.now() - limit - 5, price_time=clock.now() - limit - 5)
    assert daemon.ops.stale_after(keeper.hedge) > limit + 5, "not yet stalled by the tick rule"
    response = await client.get("/readyz")
    assert response.status == 503
    assert "last read" in (await response.json())["reasons"][0]


async def test_status_renders_again_only_the_hedges_whose_status_changed_since_the_last_look(served, monkeypatch) -> None:
    daemon, clock, client = served
    [keeper] = daemon.keepers
    rendered: list[object] = []
    to_json = type(keeper.status).to_json

    def counted(status):  # type: ignore[no-untyped-def]
        rendered.append(status)
        return to_json(status)

    monkeypatch.setattr(type(keeper.status), "to_json", counted)
    first = await (await client.get("/status")).json()
    again = await (await client.get("/status")).json()
    assert len(rendered) == 1, "an unchanged status is not formatted again"
    assert first["hedges"][0]["short"] == again["hedges"][0]["short"] == "2.000"
    assert "health" in again["hedges"][0] and "totals" in again["hedges"][0], "the live figures are still added"
    keeper.wake.set()
    await clock.advance(keeper.hedge.tick_seconds)
    before = len(rendered)  # the status file's writer renders it too, on its own round
    await client.get("/status")
    assert len(rendered) == before + 1 and rendered[-1] is keeper.status, "a replaced status is rendered once more"
