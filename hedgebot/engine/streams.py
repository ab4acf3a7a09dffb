"""Websocket streams that wake keepers at once, with polling as the fallback.

A venue that can stream offers named watchers: coroutines that return the
next update of one feed (ccxt's `watch_*` methods). A `StreamSupervisor`
runs each in a loop. Every update wakes the keepers listening, so a pushed
position change or mark price is acted on in the same event-loop turn. A
watcher that fails is reconnected after an exponential backoff with jitter,
and the keepers are woken to poll. While a stream is down, or quiet for
longer than its staleness limit (judged on the clock whenever its data is
asked for), it does not count as live and `StreamedPort` answers from REST
instead: the keeper keeps polling at its tick interval, as it always does. A restored
stream takes over again, and REST polling of what it carries stops.

Stream health is kept as data (`StreamHealth`) for `status` and metrics.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from decimal import Decimal
from typing import Any

from hedgebot.clock import Clock
from hedgebot.engine.account_cache import FUTURES, SPOT, AccountCache
from hedgebot.engine.retry import Backoff
from hedgebot.exchange.port import BadData, ExchangePort, FuturesBalance, Legs, PriceQuote
from hedgebot.exchange.streaming import StreamSpec


# Account figures the user-data streams keep are read again over REST at least this often (the slow reconciliation).
DEFAULT_RECONCILE_SECONDS = 1200.0


class StreamState(StrEnum):
    STARTING = "starting"  # not yet heard from
    LIVE = "live"  # connected and recent
    STALE = "stale"  # connected, but quiet longer than its limit: its data is not trusted
    DOWN = "down"  # failed; reconnecting with backoff, REST polling meanwhile


@dataclass(frozen=True)
class StreamHealth:
    """What `status` and the metrics show about one stream."""

    name: str
    state: StreamState
    last_message_at: float | None
    messages: int
    reconnects: int
    error: str = ""

    def to_json(self) -> dict[str, Any]:
        """Return the health as JSON-ready data."""
        return {
            "name": self.name,
            "state": self.state.value,
            "last_message_at": self.last_message_at,
            "messages": self.messages,
            "reconnects": self.reconnects,
            "error": self.error,
        }


@dataclass
class _Stream:
    spec: StreamSpec
    state: StreamState = StreamState.STARTING
    last_message_at: float | None = None
    messages: int = 0
    reconnects: int = 0
    error: str = ""
    last_update: Any = None
    connection: int = 0  # times the stream went live: a change means pushes between may have been lost


@dataclass
class StreamSupervisor:
    """Runs every stream of one venue, reconnecting with backoff and jitter, and wakes listeners on each update."""

    clock: Clock
    seed: int = 0
    backoff_base: float = 1.0
    backoff_cap: float = 60.0
    _streams: dict[str, _Stream] = field(default_factory=dict)
    _listeners: list[Callable[[str, Any], None]] = field(default_factory=list)
    _tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _stopping: bool = False

    def __post_init__(self) -> None:
        self._backoff = Backoff(random.Random(self.seed), base=self.backoff_base, cap=self.backoff_cap)
        self.polls: Counter[str] = Counter()

    def add(self, spec: StreamSpec) -> None:
        """Supervise `spec` (before or after `start`)."""
        self._streams[spec.name] = _Stream(spec)
        if self._tasks:
            self._tasks.append(asyncio.create_task(self._run(self._streams[spec.name]), name=f"stream {spec.name}"))

    def listen(self, callback: Callable[[str, Any], None]) -> None:
        """Call `callback(stream name, update)` on every update (keepers pass a function that sets their wake event)."""
        self._listeners.append(callback)

    def start(self) -> None:
        """Start a task per stream."""
        self._stopping = False
        self._tasks = [asyncio.create_task(self._run(s), name=f"stream {s.spec.name}") for s in self._streams.values()]

    async def stop(self) -> None:
        """Stop every stream task."""
        self._stopping = True
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks = []

    def state(self, name: str) -> StreamState:
        """Return a stream's state now (a live stream past its staleness limit is stale)."""
        stream = self._streams.get(name)
        if stream is None:
            return StreamState.DOWN
        if stream.state is StreamState.LIVE and self._quiet_too_long(stream):
            return StreamState.STALE
        return stream.state

    def live(self, name: str) -> bool:
        """Tell whether a stream's data may be used instead of polling."""
        return self.state(name) is StreamState.LIVE

    def last_update(self, name: str) -> Any:
        """Return the latest update a stream delivered."""
        stream = self._streams.get(name)
        return None if stream is None else stream.last_update

    def health(self) -> list[StreamHealth]:
        """Return every stream's health, for `status` and metrics."""
        return [
            StreamHealth(s.spec.name, self.state(s.spec.name), s.last_message_at, s.messages, s.reconnects, s.error)
            for s in self._streams.values()
        ]

    @property
    def polling(self) -> bool:
        """Tell whether REST polling stands in for a stream: one is down or stale, or a price stream has no price yet.

        An account feed not yet heard from is not polling: it speaks only when something changes.
        """
        return any(
            state in (StreamState.DOWN, StreamState.STALE) or (state is StreamState.STARTING and s.spec.quote is not None)
            for s in self._streams.values()
            for state in (self.state(s.spec.name),)
        )

    def connection(self, kind: str) -> int | None:
        """Return which connection the streams carrying `kind` are on while all are live; None otherwise (or when none does)."""
        carriers = [s for s in self._streams.values() if kind in s.spec.carries]
        if not carriers or any(not self.live(s.spec.name) for s in carriers):
            return None
        return sum(s.connection for s in carriers)

    def specs(self) -> Iterable[StreamSpec]:
        """Return the supervised streams."""
        return [s.spec for s in self._streams.values()]

    def _quiet_too_long(self, stream: _Stream) -> bool:
        limit = stream.spec.stale_after
        if limit is None or stream.last_message_at is None:
            return False
        return self.clock.now() - stream.last_message_at > limit

    def _notify(self, name: str, update: Any) -> None:
        for callback in list(self._listeners):
            callback(name, update)

    async def _run(self, stream: _Stream) -> None:
        failures = 0
        while not self._stopping:
            try:
                update = await stream.spec.watch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of a watcher is a dropped stream: reconnect
                failures += 1
                stream.state = StreamState.DOWN
                stream.reconnects += 1
                stream.error = f"{type(exc).__name__}: {exc}"[:300]
                self._notify(stream.spec.name, None)
                await self.clock.sleep(self._backoff.delay(failures))
                continue
            failures = 0
            if stream.state is not StreamState.LIVE:
                stream.connection += 1
            stream.state = StreamState.LIVE
            stream.error = ""
            stream.messages += 1
            stream.last_message_at = self.clock.now()
            stream.last_update = update
            self._notify(stream.spec.name, update)


