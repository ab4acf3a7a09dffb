"""Prometheus metrics on a registry of our own, read from the running hedges at scrape time."""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from enum import Enum
from typing import Any

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from hedgebot.ops.health import Operations, is_halted, plain

LABELS = ["account", "hedge"]

# Status field -> (metric name, help). Other numeric status fields are exported
# as hedgebot_status_<field>, so figures added to the status later appear too.
GAUGES: dict[str, tuple[str, str]] = {
    "exposure": ("hedgebot_spot_exposure", "Amount of the asset the hedge protects (base units)"),
    "short": ("hedgebot_short_size", "Size of the perpetual short (base units)"),
    "target": ("hedgebot_short_target", "Short size the hedge aims for (base units)"),
    "target_ratio": ("hedgebot_target_ratio", "Configured hedge ratio"),
    "ratio": ("hedgebot_actual_ratio", "Short over exposure, as held"),
    "drift": ("hedgebot_drift", "Short minus target (base units)"),
    "mark": ("hedgebot_mark_price", "Mark price of the contract"),
    "liquidation_price": ("hedgebot_liquidation_price", "Liquidation price of the short"),
    "distance": ("hedgebot_liquidation_distance", "Distance from mark to the short's liquidation price, as a fraction of the mark"),
    "liquidation_warning": ("hedgebot_liquidation_warning_level", "Liquidation distance below which a warning goes out"),
    "margin_trigger": ("hedgebot_margin_trigger", "Liquidation distance below which the margin guard tops the short up"),
    "margin_ratio": ("hedgebot_margin_ratio", "Maintenance margin over the margin backing the short (1 = liquidation)"),
    "beta": ("hedgebot_beta", "ratio = \"beta\": the beta hedged with (instrument notional per unit of the holding's value)"),
    "correlation": ("hedgebot_correlation", "ratio = \"beta\": rolling correlation of the holding's returns with the instrument's"),
    "hedge_effectiveness": ("hedgebot_hedge_effectiveness", "ratio = \"beta\": out-of-sample variance reduction of the hedge"),
    "updated_at": ("hedgebot_last_tick_timestamp_seconds", "When the keeper last finished a tick (unix time)"),
}
STATES = ("starting", "hedged", "rebalancing", "drifting", "blocked", "alert", "unresolved", "stopped")


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float, Decimal)):
        return float(value)
    return None


class HedgeCollector(Collector):
    """Yield every hedge's figures and totals at scrape time."""

    def __init__(self, ops: Operations) -> None:
        self.ops = ops

    def collect(self) -> Iterable[Metric]:
        """Return the metrics of every hedge."""
        ops = self.ops
        gauges = {field: GaugeMetricFamily(name, doc, labels=LABELS) for field, (name, doc) in GAUGES.items()}
        extra: dict[str, GaugeMetricFamily] = {}
        state = GaugeMetricFamily("hedgebot_hedge_state", "1 for the hedge's current state", labels=[*LABELS, "state"])
        trading = GaugeMetricFamily("hedgebot_trading_state", "1 for the hedge's trading state", labels=[*LABELS, "state"])
        halted = GaugeMetricFamily("hedgebot_hedge_halted", "1 when trading on the hedge is halted", labels=LABELS)
        connected = GaugeMetricFamily("hedgebot_venue_connected", "1 when the last read of the venue succeeded", labels=LABELS)
        stalled = GaugeMetricFamily("hedgebot_keeper_stalled", "1 when the keeper has not ticked within its limit", labels=LABELS)
        since = GaugeMetricFamily("hedgebot_seconds_since_tick", "Seconds since the keeper's last tick", labels=LABELS)
        counters = {
            "orders": CounterMetricFamily("hedgebot_orders", "Orders by result", labels=[*LABELS, "result"]),
            "errors": CounterMetricFamily("hedgebot_exchange_errors", "Exchange errors by code", labels=[*LABELS, "code"]),
            "topups": CounterMetricFamily("hedgebot_margin_topups", "Margin top-ups made", labels=LABELS),
            "topup_amount": CounterMetricFamily("hedgebot_margin_topup_amount", "Margin added by top-ups (quote)", labels=LABELS),
            "released_amount": CounterMetricFamily("hedgebot_margin_released_amount", "Margin released (quote)", labels=LABELS),
            "funding_received": CounterMetricFamily("hedgebot_funding_received", "Funding received (quote)", labels=LABELS),
            "funding_paid": CounterMetricFamily("hedgebot_funding_paid", "Funding paid (quote)", labels=LABELS),
            "fees": CounterMetricFamily("hedgebot_fees", "Trading fees paid (quote)", labels=LABELS),
        }
        health = {(h.account, h.hedge): h for h in ops.health()}
        for keeper in ops.keepers:
            labels = [keeper.account, keeper.hedge.name]
            figures = ops.hedge_figures(keeper)
            for field, value in figures.items():
                number = _float(value)
                if number is None:
                    continue
                if field in gauges:
                    gauges[field].add_metric(labels, number)
                else:
                    name = f"hedgebot_status_{field}"
                    extra.setdefault(name, GaugeMetricFamily(name, f"Status figure {field}", labels=LABELS)).add_metric(labels, number)
            current = plain(figures.get("state"))
            for name in dict.fromkeys((*STATES, current)):
                state.add_metric([*labels, str(name)], 1.0 if name == current else 0.0)
            trading_state = figures.get("trading_state")
            if trading_state is not None:
                trading.add_metric([*labels, str(trading_state.value if isinstance(trading_state, Enum) else trading_state)], 1.0)
            halted.add_metric(labels, 1.0 if is_halted(keeper.status) else 0.0)
            tally = ops.tally.of(*labels)
            snap = keeper.last_snapshot
            up = snap is not None and (keeper.last_venue_error_at is None or snap.taken_at > keeper.last_venue_error_at)
            connected.add_metric(labels, 1.0 if up else 0.0)
            h = health[(keeper.account, keeper.hedge.name)]
            stalled.add_metric(labels, 1.0 if h.stalled else 0.0)
            since.add_metric(labels, h.seconds_since_tick)
            for result, count in sorted(tally.orders.items()):
                counters["orders"].add_metric([*labels, result], count)
            for code, count in sorted(keeper.exchange_errors.items()):
                counters["errors"].add_metric([*labels, code], count)
            for name in ("topups", "topup_amount", "released_amount", "funding_received", "funding_paid", "fees"):
                counters[name].add_metric(labels, float(getattr(tally, name)))
        yield from gauges.values()
        yield from extra.values()
        yield from (state, trading, halted, connected, stalled, since)
        yield from counters.values()
        ready, _ = ops.ready()
        yield GaugeMetricFamily("hedgebot_ready", "1 when start-up passed, data is fresh and no hedge is halted", value=1.0 if ready else 0.0)
        yield GaugeMetricFamily("hedgebot_healthy", "1 when every keeper ticked recently", value=1.0 if ops.healthy() else 0.0)
        for collect in ops.extra_metrics:
            yield from collect()


def build_registry(ops: Operations) -> CollectorRegistry:
    """Return a registry of our own holding every hedgebot metric."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(HedgeCollector(ops))
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """Return the registry in Prometheus' text format."""
    return generate_latest(registry)
