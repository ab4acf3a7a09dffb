"""Alerts that reach a person: events out through webhook and Telegram senders.

Every event passes through the EventLog; `AlertDispatcher` subscribes to it,
keeps what a sender's minimum severity lets through, drops repeats of one
kind within the deduplication window and beyond the hourly rate limit, and
puts the rest on each sender's queue. A worker per sender delivers them with
a timeout and retries failures with backoff, so a receiver that is down, slow
or misconfigured never blocks or crashes a keeper: emitting an event only
appends to a bounded queue. A `resolved` event follows an alert that went out.
"""

from __future__ import annotations

import asyncio
import json
from collections import Counter, deque
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

import aiohttp
import structlog
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

from hedgebot.clock import Clock
from hedgebot.config import AlertsConfig, ConfigError, Settings, TelegramSenderConfig, WebhookSenderConfig
from hedgebot.domain.model import Severity
from hedgebot.ops.events import EventRecord
from hedgebot.ops.figures import Figure, Precision, percent, text
from hedgebot.ops.health import Operations, plain
from hedgebot.redact import redact, redact_value

T = TypeVar("T")

RANK = {Severity.INFO: 0, Severity.WARNING: 1, Severity.CRITICAL: 2}
HOUR = 3600.0
_HEADLINE_FIELDS = ("message", "reason", "error", "note")


@dataclass(frozen=True)
class AlertMessage:
    """One message for a person."""

    kind: str
    severity: Severity
    account: str
    hedge: str
    text: str
    at: float
    detail: dict[str, Any] = field(default_factory=dict)
    resolved: bool = False

    def title(self) -> str:
        """Return the first line: severity, hedge and kind."""
        label = "RESOLVED" if self.resolved else self.severity.value.upper()
        where = f"{self.account}/{self.hedge}" if self.hedge else self.account
        return f"[{label}] hedgebot {where}: {self.detail.get('code') or self.kind}"

    def to_json(self) -> dict[str, Any]:
        """Return the webhook body."""
        return {
            "source": "hedgebot",
            "kind": self.kind,
            "code": self.detail.get("code"),
            "severity": self.severity.value,
            "resolved": self.resolved,
            "account": self.account,
            "hedge": self.hedge,
            "at": self.at,
            "title": self.title(),
            "text": self.text,
            "detail": redact_value({k: plain(v) for k, v in self.detail.items()}),
        }


def describe_event(event: EventRecord) -> str:
    """Return an event's detail as one readable line."""
    detail = event.shown()
    headline = next((str(detail[k]) for k in _HEADLINE_FIELDS if detail.get(k)), "")
    figures = ", ".join(
        f"{k}={v}" for k, v in detail.items() if k not in _HEADLINE_FIELDS and v not in (None, "") and not isinstance(v, (dict, list))
    )
    return redact("; ".join(part for part in (headline, figures) if part))


def _read(value: Any, precision: Precision) -> str:
    """Return an amount for the start-up summary, `-` when it could not be read (never a 0 that was not seen)."""
    return text(value, Figure.AMOUNT, precision)


# ---- senders ------------------------------------------------------------------------


