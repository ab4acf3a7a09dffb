"""The Binance emulator on 127.0.0.1 with the real ccxt venue pointed at it, in virtual time."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from hedgebot.config import HedgeConfig
from hedgebot.engine.keeper import Keeper
from hedgebot.exchange.ccxt_venue import CcxtVenue
from hedgebot.exchange.dialects.base import Dialect
from hedgebot.exchange.dialects.binancecoinm import BinanceCoinm
from hedgebot.exchange.dialects.binanceusdm import BinanceUsdm
from hedgebot.exchange.factory import VenueSetup
from hedgebot.ops.events import EventLog, NullLogger
from hedgebot.store.journal import Journal
from hedgebot.testing.binance_emulator import Emulator, serve
from hedgebot.testing.binance_streams import StreamHub
from hedgebot.testing.clock import SteppingClock
from hedgebot.testing.ports import free_port
from tests.helpers import SYMBOL, write_toml

KEY, SECRET = "test-key", "test-secret"
PROCESS_KEY, PROCESS_SECRET = "live-test-key", "live-test-secret"
REPO = Path(__file__).resolve().parents[1]
BTC = "BTCUSDT"
BTC_COINM = "BTCUSD_PERP"  # COIN-M's BTC perpetual, ccxt's BTC/USD:BTC
COINM_SYMBOL = "BTC/USD:BTC"
START = 1_790_000_000.0


@dataclass
class EmulatorRig:
    """An emulator, its URL and a venue on it."""

    emulator: Emulator
    url: str
    clock: SteppingClock
    venue: CcxtVenue
    journal: Journal
    events: EventLog
    hub: StreamHub | None = None

    def keeper(self, hedge: HedgeConfig, port: Any = None) -> Keeper:
        """Return a keeper of `hedge` on the venue (or on `port` wrapping it)."""
        return Keeper("live", hedge, port or self.venue, self.clock, self.journal, self.events)

    def daemon_venue(self) -> VenueSetup:
        """Return the venue for a daemon on this rig, holding the clock still while a request is under way."""
        return VenueSetup(self.clock.holding(self.venue))

    def publish_mark_every_second(self, price: dict[str, Decimal]) -> None:
        """Have the emulator publish `price["mark"]` every second of virtual time, as Binance's mark stream does.

        Tied to the rig's clock rather than to real time, so a busy machine
        neither lets the mark go stale nor moves it at a different moment.
        """
        self.clock.every(1.0, lambda: self.emulator.set_mark(BTC, price["mark"]))

    def short(self) -> Decimal:
        """Return the emulator's SHORT leg of BTCUSDT."""
        return Decimal(self.emulator.position(BTC, "SHORT").amount)


def connect(url: str, clock: Any, key: str = KEY, secret: str = SECRET, dialect: Dialect | None = None) -> CcxtVenue:
    """Return an unmodified ccxt venue (USDⓈ-M unless another Binance dialect is given) whose REST URLs point at the emulator."""
    return CcxtVenue.connect(
        dialect or BinanceUsdm(), clock, api_key=key, secret=secret, api_base_url=url, timeout_ms=1000, rate_limit=False,
    )


