"""Alert senders: webhook and Telegram delivery, severities, deduplication, `resolved`,
rate limits, and receivers that are down, slow or misconfigured."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal

import pytest

from hedgebot.config import AlertsConfig
from hedgebot.domain.model import Severity
from hedgebot.ops.alerts import ALERT, AlertBook
from hedgebot.ops.senders import AlertDispatcher, TelegramSender, WebhookSender, build_dispatcher
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.ops.watch import LIQUIDATION_LOW
from tests.emulator_rig import free_port
from tests.ops.support import ManualClock, Receiver, eventually, paper_settings

D = Decimal


class Rig:
    """An EventLog whose events go out through one sender, in simulated time."""

    def __init__(self, dispatcher: AlertDispatcher, clock: ManualClock) -> None:
        self.dispatcher = dispatcher
        self.clock = clock
        self.events = EventLog(None, NullLogger())
        self.events.subscribe(dispatcher.on_event)
        self.box = dispatcher.outboxes[0]


async def make_rig(url: str, *, telegram: bool = False, min_severity: Severity = Severity.WARNING, **config: object) -> Rig:
    clock = ManualClock()
    if telegram:
        sender = TelegramSender("tg", url, "123456:TEST-TOKEN-abcdefghijklmnop", "42", min_severity, timeout_seconds=10)
    else:
        sender = WebhookSender("hook", f"{url}/hook?token=hook-secret-123", min_severity, timeout_seconds=10)
    dispatcher = AlertDispatcher(AlertsConfig(**config), clock, [(sender, None)])
    await dispatcher.start()
    return Rig(dispatcher, clock)


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    r = Receiver()
    yield r
    await r.close()


async def test_a_warning_reaches_the_webhook_as_json(receiver) -> None:
    rig = await make_rig(await receiver.start())
    rig.events.emit("acct", "btc", "trading_blocked", Severity.WARNING, reason="price is 45s old")
    await eventually(lambda: rig.box.sent == 1)
    [body] = receiver.received
    assert body["kind"] == "trading_blocked" and body["severity"] == "warning" and body["resolved"] is False
    assert (body["account"], body["hedge"]) == ("acct", "btc")
    assert "price is 45s old" in body["text"] and body["title"] == "[WARNING] hedgebot acct/btc: trading_blocked"
    await rig.dispatcher.stop()


async def test_events_below_the_senders_minimum_severity_stay_in_the_journal_only(receiver) -> None:
    rig = await make_rig(await receiver.start(), min_severity=Severity.CRITICAL)
    rig.events.emit("acct", "btc", "order_filled", Severity.INFO, filled="1")
    rig.events.emit("acct", "btc", "trading_blocked", Severity.WARNING, reason="stale")
    rig.events.emit("acct", "btc", "outcome_unknown", Severity.CRITICAL, error="timeout")
    await eventually(lambda: rig.box.sent == 1)
    assert [b["kind"] for b in receiver.received] == ["outcome_unknown"]
    await rig.dispatcher.stop()


async def test_a_repeated_alert_is_sent_once_per_dedup_window(receiver) -> None:
    rig = await make_rig(await receiver.start(), dedup_seconds=900)
    rig.events.emit("acct", "btc", "alert", Severity.WARNING, code="margin_short", message="no funds for margin")
    await eventually(lambda: rig.box.sent == 1)
    for _ in range(4):
        await rig.clock.advance(10)
        rig.events.emit("acct", "btc", "alert", Severity.WARNING, code="margin_short", message="no funds for margin")
    rig.events.emit("acct", "btc", "alert", Severity.WARNING, code="other_code", message="a different alert")
    await eventually(lambda: rig.box.sent == 2)
    assert rig.dispatcher.suppressed["alert"] == 4
    await rig.clock.advance(860)
    rig.events.emit("acct", "btc", "alert", Severity.WARNING, code="margin_short", message="still no funds")
    await eventually(lambda: rig.box.sent == 3)
    assert [b["detail"].get("code") for b in receiver.received] == ["margin_short", "other_code", "margin_short"]
    await rig.dispatcher.stop()


async def test_resolved_follows_an_alert_that_went_out_and_rearms_it(receiver) -> None:
    rig = await make_rig(await receiver.start())
    book = AlertBook(rig.events, rig.clock, "acct", "btc")
    rig.events.emit("acct", "btc", "alert_resolved", Severity.INFO, code="never_raised", message="nothing went out for it")
    book.raise_alert(LIQUIDATION_LOW, Severity.WARNING, "distance 12%", distance=D("0.12"))
    book.raise_alert(LIQUIDATION_LOW, Severity.WARNING, "distance 11%", distance=D("0.11"))  # still the same alert
    await rig.clock.advance(60)
    book.resolve(LIQUIDATION_LOW, distance=D("0.4"))
    book.raise_alert(LIQUIDATION_LOW, Severity.WARNING, "distance 10%", distance=D("0.10"))  # a new crossing
    await eventually(lambda: rig.box.sent == 3)
    assert [(b["kind"], b["code"], b["resolved"]) for b in receiver.received] == [
        (ALERT, LIQUIDATION_LOW, False), (ALERT, LIQUIDATION_LOW, True), (ALERT, LIQUIDATION_LOW, False),
    ]
    assert receiver.received[1]["title"] == f"[RESOLVED] hedgebot acct/btc: {LIQUIDATION_LOW}"
    assert "lasted_seconds=60" in receiver.received[1]["text"]
    await rig.dispatcher.stop()


async def test_a_lifecycle_repeat_goes_out_even_inside_the_dedup_window(receiver) -> None:
    rig = await make_rig(await receiver.start(), dedup_seconds=3600)
    book = AlertBook(rig.events, rig.clock, "acct", "btc", repeat_seconds=900)
    book.raise_alert("margin_exhausted", Severity.CRITICAL, "no funds left for margin")
    await rig.clock.advance(900)
    book.end_tick(plan_judged=False)  # still going on: the book repeats it
    await eventually(lambda: rig.box.sent == 2)
    assert [b["detail"]["state"] for b in receiver.received] == ["raised", "repeated"]
    await rig.dispatcher.stop()


async def test_the_rate_limit_caps_a_kind_per_hour_but_never_a_critical_alert(receiver) -> None:
    rig = await make_rig(await receiver.start(), max_per_kind_per_hour=2)
    for hedge in ("a", "b", "c", "d"):
        rig.events.emit("acct", hedge, "trading_blocked", Severity.WARNING, reason="stale")
    for hedge in ("a", "b", "c"):
        rig.events.emit("acct", hedge, "outcome_unknown", Severity.CRITICAL, error="lost")
    await eventually(lambda: rig.box.sent == 5)
    assert rig.dispatcher.suppressed["trading_blocked"] == 2
    await rig.clock.advance(3600)
    rig.events.emit("acct", "e", "trading_blocked", Severity.WARNING, reason="stale")
    await eventually(lambda: rig.box.sent == 6)
    await rig.dispatcher.stop()


async def test_a_receiver_that_is_down_never_blocks_and_gets_the_alert_once_it_is_back() -> None:
    port = free_port()
    rig = await make_rig(f"http://127.0.0.1:{port}", retry_initial_seconds=5)
    rig.events.emit("acct", "btc", "outcome_unknown", Severity.CRITICAL, error="lost")  # returns at once
    await eventually(lambda: sum(rig.box.failed.values()) == 1)
    assert rig.box.sent == 0 and len(rig.box.queue) == 1
    assert list(rig.box.failed) == ["unreachable (ClientConnectorError)"]
    await rig.clock.advance(5)  # retried after the backoff: still down
    await eventually(lambda: sum(rig.box.failed.values()) == 2)
    back = Receiver()
    await back.start(port)
    try:
        await rig.clock.advance(10)  # the second backoff doubles
        await eventually(lambda: rig.box.sent == 1)
        assert [b["kind"] for b in back.received] == ["outcome_unknown"] and not rig.box.queue
        assert rig.box.retries == 2
    finally:
        await rig.dispatcher.stop()
        await back.close()


async def test_a_slow_receiver_times_out_on_the_clock_and_the_alert_is_retried(receiver) -> None:
    import asyncio

    receiver.release = asyncio.Event()
    rig = await make_rig(await receiver.start(), retry_initial_seconds=5)
    rig.events.emit("acct", "btc", "outcome_unknown", Severity.CRITICAL, error="lost")
    await eventually(lambda: receiver.arrivals == 1)
    rig.events.emit("acct", "btc", "trading_blocked", Severity.WARNING, reason="stale")  # queues behind, at once
    assert len(rig.box.queue) == 2
    await rig.clock.advance(10)  # the sender's timeout
    await eventually(lambda: rig.box.failed["timeout"] == 1)
    receiver.release.set()
    await rig.clock.advance(5)
    await eventually(lambda: rig.box.sent == 2)
    assert [b["kind"] for b in receiver.received] == ["outcome_unknown", "trading_blocked"]
    await rig.dispatcher.stop()


async def test_telegram_gets_the_message_through_the_bot_api(receiver) -> None:
    rig = await make_rig(await receiver.start(), telegram=True)
    rig.events.emit("acct", "btc", LIQUIDATION_LOW, Severity.WARNING, message="liquidation distance 12.00% is below 20.00%")
    await eventually(lambda: rig.box.sent == 1)
    assert receiver.paths == ["/bot123456:TEST-TOKEN-abcdefghijklmnop/sendMessage"]
    [body] = receiver.received
    assert body["chat_id"] == "42"
    assert body["text"].startswith(f"[WARNING] hedgebot acct/btc: {LIQUIDATION_LOW}\nliquidation distance 12.00%")
    await rig.dispatcher.stop()


async def test_telegram_rate_limiting_is_retried_after_the_time_it_asks(receiver) -> None:
    receiver.status = 429
    receiver.answer = {"ok": False, "error_code": 429, "parameters": {"retry_after": 30}}
    rig = await make_rig(await receiver.start(), telegram=True, retry_initial_seconds=5)
    rig.events.emit("acct", "btc", "outcome_unknown", Severity.CRITICAL, error="lost")
    await eventually(lambda: rig.box.failed["http_429"] == 1)
    receiver.status, receiver.answer = 200, None
    await rig.clock.advance(29)
    assert rig.box.sent == 0
    await rig.clock.advance(1)
    await eventually(lambda: rig.box.sent == 1)
    await rig.dispatcher.stop()


async def test_a_misconfigured_sender_is_counted_and_dropped_not_retried_forever(receiver) -> None:
    receiver.status = 401
    receiver.answer = {"ok": False, "error_code": 401, "description": "Unauthorized"}
    rig = await make_rig(await receiver.start(), telegram=True)
    rig.events.emit("acct", "btc", "outcome_unknown", Severity.CRITICAL, error="lost")
    await eventually(lambda: rig.box.failed["http_401"] == 1)
    await eventually(lambda: not rig.box.queue)
    await rig.clock.advance(3600)
    assert receiver.arrivals == 1 and rig.box.sent == 0
    await rig.dispatcher.stop()


def test_a_sender_whose_secret_is_missing_is_named_and_the_rest_still_work(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("NO_SUCH_HOOK", raising=False)
    settings = paper_settings(tmp_path, {"alerts": {"senders": [
        {"kind": "webhook", "name": "broken", "url": {"env": "NO_SUCH_HOOK"}},
        {"kind": "webhook", "name": "fine", "url": {"value": "http://127.0.0.1:1/x"}},
    ]}})
    dispatcher = build_dispatcher(settings, ManualClock())
    assert [b.sender.name for b in dispatcher.outboxes] == ["fine"]
    assert dispatcher.misconfigured == ["broken: alerts.senders[0].url: environment variable NO_SUCH_HOOK is not set"]


async def test_an_account_sender_hears_only_its_own_account(receiver) -> None:
    url = await receiver.start()
    clock = ManualClock()
    mine = WebhookSender("mine", f"{url}/mine", Severity.WARNING, 10)
    everyone = WebhookSender("all", f"{url}/all", Severity.WARNING, 10)
    dispatcher = AlertDispatcher(AlertsConfig(), clock, [(mine, "treasury"), (everyone, None)])
    await dispatcher.start()
    events = EventLog(None, NullLogger())
    events.subscribe(dispatcher.on_event)
    events.emit("treasury", "btc", "trading_blocked", Severity.WARNING, reason="x")
    events.emit("miner", "btc", "trading_blocked", Severity.WARNING, reason="y")
    await eventually(lambda: sum(b.sent for b in dispatcher.outboxes) == 3)
    assert sorted((p.split("?")[0], b["account"]) for p, b in zip(receiver.paths, receiver.received)) == [
        ("/all", "miner"), ("/all", "treasury"), ("/mine", "treasury"),
    ]
    await dispatcher.stop()


async def test_a_signed_request_url_in_an_error_never_reaches_an_alert(receiver) -> None:
    signed = (
        "binanceusdm POST https://fapi.binance.com/fapi/v1/order?symbol=BTCUSDT&timestamp=1764740000000"
        "&signature=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08 RequestTimeout"
    )
    rig = await make_rig(await receiver.start())
    rig.events.emit("acct", "btc", "outcome_unknown", Severity.CRITICAL, error=signed)
    await eventually(lambda: receiver.received)
    body = str(receiver.received)
    assert "fapi/v1/order" in body and "9f86d081" not in body and "1764740000000" not in body
    await rig.dispatcher.stop()


def test_the_startup_summary_shows_a_dash_not_zero_for_figures_it_could_not_read() -> None:
    from types import SimpleNamespace

    from hedgebot.ops.senders import startup_summary

    from hedgebot.exchange.binance_rules import default_market

    keeper = SimpleNamespace(account="acct", hedge=SimpleNamespace(name="btc"), market=default_market("BTC/USDT:USDT"))
    unread = {"state": "starting", "exposure": None, "short": None, "target": None, "distance": None, "liquidation_warning": D("0.2")}
    ops = SimpleNamespace(keepers=[keeper], hedge_figures=lambda k: unread)
    _, text = startup_summary(ops)
    assert "exposure -, short -, target -, liquidation distance -" in text
    read = {**unread, "exposure": D("2"), "short": D("0"), "target": D("2")}
    _, text = startup_summary(SimpleNamespace(keepers=[keeper], hedge_figures=lambda k: read))
    assert "exposure 2.000, short 0.000, target 2.000" in text