# Port calls that change the account, or look up an action that may have: the next read of every figure goes to REST.
_TOUCHING = frozenset({
    "place_order", "adjust_margin", "transfer", "withdraw", "set_leverage", "set_margin_mode", "set_position_mode",
    "fetch_order", "fetch_order_history", "find_funds_movement", "find_withdrawal",
})


class StreamedPort:
    """An `ExchangePort` that answers from live streams where it safely can, and from REST otherwise.

    The mark price comes from its stream while that is live. Legs, the futures balance and the spot wallet
    come from an `AccountCache` kept by the user-data streams' pushes, under its rules (a slow REST
    reconciliation, a REST read at once after a reconnect, after any action or lookup, after a fill, and
    while any action of the account is in doubt). Everything else is the wrapped venue's.
    """

    def __init__(
        self, inner: ExchangePort, supervisor: StreamSupervisor, reconcile_seconds: float = DEFAULT_RECONCILE_SECONDS,
        in_doubt: Callable[[], bool] | None = None,
    ) -> None:
        self.inner = inner
        self.supervisor = supervisor
        self.name = inner.name
        self.cache = AccountCache(supervisor.clock.now, reconcile_seconds, seed=supervisor.seed)
        self.in_doubt = in_doubt  # the daemon's: does the journal hold an action of this account whose outcome is open?
        pushes = getattr(inner, "subscribe_account", None)
        if pushes is not None:
            pushes(self.cache.apply)

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self.inner, name)
        if name not in _TOUCHING:
            return attribute

        async def touching(*args: Any, **kwargs: Any) -> Any:
            self.cache.touch()
            try:
                return await attribute(*args, **kwargs)
            finally:
                self.cache.touch()  # a read that ran alongside is not trusted either

        return touching

    def _mark_stream(self, symbol: str) -> StreamSpec | None:
        return next((s for s in self.supervisor.specs() if s.quote is not None and s.symbol == symbol), None)

    async def fetch_mark_price(self, symbol: str) -> PriceQuote:
        """Return the streamed mark price while its stream is live; poll REST otherwise."""
        spec = self._mark_stream(symbol)
        if spec is not None and spec.quote is not None and self.supervisor.live(spec.name):
            update = self.supervisor.last_update(spec.name)
            if update is not None:
                try:
                    return spec.quote(update)
                except BadData:
                    pass  # an update without a usable price (a partial push): ask REST instead
        self.supervisor.polls[f"mark {symbol}"] += 1
        return await self.inner.fetch_mark_price(symbol)

    async def _cached(self, carrier: str, kind: str, key: str, read: Callable[[], Awaitable[Any]]) -> Any:
        if self.in_doubt is not None and self.in_doubt():
            self.cache.touch()  # while an outcome is open, every look reads REST, and so does the first after it settles
        connection = self.supervisor.connection(carrier)
        cached = self.cache.get(kind, key, connection)
        if cached is not None:
            return cached
        self.supervisor.polls[f"{kind} {key}".strip()] += 1
        started = self.cache.start_read(kind, key, connection)
        value = await read()
        self.cache.seed(kind, key, value, started)
        return value

    async def fetch_legs(self, symbol: str) -> Legs:
        """Return both legs from the futures user-data stream's cache when it may be trusted; from REST otherwise."""
        return await self._cached(FUTURES, "legs", symbol, lambda: self.inner.fetch_legs(symbol))

    async def fetch_futures_balance(self, asset: str) -> FuturesBalance:
        """Return the futures balance from the user-data stream's cache when it may be trusted; from REST otherwise."""
        return await self._cached(FUTURES, FUTURES, asset, lambda: self.inner.fetch_futures_balance(asset))

    async def fetch_spot_balances(self) -> dict[str, Decimal]:
        """Return the spot wallet from the spot user-data stream's cache when it may be trusted; from REST otherwise."""
        return dict(await self._cached(SPOT, SPOT, "", self.inner.fetch_spot_balances))

    def stream_health(self) -> list[StreamHealth]:
        """Return every stream's health."""
        return self.supervisor.health()


