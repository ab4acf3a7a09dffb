"""The `hedgebot` command: check, run, status, history (and pause, resume, reduce, unwind in cli_control).

Exit codes: 0 success, 1 nothing to show, 2 bad input or a refused start.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import sqlite3
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from decimal import Decimal
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from hedgebot import affordability, backtest_report, cli_compare, cli_control, cli_journal, cli_put, sweep
from hedgebot.access import SERVICE_USER_HINT, denied, obstacle
from hedgebot.clock import RealClock
from hedgebot.config import (
    ConfigError,
    HedgeConfig,
    PaperConfig,
    PaperMarketConfig,
    ReplayFeedConfig,
    Settings,
    SyntheticFeedConfig,
    load_config,
)
from hedgebot.domain.basis import annual_basis_from_funding
from hedgebot.domain.delivery import delivery_symbol, quarterly_expiries
from hedgebot.domain.fundability import fundability
from hedgebot.domain.roll import Contract, contract_to_hold
from hedgebot.domain.model import Market, Severity
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.engine.custody import CustodyFileError, read_custody_file
from hedgebot.engine.keeper import StartupDeferred, StartupRefused, StartupStopped
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.factory import feed_start, paper_market
from hedgebot.exchange.feeds import read_candles
from hedgebot.exchange.funding import ReplayFunding
from hedgebot.exchange.port import ExchangeError
from hedgebot.ops.figures import Figure, Precision, duration, iso_utc, percent, render, render_detail
from hedgebot.ops.logging import configure_logging
from hedgebot.preflight import preflight
from hedgebot.redact import redact, redact_value
from hedgebot.report import Period, build_reports, ledger, parse_date, render_csv, render_table, untold_outcomes
from hedgebot.store.factory import open_journal
from hedgebot.store.journal import Journal, JournalUnavailable

EXIT_OK = 0
EXIT_NOTHING = 1
EXIT_BAD_INPUT = 2
EXIT_TRY_AGAIN = 75  # EX_TEMPFAIL: something the start needs does not answer yet; the unit restarts the daemon


def _fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    print(f"hedgebot: {message}", file=sys.stderr)
    return code


def _load(path: Path) -> Settings:
    return load_config(path)


def _refuse(path: Path, problems: list[str]) -> int:
    """Print why `run` cannot start: files this user may not use first, one line each, then what is wrong in the config."""
    locked = [p for p in dict.fromkeys(problems) if SERVICE_USER_HINT in p]
    for problem in locked:
        _fail(problem)
    wrong = [p for p in problems if p not in locked]
    return _fail(f"invalid config {path}:\n" + "\n".join(wrong)) if wrong else EXIT_BAD_INPUT


def _exposure(hedge: HedgeConfig) -> str:
    if hedge.amount is not None:
        bought = f", less the spot {hedge.asset} bought" if hedge.exposure.spot else ""
        return f"a planned purchase of {hedge.amount} {hedge.asset}{bought}"
    parts = [f"spot {hedge.asset}"] if hedge.exposure.spot else []
    if hedge.exposure.offset:
        parts.append(f"{hedge.exposure.offset} {hedge.asset} held elsewhere")
    if hedge.exposure.perp_long:
        parts.append(f"the LONG leg of {hedge.symbol}")
    if hedge.exposure.file is not None:
        parts.append(_custody_count(hedge))
    parts += [f"the spot {hedge.asset} of holdings account {name}" for name in hedge.exposure.accounts]
    return " + ".join(parts) or "nothing (spot off, no offset, no long leg)"


def _with_coins_held_elsewhere(settings: Settings, hedge: HedgeConfig) -> tuple[HedgeConfig, list[str]]:
    """Return the hedge with the coins it counts elsewhere added to its offset, for `check`'s figures, and what is unknown."""
    held, unknown = Decimal(0), []
    if hedge.exposure.file is not None:
        try:
            held += read_custody_file(hedge.exposure.file, hedge.asset, RealClock().now()).amount
        except CustodyFileError:
            unknown.append(f"custody file {hedge.exposure.file}")
    for name in hedge.exposure.accounts:
        account = next(a for a in settings.accounts if a.name == name)
        if account.paper is not None:
            held += account.paper.spot.get(hedge.asset, Decimal(0))
        else:
            unknown.append(f"account {name} (live: read by `check --exchange` and `run`)")
    exposure = hedge.exposure.model_copy(update={"offset": hedge.exposure.offset + held})
    return hedge.model_copy(update={"exposure": exposure}), unknown