class SendFailed(Exception):
    """A delivery failed; `permanent` when retrying cannot help (a rejected token, a bad URL)."""

    def __init__(self, reason: str, *, permanent: bool = False, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.permanent = permanent
        self.retry_after = retry_after


class Sender(Protocol):
    """Delivers one message to one receiver."""

    name: str
    min_severity: Severity
    timeout_seconds: float

    async def send(self, session: aiohttp.ClientSession, message: AlertMessage) -> None:
        """Deliver the message or raise SendFailed."""
        ...


def _http_failure(status: int, retry_after: float | None = None) -> SendFailed:
    permanent = 400 <= status < 500 and status not in (408, 425, 429)
    return SendFailed(f"http_{status}", permanent=permanent, retry_after=retry_after)


async def _post(session: aiohttp.ClientSession, url: str, body: dict[str, Any]) -> tuple[int, Any]:
    """POST JSON; return the status and the decoded answer. Never lets the URL reach an error text."""
    try:
        async with session.post(url, json=body) as response:
            text = await response.text()
            try:
                answer = json.loads(text) if text else None
            except ValueError:
                answer = None
            return response.status, answer
    except aiohttp.InvalidURL:
        raise SendFailed("invalid_url", permanent=True) from None
    except (aiohttp.ClientError, OSError) as exc:
        raise SendFailed(f"unreachable ({type(exc).__name__})") from None


class WebhookSender:
    """POST each alert as JSON to a URL."""

    def __init__(self, name: str, url: str, min_severity: Severity, timeout_seconds: float) -> None:
        self.name = name
        self._url = url
        self.min_severity = min_severity
        self.timeout_seconds = timeout_seconds

    def __repr__(self) -> str:
        return f"WebhookSender({self.name!r})"

    async def send(self, session: aiohttp.ClientSession, message: AlertMessage) -> None:
        """Deliver one alert."""
        status, _ = await _post(session, self._url, message.to_json())
        if not 200 <= status < 300:
            raise _http_failure(status)


class TelegramSender:
    """Send each alert as a message through Telegram's Bot API (sendMessage)."""

    def __init__(self, name: str, api_url: str, token: str, chat_id: str, min_severity: Severity, timeout_seconds: float) -> None:
        self.name = name
        self._url = f"{api_url.rstrip('/')}/bot{token}/sendMessage"
        self.chat_id = chat_id
        self.min_severity = min_severity
        self.timeout_seconds = timeout_seconds

    def __repr__(self) -> str:
        return f"TelegramSender({self.name!r})"

    async def send(self, session: aiohttp.ClientSession, message: AlertMessage) -> None:
        """Deliver one alert."""
        text = f"{message.title()}\n{message.text}"[:4000]
        status, answer = await _post(session, self._url, {"chat_id": self.chat_id, "text": text, "disable_web_page_preview": True})
        if 200 <= status < 300 and isinstance(answer, dict) and answer.get("ok", True):
            return
        retry_after = None
        if isinstance(answer, dict):
            retry_after = (answer.get("parameters") or {}).get("retry_after")
        raise _http_failure(status if status >= 300 else 502, float(retry_after) if retry_after else None)


def build_sender(config: WebhookSenderConfig | TelegramSenderConfig, where: str) -> Sender:
    """Return the sender a config describes; raise ConfigError when its secret cannot be read."""
    severity = Severity(config.min_severity)
    if isinstance(config, WebhookSenderConfig):
        return WebhookSender(config.name, config.url.resolve(f"{where}.url"), severity, config.timeout_seconds)
    token = config.bot_token.resolve(f"{where}.bot_token")
    return TelegramSender(config.name, config.api_url, token, config.chat_id, severity, config.timeout_seconds)


async def within(clock: Clock, awaitable: Awaitable[T], seconds: float) -> T:
    """Await `awaitable` for at most `seconds` of the clock's time; raise TimeoutError after."""
    task = asyncio.ensure_future(awaitable)
    timer = asyncio.ensure_future(clock.sleep(seconds))
    try:
        await asyncio.wait({task, timer}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        timer.cancel()
    if task.done():
        return task.result()
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    raise TimeoutError(f"no answer within {seconds:g}s")


# ---- delivery -----------------------------------------------------------------------


@dataclass
class Outbox:
    """One sender's queue, its worker's figures, and which account it serves (None: all)."""

    sender: Sender
    account: str | None
    queue: deque[AlertMessage]
    sent: int = 0
    dropped: int = 0
    retries: int = 0
    failed: Counter[str] = field(default_factory=Counter)
    wake: asyncio.Event = field(default_factory=asyncio.Event)

    def accepts(self, message: AlertMessage) -> bool:
        """Tell whether this sender takes the message."""
        if self.account is not None and message.account not in (self.account, ""):
            return False
        return message.resolved or message.kind in ("startup_summary", "alert_test") or RANK[message.severity] >= RANK[self.sender.min_severity]


class AlertDispatcher:
    """Route events to senders: filter, deduplicate, rate-limit, queue, deliver, retry."""

    def __init__(self, config: AlertsConfig, clock: Clock, senders: Sequence[tuple[Sender, str | None]]) -> None:
        self.config = config
        self.clock = clock
        self.log = structlog.get_logger("hedgebot.alerts")
        self.outboxes = [Outbox(sender, account, deque()) for sender, account in senders]
        self.suppressed: Counter[str] = Counter()
        self.misconfigured: list[str] = []
        self._last_sent: dict[tuple[str, str, str, str], float] = {}
        self._active: dict[tuple[str, str, str, str], Severity] = {}
        self._per_kind: dict[str, deque[float]] = {}
        self._session: aiohttp.ClientSession | None = None
        self._workers: list[asyncio.Task[None]] = []

    # ---- intake (synchronous: called from EventLog.emit inside a keeper) ------------

    def on_event(self, event: EventRecord) -> None:
        """Turn an event into a message for the senders that want it (never blocks)."""
        if not self.outboxes:
            return
        now = self.clock.now()
        if event.kind.endswith("_resolved"):
            original = event.kind.removesuffix("_resolved")
            key = (event.account, event.hedge, original, str(event.detail.get("code", "")))
            severity = self._active.pop(key, None)
            if severity is None:
                return  # nothing went out for it, so there is nothing to resolve
            self._last_sent.pop(key, None)
            self._enqueue(AlertMessage(original, severity, event.account, event.hedge, describe_event(event), now, event.detail, resolved=True))
            return
        wanted = [box for box in self.outboxes if box.accepts(self._probe(event))]
        if not wanted:
            return
        key = (event.account, event.hedge, event.kind, str(event.detail.get("code", "")))
        last = self._last_sent.get(key)
        repeat = event.detail.get("state") == "repeated"  # the alert lifecycle already spaced these out
        if last is not None and now - last < self.config.dedup_seconds and not repeat:
            self.suppressed[event.kind] += 1
            return
        window = self._per_kind.setdefault(event.kind, deque())
        while window and now - window[0] >= HOUR:
            window.popleft()
        if len(window) >= self.config.max_per_kind_per_hour and event.severity is not Severity.CRITICAL:
            self.suppressed[event.kind] += 1
            return
        window.append(now)
        self._last_sent[key] = now
        if event.severity is not Severity.INFO:
            self._active[key] = event.severity
        self._enqueue(AlertMessage(event.kind, event.severity, event.account, event.hedge, describe_event(event), now, event.detail))

    @staticmethod
    def _probe(event: EventRecord) -> AlertMessage:
        return AlertMessage(event.kind, event.severity, event.account, event.hedge, "", 0.0)

    def _enqueue(self, message: AlertMessage) -> None:
        for box in self.outboxes:
            if not box.accepts(message):
                continue
            if len(box.queue) >= self.config.queue_size:
                box.queue.popleft()
                box.dropped += 1
            box.queue.append(message)
            box.wake.set()

    def send(self, kind: str, severity: Severity, text: str, account: str = "", hedge: str = "", **detail: Any) -> None:
        """Queue a message that is not an event (the start-up summary, a test) for every sender."""
        self._enqueue(AlertMessage(kind, severity, account, hedge, redact(text), self.clock.now(), detail))

    # ---- delivery ------------------------------------------------------------------

    async def start(self) -> None:
        """Open the HTTP session and start one worker per sender."""
        if not self.outboxes:
            return
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=None))
        for box in self.outboxes:
            self._workers.append(asyncio.create_task(self._work(box), name=f"alerts-{box.sender.name}"))

    async def stop(self, grace_seconds: float = 5.0) -> None:
        """Give queued alerts a moment to go out, then stop the workers."""
        if grace_seconds > 0 and self._workers and any(box.queue for box in self.outboxes):
            try:
                await within(self.clock, self._drained(), grace_seconds)
            except TimeoutError:
                pass
        for task in self._workers:
            task.cancel()
        await asyncio.gather(*self._workers, return_exceptions=True)
        self._workers.clear()
        for box in self.outboxes:
            if box.queue:
                self.log.warning("alerts_unsent_at_stop", sender=box.sender.name, count=len(box.queue))
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _drained(self) -> None:
        while any(box.queue for box in self.outboxes):
            await self.clock.sleep(0.1)

    async def _work(self, box: Outbox) -> None:
        while True:
            if not box.queue:
                box.wake.clear()
                await box.wake.wait()
                continue
            message = box.queue[0]
            attempt = 0
            while True:
                attempt += 1
                failure = await self._deliver(box.sender, message)
                if failure is None:
                    box.sent += 1
                    break
                box.failed[failure.reason] += 1
                if failure.permanent:
                    self.log.error("alert_rejected", sender=box.sender.name, reason=failure.reason, kind=message.kind)
                    break
                box.retries += 1
                delay = min(self.config.retry_initial_seconds * 2 ** (attempt - 1), self.config.retry_max_seconds)
                delay = max(delay, failure.retry_after or 0.0)
                self.log.warning("alert_send_failed", sender=box.sender.name, reason=failure.reason, kind=message.kind, retry_in=delay)
                await self.clock.sleep(delay)
            if box.queue and box.queue[0] is message:
                box.queue.popleft()

    async def _deliver(self, sender: Sender, message: AlertMessage) -> SendFailed | None:
        assert self._session is not None
        try:
            await within(self.clock, sender.send(self._session, message), sender.timeout_seconds)
        except SendFailed as exc:
            return exc
        except TimeoutError:
            return SendFailed("timeout")
        except Exception as exc:  # noqa: BLE001 - a sender's bug must not end its worker
            return SendFailed(f"error ({type(exc).__name__})")
        return None

    async def send_now(self, sender: Sender, message: AlertMessage) -> str | None:
        """Deliver one message at once, without queue or retry; return why it failed, or None."""
        own = self._session is None
        if own:
            self._session = aiohttp.ClientSession()
        try:
            failure = await self._deliver(sender, message)
        finally:
            if own and self._session is not None:
                await self._session.close()
                self._session = None
        return None if failure is None else failure.reason

    # ---- figures -------------------------------------------------------------------

    def metrics(self) -> Iterable[Metric]:
        """Return the delivery figures for /metrics."""
        sent = CounterMetricFamily("hedgebot_alerts_sent", "Alerts delivered", labels=["sender"])
        failed = CounterMetricFamily("hedgebot_alerts_failed", "Failed delivery attempts", labels=["sender", "reason"])
        dropped = CounterMetricFamily("hedgebot_alerts_dropped", "Alerts dropped from a full queue", labels=["sender"])
        queued = GaugeMetricFamily("hedgebot_alerts_queued", "Alerts waiting to be delivered (unsent)", labels=["sender"])
        suppressed = CounterMetricFamily("hedgebot_alerts_suppressed", "Alerts held back by deduplication or rate limits", labels=["kind"])
        for box in self.outboxes:
            name = box.sender.name
            sent.add_metric([name], box.sent)
            dropped.add_metric([name], box.dropped)
            queued.add_metric([name], len(box.queue))
            for reason, count in sorted(box.failed.items()):
                failed.add_metric([name, reason], count)
        for kind, count in sorted(self.suppressed.items()):
            suppressed.add_metric([kind], count)
        return [sent, failed, dropped, queued, suppressed]

    def figures(self) -> dict[str, Any]:
        """Return the delivery figures for /status."""
        return {
            "alerts": {
                "senders": [
                    {"name": b.sender.name, "account": b.account, "sent": b.sent, "queued": len(b.queue),
                     "dropped": b.dropped, "failed": dict(b.failed)}
                    for b in self.outboxes
                ],
                "misconfigured": list(self.misconfigured),
                "suppressed": dict(self.suppressed),
            }
        }