def stream_metrics(account: str, supervisor: StreamSupervisor, cache: AccountCache | None = None) -> Callable[[], Iterable[Any]]:
    """Return a collector of Prometheus metrics for one account's streams and its streamed figures (for the ops registry)."""

    def collect() -> Iterable[Any]:
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        state = GaugeMetricFamily("hedgebot_stream_state", "1 for the stream's current state", labels=["account", "stream", "state"])
        reconnects = GaugeMetricFamily("hedgebot_stream_reconnects", "Times the stream failed and was reconnected", labels=["account", "stream"])
        age = GaugeMetricFamily("hedgebot_stream_seconds_since_message", "Seconds since the stream's last message", labels=["account", "stream"])
        polling = GaugeMetricFamily("hedgebot_stream_polling", "1 while REST polling stands in for a stream that is not live", labels=["account"])
        now = supervisor.clock.now()
        for health in supervisor.health():
            for name in StreamState:
                state.add_metric([account, health.name, name.value], 1.0 if health.state is name else 0.0)
            reconnects.add_metric([account, health.name], float(health.reconnects))
            if health.last_message_at is not None:
                age.add_metric([account, health.name], now - health.last_message_at)
        polling.add_metric([account], 1.0 if supervisor.polling else 0.0)
        reads = CounterMetricFamily(
            "hedgebot_account_reads", "Looks at the account's legs and balances, by figure and where the answer came from "
            "(stream: the user-data pushes; rest: a REST read)", labels=["account", "figure", "source"],
        )
        if cache is not None:
            for source, counted in (("stream", cache.hits), ("rest", cache.reads)):
                for figure, count in sorted(counted.items()):
                    reads.add_metric([account, figure, source], float(count))
        return [state, reconnects, age, polling, reads]

    return collect


def route_order_updates(venue: Any, keepers: Iterable[Any], name: str, update: Any) -> int:
    """Hand the orders an `orders <symbol>` stream update reports to the keepers of that symbol; return how many."""
    read = getattr(venue, "streamed_orders", None)
    if read is None or update is None or not name.startswith("orders "):
        return 0
    handed = 0
    for keeper in keepers:
        if name == f"orders {keeper.hedge.symbol}":
            for result in read(keeper.hedge.symbol, update):
                keeper.notify_order(result)
                handed += 1
    return handed


def attach_streams(
    venue: ExchangePort, symbols: list[str], clock: Clock, stale_after: float, wake: Callable[[str, Any], None], seed: int = 0,
    reconcile_seconds: float = DEFAULT_RECONCILE_SECONDS,
) -> tuple[StreamedPort, StreamSupervisor] | None:
    """Wrap a venue that can stream: its supervisor (not started) wakes `wake` on every update.

    Return None when the venue offers no streams (the paper venue, or an exchange ccxt cannot stream).
    """
    offer = getattr(venue, "stream_specs", None)
    if offer is None:
        return None
    specs = offer(symbols, stale_after)
    if not specs:
        return None
    supervisor = StreamSupervisor(clock, seed=seed)
    for spec in specs:
        supervisor.add(spec)
    supervisor.listen(wake)
    return StreamedPort(venue, supervisor, reconcile_seconds), supervisor
