"""`hedgebot pause|resume|reduce|unwind`: requests to the daemon through the journal's control channel.

Each command writes a request row (who asked, why, what) into the journal.
A running daemon takes it on the hedge's next tick and writes back what it
did; the command waits for that and reports it, or says that no daemon runs
and the request waits for the next start. `unwind` with no daemon running
executes the unwind itself, under the account's lock, with the same keeper.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.clock import RealClock
from hedgebot.commands.args import EXIT_OK, fail, hedge_account, positive_int, seconds, with_config
from hedgebot.config import AccountConfig, ConfigError, HedgeConfig, Settings, load_config
from hedgebot.domain import unwind as unwinding
from hedgebot.domain.model import ZERO, Action, PlaceOrder, Snapshot, Transfer
from hedgebot.domain.trading import TradingState
from hedgebot.engine.keeper import Keeper, StartupRefused
from hedgebot.exchange.factory import build_venue
from hedgebot.exchange.port import ExchangeError
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.ops.figures import Figure, Precision, text
from hedgebot.ops.logging import configure_logging
from hedgebot.store.control import Control, Request
from hedgebot.store.factory import open_control, open_journal
from hedgebot.store.journal import Journal, JournalUnavailable

EXIT_NOT_DONE = 1
POLL_SECONDS = 0.2


def _say(message: str) -> None:
    print(message, flush=True)


def actor() -> str:
    """Name who is asking: user, host and process, for the audit trail."""
    user = os.environ.get("USER") or os.environ.get("LOGNAME") or f"uid {os.getuid()}"
    return f"{user}@{socket.gethostname()} (cli pid {os.getpid()})"


def _find(settings: Settings, hedge: str, account: str | None) -> tuple[AccountConfig, HedgeConfig]:
    """Return the account and hedge named on the command line, or raise ValueError saying why not."""
    found = next(a for a in settings.accounts if a.name == hedge_account(settings, hedge, account))
    return found, next(h for h in found.hedges if h.name == hedge)


def _wait_taken(control: Control, request_id: int, limit: float) -> Request | None:
    """Wait (in real time: a person is waiting) until the daemon takes the request; None when it does not in time."""
    deadline = time.monotonic() + limit
    while True:
        request = control.request(request_id)
        if request is not None and request.taken_at is not None:
            return request
        if time.monotonic() >= deadline:
            return None
        time.sleep(POLL_SECONDS)


def _deliver(settings: Settings, account: AccountConfig, hedge: HedgeConfig, control: Control, request_id: int, wait: float | None) -> int:
    """Report whether a running daemon took the request, or that it waits for the next start."""
    from hedgebot.engine.daemon import AccountLock  # the daemon's modules load only for the commands that need them

    # On a shared (PostgreSQL) journal the daemon that leads the account may run on another machine.
    if settings.journal.url is None and not AccountLock(settings.daemon.state_dir, account.name).held_elsewhere():
        _say(
            f"no daemon is running for account {account.name!r}: request {request_id} is queued and will be "
            "taken when the daemon next starts"
        )
        return EXIT_OK
    limit = wait if wait is not None else 2 * hedge.tick_seconds + 10
    request = _wait_taken(control, request_id, limit)
    if request is None:
        _say(f"the daemon has not taken request {request_id} within {limit:g}s; it stays queued")
        return EXIT_NOT_DONE
    _say(f"request {request_id} taken by {request.taken_by}: {request.result}")
    return EXIT_OK


def cmd_state(args: argparse.Namespace) -> int:
    """Ask the daemon to pause, resume or reduce a hedge."""
    settings = load_config(args.config)
    try:
        account, hedge = _find(settings, args.hedge, args.account)
    except ValueError as exc:
        return fail(str(exc))
    try:
        journal = open_journal(settings.journal, RealClock())
    except (JournalUnavailable, ConfigError) as exc:
        return fail(str(exc))
    try:
        control = open_control(journal)
        request_id = control.submit(account.name, hedge.name, args.command, actor(), args.reason or "")
        return _deliver(settings, account, hedge, control, request_id, args.wait)
    finally:
        journal.close()


# ---- unwind -------------------------------------------------------------------------


def _describe(step: Action, snapshot: Snapshot) -> str:
    market = snapshot.market
    shown = Precision.of(market)

    def amount(value: Decimal) -> str:
        # On the amount step, without trailing zeros: a slice reads "0.5", as the step list always said.
        return format(Decimal(text(value, Figure.AMOUNT, shown)).normalize(), "f")

    if isinstance(step, PlaceOrder) and step.spot:
        return f"sell {amount(step.amount)} {market.base} spot (the coins that slice hedged)"
    if isinstance(step, PlaceOrder):
        return f"buy back {amount(step.amount)} of the short (BUY on position side SHORT, clamped to the live leg)"
    if isinstance(step, Transfer):
        return f"move up to {text(step.amount, Figure.BALANCE, shown)} {step.asset} of released margin from futures to spot"
    return repr(step)


async def preview(
    account: AccountConfig, hedge: HedgeConfig, settings: Settings, sell_spot: bool, slices: int | None
) -> tuple[Snapshot, tuple[Action, ...], str]:
    """Read the venue and the journal (changing nothing) and return the unwind's plan, assuming every step fills.

    When an unwind of the hedge is already under way, the plan is the rest of that one.
    """
    clock = RealClock()
    setup = build_venue(account, clock, settings.daemon.state_dir)
    if setup.simulated is not None:
        setup.simulated.state_path = None  # a preview never writes the paper account a daemon may be running
    journal = open_journal(settings.journal, clock)
    try:
        keeper = Keeper(
            account.name, hedge, setup.venue, clock, journal, EventLog(None, NullLogger()), calendar=settings.calendar_events()
        )
        keeper.market = await setup.venue.load_market(hedge.symbol)
        snapshot = await keeper.observe()
        running = keeper.unwind
        resumed = keeper.unwind_view(running, snapshot) if running is not None else None
        unsettled = len(journal.open_intents(account.name, hedge.name))
    finally:
        journal.close()
        await setup.close()
    if resumed is not None and running is not None:
        view, spec = resumed
        note = f"unwind {running.id} is under way: this carries it on, as asked then"
        if unsettled:
            note += f" ({unsettled} earlier action(s) are looked up first, so the first steps may differ)"
        return snapshot, unwinding.plan_unwind(view, spec), note
    policy = hedge.policy()
    short = snapshot.leg_of(policy.side)  # the hedge's own leg: the short, or the long of a long hedge
    spec = unwinding.UnwindSpec(
        unwinding.slice_size(short.size, hedge.max_order, slices, snapshot.market),
        sell_spot,
        short.margin if sell_spot else ZERO,
        policy.side,
    )
    elsewhere = policy.offset + (snapshot.long.size if policy.include_perp_long else ZERO)
    view = unwinding.UnwindView(
        snapshot.market, snapshot.mark_price, short.size, snapshot.spot_asset, elsewhere,
        snapshot.futures_free + spec.margin_to_spot,  # closing the short releases its margin
    )
    return snapshot, unwinding.plan_unwind(view, spec), ""


def _closed(settings: Settings, account: AccountConfig, hedge: HedgeConfig) -> bool:
    """Tell whether the journal says the hedge is closed (unwound, and not resumed since)."""
    if settings.journal.url is None and not Path(settings.journal.path).exists():
        return False
    journal = open_journal(settings.journal, RealClock())
    try:
        record = open_control(journal).state(account.name, hedge.name)
    finally:
        journal.close()
    return record is not None and record.state is TradingState.CLOSED


def _confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    try:
        return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")
    except EOFError:
        return False


def cmd_unwind(args: argparse.Namespace) -> int:
    """Close one hedge safely: show the plan, confirm, then have the daemon (or this command) carry it out."""
    settings = load_config(args.config)
    try:
        account, hedge = _find(settings, args.hedge, args.account)
    except ValueError as exc:
        return fail(str(exc))
    if args.sell_spot and hedge.side.value == "long":
        return fail(
            f"hedge {hedge.name!r} is a long hedge for a planned purchase: --sell-spot would sell the coins it was "
            "bought for; unwind it without --sell-spot (nothing was done)"
        )
    if args.sell_spot and hedge.settlement.value == "inverse":
        return fail(
            f"hedge {hedge.name!r} is coin-margined: its margin is the coins themselves, and --sell-spot would sell "
            "them for nothing it needs; unwind it without --sell-spot (nothing was done)"
        )
    if args.sell_spot and hedge.beta:
        return fail(
            f"hedge {hedge.name!r} is a beta hedge: the coins held ({hedge.asset}) are not the instrument's "
            f"({hedge.symbol}), and --sell-spot would sell the instrument's coins; unwind it without --sell-spot "
            "(nothing was done)"
        )
    try:
        snapshot, steps, note = asyncio.run(preview(account, hedge, settings, args.sell_spot, args.slices))
    except ExchangeError as exc:
        return fail(f"cannot read account {account.name!r} to plan the unwind: {exc}", EXIT_NOT_DONE)
    market = snapshot.market
    shown = Precision.of(market)
    _say(
        f"unwind {account.name}/{hedge.name}: {hedge.side.value} "
        f"{text(snapshot.leg_of(hedge.side.position_side).size, Figure.AMOUNT, shown)} on {market.symbol}, "
        f"spot {text(snapshot.spot_asset, Figure.AMOUNT, shown)} {market.base}, mark {text(snapshot.mark_price, Figure.PRICE, shown)}"
    )
    if note:
        _say(f"  {note}")
    for number, step in enumerate(steps, 1):
        _say(f"  {number:>3}. {_describe(step, snapshot)}")
    if not steps and _closed(settings, account, hedge):
        _say(f"{account.name}/{hedge.name} is already closed; nothing done")
        return EXIT_OK
    if not steps:
        _say("  nothing to do: the short is already closed")
    if not args.sell_spot and not note:
        _say("  (spot is kept; add --sell-spot to sell the hedged coins slice by slice)")
    if args.plan:
        return EXIT_OK
    if not args.yes and not _confirm("Carry out this unwind?"):
        return fail("not confirmed: nothing was done (pass --yes to skip the question)", EXIT_NOT_DONE)
    try:
        journal = open_journal(settings.journal, RealClock())
    except (JournalUnavailable, ConfigError) as exc:
        return fail(str(exc))
    try:
        control = open_control(journal)
        request_id = control.submit(
            account.name, hedge.name, "unwind", actor(), args.reason or "unwind requested",
            sell_spot=args.sell_spot, slices=args.slices,
        )
        # On a shared journal the daemon leading the account (wherever it runs) takes it: never unwind here.
        from hedgebot.engine.daemon import AccountLock

        if settings.journal.url is not None or AccountLock(settings.daemon.state_dir, account.name).held_elsewhere():
            return _deliver(settings, account, hedge, control, request_id, args.wait)
    finally:
        journal.close()
    return asyncio.run(_unwind_here(settings, account, hedge, request_id))


async def _unwind_here(settings: Settings, account: AccountConfig, hedge: HedgeConfig, request_id: int) -> int:
    """Run the one hedge's keeper in this process, under the account lock, until the unwind is done."""
    from hedgebot.engine.daemon import Daemon

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    configure_logging(settings.daemon.log_format, settings.daemon.log_level)  # its log reads like the daemon's
    # The user confirmed this unwind of this account by name: a live account needs no --live here.
    daemon = Daemon(settings, RealClock(), allow_live=True, only=(account.name, hedge.name))
    try:
        await daemon.start()
    except StartupRefused as exc:
        return fail(f"refused to start the unwind: {exc}")
    _say(f"no daemon was running: unwinding here under the lock of account {account.name!r}")
    keeper = daemon.keepers[0]
    assert daemon.journal is not None
    control = open_control(daemon.journal)
    finished = False
    summary = ""
    try:
        while not stop.is_set():
            request = control.request(request_id)
            if request is not None and request.taken_at is not None and keeper.unwind is None:
                finished = keeper.trading_state is TradingState.CLOSED
                summary = _summary(daemon.journal, keeper) if finished else f"the unwind did not run: {request.result}"
                break
            try:
                await asyncio.wait_for(stop.wait(), POLL_SECONDS)
            except TimeoutError:
                pass
    finally:
        await daemon.stop()
    if summary:
        _say(summary)
    if finished:
        return EXIT_OK
    if stop.is_set():
        _say("stopped before the unwind finished; positions are as they were left. Run the same command again to resume")
    return EXIT_NOT_DONE


