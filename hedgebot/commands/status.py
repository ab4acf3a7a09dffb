"""`hedgebot status`: each hedge's state as the daemon last wrote it to the status file, as a table or JSON.

Owns how the status file reads to a person: exposure, short, target, ratio, drift, runway, trading state,
leases, streams, and a put leg's floor and puts. It may NOT ask the exchange or the daemon anything.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from hedgebot.commands.args import EXIT_NOTHING, EXIT_OK, fail, with_config
from hedgebot.config import load_config
from hedgebot.ops.figures import percent


def _fmt(value: object) -> str:
    """Return a figure of the status file as it stands there: the JSON and the table show the same digits."""
    return "-" if value is None else str(value)


def _runway_text(hedge: dict) -> str:
    """Return the runway for the status table: the price the margin sources pay up to, and how far above the mark."""
    price, fraction = hedge.get("runway_price"), hedge.get("runway")
    if price is None:
        return "-"
    if str(price) == "Infinity":
        return "no limit"
    return f"{float(price):.2f} ({float(fraction):+.1%})" if fraction is not None else f"{float(price):.2f}"


def _trading_text(hedge: dict) -> str:
    """Return the trading state for the status table, when it is not plain `active`."""
    trading = hedge.get("trading_state", "active")
    if trading == "active":
        return ""
    if hedge.get("state") == trading:  # the state column already says it
        return f" [{hedge.get('trading_reason') or '-'}; by {hedge.get('trading_actor') or '-'}]"
    return f" [{trading}: {hedge.get('trading_reason') or '-'}; by {hedge.get('trading_actor') or '-'}]"


def cmd_status(args: argparse.Namespace) -> int:
    """Print each hedge's exposure, short, target, ratio, drift and state."""
    from hedgebot.engine.daemon import STATUS_FILE, AccountLock

    settings = load_config(args.config)
    state_dir = settings.daemon.state_dir
    path = state_dir / STATUS_FILE
    if not path.exists():
        return fail(f"no status in {state_dir}: the daemon has not run with this config yet", EXIT_NOTHING)
    try:
        data = json.loads(path.read_text())
    except PermissionError:
        raise
    except (OSError, ValueError) as exc:
        return fail(f"cannot read the status file {path}: {exc}; it is rewritten while the daemon runs")
    running = any(AccountLock(state_dir, a.name).held_elsewhere() for a in settings.accounts)
    hedges = data.get("hedges", [])
    streams = data.get("streams") or {}
    if args.json:
        leases = data.get("leases") or {}
        print(json.dumps([
            {**h, "daemon_running": running, **_streams_of(streams, h), **({"lease": leases[h["account"]]} if h["account"] in leases else {})}
            for h in hedges
        ], indent=2))
        return EXIT_OK
    updated = str(data.get("updated_at", "-"))
    print(f"daemon {'running' if running else 'not running (saved state)'}; updated {updated}")
    for account, lease in (data.get("leases") or {}).items():
        age = lease.get("lease_age_seconds")
        print(
            f"lease {account}: " + (f"LEADS under epoch {lease.get('epoch')}" if lease.get("leading") else "standby (another daemon leads)")
            + (f", renewed {age:.1f}s ago" if age is not None else "") + f" (lease {lease.get('lease_seconds')}s)"
        )
    header = (
        f"{'account':<12} {'hedge':<14} {'exposure':>10} {'short':>10} {'target':>10} {'ratio':>7} {'drift':>9} "
        f"{'liq.dist':>8} {'runway (above mark)':>22}  state"
    )
    print(header)
    for h in hedges:
        if h.get("instrument") == "put":
            print(_put_status_line(h))
            continue
        print(
            f"{h['account']:<12} {h['name']:<14} {_fmt(h['exposure']):>10} {_fmt(h['short']):>10} "
            f"{_fmt(h['target']):>10} {_fmt(h['ratio']):>7} {_fmt(h['drift']):>9} {percent(h['distance']):>8} "
            f"{_runway_text(h):>22}  {h['state']}{_trading_text(h)}{' - ' + h['note'] if h.get('note') else ''}"
        )
        for line in (_schedule_text(h), _sources_text(h), _contract_text(h), _beta_text(h)):
            if line:
                print(f"{'':<12} {'':<14} {line}")
    for account, health in streams.items():
        mode = "REST polling stands in for a stream" if health.get("polling") else "live"
        parts = [f"{st['name']} {st['state']}" + (f" ({st['error']})" if st.get("error") and st["state"] != "live" else "")
                 for st in health.get("streams", [])]
        print(f"streams {account}: {mode}: " + "; ".join(parts))
    return EXIT_OK


