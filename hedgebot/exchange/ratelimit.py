"""Request weight, back-off and bans of one exchange host, shared by every account of the daemon.

Exchanges limit request weight per IP, not per key (Binance: "the limits on
the API are based on the IPs, not the API keys"), so every ccxt client that
talks to one host goes through one `HostGate`:

- before a request is signed, the gate admits its weight against what the
  host has reported (`X-MBX-USED-WEIGHT-1M`) and what the daemon has sent in
  the last minute, and waits when a read would pass a share of the limit
  (throttling ahead, so the exchange never has to say 429); a request that
  acts on the account (an order, a margin top-up, a transfer) may use the
  whole limit, and one of weight 0 never waits: safety never waits behind
  reads;
- each account's reads also wait at its own share of that budget
  (`weight_share`) while another account has used the host in the last
  minute, so that one account's polling cannot starve the others on the IP;
  alone on the host it is not held, and its actions never are;
- a 429 makes the whole host back off for its `Retry-After`: every request of
  every account fails at once with `RateLimited`, unsent, until then;
- a 418 is a ban: the same, with `IpBanned` naming its end;
- ccxt's own pacing (`throttle`, which counts on the wall clock) is replaced
  by pacing on the monotonic clock.

All timing uses the monotonic clock of the injected `Clock` (`monotonic()`,
falling back to `now()` for simulated clocks, which never jump back). What each
host and account spent is kept as data for `/metrics` (`RateGates.metrics`).
"""

from __future__ import annotations

import contextvars
import math
import weakref
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from hedgebot.clock import Clock, monotonic_of
from hedgebot.exchange.port import IpBanned, RateLimited

WINDOW_SECONDS = 60.0
# The share of a weight limit the daemon uses; the rest is left for other programs on the same IP.
HEADROOM = 0.8
# Waits when a 429 or 418 comes without Retry-After (Binance always sends it; other exchanges may not).
DEFAULT_BACKOFF_SECONDS = 30.0
DEFAULT_BAN_SECONDS = 120.0
# Binance: bans "scale in duration for repeat offenders, from 2 minutes to 3 days". A longer Retry-After
# (a proxy's, or a broken answer) is not believed: the gate never waits longer than the longest ban.
MAX_WAIT_SECONDS = 3 * 24 * 3600.0


@dataclass(frozen=True)
class WeightFamily:
    """A group of endpoints with one weight limit per minute, and the header that reports its use."""

    name: str
    path_prefix: str
    limit: int | None  # None: the limit is unknown, only Retry-After is obeyed
    used_header: str | None = None


WeightOf = Callable[[str, str, Mapping[str, str]], int]


class _Budget:
    """The weight one family has used in the last minute, as sent and as the host reported it."""

    def __init__(self, family: WeightFamily) -> None:
        self.family = family
        self.sent: deque[tuple[float, int]] = deque()
        self.reported: tuple[float, int] | None = None
        self.by_account: dict[str, deque[tuple[float, int]]] = {}  # what each account sent in the last minute

    def account_used(self, account: str, now: float) -> int:
        """Return the weight `account` sent in the last minute."""
        sent = self.by_account.get(account)
        if not sent:
            return 0
        while sent and sent[0][0] <= now - WINDOW_SECONDS:
            sent.popleft()
        return sum(w for _, w in sent)

    def used(self, now: float) -> int:
        while self.sent and self.sent[0][0] <= now - WINDOW_SECONDS:
            self.sent.popleft()
        rolling = sum(w for _, w in self.sent)
        if self.reported is None or self.reported[0] <= now - WINDOW_SECONDS:
            return rolling
        at, used = self.reported
        return max(rolling, used + sum(w for t, w in self.sent if t > at))

    def frees_at(self, now: float) -> float:
        """Return when the oldest weight counted now leaves the window."""
        candidates = [t + WINDOW_SECONDS for t, _ in self.sent]
        if self.reported is not None:
            candidates.append(self.reported[0] + WINDOW_SECONDS)
        later = [c for c in candidates if c > now]
        return min(later) if later else now


_STATUS: contextvars.ContextVar[int | None] = contextvars.ContextVar("hedgebot_http_status", default=None)


