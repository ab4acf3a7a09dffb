"""What one live hedge costs in request weight per minute, with its streams healthy.

Run: .venv/bin/python bench/request_weight.py [--minutes N] [--quick]

One live daemon (`hedgebot run --live`'s code, unchanged) on one account of the Binance
emulator, over 127.0.0.1, with the futures user-data, spot user-data (WebSocket API) and
mark-price streams up, one BTC hedge at a 10 s tick, in virtual time (the emulator's clock steps
whenever the daemon sleeps). After the hedge is opened the weight every request carried
(Binance's documented weights, as the daemon's own gate counts them) is summed over N minutes
(default 120: six slow reconciliations at the default 20 minutes), by weight family (futures
`/fapi/`, spot `/api/` and `/sapi/`). The issue's goal is 2 weight per hedge per minute with
streams healthy; the futures figure is also shown as what 1,000 such hedges would take of the
IP's 2,400 a minute.

The rig publishes the mark once per jump of virtual time, and a quiet daemon's sleeps jump up to
30 s at once (Binance pushes the mark every second), so the hedge's staleness limit is widened to
90 s: otherwise that artefact reads as a silent stream and the mark is polled.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _bench import emit, goal, machine, print_machine  # noqa: E402
from _bench import parser as bench_parser  # noqa: E402
from hedgebot.config import Settings  # noqa: E402
from hedgebot.engine.daemon import Daemon  # noqa: E402
from hedgebot.exchange.ratelimit import gates_for  # noqa: E402
from tests.emulator_rig import emulator_rig  # noqa: E402
from tests.helpers import paper_settings_dict  # noqa: E402

GOAL_WEIGHT_PER_MINUTE = 2.0
FAPI_LIMIT = 2400  # Binance USDⓈ-M request weight per IP per minute


def _sent(clock: object) -> dict[str, int]:
    totals: dict[str, int] = {}
    for gate in gates_for(clock).gates.values():
        for (_account, family), weight in gate.weight_sent.items():
            totals[family] = totals.get(family, 0) + weight
    return totals


async def _measure(minutes: float, root: Path) -> dict[str, object]:
    async with emulator_rig(streams=True) as rig:
        data = paper_settings_dict(root, tick_seconds=10, staleness_seconds=90)
        account = data["accounts"][0]
        account.pop("paper", None)
        account.update(mode="live", credentials={"api_key": {"env": "HB_BENCH_UNUSED"}, "secret": {"env": "HB_BENCH_UNUSED"}})  # the rig signs
        data["http"] = {"enabled": False}
        venue = rig.daemon_venue()
        daemon = Daemon(Settings(**data), rig.clock, allow_live=True, venue_factory=lambda _a: venue)
        rig.publish_mark_every_second({"mark": Decimal("50000")})
        await daemon.start()
        loop = asyncio.get_running_loop()
        give_up = loop.time() + 120 + minutes * 60  # real seconds: a rig that never hedges must not hang the bench
        try:
            while rig.short() == 0 or daemon.stream_status()[account["name"]]["polling"]:
                if loop.time() > give_up:
                    raise SystemExit("request_weight: the hedge never opened with its streams up")
                await asyncio.sleep(0.01)
            before, started = _sent(rig.clock), rig.clock.now()
            while rig.clock.now() - started < minutes * 60:
                if loop.time() > give_up:
                    raise SystemExit("request_weight: virtual time stopped moving")
                await asyncio.sleep(0.01)
            after, elapsed = _sent(rig.clock), rig.clock.now() - started
            polling = daemon.stream_status()[account["name"]]["polling"]
        finally:
            await daemon.stop()
    by_family = {f: after.get(f, 0) - before.get(f, 0) for f in after}
    per_minute = sum(by_family.values()) / (elapsed / 60)
    futures_per_minute = by_family.get("fapi", 0) / (elapsed / 60)
    return {"minutes": round(elapsed / 60, 2), "weight_by_family": by_family, "weight_per_hedge_per_minute": round(per_minute, 2),
            "fapi_weight_of_1000_hedges_per_minute": round(1000 * futures_per_minute), "fapi_limit_per_minute": FAPI_LIMIT,
            "streams_polling_at_end": polling}


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--minutes", type=float, default=120.0)
    args = parser.parse_args()
    minutes = 1.0 if args.quick else args.minutes
    print_machine()
    with tempfile.TemporaryDirectory() as tmp:
        result = asyncio.run(_measure(minutes, Path(tmp)))
    print(f"{result['minutes']} min of one hedge with streams healthy: {result['weight_by_family']} "
          f"= {result['weight_per_hedge_per_minute']} weight per minute (goal: at most {GOAL_WEIGHT_PER_MINUTE}); "
          f"1,000 such hedges: {result['fapi_weight_of_1000_hedges_per_minute']} of the IP's {FAPI_LIMIT} futures weight "
          "a minute", flush=True)
    emit({"machine": machine(), **result},
         [goal("request weight per hedge per minute, streams healthy", float(result["weight_per_hedge_per_minute"]),  # type: ignore[arg-type]
               GOAL_WEIGHT_PER_MINUTE, unit="weight/min")])
    return 0


if __name__ == "__main__":
    sys.exit(main())