def _put_status_line(h: dict[str, Any]) -> str:
    """Say a put leg's floor, strike, expiry, puts held, premium paid, mark value and delta, for `status`."""
    held = f"{h['held']} of {h['target']} puts at strike {h['strike']}, expiry {h['expiry']}" if h.get("strike") else "no puts held"
    return (
        f"{h['account']:<12} {h['name']:<14} puts, floor {h['floor']}: {held}; premium paid {h['premium_paid']} "
        f"({h['premium_last_30d']} in 30 days), payoff {h['put_payoff']}, mark value {h['mark_value']}, delta {h['delta']}  "
        f"{h['state']}" + (f" - waiting: {h['waiting']}" if h.get("waiting") else "")
    )


def _sources_text(hedge: dict[str, Any]) -> str:
    """Say where the exposure came from, when some of it is held elsewhere (a custody file, holdings accounts)."""
    if "exposure_elsewhere_at" not in hedge or (hedge.get("exposure_elsewhere") is None and hedge.get("exposure_elsewhere_at") is None):
        return ""
    parts = [f"spot {hedge['exposure_spot']}"] if hedge.get("exposure_spot") is not None else []
    if hedge.get("exposure_offset") is not None:
        parts.append(f"offset {hedge['exposure_offset']}")
    elsewhere = hedge.get("exposure_elsewhere")
    parts.append(f"held elsewhere {elsewhere} (counted {hedge.get('exposure_elsewhere_at')})" if elsewhere is not None
                 else "held elsewhere: not read yet")
    return "exposure: " + " + ".join(parts)


def _contract_text(hedge: dict[str, Any]) -> str:
    """Say the contract a quarterly or cheapest hedge holds, its next roll window, and the carries last compared."""
    if not hedge.get("contract"):
        return ""
    parts = [f"contract {hedge['contract']}" + (f" (delivered {hedge['contract_expiry']})" if hedge.get("contract_expiry") else "")]
    if hedge.get("rolling"):
        parts.append(f"rolling {hedge['rolling']}")
    elif hedge.get("next_roll_at"):
        parts.append(f"next roll window {hedge['next_roll_at']}")
    carries = hedge.get("carries") or []
    if carries:
        parts.append("carries a year: " + ", ".join(
            f"{c['symbol']} {percent(c['annual_rate']) if c.get('annual_rate') is not None else 'unknown'}" for c in carries
        ))
    return "; ".join(parts)


def _schedule_text(hedge: dict[str, Any]) -> str:
    """Say the schedule's window in force, the next one and the hedge's end, when it has any."""
    parts = []
    if hedge.get("window"):
        parts.append(f"window {hedge['window']} in force (target ratio {_fmt(hedge.get('target_ratio'))})")
    if hedge.get("next_window"):
        parts.append(f"next window {hedge['next_window']} at {hedge.get('next_window_at') or '-'}")
    if hedge.get("ends_at"):
        parts.append(f"ends {hedge['ends_at']}")
    return "; ".join(parts)


def _beta_text(hedge: dict[str, Any]) -> str:
    """Say a beta hedge's beta in force, its estimate, the rolling correlation and the out-of-sample effectiveness."""
    if not any(hedge.get(k) is not None for k in ("beta", "beta_estimate", "correlation")):
        return ""
    def one(h: dict[str, Any]) -> str:
        effectiveness = h.get("hedge_effectiveness")
        return (
            f"beta {_fmt(h.get('beta'))} (estimate {_fmt(h.get('beta_estimate'))}, OLS {_fmt(h.get('beta_ols'))}), "
            f"correlation {_fmt(h.get('correlation'))}, hedge effectiveness "
            + (percent(effectiveness) if effectiveness is not None else "-")
        )

    basket = hedge.get("basket") or []
    return "; ".join(f"{h.get('asset')}: {one(h)}" for h in basket) if basket else one(hedge)


def _streams_of(streams: dict[str, Any], hedge: dict[str, Any]) -> dict[str, Any]:
    """Return the stream health of a hedge's account, for the JSON view (nothing when it does not stream)."""
    health = streams.get(hedge.get("account", ""))
    return {"streams": health} if health else {}


def register(sub: Any) -> None:
    """Add `status` to the `hedgebot` parser."""
    status = with_config(sub.add_parser("status", help="show each hedge's state"))
    status.add_argument("--json", action="store_true", help="print a JSON list")
    status.set_defaults(func=cmd_status)
