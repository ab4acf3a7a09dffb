"""Builders shared by the tests: a BTC market, hedge configs, snapshots, a paper rig."""

from __future__ import annotations

import asyncio
import os

from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from hedgebot.clock import SimClock
from hedgebot.config import HedgeConfig
from hedgebot.domain.model import Leg, MarginMode, Market, PositionSide, Snapshot
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.binance_rules import default_market
from hedgebot.exchange.funding import ConstantFunding, FundingSource
from hedgebot.exchange.paper import FillModel, PaperMarket, PaperVenue
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal

D = Decimal
SYMBOL = "BTC/USDT:USDT"
SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def shared_file(name: str) -> Path:
    """Return a file of ../shared/data, or skip the test with the reason."""
    path = SHARED_DATA / name
    if not path.exists():
        pytest.skip(f"{path} is absent: real market data lives in ../shared beside the repository")
    return path


def btc_market(**overrides: Any) -> Market:
    """Return Binance's BTCUSDT perpetual rules."""
    market = default_market(SYMBOL)
    assert market is not None
    return replace(market, **overrides)


def hedge_config(**overrides: Any) -> HedgeConfig:
    """Return a full BTC hedge with test-friendly defaults."""
    base: dict[str, Any] = {
        "name": "btc",
        "asset": "BTC",
        "symbol": SYMBOL,
        "ratio": D("1"),
        "band": D("0.02"),
        "min_order": D("0.001"),
        "max_order": D("5"),
        "leverage": 3,
        "tick_seconds": 10,
    }
    base.update(overrides)
    return HedgeConfig(**base)


def snapshot(**overrides: Any) -> Snapshot:
    """Return a snapshot of an account holding 1 BTC spot at 50,000, no short."""
    base: dict[str, Any] = {
        "taken_at": 1000.0,
        "market": btc_market(),
        "mark_price": D("50000"),
        "price_time": 1000.0,
        "spot_asset": D("1"),
        "spot_quote": D("0"),
        "futures_free": D("100000"),
        "futures_wallet": D("100000"),
        "short": Leg(PositionSide.SHORT),
        "long": Leg(PositionSide.LONG),
        "margin_mode": MarginMode.ISOLATED,
        "leverage": 3,
    }
    base.update(overrides)
    return Snapshot(**base)


def short_leg(size: str, entry: str = "50000", margin: str | None = None, leverage: int = 3) -> Leg:
    """Return an isolated short leg, margined at `leverage` unless told otherwise."""
    m = D(margin) if margin is not None else D(size) * D(entry) / leverage
    return Leg(PositionSide.SHORT, D(size), D(entry), m)


@dataclass
class Rig:
    """A keeper on a paper venue in simulated time."""

    clock: SimClock
    venue: PaperVenue
    journal: Journal
    events: EventLog
    keeper: Keeper

    async def set_price(self, price: str | Decimal, *, high: str | None = None, advance: float = 10.0) -> None:
        """Move time on and set the mark (optionally testing a high first)."""
        await self.clock.advance(advance)
        self.venue.update_price(SYMBOL, self.clock.now(), D(price), high=D(high) if high else None)

    async def short(self) -> Decimal:
        """Return the short leg's size."""
        return (await self.venue.fetch_legs(SYMBOL)).short.size


async def make_rig(
    hedge: HedgeConfig | None = None,
    *,
    spot: dict[str, str] | None = None,
    futures: dict[str, str] | None = None,
    price: str = "50000",
    funding: FundingSource | None = None,
    fill_model: FillModel | None = None,
    journal_path: str = ":memory:",
    port_wrapper: Any = None,
) -> Rig:
    """Build a prepared keeper on a paper venue holding `spot` and `futures`."""
    clock = SimClock(start=1_600_000_000.0)
    venue = PaperVenue(
        clock,
        [PaperMarket(btc_market(), funding or ConstantFunding(D("0.0001")))],
        spot={k: D(v) for k, v in (spot or {"BTC": "1"}).items()},
        futures={k: D(v) for k, v in (futures or {"USDT": "100000"}).items()},
        fill_model=fill_model,
    )
    venue.update_price(SYMBOL, clock.now(), D(price))
    journal = Journal(journal_path, clock)
    events = EventLog(journal, NullLogger())
    port = port_wrapper(venue) if port_wrapper else venue
    keeper = Keeper("acct", hedge or hedge_config(), port, clock, journal, events)
    await keeper.prepare()
    return Rig(clock, venue, journal, events, keeper)