def _custody_count(hedge: HedgeConfig) -> str:
    """Say what the hedge's custody file counts now, or why it cannot be read (the hedge would hold, not fail)."""
    path = hedge.exposure.file
    assert path is not None
    now = RealClock().now()
    try:
        count = read_custody_file(path, hedge.asset, now)
    except CustodyFileError as exc:
        return f"UNREADABLE ({exc}: `run` holds this hedge both ways until it can be read)"
    age = now - count.at
    stale = " - STALE: it may not grow the hedge" if age > hedge.exposure.file_max_age_seconds else ""
    return f"{count.amount} {hedge.asset} in {path} (counted {iso_utc(count.at)}, {duration(max(age, 0))} ago){stale}"


def _guard(hedge: HedgeConfig) -> str:
    guard = hedge.margin_guard
    if not guard.enabled:
        return "off"
    text = f"top up below {guard.trigger} to {guard.target} from {', '.join(guard.sources)}"
    return text + (f"; release above {guard.release}" if guard.release is not None else "")


def cmd_check(args: argparse.Namespace) -> int:
    """Validate the config, check everything `run` will need, and print what it would run (with paper runways)."""
    from hedgebot.ops.senders import resolve_senders

    settings = _load(args.config)
    problems = preflight(settings)
    _, unusable = resolve_senders(settings)
    # `run` starts without such a sender (and says so); `check` is where to hear of it before it matters.
    problems += [f"alert sender {problem}; `run` would start without this sender" for problem in unusable]
    if problems:
        return _refuse(args.config, problems)
    if settings.journal.url is not None:
        usable, line = cli_journal.check_journal(settings)
        if not usable:
            return _fail(line)
        print(line)
    else:
        print(f"journal: {settings.journal.path}")
    print(f"state dir: {settings.daemon.state_dir}")
    calendar = settings.calendar_events()
    for account in settings.accounts:
        print(f"account {account.name}: {account.mode} on {account.exchange}")
        if not account.hedges:
            counted_by = [f"{a.name}/{h.name}" for a in settings.accounts for h in a.hedges if account.name in h.exposure.accounts]
            refilling = [f"{a.name}/{h.name}" for a in settings.accounts for h in a.hedges
                         if h.buffer is not None and h.buffer.allow_withdraw and h.buffer.refill_from == account.name]
            use = f", and {', '.join(refilling)} may withdraw from it (the buffer's refill)" if refilling else "; it is only read"
            print(f"  holdings account: its spot coins are counted by {', '.join(counted_by)}{use}")
        for h in account.hedges:
            if h.instrument.option:
                print(
                    f"  hedge {h.name}: {h.asset} via long puts priced off {h.symbol} (put), ratio {h.ratio}, band {h.band}, "
                    f"floor {h.floor}, expiry {h.expiry_days} days, rolled {duration(h.put_roll_before)} ahead"
                    + (f", rolled up above {h.roll_up_when}x the strike" if h.roll_up_when else "")
                    + f"; premium at most {h.max_premium_per_order} an order and {h.max_premium_per_month} in 30 days, "
                    f"tick {h.tick_seconds}s"
                )
                print(f"    exposure: {_exposure(h)}")
                if account.paper is not None:
                    surface = account.paper.option_volatility_surface
                    at = f"the surface in {surface}" if surface is not None else f"volatility {account.paper.option_volatility}"
                    print(f"    paper options: a model (Black-Scholes at {at}, spread {account.paper.option_spread} each side)")
                continue
            print(
                f"  hedge {h.name}: {h.asset} via a {h.side.value} on {h.symbol} ({h.instrument.value}), ratio {h.ratio}, band {h.band}, "
                f"{h.margin_mode.value} {h.leverage}x, tick {h.tick_seconds}s"
            )
            print(f"    exposure: {_exposure(h)}")
            if h.beta:
                b = h.beta_settings()
                held = ", ".join(f"{asset} (priced on {symbol})" for asset, symbol in h.holdings())
                print(
                    f"    beta: {held} hedged by beta to {h.symbol}, clamped to {b.beta_min}..{b.beta_max}, half-life "
                    f"{b.half_life} x {b.timeframe}, at least {b.min_observations} returns, re-hedged past +-{b.band}; "
                    f"correlation under {b.correlation_min} over {b.correlation_window} x {b.timeframe}: {b.on_break}"
                    + (f" to {b.reduce_to}" if b.on_break == "reduce" else "")
                )
                if h.basket:
                    # The exposure sources are counted for the hedge's own asset; a basket's others are spot coins only.
                    print(
                        f"    basket: {', '.join(b.asset for b in h.basket)} counts this account's spot coins only: "
                        f"exposure.offset, exposure.file and exposure.accounts count {h.asset} (the hedge's own asset) alone"
                    )
            print(f"    margin guard: {_guard(h)}")
            for line in _buffer_lines(h):
                print(f"    {line}")
            for line in _schedule_lines(h, calendar):
                print(f"    {line}")
            if account.paper is not None:
                counted, unknown = _with_coins_held_elsewhere(settings, h)
                for line in _starting_lines(account.paper, counted, h.schedule_of(calendar).ends_at):
                    print(f"    {line}")
                for line in _quarterly_lines(account.paper, h):
                    print(f"    {line}")
                if unknown:
                    print(f"    (these figures leave out the coins of {', '.join(unknown)}: not known here)")
    if args.exchange:
        return _check_exchange(settings)
    print("config OK")
    return EXIT_OK


