"""How long the PostgreSQL journal's lease and fenced-intent statements take, and how fast a standby takes over.

Run: .venv/bin/python bench/pg_lease.py [--rounds N] [--quick]

Starts a throw-away PostgreSQL (as the tests do: initdb in a temporary directory, a free
port on 127.0.0.1, as `nobody` under root), then measures on one machine:
- a lease renewal (one statement);
- a fenced intent write (the lease row re-read FOR SHARE and the intent inserted, one transaction);
- a takeover: the leader's lease is released, and the time until a standby polling every
  `poll` seconds holds it under the next epoch (release at a clean stop; an expiry adds the
  lease's remaining time, which the database's clock decides: measured too, from the leader's
  last renewal to the standby's takeover).
Prints p50 and p99 in milliseconds, and a JSON object.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from _bench import emit, print_machine  # noqa: E402
from _bench import parser as bench_parser  # noqa: E402
from hedgebot.clock import RealClock  # noqa: E402
from hedgebot.store.lease import Lease, LeaseChange, LeaseTiming  # noqa: E402
from hedgebot.store.pg_journal import PgJournal  # noqa: E402
from tests.postgres_server import start_server  # noqa: E402


def percentiles(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 3),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 3),
    }


def main() -> int:
    parser = bench_parser(__doc__)
    parser.add_argument("--rounds", type=int, default=500)
    parser.add_argument("--lease", type=float, default=3.0, help="lease_seconds of the expiry rounds")
    parser.add_argument("--expiry-rounds", type=int, default=5)
    parser.add_argument("--poll", type=float, default=0.05, help="how often the standby tries to take the lease (s)")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.expiry_rounds, args.lease = 11, 1, 1.0
    print_machine()
    server = start_server()
    try:
        leader_journal = PgJournal(server.url(), RealClock(), where="bench")
        standby_journal = PgJournal(server.url(), RealClock(), where="bench")
        renewals, writes, takeovers = [], [], []
        for round_ in range(args.rounds):
            account = f"acct{round_}"
            leader = Lease(leader_journal, account, "leader", LeaseTiming(15, 3))
            leader.refresh()
            started = time.perf_counter()
            assert leader.refresh() is LeaseChange.RENEWED
            renewals.append(time.perf_counter() - started)
            started = time.perf_counter()
            leader_journal.begin(account, "btc", "order", {"amount": "0.1"})
            writes.append(time.perf_counter() - started)
            if round_ % 10 == 0:  # a takeover costs a poll period: fewer of them
                standby = Lease(standby_journal, account, "standby", LeaseTiming(15, 3))
                assert standby.refresh() is LeaseChange.WAITING
                leader.release()
                released = time.perf_counter()
                while standby.refresh() is not LeaseChange.TAKEN:
                    time.sleep(args.poll)
                takeovers.append(time.perf_counter() - released)
                assert standby.epoch == 2
        expiries = []
        for round_ in range(args.expiry_rounds):  # the leader stops renewing (frozen, killed): the lease must run out
            account = f"frozen{round_}"
            Lease(leader_journal, account, "leader", LeaseTiming(args.lease, 1)).refresh()
            last_renewal = time.perf_counter()
            standby = Lease(standby_journal, account, "standby", LeaseTiming(args.lease, 1))
            while standby.refresh() is not LeaseChange.TAKEN:
                time.sleep(args.poll)
            expiries.append(time.perf_counter() - last_renewal)
        leader_journal.close()
        standby_journal.close()
    finally:
        server.remove()
    result = {
        "rounds": args.rounds, "poll_seconds": args.poll,
        "renewal": percentiles(renewals), "fenced_intent_write": percentiles(writes),
        "takeover_after_release": percentiles(takeovers),
        "lease_seconds": args.lease, "takeover_after_last_renewal": percentiles(expiries),
    }
    for name in ("renewal", "fenced_intent_write", "takeover_after_release", "takeover_after_last_renewal"):
        print(f"{name}: p50 {result[name]['p50_ms']} ms, p99 {result[name]['p99_ms']} ms")  # type: ignore[index]
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
