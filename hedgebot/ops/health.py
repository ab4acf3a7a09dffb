"""What the operations surface knows about the running hedges: health, readiness, figures.

The daemon hands its keepers to `Operations`; the HTTP endpoint, the metrics
collector and the alert start-up summary all read the same answers from here.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any, Protocol

from hedgebot.config import HedgeConfig, HttpConfig
from hedgebot.domain.margin import margin_ratio
from hedgebot.domain.model import MarginMode, Market, Snapshot
from hedgebot.ops.figures import FIGURE, RATIO_PLACES, Figure, Precision, as_json, iso_utc, plain
from hedgebot.ops.tally import Tally

# States in which a hedge is not ready to protect anything.
NOT_READY_STATES = {"starting", "blocked", "unresolved", "halted", "liquidated", "journal_unwritable", "journal_damaged"}


class WatchedHedge(Protocol):
    """What the operations surface reads from a keeper."""

    account: str
    hedge: HedgeConfig
    market: Market | None
    last_snapshot: Snapshot | None
    last_venue_error_at: float | None
    exchange_errors: Counter[str]

    @property
    def status(self) -> Any:
        """Return the keeper's latest status (a dataclass)."""
        ...


def status_fields(status: Any) -> dict[str, Any]:
    """Return every field of a keeper status, as raw values."""
    data = {f.name: getattr(status, f.name) for f in fields(status)}
    if hasattr(status, "ratio"):
        data["ratio"] = status.ratio
    return data


def is_halted(status: Any) -> bool:
    """Tell whether a hedge's trading is halted (by its state, or its trading state when it has one)."""
    return any(plain(getattr(status, name, None)) == "halted" for name in ("state", "trading_state"))


def hedge_margin_ratio(keeper: WatchedHedge) -> Decimal | None:
    """Return the hedge leg's margin ratio (the short, or a long hedge's long) from the keeper's latest observation."""
    snap = keeper.last_snapshot
    if snap is None:
        return None
    wallet = snap.futures_wallet if snap.margin_mode is MarginMode.CROSS else None
    return margin_ratio(snap.leg_of(keeper.hedge.side.position_side), snap.mark_price, snap.market.brackets, wallet)


@dataclass(frozen=True)
class HedgeHealth:
    """One hedge's health as /healthz and /readyz report it."""

    account: str
    hedge: str
    last_tick: float | None = field(metadata={FIGURE: Figure.TIME})
    seconds_since_tick: float
    stale_after: float
    stalled: bool
    ready: bool
    reason: str

    def to_json(self) -> dict[str, Any]:
        """Return it as JSON-ready data (the last tick as ISO 8601 UTC, like every time a person reads)."""
        return as_json(self, Precision())