class HostGate:
    """The request budget and back-off of one exchange host."""

    def __init__(self, host: str, clock: Clock, families: tuple[WeightFamily, ...], headroom: float = HEADROOM) -> None:
        self.host = host
        self.clock = clock
        self.monotonic = monotonic_of(clock)
        self.families = families
        self.headroom = headroom
        self._budgets = {f.name: _Budget(f) for f in families}
        self.backoff_until = -math.inf  # monotonic
        self.banned_until = -math.inf  # monotonic
        self.ban_ends_at: float | None = None  # the ban's end on the clock's own time (an alert names it)
        self.waited_seconds = 0.0
        self.refused = 0
        self.answers_429 = 0
        self.answers_418 = 0
        self.shares: dict[str, float] = {}  # each account's share of the reads' budget (absent: the whole of it)
        self.weight_sent: Counter[tuple[str, str]] = Counter()  # (account, family): weight sent since start

    def family(self, path: str) -> WeightFamily | None:
        """Return the weight family of a URL path (the longest matching prefix), or None."""
        matches = [f for f in self.families if path.startswith(f.path_prefix)]
        return max(matches, key=lambda f: len(f.path_prefix)) if matches else None

    def used(self, family: str) -> int:
        """Return the weight the family has used in the last minute, as far as the daemon knows."""
        return self._budgets[family].used(self.monotonic())

    def refusal(self) -> RateLimited | None:
        """Return the error every request gets now without being sent, or None when requests may go."""
        now = self.monotonic()
        if now < self.banned_until:
            return IpBanned(
                f"{self.host} banned this IP (HTTP 418) for {self.banned_until - now:.0f}s more: "
                "nothing is sent until the ban is over",
                self.ban_ends_at if self.ban_ends_at is not None else self.clock.now() + self.banned_until - now,
            )
        if now < self.backoff_until:
            return RateLimited(
                f"{self.host} answered 429 (too many requests): every request waits {self.backoff_until - now:.1f}s "
                "more (Retry-After), so that the exchange does not ban the IP"
            )
        return None

    async def admit(self, path: str, weight: int, *, action: bool = False, account: str = "") -> None:
        """Let a request of `weight` go, waiting while it would pass the family's share; raise while backing off.

        A read waits at the share of the limit the daemon keeps to, and at its account's share of that; an
        `action` (a request that changes the account: an order, a margin top-up, a transfer) may use the whole
        limit whatever its account spent, and a request of weight 0 (Binance counts orders on order-count
        limits, not on the IP's weight) never waits.
        """
        family = self.family(path)
        budget = self._budgets[family.name] if family is not None else None
        while True:
            refused = self.refusal()
            if refused is not None:
                self.refused += 1
                raise refused
            now = self.monotonic()
            if budget is None or budget.family.limit is None:
                self.weight_sent[(account, family.name if family is not None else "")] += max(weight, 0)
                return
            allowed = budget.family.limit * (1.0 if action else self.headroom)
            used = budget.used(now)
            fits_host = used + weight <= allowed or used == 0
            fits_account = action or self._within_share(budget, account, weight, allowed, now)
            if weight <= 0 or (fits_host and fits_account):
                budget.sent.append((now, weight))
                budget.by_account.setdefault(account, deque()).append((now, weight))
                self.weight_sent[(account, budget.family.name)] += max(weight, 0)
                return
            if not fits_host:
                frees = budget.frees_at(now)
            else:  # held by its share: until its oldest weight ages out, or every other account has gone quiet
                others = [sent[-1][0] for other, sent in budget.by_account.items() if other != account and sent]
                frees = min(budget.by_account[account][0][0], max(others, default=-math.inf)) + WINDOW_SECONDS
            wait = max(frees - now, 0.05)
            self.waited_seconds += wait
            await self.clock.sleep(wait)

    def _within_share(self, budget: _Budget, account: str, weight: int, allowed: float, now: float) -> bool:
        """Tell whether an account's read keeps to its share: always, while no other account used the host this minute.

        The share keeps one account's polling from starving the others; with nobody else to starve, it holds nothing.
        """
        share = self.shares.get(account, 1.0)
        if share >= 1:
            return True
        if not any(other != account and budget.account_used(other, now) > 0 for other in list(budget.by_account)):
            return True
        own = budget.account_used(account, now)
        return own == 0 or own + weight <= allowed * share

    def used_by(self, account: str, family: str) -> int:
        """Return the weight `account` sent to the family in the last minute."""
        return self._budgets[family].account_used(account, self.monotonic())

    def observe(self, path: str, status: int, headers: Mapping[str, str]) -> None:
        """Read an answer's used weight and, on 429 or 418, back the whole host off for its Retry-After."""
        now = self.monotonic()
        lowered = {str(k).lower(): v for k, v in headers.items()}
        family = self.family(path)
        if family is not None and family.used_header is not None:
            used = _int(lowered.get(family.used_header.lower()))
            if used is not None:
                budget = self._budgets[family.name]
                budget.reported = (now, used)
                budget.sent = deque((t, w) for t, w in budget.sent if t > now)  # the report counts what was sent
        retry_after = _seconds(lowered.get("retry-after"))
        if status == 418:
            self.answers_418 += 1
            seconds = retry_after if retry_after is not None else DEFAULT_BAN_SECONDS
            self.banned_until = max(self.banned_until, now + seconds)
            self.ban_ends_at = self.clock.now() + (self.banned_until - now)
        elif status == 429:
            self.answers_429 += 1
            seconds = retry_after if retry_after is not None else DEFAULT_BACKOFF_SECONDS
            self.backoff_until = max(self.backoff_until, now + seconds)