def _buffer_lines(hedge: HedgeConfig) -> list[str]:
    """Say a hedge's buffer and its refill, for `check`."""
    buffer = hedge.buffer
    if buffer is None:
        return []
    lines = [
        f"buffer: kept {percent(buffer.floor, 1)} from liquidation (adverse move {percent(buffer.adverse_move, 1)} + "
        f"divergence {percent(buffer.divergence, 1)}); a deposit takes {duration(buffer.refill_seconds)}"
    ]
    if buffer.refill_from is None or not buffer.allow_withdraw:
        lines.append("refill: none (deposits come by hand; allow_withdraw = false)")
        return lines
    assert buffer.max_withdraw is not None
    per_day = buffer.max_withdraw_per_day or buffer.max_withdraw
    lines.append(
        f"refill: withdrawn from {buffer.refill_from} to {buffer.withdraw_address} on {buffer.withdraw_network}, at most "
        f"{buffer.max_withdraw} at once and {per_day} a day"
        + (" (the day's limit is below one withdrawal's: each withdrawal is cut to it)" if per_day < buffer.max_withdraw else "")
    )
    return lines


def _schedule_lines(hedge: HedgeConfig, calendar: Sequence[CalendarEvent]) -> list[str]:
    """Say each schedule window (with its times) and the hedge's end, for `check`."""
    schedule = hedge.schedule_of(calendar)
    lines = [
        f"window {w.name}: ratio {w.ratio} from {iso_utc(w.start)} to {iso_utc(w.end)}"
        for w in schedule.windows
    ]
    if schedule.ends_at is None:
        lines.append("ends: never by itself (no `until`)")
    else:
        spot = "its spot sold" if hedge.until_sell_spot else "its spot kept"
        lines.append(f"ends: unwound at {iso_utc(schedule.ends_at)} ({schedule.ends_because}), {spot}, then closed")
    return lines


def _check_exchange(settings: Settings) -> int:
    """Print what the live start-up checks find on the exchange; exit 2 when `run` would refuse to start."""
    from hedgebot.live_check import check_exchange

    found = asyncio.run(check_exchange(settings, RealClock()))
    for line in found.lines:
        print(line)
    if found.problems:
        return _fail("the exchange checks found what would stop `run`:\n" + "\n".join(f"- {p}" for p in found.problems))
    print("config OK; the exchange checks passed (no order was placed)")
    return EXIT_OK


def _starting_price(feed: object) -> Decimal | None:
    return feed_start(feed)[1]


def _starting_lines(paper: PaperConfig, hedge: HedgeConfig, ends_at: float | None = None) -> list[str]:
    """Say the runway, fundability, margin and carrying cost of the hedge's target, opened from the paper account's starting balances."""
    market_config = next(m for m in paper.markets if m.symbol == hedge.symbol)
    price = _starting_price(market_config.feed)
    if price is None:
        return ["runway and fundability: need a price (shown by `hedgebot status` once running)"]
    market = paper_market(market_config)
    if hedge.beta:
        return [_beta_starting_line(paper, hedge, market, price)]
    spot, futures = dict(paper.spot), dict(paper.futures)
    basis = "from the starting balances"
    return [
        affordability.runway_line(affordability.opened(market, price, spot, futures, hedge), hedge, basis),
        *affordability.fundability_lines(market, price, spot, futures, hedge, basis),
        affordability.margin_line(market, price, spot, futures, hedge),
        # A quarterly's carry is its basis, said by `_quarterly_lines`: it pays and earns no funding.
        *([] if hedge.instrument.delivers else [_carry_line(market_config, market, price, spot, futures, hedge, ends_at)]),
    ]