def _summary(journal: Journal, keeper: Keeper) -> str:
    done = journal.events(keeper.account, keeper.hedge.name, "unwind_completed")
    if not done:
        return "unwound"
    d = done[-1].detail
    shown = Precision.of(keeper.market)
    return (
        f"unwound: {text(d['short_bought_back'], Figure.AMOUNT, shown)} of the short bought back, "
        f"{text(d['spot_sold'], Figure.AMOUNT, shown)} spot sold, {text(d['margin_to_spot'], Figure.MONEY, shown)} margin moved to spot"
    )


def register(sub: Any) -> None:
    """Add the control commands to the `hedgebot` parser."""
    def common(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
        with_config(p)
        p.add_argument("--hedge", required=True, help="hedge name")
        p.add_argument("--account", help="the hedge's account (needed when two accounts have a hedge of that name)")
        p.add_argument("--reason", help="why, for the audit trail")
        p.add_argument("--wait", type=seconds, default=None, help="seconds to wait for a running daemon to take the request")
        return p

    for name, text in (
        ("pause", "halt a hedge: no orders (margin top-ups still run)"),
        ("resume", "re-arm a hedge: active again (also after an unwind)"),
        ("reduce", "let a hedge only reduce exposure or add margin"),
    ):
        common(sub.add_parser(name, help=text)).set_defaults(func=cmd_state)
    unwind = common(sub.add_parser("unwind", help="close a hedge safely, slice by slice"))
    unwind.add_argument("--sell-spot", action="store_true", help="sell the matching spot after each short slice")
    unwind.add_argument("--slices", type=positive_int, default=None, help="split the short into at least N slices")
    unwind.add_argument("--plan", action="store_true", help="print the plan and change nothing")
    unwind.add_argument("--yes", action="store_true", help="do not ask for confirmation")
    unwind.set_defaults(func=cmd_unwind)