class RateGates:
    """The gates of every exchange host one daemon talks to: one per host, shared by its accounts."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.gates: dict[str, HostGate] = {}

    def gate(self, host: str, families: tuple[WeightFamily, ...]) -> HostGate:
        """Return the host's gate, creating it with `families` the first time."""
        gate = self.gates.get(host)
        if gate is None:
            gate = self.gates[host] = HostGate(host, self.clock, families)
        return gate

    def attach(
        self, client: Any, families: tuple[WeightFamily, ...], weigh: WeightOf, account: str = "", share: float = 1.0,
    ) -> Pacer:
        """Route a ccxt client's requests through the gate of their host: admitted before signing, answers read.

        The requests count as `account`'s, whose reads keep to `share` of what the daemon allows itself on the
        host. ccxt's own pacing (`throttle`, on the wall clock) is replaced by the same pacing on the monotonic clock;
        the client's `Pacer` is returned.
        """
        original_fetch2 = client.fetch2
        original_on_response = client.on_rest_response
        pacer = Pacer(self.clock)

        async def fetch2(path: str, api: Any = "public", method: str = "GET", params: dict | None = None,
                         config: dict | None = None) -> Any:
            host, url_path = _api_url(client, api, path)
            gate = self.gate(host, families)
            gate.shares[account] = share
            pairs = params.items() if isinstance(params, dict) else ()  # OKX sends batch bodies as lists
            query = {str(k): str(v) for k, v in pairs if not isinstance(v, dict | list)}
            await gate.admit(url_path, weigh(method.upper(), url_path, query), action=method.upper() != "GET", account=account)
            token = _STATUS.set(None)
            try:
                return await original_fetch2(path, api, method, params if params is not None else {}, config or {})
            except Exception as exc:
                if _STATUS.get() in (418, 429) and not isinstance(exc, RateLimited):
                    raise (gate.refusal() or RateLimited(f"{host} answered {_STATUS.get()}: {exc}")) from exc
                raise
            finally:
                _STATUS.reset(token)

        def on_rest_response(code: Any, reason: Any, url: str, method: str, headers: Any, body: Any, *rest: Any) -> Any:
            status = _int(code) or 0
            _STATUS.set(status)
            parts = urlsplit(url)
            self.gate(f"{parts.scheme}://{parts.netloc}", families).observe(parts.path, status, headers or {})
            return original_on_response(code, reason, url, method, headers, body, *rest)

        async def throttle(cost: float | None = None) -> None:
            await pacer.pace(cost or 1.0, float(getattr(client, "rateLimit", 50) or 50))

        client.fetch2 = fetch2
        client.on_rest_response = on_rest_response
        client.throttle = throttle
        return pacer

    def metrics(self) -> Iterable[Any]:
        """Return what every host and account spent, for `/metrics` (prometheus-client metric families)."""
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        sent = CounterMetricFamily(
            "hedgebot_request_weight", "Request weight sent since start, by exchange host, weight family and account",
            labels=["host", "family", "account"],
        )
        used = GaugeMetricFamily(
            "hedgebot_request_weight_used", "Request weight used in the last minute, by host and family (as the host "
            "last reported it, plus what was sent since)", labels=["host", "family"],
        )
        used_by = GaugeMetricFamily(
            "hedgebot_request_weight_account_used", "Request weight an account sent in the last minute",
            labels=["host", "family", "account"],
        )
        limit = GaugeMetricFamily("hedgebot_request_weight_limit", "The host's weight limit per minute", labels=["host", "family"])
        allowed = GaugeMetricFamily(
            "hedgebot_request_weight_account_allowed", "The weight an account's reads may use per minute (its share "
            "of what the daemon keeps to)", labels=["host", "family", "account"],
        )
        waited = CounterMetricFamily("hedgebot_rate_limit_wait_seconds", "Seconds requests waited at the host's gate", labels=["host"])
        answers = CounterMetricFamily(
            "hedgebot_rate_limit_answers", "429 (too many requests) and 418 (banned) answers from the host", labels=["host", "code"],
        )
        for host, gate in self.gates.items():
            for (account, family), weight in sorted(gate.weight_sent.items()):
                sent.add_metric([host, family, account], float(weight))
            for family in gate.families:
                if family.limit is None:
                    continue
                used.add_metric([host, family.name], float(gate.used(family.name)))
                limit.add_metric([host, family.name], float(family.limit))
                for account in sorted({a for a, f in gate.weight_sent if f == family.name}):
                    used_by.add_metric([host, family.name, account], float(gate.used_by(account, family.name)))
                    share = gate.shares.get(account, 1.0)
                    allowed.add_metric([host, family.name, account], family.limit * gate.headroom * share)
            waited.add_metric([host], gate.waited_seconds)
            answers.add_metric([host, "429"], float(gate.answers_429))
            answers.add_metric([host, "418"], float(gate.answers_418))
        return [sent, used, used_by, limit, allowed, waited, answers]

    def refusals(self) -> list[RateLimited]:
        """Return what each host refuses now (bans first), for alerts."""
        found = [r for r in (g.refusal() for g in self.gates.values()) if r is not None]
        return sorted(found, key=lambda r: not isinstance(r, IpBanned))