def _beta_starting_line(paper: PaperConfig, hedge: HedgeConfig, market: Market, price: Decimal) -> str:
    """Say a beta hedge's largest short from the paper account's starting balances and prices."""
    worth = Decimal(0)
    for index, (asset, symbol) in enumerate(hedge.holdings()):
        listed = next((m for m in paper.markets if m.symbol == symbol), None)
        at = _starting_price(listed.feed) if listed is not None else None
        if at is None:
            return f"beta sizing: needs {asset}'s price on {symbol} (shown by `hedgebot status` once running)"
        coins = (paper.spot.get(asset, Decimal(0)) if hedge.exposure.spot else Decimal(0)) + (hedge.exposure.offset if index == 0 else Decimal(0))
        worth += coins * at
    return affordability.beta_largest_line(market, price, worth, hedge.beta_settings().beta_max, "from the starting balances")


CARRY_HISTORY_SECONDS = 30 * 86400.0  # the recent history funding rates are averaged over


def _quarterly_lines(paper: PaperConfig, hedge: HedgeConfig) -> list[str]:
    """Say which quarterly a delivering hedge would hold now, its delivery, when its roll starts, and the basis it costs."""
    if not hedge.instrument.follows_delivery:
        return []
    config = next((m for m in paper.markets if m.symbol == hedge.symbol), None)
    if config is None or not config.quarterlies:
        return [f"quarterlies: the paper market {hedge.symbol} lists none (set quarterlies = true on it)"]
    now = feed_start(config.feed)[0] or datetime.now(UTC).timestamp()
    held = contract_to_hold(
        [Contract(delivery_symbol(hedge.symbol, e), e) for e in quarterly_expiries(now, 2)], now, hedge.quarterly_roll_before,
    )
    if held is None:
        return ["quarterlies: none far enough from delivery to hold"]
    if config.quarterly_basis is not None:
        basis, source = config.quarterly_basis, "configured (quarterly_basis)"
    else:
        funding = config.funding
        if funding.file is not None:
            try:
                replay = ReplayFunding.from_csv(funding.file)
            except (OSError, ValueError) as exc:
                return [f"quarterlies: the funding file their basis comes from cannot be read ({exc})"]
            rates = [rate for _, rate in replay.settlements(now - CARRY_HISTORY_SECONDS, now)]
            hours = Decimal(CARRY_HISTORY_SECONDS / 3600) / len(rates) if rates else Decimal(8)
            source = "from the funding file's 30 days before the start (a model)"
        else:
            rates, hours = [funding.rate], Decimal(str(funding.interval_hours))
            source = "from the config's funding rate (a model)"
        basis = annual_basis_from_funding(rates, hours)
    if hedge.instrument.chooses:
        return [
            f"cheapest: chooses between the perpetual {hedge.symbol} (its funding carry above) and {held.symbol} "
            f"(delivered {iso_utc(held.expiry)}) at opening, and again from {iso_utc(held.expiry - hedge.quarterly_roll_before)} "
            f"(roll_before {duration(hedge.quarterly_roll_before)}); it moves only for {percent(hedge.switch_advantage, 2)} a year "
            "more (switch_advantage)",
            f"carrying cost of {held.symbol}: annualised basis {percent(basis, 2)} ({source}); no funding on a quarterly",
        ]
    return [
        f"contract held: {held.symbol}, delivered {iso_utc(held.expiry)}; the roll to the next starts "
        f"{iso_utc(held.expiry - hedge.quarterly_roll_before)} (roll_before {duration(hedge.quarterly_roll_before)}) in slices of at most "
        f"{hedge.max_order} {hedge.asset}",
        f"carrying cost: annualised basis {percent(basis, 2)} ({source}); no funding on a quarterly",
    ]