def resolve_senders(settings: Settings) -> tuple[list[tuple[Sender, str | None]], list[str]]:
    """Return every sender whose secret can be read (with its account, or None for all), and why each other one cannot."""
    senders: list[tuple[Sender, str | None]] = []
    broken: list[str] = []
    wanted = [(s, None, f"alerts.senders[{i}]") for i, s in enumerate(settings.alerts.senders)]
    for a in settings.accounts:
        wanted += [(s, a.name, f"accounts[{a.name}].alerts[{i}]") for i, s in enumerate(a.alerts)]
    for config, account, where in wanted:
        try:
            senders.append((build_sender(config, where), account))
        except ConfigError as exc:
            broken.append(f"{config.name}: {redact(str(exc))}")
    return senders, broken


def build_dispatcher(settings: Settings, clock: Clock) -> AlertDispatcher:
    """Return a dispatcher with every configured sender; a sender whose secret cannot be read is left out and named."""
    senders, broken = resolve_senders(settings)
    dispatcher = AlertDispatcher(settings.alerts, clock, senders)
    dispatcher.misconfigured = broken
    for problem in broken:
        dispatcher.log.error("alert_sender_misconfigured", problem=problem)
    return dispatcher


def startup_summary(ops: Operations) -> tuple[Severity, str]:
    """Return the start-up summary: every hedge's state and figures, and any liquidation distance below its warning level."""
    lines = []
    severity = Severity.INFO
    for keeper in ops.keepers:
        f = ops.hedge_figures(keeper)
        if "premium_paid" in f:  # a put leg (hedgebot.engine.put_leg): long puts, no short, no liquidation
            lines.append(f"{keeper.account}/{keeper.hedge.name} {plain(f.get('state'))}: puts {f.get('held')} of "
                         f"{f.get('target')} at floor {f.get('floor')}, expiry {f.get('expiry')}")
            continue
        shown = Precision.of(keeper.market)  # defaults until the market is loaded
        distance = f.get("distance")
        level = f["liquidation_warning"]
        line = (
            f"{keeper.account}/{keeper.hedge.name} {plain(f.get('state'))}: exposure {_read(f.get('exposure'), shown)}, "
            f"short {_read(f.get('short'), shown)}, target {_read(f.get('target'), shown)}, "
            f"liquidation distance {percent(distance)}"
        )
        if distance is not None and distance < level:
            line += f"  WARNING: below the warning level {percent(level)}"
            severity = Severity.WARNING
        lines.append(line)
    return severity, "hedgebot started\n" + "\n".join(lines)