class Operations:
    """The running daemon as seen from outside: health, readiness and figures of every hedge."""

    def __init__(
        self, http: HttpConfig, now: Callable[[], float], tally: Tally | None = None, monotonic: Callable[[], float] | None = None
    ) -> None:
        self.http = http
        self.now = now
        self.monotonic = monotonic
        self.tally = tally or Tally()
        self.keepers: Sequence[WatchedHedge] = ()
        self.started_at: float | None = None
        self.startup_passed = False
        self.extra_figures: list[Callable[[], dict[str, Any]]] = []
        self.extra_metrics: list[Callable[[], Iterable[Any]]] = []
        # Further reasons not to be ready (a standby leading no account), asked at each /readyz.
        self.extra_readiness: list[Callable[[], list[str]]] = []
        # A daemon on a shared journal may lead no account for a while (a standby): alive without keepers.
        self.may_lead_nothing = False
        # Tasks of the daemon that died, with why: one is enough to be unhealthy.
        self.dead_tasks: dict[str, str] = {}
        # Each hedge's status as last rendered for /status: rendered again only once the keeper replaced it.
        self._rendered: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}

    def attach(self, keepers: Sequence[WatchedHedge]) -> None:
        """Watch these keepers; the start-up checks have passed."""
        self.keepers = keepers
        self.started_at = self.now()
        self.startup_passed = True

    def stale_after(self, hedge: HedgeConfig) -> float:
        """Return how long a keeper may go without a tick before it counts as stalled."""
        if self.http.stale_after_seconds is not None:
            return self.http.stale_after_seconds
        return max(60.0, 3 * hedge.tick_seconds + 30.0)

    def health(self) -> list[HedgeHealth]:
        """Return every hedge's health."""
        now = self.now()
        out = []
        for keeper in self.keepers:
            status = keeper.status
            last = status.updated_at
            since = now - (last if last is not None else (self.started_at or now))
            limit = self.stale_after(keeper.hedge)
            stalled = since > limit
            reason = self._not_ready_reason(keeper, status, stalled, since, now)
            out.append(HedgeHealth(keeper.account, keeper.hedge.name, last, round(since, 3), limit, stalled, reason == "", reason))
        return out

    def _not_ready_reason(self, keeper: WatchedHedge, status: Any, stalled: bool, since: float, now: float) -> str:
        if stalled:
            return f"no tick for {since:.0f}s"
        if is_halted(status):
            why = getattr(status, "trading_reason", "") or getattr(status, "note", "")
            return "trading is halted" + (f": {why}" if why else "")
        if status.state in NOT_READY_STATES:
            return f"state {status.state}" + (f": {status.note}" if getattr(status, "note", "") else "")
        own = getattr(keeper, "not_ready_reason", None)
        if own is not None:  # a keeper that observes no futures leg (the put leg) judges its own freshness
            return str(own(now))
        snap = keeper.last_snapshot
        if snap is None:
            return "no observation yet"
        age = snap.taken_at - snap.price_time
        if age > keeper.hedge.staleness_seconds:
            return f"price is {age:.0f}s old (limit {keeper.hedge.staleness_seconds:.0f}s)"
        # Judged now, not at the last finished tick: a keeper stuck in a call holds data that keeps ageing.
        # It is read again every tick, so the limit allows one tick on top of the staleness limit.
        held = now - snap.taken_at
        read_at = getattr(keeper, "last_read_monotonic", None)
        if read_at is not None and self.monotonic is not None:
            # The wall clock may have stepped back (making old data look fresh): the monotonic age counts too.
            held = max(held, self.monotonic() - read_at)
        limit = keeper.hedge.staleness_seconds + keeper.hedge.tick_seconds
        if held > limit:
            return f"the venue was last read {held:.0f}s ago (limit {limit:.0f}s): the keeper may be stuck in a call"
        return ""

    def healthy(self) -> bool:
        """Tell whether every keeper ticked recently and no task of the daemon died."""
        return (bool(self.keepers) or self.may_lead_nothing) and not self.dead_tasks and not any(h.stalled for h in self.health())

    def ready(self) -> tuple[bool, list[str]]:
        """Tell whether start-up passed, data is fresh and no hedge is halted; with the reasons when not."""
        if not self.startup_passed:
            return False, ["start-up checks have not finished"]
        reasons = [f"task {name} died: {why}" for name, why in self.dead_tasks.items()]
        reasons += [reason for extra in self.extra_readiness for reason in extra()]
        reasons += [f"{h.account}/{h.hedge}: {h.reason}" for h in self.health() if not h.ready]
        return not reasons, reasons

    def hedge_figures(self, keeper: WatchedHedge) -> dict[str, Any]:
        """Return every figure of one hedge: its status, margin ratio and totals."""
        data = status_fields(keeper.status)
        data["margin_ratio"] = hedge_margin_ratio(keeper)
        data["liquidation_warning"] = keeper.hedge.warning_distance
        data["margin_trigger"] = keeper.hedge.margin_guard.trigger
        return data

    def status_json(self) -> dict[str, Any]:
        """Return /status: every hedge with its figures, health and totals, JSON-ready."""
        health = {(h.account, h.hedge): h for h in self.health()}
        hedges = []
        rendered: dict[tuple[str, str], tuple[Any, dict[str, Any]]] = {}
        for keeper in self.keepers:
            key = (keeper.account, keeper.hedge.name)
            held = self._rendered.get(key)
            if held is None or held[0] is not keeper.status:
                held = (keeper.status, keeper.status.to_json())
            rendered[key] = held
            data = dict(held[1])  # the figures below change with every look: never stored in the cache
            ratio = hedge_margin_ratio(keeper)
            data["margin_ratio"] = str(ratio.quantize(RATIO_PLACES)) if ratio is not None else None
            data["liquidation_warning"] = str(keeper.hedge.warning_distance)
            data["health"] = health[(keeper.account, keeper.hedge.name)].to_json()
            data["totals"] = {
                **self.tally.of(keeper.account, keeper.hedge.name).to_json(), "exchange_errors": dict(keeper.exchange_errors),
            }
            hedges.append(data)
        self._rendered = rendered  # hedges gone with a reload are forgotten
        ready, reasons = self.ready()
        out: dict[str, Any] = {
            "time": iso_utc(self.now()), "healthy": self.healthy(), "dead_tasks": dict(self.dead_tasks), "ready": ready,
            "not_ready": reasons, "hedges": hedges,
        }
        for extra in self.extra_figures:
            out.update(extra())
        return out