def _carry_line(
    config: PaperMarketConfig, market: Market, price: Decimal, spot: dict[str, Decimal], futures: dict[str, Decimal],
    hedge: HedgeConfig, ends_at: float | None = None,
) -> str:
    """Say the hedge's carrying cost from its paper market's funding: the config's rate, or a file's last 30 days."""
    funding = config.funding
    coins = fundability(market, price, spot, futures, hedge.policy(), hedge.leverage).target
    interval = Decimal(str(funding.interval_hours))
    if funding.file is not None:
        try:
            replay = ReplayFunding.from_csv(funding.file)
        except (OSError, ValueError) as exc:
            return f"carrying cost: the funding file cannot be read ({exc})"
        _, last = replay.span()
        settlements = replay.settlements(last - CARRY_HISTORY_SECONDS, last) if last is not None else []
        source = "the funding file's last 30 days"
    elif funding.live:
        return "carrying cost: shown by `check --exchange` from the exchange's recent funding (live rate)"
    else:
        settlements, source = [(0.0, funding.rate)], "the config's rate"
    horizon = affordability.horizon_years(ends_at, time.time())
    rates = [rate for _, rate in settlements]
    return affordability.carry_line(market, price, coins, hedge, rates, interval, source, horizon)


def cmd_run(args: argparse.Namespace) -> int:
    """Run the daemon until SIGINT or SIGTERM; bad input exits 2 with the messages `check` gives."""
    settings = _load(args.config)
    problems = preflight(settings)
    if problems:
        return _refuse(args.config, problems)
    configure_logging(settings.daemon.log_format, settings.daemon.log_level)
    return asyncio.run(_run(settings, args.live, args.config, standby=args.standby))


async def _run(settings: Settings, live: bool, config_path: Path, *, standby: bool = False) -> int:
    from hedgebot.engine.daemon import Daemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    daemon = Daemon(settings, RealClock(), allow_live=live, serve_http=True, standby=standby)
    loop.add_signal_handler(signal.SIGHUP, daemon.reload_file, config_path)
    try:
        await daemon.run(stop)
    except StartupStopped as exc:
        print(f"hedgebot: {exc}", file=sys.stderr)
        return EXIT_OK
    except StartupDeferred as exc:
        return _fail(f"not started yet: {exc}", EXIT_TRY_AGAIN)
    except StartupRefused as exc:
        return _fail(f"refused to start: {exc}")
    except PermissionError as exc:
        return _fail(denied(obstacle(exc.filename or config_path)))
    except (OSError, sqlite3.Error) as exc:
        return _fail(f"refused to start: {exc}")
    return EXIT_OK


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

    settings = _load(args.config)
    state_dir = settings.daemon.state_dir
    path = state_dir / STATUS_FILE
    if not path.exists():
        return _fail(f"no status in {state_dir}: the daemon has not run with this config yet", EXIT_NOTHING)
    try:
        data = json.loads(path.read_text())
    except PermissionError:
        raise
    except (OSError, ValueError) as exc:
        return _fail(f"cannot read the status file {path}: {exc}; it is rewritten while the daemon runs")
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


def _hedge_account(settings: Settings, hedge: str, account: str | None) -> str:
    """Return the account that holds `hedge`, or raise ValueError saying why it cannot be told."""
    holders = [a.name for a in settings.accounts if any(h.name == hedge for h in a.hedges)]
    if account is not None:
        if account not in {a.name for a in settings.accounts}:
            raise ValueError(f"--account {account!r} is not in the config (accounts: {', '.join(a.name for a in settings.accounts)})")
        if account not in holders:
            raise ValueError(f"--hedge {hedge!r} is not a hedge of account {account!r}")
        return account
    if not holders:
        names = sorted({h.name for a in settings.accounts for h in a.hedges})
        raise ValueError(f"--hedge {hedge!r} is not in the config (hedges: {', '.join(names)})")
    if len(holders) > 1:
        raise ValueError(f"hedge {hedge!r} exists in accounts {', '.join(holders)}: say which with --account")
    return holders[0]