PACER_BURST = 90.0  # ccxt cost units (Binance request weight) a client may spend at once after a quiet spell


class Pacer:
    """ccxt's request pacing (`cost` x `rateLimit` ms per request of one client) on the monotonic clock, with a burst.

    ccxt spaces every request by the cost of the one before it: after a weight-30 read (positionSide/dual,
    portfolio/account) the next waits 1.5 s, so a standby taking over spent 3 s of its lease pacing itself.
    Here a client regains ccxt's rate of units while it is quiet (from when it was made), up to `burst`, and may
    spend them at once; past that it is paced at ccxt's rate,
    so a minute never carries more than ccxt's budget plus one burst (Binance's limits are per minute, and
    the gate in front of this one reads the weight the exchange says is used).
    """

    def __init__(self, clock: Clock, burst: float = PACER_BURST) -> None:
        self.clock = clock
        self.monotonic = monotonic_of(clock)
        self.burst = burst
        # Quiet since it was made counts as quiet: a standby that waited for its lease has its burst, while a
        # daemon restarted again and again (a crash loop) starts with none, so restarts cannot add bursts up.
        self._tokens = 0.0
        self._last = self.monotonic()

    def ready_in(self, interval_ms: float) -> float:
        """Return the seconds until this client has regained its whole burst (0 when it has it now)."""
        rate = 1000 / interval_ms if interval_ms > 0 else math.inf
        if not math.isfinite(rate):
            return 0.0
        tokens = min(self.burst, self._tokens + (self.monotonic() - self._last) * rate)
        return (self.burst - tokens) / rate

    async def pace(self, cost: float, interval_ms: float) -> None:
        """Wait for the request's turn: at once while the burst lasts, then as ccxt would."""
        now = self.monotonic()
        rate = 1000 / interval_ms if interval_ms > 0 else math.inf  # units regained per second
        self._tokens = min(self.burst, self._tokens + (now - self._last) * rate)
        self._last = now
        self._tokens -= max(cost, 0.0)
        if self._tokens < 0 and math.isfinite(rate):
            await self.clock.sleep(-self._tokens / rate)


_SHARED: weakref.WeakKeyDictionary[Any, RateGates] = weakref.WeakKeyDictionary()


def gates_for(clock: Clock) -> RateGates:
    """Return the daemon-wide gates of `clock`'s daemon (one registry per clock)."""
    gates = _SHARED.get(clock)
    if gates is None:
        gates = _SHARED[clock] = RateGates(clock)
    return gates


def _api_url(client: Any, api: Any, path: str) -> tuple[str, str]:
    """Return the host and URL path a ccxt implicit call goes to (`fapiPrivateV3` + `positionRisk` -> /fapi/v3/positionRisk)."""
    name = api[0] if isinstance(api, list | tuple) and api else api
    urls = client.urls.get("api")
    base = urls.get(name) if isinstance(urls, dict) else urls
    if isinstance(base, str) and "{" in base and hasattr(client, "implode_hostname"):
        base = client.implode_hostname(base)
    parts = urlsplit(base if isinstance(base, str) else "")
    host = f"{parts.scheme}://{parts.netloc}" if parts.netloc else str(getattr(client, "id", "exchange"))
    return host, f"{parts.path.rstrip('/')}/{path.split('?')[0].lstrip('/')}"


def _int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def _seconds(value: Any) -> float | None:
    try:
        seconds = float(str(value).strip())
    except (TypeError, ValueError):
        return None
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, MAX_WAIT_SECONDS)


__all__ = ["HostGate", "Pacer", "RateGates", "WeightFamily", "gates_for", "monotonic_of"]