@asynccontextmanager
async def emulator_rig(
    *, spot: dict[str, str] | None = None, futures: str = "100000", mark: str = "50000", hedge_mode: bool = True,
    state_path: Path | None = None, streams: bool = False, coinm: str | None = None,
) -> AsyncIterator[EmulatorRig]:
    """Run an emulator holding `spot` and `futures` USDT, with a venue on it.

    With `coinm` (coins of BTC in the COIN-M wallet) the venue is ccxt's `binancecoinm` on /dapi/ instead.
    """
    clock = SteppingClock(START)
    emulator = Emulator(now=clock.now, state_path=state_path)
    emulator.add_key(KEY, SECRET)
    for asset, amount in (spot or {"BTC": "1", "USDT": "10000"}).items():
        emulator.deposit("spot", asset, Decimal(amount))
    emulator.deposit("futures", "USDT", Decimal(futures))
    emulator.set_mark(BTC, Decimal(mark))
    emulator.set_mark(BTC_COINM, Decimal(mark))
    emulator.book.dual_side = hedge_mode
    emulator.book.coinm_dual_side = hedge_mode
    if coinm is not None:
        emulator.deposit("coinm", "BTC", Decimal(coinm))
    hub = StreamHub(emulator) if streams else None
    port = free_port()
    runner = await serve(emulator, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    venue = connect(url, clock, dialect=BinanceCoinm() if coinm is not None else None)
    journal = Journal(":memory:", clock)
    try:
        yield EmulatorRig(emulator, url, clock, venue, journal, EventLog(journal, NullLogger()), hub)
    finally:
        await venue.close()
        journal.close()
        await runner.cleanup()


class EmulatorProcess:
    """The emulator as a separate process on a fixed port with its book in a file."""

    def __init__(
        self, tmp_path: Path, futures: str = "60000", key_flags: tuple[str, ...] = (), extra_keys: tuple[str, ...] = (),
        coinm: str = "0", quarterlies: tuple[str, ...] = (),
    ) -> None:
        self.futures = futures
        self.quarterlies = quarterlies  # delivery days (YYMMDD) of the BTC quarterlies listed on both APIs
        self.coinm = coinm  # coins in the COIN-M wallet
        self.key_flags = key_flags  # what the key may do: "withdraw", "noip", "nofutures"
        self.extra_keys = extra_keys  # more keys on the same account, each "KEY:SECRET"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.state = tmp_path / "emulator.json"
        self.log = tmp_path / "emulator.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        args = [
            sys.executable, "-m", "hedgebot.testing.binance_emulator", "--port", str(self.port),
            "--key", ":".join([PROCESS_KEY, PROCESS_SECRET, *self.key_flags]), "--state", str(self.state),
            *[arg for key in self.extra_keys for arg in ("--key", key)],
            "--spot", "BTC=1", "--spot", "USDT=2000", "--futures", f"USDT={self.futures}", "--coinm", f"BTC={self.coinm}",
            "--mark", "50000", *[arg for day in self.quarterlies for arg in ("--quarterly", day)],
        ]
        with self.log.open("a") as out:
            self.proc = subprocess.Popen(args, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)
        wait_until(lambda: self._answers(), 20, "the emulator to listen")

    def _answers(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/fapi/v1/time", timeout=1):
                return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def control(self, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            f"{self.url}/_emulator/{path}", data=json.dumps(body).encode() if body is not None else None,
            headers={"Content-Type": "application/json"}, method="POST" if body is not None else "GET",
        )
        with urllib.request.urlopen(request, timeout=5) as answer:
            return json.loads(answer.read())


def wait_until(condition: Callable[[], bool], seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds}s waiting for {what}")


def wait_until(condition: Callable[[], bool], seconds: float, what: str | Callable[[], str]) -> None:
    """Poll `condition` until it holds; fail naming `what` after `seconds` (a guard, never the assertion)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {seconds}s waiting for {what() if callable(what) else what}")


def emulator_account(url: str, **hedge: Any) -> dict[str, Any]:
    """Return the config of the live Binance account on the emulator (keys from HB_BINANCE_KEY/SECRET), one BTC hedge."""
    return {
        "name": "binance-main", "mode": "live", "exchange": "binanceusdm", "api_base_url": url,
        "credentials": {"api_key": {"env": "HB_BINANCE_KEY"}, "secret": {"env": "HB_BINANCE_SECRET"}},
        "hedges": [{
            "name": "btc", "asset": "BTC", "symbol": SYMBOL, "ratio": "1", "band": "0.02", "leverage": 3,
            "margin_mode": "isolated", "max_order": "2", "tick_seconds": 0.5, "wake_on_move": "0.5", **hedge,
        }],
    }


def live_config(tmp_path: Path, url: str, **hedge: Any) -> Path:
    """Write the config of a live Binance account on the emulator, keys from HB_BINANCE_KEY/SECRET."""
    return write_toml(tmp_path / "live.toml", {
        "daemon": {"state_dir": str(tmp_path / "state"), "status_interval_seconds": 0.3, "log_format": "json"},
        "journal": {"path": str(tmp_path / "state" / "journal.sqlite")},
        "http": {"enabled": False},
        "accounts": [emulator_account(url, **hedge)],
    })


def assert_every_order_is_one_done_intent(
    book_path: Path, journal_path: Path, contract_size: Decimal = Decimal(1),
) -> dict[str, dict[str, Any]]:
    """Check that every futures order the emulator executed is exactly one journaled intent, done with the same fill.

    `contract_size` turns the exchange's contracts into the journal's amounts (100 USD a BTCUSD_PERP contract).
    """
    import sqlite3

    book = json.loads(book_path.read_text())
    orders = {key.split("|", 2)[2]: o for key, o in book["orders"].items() if key.startswith("futures|")}
    db = sqlite3.connect(journal_path)
    try:
        intents = {
            row[0]: (row[1], json.loads(row[2] or "{}"))
            for row in db.execute("SELECT client_id, status, outcome FROM intents WHERE kind = 'order'")
        }
        open_left = db.execute("SELECT COUNT(*) FROM intents WHERE status IN ('pending', 'unknown')").fetchone()[0]
    finally:
        db.close()
    assert orders, "the daemon traded"
    for cid, order in orders.items():
        assert cid in intents, f"exchange order {cid} has no intent: a duplicate or a lost record"
        status, outcome = intents[cid]
        assert status == "done" and Decimal(outcome["filled"]) == Decimal(order["executedQty"]) * contract_size
    assert sorted(cid for cid, (status, _) in intents.items() if status == "done") == sorted(orders)
    assert open_left == 0
    return book


def shared_journal_config(
    root: Path, name: str, url: str, pg_url: str, *, lease: float, margin: float, **daemon: Any,
) -> Path:
    """Write one daemon's config: its own state directory, a PostgreSQL journal shared by all, the account on the emulator."""
    from tests.postgres_server import PASSWORD

    return write_toml(root / f"{name}.toml", {
        "daemon": {"state_dir": str(root / name), "status_interval_seconds": 0.3, "log_format": "json", **daemon},
        "journal": {
            "url": pg_url.replace(f":{PASSWORD}@", "@"), "password": {"env": "HB_PG_PASSWORD"},
            "lease_seconds": lease, "lease_margin_seconds": margin,
        },
        "http": {"enabled": False},
        "alerts": {"startup_summary": False},
        "accounts": [emulator_account(url)],
    })


def start_live_daemon(config_path: Path, log: Path, key: str, secret: str, *flags: str) -> subprocess.Popen[bytes]:
    """Start `hedgebot run --live` on a config of the emulator under one API key, its output to `log`."""
    import os

    from tests.postgres_server import PASSWORD

    env = {k: v for k, v in os.environ.items() if not k.startswith("HEDGEBOT_")}
    env.update(HB_BINANCE_KEY=key, HB_BINANCE_SECRET=secret, HB_PG_PASSWORD=PASSWORD, PYTHONUNBUFFERED="1")
    with log.open("w") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "hedgebot.commands.main", "run", "--config", str(config_path), "--live", *flags],
            cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
        )