def cmd_history(args: argparse.Namespace) -> int:
    """Print the journal's trail for one hedge."""
    settings = _load(args.config)
    try:
        account = _hedge_account(settings, args.hedge, args.account)
    except ValueError as exc:
        return _fail(str(exc))
    journal_path = settings.journal.path
    if settings.journal.url is None and not journal_path.exists():
        return _fail(f"no journal at {journal_path}: the daemon has not run with this config yet", EXIT_NOTHING)
    try:
        journal = open_journal(settings.journal, RealClock())  # PostgreSQL when [journal] url is set
    except (JournalUnavailable, ConfigError) as exc:
        return _fail(str(exc))
    try:
        events = journal.events(account=account, hedge=args.hedge)
        events = sorted(events + untold_outcomes(journal, account, args.hedge), key=lambda e: e.at)
        if args.limit is not None:
            events = events[-args.limit :]
        open_intents = journal.open_intents(account=account, hedge=args.hedge)
    finally:
        journal.close()
    shown = _precision_of(settings, account, args.hedge)
    if args.json:
        print(json.dumps([{"at": iso_utc(e.at), "account": e.account, "kind": e.kind, "severity": e.severity, **redact_value(e.detail)} for e in events], indent=2))
        return EXIT_OK
    for e in events:
        when = datetime.fromtimestamp(e.at, UTC).strftime("%Y-%m-%d %H:%M:%S")
        detail = redact(" ".join(f"{k}={v}" for k, v in render_detail(e.detail, shown).items() if v not in (None, "")))
        print(f"{when}  {e.severity:<8} {e.account}/{e.hedge}  {e.kind:<22} {detail}")
    for intent in open_intents:
        print(redact(f"open intent {intent.client_id} ({intent.kind}, {intent.status.value}): {intent.detail}"))
    if not events:
        print(f"no events for hedge {args.hedge!r} yet")
    return EXIT_OK


def _precision_of(settings: Settings, account: str, hedge: str) -> Precision:
    """Return the steps a hedge's figures are shown at: its paper market's, Binance's known ones, else plain digits.

    A report or history is read without the exchange: where the market's steps are not known, every figure is
    shown in plain digits rather than rounded to a guessed step.
    """
    for config in settings.accounts:
        for h in config.hedges:
            if config.name != account or h.name != hedge:
                continue
            for market in config.paper.markets if config.paper is not None else ():
                if market.symbol == h.symbol:
                    try:
                        return Precision.of(paper_market(market))
                    except ConfigError:
                        break
            known = default_market(h.symbol) if config.mode == "paper" or config.exchange == "binanceusdm" else None
            return Precision.of(known, quote=h.symbol.partition("/")[2].partition(":")[0])
    return Precision()


def _version() -> str:
    try:
        return version("hedgebot")
    except PackageNotFoundError:  # run from a source tree that was never installed
        return "unknown"


def _positive_int(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} must be 1 or more")
    return number


def cmd_report(args: argparse.Namespace) -> int:
    """Print each hedge's funding, fees, margin, orders, time outside the band and PnL over a period."""
    settings = _load(args.config)
    try:
        period = Period(
            parse_date(args.since, "--since") if args.since else None,
            parse_date(args.until, "--until") if args.until else None,
        )
    except ValueError as exc:
        return _fail(str(exc))
    if period.since is not None and period.until is not None and period.until <= period.since:
        return _fail(f"--until {args.until} is not after --since {args.since}")
    accounts = [a for a in settings.accounts if args.account in (None, a.name)]
    if not accounts:
        names = ", ".join(a.name for a in settings.accounts)
        return _fail(f"--account {args.account!r} is not in {args.config} (accounts: {names})")
    journal_path = settings.journal.path
    if settings.journal.url is None and not journal_path.exists():
        return _fail(f"no journal at {journal_path}: the daemon has not run with this config yet", EXIT_NOTHING)
    hedges = [(a.name, h.name, h.symbol) for a in accounts for h in a.hedges]
    clock = RealClock()
    try:
        journal = open_journal(settings.journal, clock)  # PostgreSQL when [journal] url is set
    except (JournalUnavailable, ConfigError) as exc:
        return _fail(str(exc))
    try:
        if args.csv:
            print(render_csv(ledger(journal, [(a, h) for a, h, _ in hedges], period)), end="")
            return EXIT_OK
        reports = build_reports(journal, hedges, period, clock.now(), lambda a, h: _precision_of(settings, a, h))
    finally:
        journal.close()
    if args.json:
        print(json.dumps({"since": period.since, "until": period.until, "hedges": [r.to_json() for r in reports]}, indent=2))
    else:
        print(render_table(reports, period))
    return EXIT_OK