def paper_settings_dict(tmp_path: Path, **hedge_overrides: Any) -> dict[str, Any]:
    """Return a whole paper config as a dict (a synthetic BTC feed, one hedge)."""
    hedge: dict[str, Any] = {
        "name": "btc-core", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "band": "0.02",
        "max_order": "1", "leverage": 3, "tick_seconds": 2,
    }
    hedge.update(hedge_overrides)
    return {
        "daemon": {"state_dir": str(tmp_path / "state"), "status_interval_seconds": 1},
        "journal": {"path": str(tmp_path / "state" / "journal.sqlite")},
        "http": {"port": 0},  # a free port: 9310 may be held by a `make paper` on the same machine
        "accounts": [
            {
                "name": "paper",
                "mode": "paper",
                "paper": {
                    "spot": {"BTC": "2", "USDT": "10000"},
                    "futures": {"USDT": "100000"},
                    "markets": [
                        {"symbol": SYMBOL, "feed": {"kind": "synthetic", "start_price": "50000", "step_seconds": 1, "volatility": 0.5, "seed": 3}}
                    ],
                },
                "hedges": [hedge],
            }
        ],
    }


def write_toml(path: Path, data: dict[str, Any]) -> Path:
    """Write a config dict as TOML."""
    import tomli_w

    path.write_text(tomli_w.dumps(data))
    return path


def clean_env(*, keep_lock_dir: bool = True) -> dict[str, str]:
    """Return this process's environment without hedgebot's config overrides, for a daemon started as a subprocess.

    The test run's own account-lock directory stays (unless told otherwise): without it the subprocess
    would take its lock in the machine-wide directory, shared with every other test run and daemon on
    the machine.
    """
    kept = {"HEDGEBOT_LOCK_DIR"} if keep_lock_dir else set()
    return {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_") or k in kept}


class SteppedWallClock:
    """This machine's wall clock: the exchange's time plus `step` once someone set it; sleeps run on the monotonic clock."""

    def __init__(self, inner: SimClock) -> None:
        self.inner = inner
        self.step = 0.0

    def now(self) -> float:
        return self.inner.now() + self.step

    def monotonic(self) -> float:
        return self.inner.now()

    async def sleep(self, seconds: float) -> None:
        await self.inner.sleep(seconds)

    async def wait_for(self, event: asyncio.Event, timeout: float) -> bool:
        return await self.inner.wait_for(event, timeout)


async def paper_run(tmp_path: Path, seconds: float = 200, **paper: Any) -> Path:
    """Run the paper daemon for `seconds` of simulated time (funding every 36 s, a spot change every 20 s); return its config.

    `paper` replaces entries of the account's [accounts.paper] section (for example futures={"USDT": "36000"}).
    """
    from hedgebot.config import load_config
    from hedgebot.engine.daemon import Daemon

    data = paper_settings_dict(tmp_path)
    data["accounts"][0]["paper"].update(paper)
    data["accounts"][0]["paper"]["markets"][0]["funding"] = {"rate": "0.0003", "interval_hours": 0.01}
    data["accounts"][0]["paper"]["script"] = [{"asset": "BTC", "every_seconds": 20, "amounts": ["0.5", "-0.8", "0.3"]}]
    path = write_toml(tmp_path / "hedgebot.toml", data)
    clock = SimClock()
    daemon = Daemon(load_config(path), clock)
    await daemon.start()
    await clock.advance(seconds)
    await daemon.stop()
    return path
