"""What the commands share: exit codes, how a command fails, and the arguments more than one command takes.

Owns `--config`, whole numbers and seconds given on the command line, dates and times given on it (and times
shown back the same way), naming a hedge with `--hedge NAME [--account NAME]`, and the steps a hedge's figures
are shown at when read without the exchange. It may NOT import a command module: every command imports it.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import UTC, datetime
from pathlib import Path

from hedgebot.config import AccountConfig, ConfigError, HedgeConfig, Settings
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.factory import paper_market
from hedgebot.ops.figures import Precision

EXIT_OK = 0
EXIT_NOTHING = 1  # nothing to show, or not done (yet)
EXIT_BAD_INPUT = 2


def fail(message: str, code: int = EXIT_BAD_INPUT) -> int:
    """Print `hedgebot: message` on stderr and return the exit code."""
    print(f"hedgebot: {message}", file=sys.stderr, flush=True)
    return code


def with_config(p: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the required `--config PATH` to a command's parser and return the parser."""
    p.add_argument("--config", type=Path, required=True, help="path to the TOML config")
    return p


def positive_int(text: str) -> int:
    """Parse a whole number of 1 or more, for argparse."""
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"{text} must be 1 or more")
    return number


def seconds(text: str) -> float:
    """Parse a number of seconds, 0 or more, for argparse."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def _moment(text: str) -> float:
    """Return a date or an ISO 8601 time (UTC unless it says otherwise) as epoch seconds; raise ValueError."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def parse_date(text: str, field_name: str) -> float:
    """Return a date (2026-11-01) or date and time (2026-11-01T12:00, UTC unless it says otherwise) as epoch seconds."""
    try:
        return _moment(text.strip())
    except ValueError:
        raise ValueError(f"{field_name} {text!r} is not a date like 2026-11-01 or 2026-11-01T12:00:00") from None


def date_argument(text: str) -> float:
    """Parse `YYYY-MM-DD` or an ISO 8601 time (UTC unless it says otherwise) for argparse."""
    try:
        return _moment(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date like 2021-05-19 or 2021-05-19T12:00") from None


def iso(when: float) -> str:
    """Return a Unix time as ISO 8601 UTC."""
    return datetime.fromtimestamp(when, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def hedge_account(settings: Settings, hedge: str, account: str | None) -> str:
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


def find_hedge(settings: Settings, name: str, account: str | None) -> tuple[AccountConfig, HedgeConfig] | str:
    """Return the account and hedge `--hedge NAME [--account NAME]` names, or the message saying why none is found."""
    found = [(a, h) for a in settings.accounts for h in a.hedges if h.name == name and account in (None, a.name)]
    if not found:
        names = ", ".join(sorted(f"{a.name}/{h.name}" for a in settings.accounts for h in a.hedges))
        return f"--hedge {name!r} is not in the config (hedges: {names})"
    if len(found) > 1:
        return f"--hedge {name!r} is on accounts {', '.join(a.name for a, _ in found)}: name one with --account"
    return found[0]


def precision_of(settings: Settings, account: str, hedge: str) -> Precision:
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