def cmd_alert_test(args: argparse.Namespace) -> int:
    """Send one test message through every configured alert sender and say which arrived."""
    settings = _load(args.config)
    return asyncio.run(_alert_test(settings))


async def _alert_test(settings: Settings) -> int:
    from hedgebot.ops.senders import AlertMessage, build_dispatcher

    clock = RealClock()
    dispatcher = build_dispatcher(settings, clock)
    for problem in dispatcher.misconfigured:
        print(f"sender {problem}")
    if not dispatcher.outboxes and not dispatcher.misconfigured:
        return _fail("no alert senders are configured ([[alerts.senders]] or [[accounts.alerts]])", EXIT_NOTHING)
    failed = len(dispatcher.misconfigured)
    for box in dispatcher.outboxes:
        scope = f"account {box.account}" if box.account else "all accounts"
        message = AlertMessage(
            "alert_test", Severity.INFO, box.account or "", "",
            f"hedgebot alert test through sender {box.sender.name!r} ({scope}): if you read this, alerts reach you.",
            clock.now(),
        )
        reason = await dispatcher.send_now(box.sender, message)
        if reason is None:
            print(f"sender {box.sender.name} ({scope}): delivered")
        else:
            failed += 1
            print(f"sender {box.sender.name} ({scope}): NOT delivered: {reason}")
    return EXIT_OK if failed == 0 else EXIT_NOTHING


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser."""
    parser = argparse.ArgumentParser(prog="hedgebot", description="Keep crypto holdings hedged with a perp short.")
    parser.add_argument("--version", action="version", version=f"hedgebot {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)

    def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        p.add_argument("--config", type=Path, required=True, help="path to the TOML config")
        return p

    check = with_config(sub.add_parser("check", help="validate a config and exit"))
    check.add_argument(
        "--exchange", action="store_true",
        help="also run the live start-up checks against each live account's exchange (no order, no change)",
    )
    check.set_defaults(func=cmd_check)
    run = with_config(sub.add_parser("run", help="run the daemon"))
    run.add_argument("--live", action="store_true", help="allow accounts in live mode to trade real money")
    run.add_argument(
        "--standby", action="store_true",
        help="([journal] url only) lead no account at start: wait for each account's lease to expire, take it with "
        "the next epoch, reconcile, then trade",
    )
    run.set_defaults(func=cmd_run)
    status = with_config(sub.add_parser("status", help="show each hedge's state"))
    status.add_argument("--json", action="store_true", help="print a JSON list")
    status.set_defaults(func=cmd_status)
    history = with_config(sub.add_parser("history", help="show a hedge's journal"))
    history.add_argument("--hedge", required=True, help="hedge name")
    history.add_argument("--account", help="the account of the hedge (needed when two accounts have a hedge of that name)")
    history.add_argument("--limit", type=_positive_int, default=None, help="only the last N events (N >= 1)")
    history.add_argument("--json", action="store_true", help="print JSON")
    history.set_defaults(func=cmd_history)
    report = with_config(sub.add_parser("report", help="funding, fees, margin, orders and PnL per hedge over a period"))
    report.add_argument("--since", help="start of the period: a date (2026-11-01) or date and time, UTC by default")
    report.add_argument("--until", help="end of the period (not included)")
    report.add_argument("--account", help="only this account's hedges")
    output = report.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print JSON")
    output.add_argument("--csv", action="store_true", help="print every fill, funding payment, transfer and margin change as CSV")
    report.set_defaults(func=cmd_report)
    with_config(sub.add_parser("alert-test", help="send a test message through every alert sender")).set_defaults(func=cmd_alert_test)
    sweep.add_arguments(backtest_report.add_parser(sub))
    cli_journal.register(sub, with_config)
    cli_control.register(sub, with_config)
    cli_put.register(sub, with_config)
    cli_compare.register(sub, with_config)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except ConfigError as exc:
        return _fail(f"invalid config {args.config}:\n{exc}")
    except PermissionError as exc:
        # A state dir, journal, status file or config owned by the service user, read by someone else.
        return _fail(denied(obstacle(exc.filename or getattr(args, "config", "."))))
    except sqlite3.DatabaseError as exc:
        return _fail(f"cannot read the journal named in {getattr(args, 'config', 'the config')}: {exc}")
    except BrokenPipeError:
        # The reader went away (`hedgebot history ... | head -1`): that is not an error.
        # Point stdout at /dev/null so the interpreter's final flush does not complain.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
