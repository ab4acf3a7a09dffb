"""Settings: one TOML file of accounts and their hedges, overridable from the environment.

Precedence, highest first: environment variables (`HEDGEBOT_` prefix, `__`
between nested names, a number for an item of a list, e.g.
`HEDGEBOT_JOURNAL__PATH=/var/lib/hedgebot/j.sqlite` or
`HEDGEBOT_ACCOUNTS__0__HEDGES__0__RATIO=0.5`), then the TOML file. Relative
paths, in the file or the environment, are relative to the config file's
directory, so every command finds the same files from anywhere. Secrets are
references (`env = "NAME"` or `file = "/path"`) resolved only when a live
account starts; a secret written in the TOML itself is refused unless the
account's `[accounts.credentials]` sets `allow_plaintext_secrets = true`.
No message ever shows a secret's value.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
from dataclasses import dataclass
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from hedgebot.access import denied
from hedgebot.domain.instrument import HedgeSide, InstrumentKind, Settlement
from hedgebot.domain.model import HedgePolicy, MarginGuard, MarginMode, PositionMode
from hedgebot.domain.schedule import CalendarEvent, Schedule, Window, around_events
from hedgebot.domain.vol_surface import SurfaceError, load_surface
from hedgebot.config.errors import ConfigError
from hedgebot.redact import looks_like_credential, register_secret

# An upper bound on every amount, balance and price the config gives: a trillion is past any real holding, and keeps
# each figure the domain derives from them (notional, margin, fees at 8 decimals) inside Decimal's 28 digits.
MOST = Decimal("1e12")

_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,39}$"
_SYMBOL = re.compile(r"^(?P<base>[A-Z0-9]+)/(?P<quote>[A-Z0-9]+):(?P<settle>[A-Z0-9]+)$")


def _holding_symbol_or_none(value: str | None) -> str | None:
    """Return a holding's market symbol unchanged, refusing one that is not a ccxt perpetual symbol."""
    if value is not None and not _SYMBOL.match(value):
        raise ValueError(f"holding_symbol {value!r} is not a ccxt perpetual symbol like 'SOL/USDT:USDT'")
    return value


class Frozen(BaseModel):
    """Base of every config model: immutable, and unknown fields are errors."""

    model_config = ConfigDict(frozen=True, extra="forbid")


# ---- secrets -------------------------------------------------------------------


class SecretRef(Frozen):
    """Where one secret comes from: an environment variable, a file, or (discouraged) inline."""

    env: str | None = None
    file: Path | None = None
    value: SecretStr | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> SecretRef:
        given = [name for name in ("env", "file", "value") if getattr(self, name) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of env, file or value (got {given or 'none'})")
        return self

    def resolve(self, field: str) -> str:
        """Return the secret's text (remembered for redaction), or raise ConfigError naming `field`."""
        return register_secret(self._read(field))

    def _read(self, field: str) -> str:
        if self.env is not None:
            text = os.environ.get(self.env)
            if not text:
                raise ConfigError(f"{field}: environment variable {self.env} is not set")
            return text
        if self.file is not None:
            try:
                text = self.file.read_bytes().decode("utf-8").strip()
            except PermissionError:
                raise ConfigError(f"{field}: secret file: {denied(self.file)}") from None
            except OSError as exc:
                raise ConfigError(f"{field}: cannot read secret file {self.file}: {exc.strerror}") from None
            except UnicodeDecodeError:
                # The bytes are the secret: name the file, never what is in it.
                raise ConfigError(f"{field}: secret file {self.file} is not UTF-8 text; save the secret as plain text") from None
            if not text:
                raise ConfigError(f"{field}: secret file {self.file} is empty")
            return text
        assert self.value is not None
        return self.value.get_secret_value()


class Credentials(Frozen):
    """API credentials of a live account."""

    api_key: SecretRef
    secret: SecretRef
    password: SecretRef | None = None
    allow_plaintext_secrets: bool = False

    @model_validator(mode="after")
    def _no_plaintext_unless_asked(self) -> Credentials:
        for name in ("api_key", "secret", "password"):
            ref: SecretRef | None = getattr(self, name)
            if ref is not None and ref.value is not None and not self.allow_plaintext_secrets:
                raise ValueError(
                    f"{name} is written in the config in plain text; use env or file, "
                    "or set allow_plaintext_secrets = true in [accounts.credentials]"
                )
        return self


# ---- hedges ----------------------------------------------------------------------


class ExposureConfig(Frozen):
    """Where the exposure a hedge protects comes from."""

    spot: bool = True
    offset: Decimal = Field(default=Decimal(0), ge=0, le=MOST)
    perp_long: bool = False
    # A file a custody system writes (JSON or CSV, with the time it counted the coins): the coins it counts are held.
    file: Path | None = None
    # A count older than this may not grow the hedge (an alert says so); reductions and top-ups go on.
    file_max_age_seconds: float = Field(default=3600.0, gt=0, le=30 * 24 * 3600)
    # Other accounts of the config (holdings accounts, with no hedges of their own) whose spot coins are held.
    accounts: tuple[Annotated[str, Field(pattern=_NAME)], ...] = ()
    # While such an account cannot be read, its last count stands this long; then the hedge may not grow on it.
    accounts_max_age_seconds: float = Field(default=300.0, gt=0, le=30 * 24 * 3600)

    @field_validator("file")
    @classmethod
    def _names_a_file(cls, value: Path | None) -> Path | None:
        if value is not None and str(value) in ("", "."):
            raise ValueError("names no file: give the custody file's path, or leave `file` out")
        return value

    @field_validator("accounts")
    @classmethod
    def _once_each(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        repeated = sorted({name for name in value if value.count(name) > 1})
        if repeated:
            raise ValueError(f"lists {repeated} more than once")
        return value


MarginSource = Literal["futures_wallet", "spot_stablecoin", "sell_spot"]


class BufferConfig(Frozen):
    """Margin for a short whose margin cannot be refilled in seconds (its coins are held on another venue)."""

    # The adverse move the margin must survive until a deposit arrives, and the gap allowed between the price
    # the holding is valued at and the hedging venue's mark: together, the distance the short keeps at least.
    adverse_move: Decimal = Field(gt=0, lt=1)
    divergence: Decimal = Field(default=Decimal(0), ge=0, lt=1)
    refill_seconds: float = Field(gt=0, le=30 * 24 * 3600)  # how long a deposit to the hedging account takes
    # The refill: the margin asset withdrawn from a holdings account to this account's deposit address when the
    # buffer asks for a deposit. Never unless allow_withdraw = true, and the exchange must whitelist the address.
    refill_from: Annotated[str, Field(pattern=_NAME)] | None = None
    allow_withdraw: bool = False
    withdraw_address: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")] | None = None
    withdraw_network: Annotated[str, Field(min_length=1, max_length=40)] | None = None
    max_withdraw: Decimal | None = Field(default=None, gt=0, le=MOST)  # the most one withdrawal may move
    max_withdraw_per_day: Decimal | None = Field(default=None, gt=0, le=MOST)  # in any 24 h (default: max_withdraw)

    @property
    def floor(self) -> Decimal:
        """Return the distance from liquidation the short keeps at least."""
        return self.adverse_move + self.divergence

    @model_validator(mode="after")
    def _below_one(self) -> BufferConfig:
        if self.floor >= 1:
            raise ValueError(f"adverse_move + divergence is {self.floor}: a short cannot sit that far from liquidation")
        if self.allow_withdraw:
            missing = [name for name in ("refill_from", "withdraw_address", "withdraw_network", "max_withdraw")
                       if getattr(self, name) is None]
            if missing:
                raise ValueError(f"allow_withdraw = true needs {', '.join(missing)}: where from, to which whitelisted "
                                 "address on which network, and the most one withdrawal may move")
        return self


class MarginGuardConfig(Frozen):
    """When to top up the short's margin and where the money comes from."""

    enabled: bool = True
    trigger: Decimal = Field(default=Decimal("0.20"), gt=0, lt=1)
    target: Decimal = Field(default=Decimal("0.35"), gt=0, lt=5)
    release: Decimal | None = Field(default=None, gt=0, lt=10)
    sources: tuple[MarginSource, ...] = ("futures_wallet", "spot_stablecoin")
    runway_warning: Decimal = Field(default=Decimal("0.30"), ge=0, lt=100)
    # Opt-in: when the sources cannot fund the whole target, sell just enough of the coin that the rest
    # can be fully hedged (N/(L+1) of the holding at leverage L, before fees). Needs sell_spot among sources.
    fund_target_by_selling: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> MarginGuardConfig:
        repeated = sorted({s for s in self.sources if self.sources.count(s) > 1})
        if repeated:
            raise ValueError(f"sources lists {repeated} more than once")
        if self.target <= self.trigger:
            raise ValueError(f"target {self.target} must be above trigger {self.trigger}")
        if self.release is not None and self.release <= self.target:
            raise ValueError(f"release {self.release} must be above target {self.target}")
        if self.fund_target_by_selling and "sell_spot" not in self.sources:
            raise ValueError("fund_target_by_selling = true needs 'sell_spot' among sources")
        return self


class BreakersConfig(Frozen):
    """Circuit breakers: when a hedge stops trading by itself until a person resumes it."""

    enabled: bool = True
    window_seconds: float = Field(default=3600.0, gt=0)
    max_orders: int = Field(default=120, ge=1)
    max_notional: Decimal | None = Field(default=None, gt=0, le=MOST)
    max_rejections: int = Field(default=5, ge=1)
    rejection_window_seconds: float = Field(default=600.0, gt=0)
    liquidation_window_seconds: float = Field(default=86400.0, gt=0)
    # Busy answers (Binance -1008 throttle, -4131 price protection) slow the hedge, never halt it.
    max_busy: int = Field(default=5, ge=1)
    busy_window_seconds: float = Field(default=300.0, gt=0)
    unconfirmed_jump: bool = True


def _aware(value: datetime | None, field: str) -> datetime | None:
    if value is not None and value.tzinfo is None:
        raise ValueError(f"{field} {value.isoformat()} has no time zone: write it with one, e.g. {value.isoformat()}Z for UTC")
    return value


class ScheduleWindowConfig(Frozen):
    """A window in which the hedge keeps another ratio: between two instants, or around every event of one name."""

    name: str = Field(min_length=1, max_length=80)
    ratio: Decimal = Field(ge=0, le=1)
    start: datetime | None = None
    end: datetime | None = None
    # Around a calendar event ([calendar] events or file): from `before_hours` ahead of it to `after_hours` past it.
    event: str | None = Field(default=None, min_length=1)
    before_hours: float = Field(default=0.0, ge=0, le=24 * 366, allow_inf_nan=False)  # a year at the most
    after_hours: float = Field(default=0.0, ge=0, le=24 * 366, allow_inf_nan=False)

    @model_validator(mode="after")
    def _one_way_to_say_when(self) -> ScheduleWindowConfig:
        _aware(self.start, "start")
        _aware(self.end, "end")
        if self.event is not None:
            if self.start is not None or self.end is not None:
                raise ValueError(f"window {self.name!r}: give either start and end, or event with before_hours/after_hours, not both")
            if self.before_hours == 0 and self.after_hours == 0:
                raise ValueError(f"window {self.name!r}: event {self.event!r} needs before_hours or after_hours above 0")
            return self
        if self.start is None or self.end is None:
            raise ValueError(f"window {self.name!r}: give start and end (ISO 8601 with a time zone), or an event")
        if self.end <= self.start:
            raise ValueError(f"window {self.name!r}: end {self.end.isoformat()} is not after start {self.start.isoformat()}")
        return self

    def windows(self, events: Sequence[CalendarEvent]) -> list[Window]:
        """Return the concrete windows this one stands for (one per event of its name, when it is around an event)."""
        if self.event is None:
            assert self.start is not None and self.end is not None
            return [Window(self.name, self.start.timestamp(), self.end.timestamp(), self.ratio)]
        return around_events(self.name, self.event, events, self.before_hours * 3600, self.after_hours * 3600, self.ratio)


class BasketHoldingConfig(Frozen):
    """Another holding a beta hedge's instrument also hedges, by its own beta: the account's spot coins of `asset`."""

    asset: str
    holding_symbol: str | None = None  # the market whose price and candles value it (default: the asset's perpetual)

    @field_validator("holding_symbol")
    @classmethod
    def _holding_symbol(cls, value: str | None) -> str | None:
        return _holding_symbol_or_none(value)


@dataclass(frozen=True)
class BetaSettings:
    """A beta hedge's settings with their defaults filled in."""

    holding_symbol: str
    beta_min: Decimal
    beta_max: Decimal
    half_life: int  # candles
    min_observations: int
    timeframe: str
    band: Decimal
    correlation_min: Decimal
    correlation_window: int
    on_break: str
    reduce_to: Decimal


class HedgeConfig(Frozen):
    """One hedge: a leg on `instrument` (a short by default) kept at `ratio` of an exposure."""

    name: Annotated[str, Field(pattern=_NAME)]
    asset: str
    symbol: str
    # The contract the hedge trades (usdm-perp, coinm-perp, usdm-quarterly, coinm-quarterly) and the leg it holds:
    # a short against coins held, or a long against coins still to be bought. Not every venue trades every
    # combination yet: `check` and `run` refuse the ones it cannot (hedgebot.exchange.factory.instrument_problem).
    instrument: InstrumentKind = InstrumentKind.USDM_PERP
    side: HedgeSide = HedgeSide.SHORT
    # side = "long": the coins still to buy (a planned purchase); spot of the asset counts as bought.
    amount: Decimal | None = Field(default=None, gt=0, le=MOST)
    # How far ahead of expiry a contract is rolled, in seconds: a quarterly hedge holds the nearest contract more
    # than this from delivery and rolls to the next from here (default 3 days; at least two hours, past the paper
    # pre-delivery window); a put hedge buys the next puts this far ahead of expiry (default 2 days).
    roll_before: float | None = Field(default=None, ge=7200.0, le=60 * 86_400.0)
    # instrument = "cheapest": the contracts it chooses among (default: the perpetual and the quarterly of the
    # symbol's margin kind; never linear and inverse together), and the yearly carry advantage, as a fraction of
    # the notional, another contract must offer before the leg moves to it at a roll window (switching pays fees twice).
    cheapest_among: tuple[InstrumentKind, ...] | None = None
    switch_advantage: Decimal = Field(default=Decimal("0.02"), ge=0, le=1)
    # A fraction of the exposure, or "beta": the holding's beta to the instrument, estimated from returns (see README,
    # "Beta hedges"); the instrument's short is then beta x the holding's value / the instrument's price.
    ratio: Decimal | Literal["beta"] = Field(union_mode="left_to_right")
    band: Decimal = Field(default=Decimal("0.02"), gt=0, le=1)
    # ratio = "beta": the market whose price and candles value the holding (default: the asset's perpetual settled like
    # the symbol), the clamp on the beta, its half-life and the observations it needs (in candles of beta_timeframe),
    # the move of the estimate that re-hedges (smaller moves are estimation noise), and when the rolling correlation
    # over correlation_window candles is below correlation_min: a critical correlation_broken alert, then
    # on_correlation_break: keep the beta hedge, reduce it to correlation_reduce_to of itself, or unwind it.
    holding_symbol: str | None = None
    beta_min: Decimal | None = Field(default=None, ge=0, le=10)
    beta_max: Decimal | None = Field(default=None, gt=0, le=10)
    beta_half_life: int | None = Field(default=None, ge=2, le=10_000)
    beta_min_observations: int | None = Field(default=None, ge=3, le=10_000)
    beta_timeframe: Literal["1m", "5m", "15m", "1h", "4h", "1d"] | None = None
    beta_band: Decimal | None = Field(default=None, gt=0, le=1)
    correlation_min: Decimal | None = Field(default=None, ge=-1, lt=1)
    correlation_window: int | None = Field(default=None, ge=5, le=10_000)
    on_correlation_break: Literal["keep", "reduce", "unwind"] | None = None
    correlation_reduce_to: Decimal | None = Field(default=None, ge=0, lt=1)
    # ratio = "beta": more holdings the same short hedges, each by its own beta (the short is their sum).
    basket: tuple[BasketHoldingConfig, ...] = ()
    min_order: Decimal = Field(default=Decimal("0.001"), gt=0, le=MOST)
    max_order: Decimal = Field(default=Decimal("1"), gt=0, le=MOST)
    leverage: int = Field(default=3, ge=1, le=125)
    margin_mode: MarginMode = MarginMode.ISOLATED
    tick_seconds: float = Field(default=10.0, gt=0, le=3600)
    # Off by default: the keeper wakes when the price leaves the range over
    # which its plan holds. Set it to also look after every move this large.
    wake_on_move: Decimal | None = Field(default=None, gt=0, lt=1)
    staleness_seconds: float = Field(default=30.0, gt=0)
    max_jump: Decimal = Field(default=Decimal("0.15"), gt=0)
    liquidation_warning: Decimal | None = Field(default=None, gt=0, lt=5)
    # A hedge below its band this long (daemon clock; no order in flight) raises a critical under_hedged alert.
    underhedge_alert_after: float = Field(default=300.0, ge=0)
    exposure: ExposureConfig = ExposureConfig()
    margin_guard: MarginGuardConfig = MarginGuardConfig()
    # A short whose margin cannot be refilled in seconds keeps this buffer (see README, "The buffer").
    buffer: BufferConfig | None = None
    state: Literal["active", "reducing", "halted"] = "active"
    breakers: BreakersConfig = BreakersConfig()
    # Windows in which another ratio holds (FOMC, CPI, unlocks); the hedge's own ratio holds outside them.
    schedule: tuple[ScheduleWindowConfig, ...] = ()
    # The hedge unwinds by itself at this instant ("2026-03-20T00:00:00Z") or once an event has passed
    # ("after:<event name>"), then stays closed; the spot is sold only with until_sell_spot = true.
    until: str | None = None
    until_sell_spot: bool = False
    # instrument = "put" (see README, "The put leg"): puts struck at floor x spot when bought, expiring about
    # expiry_days later, rolled roll_before seconds ahead of expiry, rolled up once spot/strike exceeds roll_up_when;
    # premium capped per order and per 30 days, in the quote currency.
    floor: Decimal | None = Field(default=None, gt=0, lt=1)
    expiry_days: float | None = Field(default=None, gt=0, le=400)
    roll_up_when: Decimal | None = Field(default=None, gt=1, le=10)
    max_premium_per_order: Decimal | None = Field(default=None, gt=0, le=MOST)
    max_premium_per_month: Decimal | None = Field(default=None, gt=0, le=MOST)

    @field_validator("symbol")
    @classmethod
    def _ccxt_symbol(cls, value: str) -> str:
        if not _SYMBOL.match(value):
            raise ValueError(f"symbol {value!r} is not a ccxt perpetual symbol like 'BTC/USDT:USDT'")
        return value

    @field_validator("holding_symbol")
    @classmethod
    def _holding_symbol(cls, value: str | None) -> str | None:
        return _holding_symbol_or_none(value)

    @field_validator("ratio", mode="before")
    @classmethod
    def _fraction_or_beta(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() == "beta":
            return "beta"
        try:
            number = Decimal(str(value)) if not isinstance(value, bool) else None
        except ArithmeticError:
            number = None
        if number is None or not number.is_finite() or not 0 <= number <= 1:
            raise ValueError(f'ratio {value!r} is neither a fraction between 0 and 1 nor "beta"')
        return number

    @property
    def beta(self) -> bool:
        """Tell whether the hedge is sized by the holding's estimated beta to its instrument."""
        return self.ratio == "beta"

    @property
    def counted_assets(self) -> tuple[str, ...]:
        """Return the assets whose coins in the account this hedge counts: its own, and a beta hedge's basket."""
        return (self.asset, *(b.asset for b in self.basket))

    @property
    def fixed_ratio(self) -> Decimal:
        """Return the configured ratio; a beta hedge counts as one (its holding is hedged once, whatever the beta)."""
        return Decimal(1) if isinstance(self.ratio, str) else self.ratio

    def holdings(self) -> tuple[tuple[str, str], ...]:
        """Return (asset, market it is valued on) of each holding a beta hedge hedges: its own asset first, then its basket."""
        parts = _SYMBOL.match(self.symbol)
        assert parts is not None
        settle = parts.group("settle")
        own = (self.asset, self.holding_symbol or f"{self.asset}/{settle}:{settle}")
        return (own, *((b.asset, b.holding_symbol or f"{b.asset}/{settle}:{settle}") for b in self.basket))

    def beta_settings(self) -> BetaSettings:
        """Return a beta hedge's estimator and re-hedging settings, each defaulted where not given."""
        parts = _SYMBOL.match(self.symbol)
        assert parts is not None
        settle = parts.group("settle")
        return BetaSettings(
            holding_symbol=self.holding_symbol or f"{self.asset}/{settle}:{settle}",
            beta_min=self.beta_min if self.beta_min is not None else Decimal(0),
            beta_max=self.beta_max if self.beta_max is not None else Decimal(3),
            half_life=self.beta_half_life if self.beta_half_life is not None else 168,
            min_observations=self.beta_min_observations if self.beta_min_observations is not None else 48,
            timeframe=self.beta_timeframe or "1h",
            band=self.beta_band if self.beta_band is not None else Decimal("0.05"),
            correlation_min=self.correlation_min if self.correlation_min is not None else Decimal("0.5"),
            correlation_window=self.correlation_window if self.correlation_window is not None else 48,
            on_break=self.on_correlation_break or "keep",
            reduce_to=self.correlation_reduce_to if self.correlation_reduce_to is not None else Decimal("0.5"),
        )

    def _beta_consistent(self) -> None:
        """Refuse beta settings on a fixed ratio, and a beta hedge on what its sizing cannot keep yet."""
        beta_fields = (
            "holding_symbol", "beta_min", "beta_max", "beta_half_life", "beta_min_observations", "beta_timeframe",
            "beta_band", "correlation_min", "correlation_window", "on_correlation_break", "correlation_reduce_to",
        )
        if not self.beta:
            given = [f"{name} = {getattr(self, name)}" for name in beta_fields if getattr(self, name) is not None]
            given += [f"basket = {[b.asset for b in self.basket]}"] if self.basket else []
            if given:
                raise ValueError(f'{", ".join(given)} apply to ratio = "beta" only (ratio is {self.ratio})')
            return
        settings = self.beta_settings()
        if settings.beta_min > settings.beta_max:
            raise ValueError(f"beta_min {settings.beta_min} is above beta_max {settings.beta_max}")
        if settings.min_observations > 20 * settings.half_life:
            raise ValueError(
                f"beta_min_observations {settings.min_observations} is more than 20 half-lives ({settings.half_life}): "
                "the oldest of them would weigh nothing"
            )
        if self.correlation_reduce_to is not None and settings.on_break != "reduce":
            raise ValueError(
                f'correlation_reduce_to {self.correlation_reduce_to} applies to on_correlation_break = "reduce" only '
                f'(it is "{settings.on_break}")'
            )
        if self.instrument is not InstrumentKind.USDM_PERP:
            raise ValueError(
                f'ratio = "beta" hedges on a USDⓈ-M perpetual only (instrument is "{self.instrument.value}"): the '
                "quarterly, coin-margined, cheapest and put legs are sized in the holding's own coins"
            )
        if self.side is not HedgeSide.SHORT:
            raise ValueError(f'ratio = "beta" hedges coins held with a short; side = "{self.side.value}" is not supported')
        if "sell_spot" in self.margin_guard.sources or self.margin_guard.fund_target_by_selling or self.until_sell_spot:
            raise ValueError(
                f'ratio = "beta": the coins held ({self.asset}) are not the instrument\'s ({self.symbol}), so selling '
                "them for margin is not modelled: leave sell_spot out of margin_guard.sources, and "
                "margin_guard.fund_target_by_selling and until_sell_spot false"
            )
        if self.exposure.perp_long:
            raise ValueError(
                f'ratio = "beta": exposure.perp_long would count a long of {self.symbol}, not {self.asset} held; leave it false'
            )
        if self.buffer is not None or self.schedule:
            raise ValueError('ratio = "beta": a buffer and schedule windows need a fixed ratio; leave them out')
        if self.basket and not self.exposure.spot:
            raise ValueError(
                f"basket {[b.asset for b in self.basket]} counts the account's spot coins of each asset, but exposure.spot "
                "is false: none of them would be hedged; set exposure.spot = true or leave the basket out"
            )
        assets = [asset for asset, _ in self.holdings()]
        twice = sorted({a for a in assets if assets.count(a) > 1})
        if twice:
            raise ValueError(f"basket: {', '.join(twice)} hedged twice by hedge {self.name!r} (its asset is {self.asset!r}): once each")

    def _holdings_priced(self) -> None:
        """Refuse a beta hedge whose holdings are valued on another coin's market or in another quote."""
        quote = _SYMBOL.match(self.symbol).group("quote")  # type: ignore[union-attr]
        for index, (asset, symbol) in enumerate(self.holdings()):
            # The holding's coins are valued at this market's price in the instrument's quote: another coin's market,
            # or another quote (BTC against USDT), would size the short many times off.
            field = "holding_symbol" if index == 0 else "basket holding_symbol"
            parts = _SYMBOL.match(symbol)
            if parts is None:
                raise ValueError(
                    f"{field} {symbol!r} (the market {asset!r} is valued on) is not a ccxt perpetual symbol like "
                    "'SOL/USDT:USDT': write the asset as the exchange does, in capitals"
                )
            if parts.group("base") != asset:
                raise ValueError(f"{field} {symbol!r} prices {parts.group('base')}, not the {asset} held")
            if parts.group("quote") != quote:
                raise ValueError(
                    f"{field} {symbol!r} is quoted in {parts.group('quote')}, the instrument {self.symbol} in {quote}: "
                    "the holding's value must be in the instrument's quote"
                )

    def _buffer_reachable(self) -> None:
        """Refuse a buffer whose lockstep would count on money the guard may not move back behind the short."""
        guard = self.margin_guard
        if not guard.enabled:
            raise ValueError("a buffer keeps the short from liquidation through the margin guard: enable margin_guard")
        if self.margin_mode.value == "isolated" and "futures_wallet" not in guard.sources:
            raise ValueError(
                "a buffer on an isolated short needs futures_wallet among margin_guard.sources: the margin a buy-back frees "
                "lands there, and the guard must put it back behind the rest of the short"
            )
        if guard.release is not None:
            target = self.policy().guard.target
            if "spot_stablecoin" not in guard.sources:
                raise ValueError(
                    "with a buffer, margin_guard.release moves margin to spot, out of the guard's reach: add spot_stablecoin "
                    "to margin_guard.sources, or leave release out"
                )
            if guard.release <= target:
                raise ValueError(f"margin_guard.release {guard.release} must be above the buffer's target {target}")
        buffer = self.buffer
        assert buffer is not None
        if buffer.refill_from is not None and buffer.refill_from not in self.exposure.accounts:
            raise ValueError(
                f"buffer.refill_from {buffer.refill_from!r} is not among exposure.accounts {list(self.exposure.accounts)}: "
                "the buffer refills from a holdings account whose coins this hedge counts"
            )
        if buffer.allow_withdraw and "spot_stablecoin" not in guard.sources:
            raise ValueError(
                "buffer.allow_withdraw: a withdrawal arrives in this account's spot wallet; add spot_stablecoin to "
                "margin_guard.sources so the guard can move it behind the short"
            )

    def _put_consistent(self) -> None:
        """Refuse put-leg settings on another instrument, and settings that make no sense for a long put."""
        put_fields = ("floor", "expiry_days", "roll_up_when", "max_premium_per_order", "max_premium_per_month")
        if not self.instrument.option:
            given = [f"{name} = {getattr(self, name)}" for name in put_fields if getattr(self, name) is not None]
            if given:
                raise ValueError(f'{", ".join(given)} apply to instrument = "put" only (instrument is "{self.instrument.value}")')
            return
        missing = [name for name in ("floor", "expiry_days", "max_premium_per_order", "max_premium_per_month") if getattr(self, name) is None]
        if missing:
            raise ValueError(f'instrument = "put" needs {", ".join(missing)}: the strike, the horizon and what it may spend')
        if self.side is not HedgeSide.SHORT:
            raise ValueError(
                f'instrument = "put" protects coins held (it buys puts); side = "{self.side.value}" hedges a planned '
                "purchase, which a put does not: leave side out"
            )
        # Compared with the defaults, not with what was written: a dumped config (a reload) writes every default.
        given = [
            name for name in ("margin_guard", "buffer", "liquidation_warning", "leverage")
            if getattr(self, name) != type(self).model_fields[name].get_default(call_default_factory=True)
        ]
        if given:
            raise ValueError(
                f'instrument = "put": a bought put has no margin and cannot be liquidated, so {", ".join(given)} '
                "do not apply; leave them out"
            )
        if self.exposure.perp_long or self.until_sell_spot:
            raise ValueError('instrument = "put": exposure.perp_long and until_sell_spot apply to a futures short')
        assert self.max_premium_per_order is not None and self.max_premium_per_month is not None
        if self.max_premium_per_order > self.max_premium_per_month:
            raise ValueError(
                f"max_premium_per_order {self.max_premium_per_order} is above max_premium_per_month {self.max_premium_per_month}"
            )
        assert self.expiry_days is not None
        if self.roll_before is not None and self.roll_before >= self.expiry_days * 86400:
            raise ValueError(
                f"roll_before {self.roll_before}s is not shorter than expiry_days {self.expiry_days} "
                f"({self.expiry_days * 86400:.0f}s): every put would be rolled as soon as it is bought"
            )

    @property
    def quarterly_roll_before(self) -> float:
        """Return how long before delivery a quarterly is rolled: roll_before, or three days when it is not set."""
        return self.roll_before if self.roll_before is not None else 3 * 86400.0

    @property
    def put_roll_before(self) -> float:
        """Return how long before expiry a put is rolled: roll_before, or two days when it is not set."""
        return self.roll_before if self.roll_before is not None else 2 * 86400.0

    @model_validator(mode="after")
    def _consistent(self) -> HedgeConfig:
        self._put_consistent()
        if self.buffer is not None:
            self._buffer_reachable()
        self._beta_consistent()
        base = _SYMBOL.match(self.symbol).group("base")  # type: ignore[union-attr]
        if self.asset != base and not self.beta:
            raise ValueError(
                f"asset {self.asset!r} does not match the base of symbol {self.symbol!r}: a hedge on another instrument "
                'needs ratio = "beta"'
            )
        settle = _SYMBOL.match(self.symbol).group("settle")  # type: ignore[union-attr]
        self._choice_consistent()
        inverse = self.settlement is Settlement.INVERSE
        if self.instrument.chooses:
            pass  # its contracts are the symbol's own margin kind (contract_kinds)
        elif inverse and settle != base:
            raise ValueError(
                f"instrument {self.instrument.value!r} is coin-margined, but symbol {self.symbol!r} settles in {settle}: "
                f"name a coin-margined market such as '{base}/USD:{base}'"
            )
        if not inverse and settle == base:
            raise ValueError(
                f"symbol {self.symbol!r} settles in {settle}, a coin-margined market: "
                f"set instrument = \"coinm-perp\" (or \"coinm-quarterly\"), or name a USDⓈ-M market such as '{base}/USDT:USDT'"
            )
        if self.beta:
            self._holdings_priced()
        if inverse and ("sell_spot" in self.margin_guard.sources or self.margin_guard.fund_target_by_selling or self.until_sell_spot):
            raise ValueError(
                f"instrument {self.instrument.value!r}: its margin is the coins themselves, so selling them raises no "
                f"margin (it would only unhedge them): leave sell_spot out of margin_guard.sources (now "
                f"{list(self.margin_guard.sources)}), and margin_guard.fund_target_by_selling "
                f"({self.margin_guard.fund_target_by_selling}) and until_sell_spot ({self.until_sell_spot}) false"
            )
        if self.max_order < self.min_order:
            raise ValueError(f"max_order {self.max_order} is below min_order {self.min_order}")
        if self.side is HedgeSide.LONG:
            if self.amount is None:
                raise ValueError('side = "long" hedges a planned purchase: give amount, the coins still to buy')
            if self.exposure.perp_long or self.exposure.offset:
                raise ValueError(
                    'side = "long" counts only the planned amount and the spot bought: '
                    "exposure.perp_long and exposure.offset apply to a short"
                )
            if self.until_sell_spot:
                raise ValueError(
                    'side = "long": until_sell_spot would sell the coins the long was hedging the purchase of; leave it false'
                )
            if "sell_spot" in self.margin_guard.sources:
                raise ValueError(
                    'side = "long": margin_guard.sources cannot hold "sell_spot" (a planned purchase has no coins to sell)'
                )
        elif self.amount is not None:
            raise ValueError(f'amount {self.amount} applies to side = "long" only; a short hedges the coins held')
        return self

    def _choice_consistent(self) -> None:
        """Refuse choice settings on a hedge that names its contract, and a choice that is none or mixes margin kinds."""
        if not self.instrument.chooses:
            # Judged by value, not by what was written: a hedge dumped and validated again carries the defaults.
            defaults = {"cheapest_among": None, "switch_advantage": type(self).model_fields["switch_advantage"].default}
            given = [f for f, default in defaults.items() if getattr(self, f) != default]
            if given:
                raise ValueError(
                    f"{' and '.join(given)} apply to instrument = \"cheapest\" only; instrument is {self.instrument.value!r}"
                )
            return
        among = self.cheapest_among
        if among is None:
            return
        kinds = [k.value for k in among]
        if InstrumentKind.CHEAPEST in among:
            raise ValueError(f"cheapest_among {kinds} names \"cheapest\": list contracts (e.g. usdm-perp, usdm-quarterly)")
        if len(set(among)) != len(among):
            raise ValueError(f"cheapest_among {kinds} names a contract twice")
        other = [k.value for k in among if k.settlement is not self.settlement]
        if other:
            own = [InstrumentKind.of(self.settlement, d).value for d in (False, True)]
            raise ValueError(
                f"cheapest_among {kinds}: {other} are not of the margin kind of symbol {self.symbol!r} ({own}); the "
                "choice never moves a hedge between linear and inverse contracts (their margin is a different asset)"
            )
        if len(among) < 2:
            raise ValueError(
                f"cheapest_among {kinds} leaves nothing to choose: list two contracts, or name the one you want as instrument"
            )

    @property
    def settlement(self) -> Settlement:
        """Return whether the hedge's contracts are linear or inverse: the instrument's, or for cheapest its symbol's."""
        if not self.instrument.chooses:
            return self.instrument.settlement
        parts = _SYMBOL.match(self.symbol)
        assert parts is not None
        return Settlement.INVERSE if parts.group("settle") == parts.group("base") else Settlement.LINEAR

    @property
    def contract_kinds(self) -> tuple[InstrumentKind, ...]:
        """Return the contract kinds the hedge may hold: its instrument, or those a cheapest hedge chooses among."""
        if not self.instrument.chooses:
            return (self.instrument,)
        if self.cheapest_among is not None:
            return self.cheapest_among
        return (InstrumentKind.of(self.settlement, False), InstrumentKind.of(self.settlement, True))

    @field_validator("until")
    @classmethod
    def _until_is_a_time_or_an_event(cls, value: str | None) -> str | None:
        if value is None or value.startswith("after:"):
            if value is not None and not value[len("after:"):].strip():
                raise ValueError("until 'after:' names no event: write after:<event name>")
            return value
        try:
            when = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise ValueError(
                f"until {value!r} is neither an instant (e.g. 2026-03-20T00:00:00Z) nor after:<event name>"
            ) from None
        _aware(when, "until")
        return value

    def schedule_of(self, events: Sequence[CalendarEvent]) -> Schedule:
        """Return this hedge's windows and end on `events`; raise ConfigError naming an event no calendar holds."""
        windows: list[Window] = []
        for window in self.schedule:
            concrete = window.windows(events)
            if window.event is not None and not concrete:
                raise ConfigError(
                    f"hedge {self.name!r}: schedule window {window.name!r} is around event {window.event!r}, which no "
                    "[calendar] event or calendar file holds"
                )
            windows.extend(concrete)
        if self.until is None:
            return Schedule.of(windows)
        if not self.until.startswith("after:"):
            return Schedule.of(windows, datetime.fromisoformat(self.until.replace("Z", "+00:00")).timestamp(), f"until {self.until}")
        name = self.until[len("after:"):].strip()
        found = [e for e in events if e.name == name]
        if len(found) != 1:
            held = "no [calendar] event or calendar file holds it" if not found else f"{len(found)} events have that name; give each its own"
            raise ConfigError(f"hedge {self.name!r}: until {self.until!r}: {held}")
        return Schedule.of(windows, found[0].at, f"until {self.until}")

    @property
    def warning_distance(self) -> Decimal:
        """Return the liquidation distance below which a warning goes out (the guard's trigger unless set)."""
        return self.liquidation_warning if self.liquidation_warning is not None else self.margin_guard.trigger

    def policy(self) -> HedgePolicy:
        """Return the domain's view of this hedge."""
        guard = self.margin_guard
        return HedgePolicy(
            ratio=self.fixed_ratio,  # a beta hedge's ratio is its estimate, set by its keeper (engine/beta_sizing.py)
            band=self.band,
            min_order=self.min_order,
            max_order=self.max_order,
            offset=self.amount if self.amount is not None else self.exposure.offset,
            include_spot=self.exposure.spot,
            include_perp_long=self.exposure.perp_long,
            staleness_seconds=self.staleness_seconds,
            max_jump=self.max_jump,
            guard=MarginGuard(
                enabled=guard.enabled,
                # With a buffer the guard tops up before the short comes nearer than the floor, to as far again
                # beyond it as the configured target is beyond the trigger.
                trigger=max(guard.trigger, self.buffer.floor) if self.buffer else guard.trigger,
                target=max(guard.target, self.buffer.floor + guard.target - guard.trigger) if self.buffer else guard.target,
                release=guard.release,
                sources=tuple(guard.sources),
                runway_warning=guard.runway_warning,
                fund_target_by_selling=guard.fund_target_by_selling,
                floor=self.buffer.floor if self.buffer else None,
                refill_seconds=self.buffer.refill_seconds if self.buffer else None,
                divergence=self.buffer.divergence if self.buffer else None,
            ),
            side=self.side.position_side,
        )


# ---- paper venue -------------------------------------------------------------------


class SyntheticFeedConfig(Frozen):
    """A seeded random price path."""

    kind: Literal["synthetic"] = "synthetic"
    start_price: Decimal = Field(gt=0, le=MOST)
    step_seconds: float = Field(default=1.0, gt=0)
    volatility: float = Field(default=0.8, ge=0, le=20)
    drift: float = Field(default=0.0, ge=-10, le=10)
    jump_probability: float = Field(default=0.0, ge=0, le=1)
    jump_size: float = Field(default=0.05, ge=0, lt=1)
    seed: int = 1


class ReplayFeedConfig(Frozen):
    """A candle file played back, one candle every `step_seconds`."""

    kind: Literal["replay"]
    path: Path
    step_seconds: float = Field(default=1.0, gt=0)
    loop: bool = False


class LiveFeedConfig(Frozen):
    """Live public prices through ccxt (no keys)."""

    kind: Literal["live"]
    exchange: str = "binanceusdm"
    poll_seconds: float = Field(default=2.0, gt=0)


FeedConfig = Annotated[SyntheticFeedConfig | ReplayFeedConfig | LiveFeedConfig, Field(discriminator="kind")]


class FundingConfig(Frozen):
    """Funding of a paper contract: a constant rate, a replayed file, or the exchange's live rate."""

    rate: Decimal = Field(default=Decimal("0.0001"), gt=-1, lt=1)
    interval_hours: float = Field(default=8.0, gt=0)
    file: Path | None = None
    live: bool = False
    poll_seconds: float = Field(default=300.0, gt=0)

    @model_validator(mode="after")
    def _one_source(self) -> FundingConfig:
        if self.live and self.file is not None:
            raise ValueError("funding takes a file or live = true, not both")
        return self


class BracketConfig(Frozen):
    """One maintenance bracket."""

    notional_floor: Decimal = Field(ge=0, le=MOST)
    notional_cap: Decimal = Field(gt=0, le=MOST)
    maint_margin_rate: Decimal = Field(gt=0, lt=1)
    maint_amount: Decimal = Field(ge=0, le=MOST)


class PaperMarketConfig(Frozen):
    """A contract listed on the paper venue; rules default to Binance's for BTC and ETH.

    The defaults live with the venues (`hedgebot.exchange.binance_rules`); the
    venue factory fills them in and refuses a contract it has no rules for.
    """

    symbol: str
    feed: FeedConfig
    amount_step: Decimal | None = Field(default=None, gt=0, le=MOST)
    min_amount: Decimal | None = Field(default=None, gt=0, le=MOST)
    min_notional: Decimal | None = Field(default=None, ge=0, le=MOST)
    price_step: Decimal | None = Field(default=None, gt=0, le=MOST)
    taker_fee: Decimal | None = Field(default=None, ge=0, lt=Decimal("0.1"))
    brackets: tuple[BracketConfig, ...] | None = None
    funding: FundingConfig = FundingConfig()
    # Also list this market's quarterly delivery contracts (current and next quarter), priced from its price
    # with an annual basis: `quarterly_basis` (0.05 = 5 % a year), or, unset, what its funding amounts to.
    quarterlies: bool = False
    quarterly_basis: Decimal | None = Field(default=None, ge=Decimal("-1"), le=Decimal("5"))

    @field_validator("symbol")
    @classmethod
    def _ccxt_symbol(cls, value: str) -> str:
        return HedgeConfig._ccxt_symbol(value)


class SpotScriptConfig(Frozen):
    """Scripted deposits (positive) and withdrawals (negative) on the paper spot wallet."""

    asset: str
    every_seconds: float = Field(gt=0)
    amounts: tuple[Annotated[Decimal, Field(ge=-MOST, le=MOST)], ...] = Field(min_length=1)
    start_after_seconds: float = Field(default=0.0, ge=0)


class PaperConfig(Frozen):
    """The simulated account: balances, fees, markets and scripted events."""

    spot: dict[str, Decimal] = Field(default_factory=dict)
    futures: dict[str, Decimal] = Field(default_factory=dict)
    spot_fee: Decimal = Field(default=Decimal("0.001"), ge=0, lt=Decimal("0.1"))
    slippage: Decimal = Field(default=Decimal("0.0002"), ge=0, lt=Decimal("0.1"))
    position_mode: PositionMode = PositionMode.HEDGE
    partial_fill_probability: float = Field(default=0.0, ge=0, le=1)
    markets: tuple[PaperMarketConfig, ...] = ()  # a holdings account needs none; a hedged one lists its symbols
    # The paper chain between the accounts of one daemon: where this account receives withdrawals, where it may send
    # them (its whitelist), and how long one takes to arrive.
    deposit_address: Annotated[str, Field(min_length=1, max_length=200, pattern=r"^\S+$")] | None = None
    withdraw_whitelist: tuple[Annotated[str, Field(min_length=1, max_length=200)], ...] = ()
    withdrawal_seconds: float = Field(default=1800.0, gt=0, le=30 * 24 * 3600)
    script: tuple[SpotScriptConfig, ...] = ()
    # The paper options book a put hedge buys from (a model: Black-Scholes on this one volatility, a spread each side).
    option_volatility: float = Field(default=0.6, gt=0, le=10)
    # A recorded surface (CSV `expiry,strike,iv`, hedgebot.domain.vol_surface) the book prices at instead, when given.
    option_volatility_surface: Path | None = None
    option_spread: Decimal = Field(default=Decimal("0.02"), ge=0, lt=Decimal("0.5"))

    @field_validator("spot", "futures")
    @classmethod
    def _non_negative(cls, value: dict[str, Decimal]) -> dict[str, Decimal]:
        for asset, amount in value.items():
            if amount < 0:
                raise ValueError(f"balance of {asset} is {amount}; balances cannot be negative")
            if amount > MOST:
                raise ValueError(f"balance of {asset} is {amount}; balances above {MOST:,.0f} are taken for a typo")
        return value


# ---- operations: alerts and the HTTP endpoint ----------------------------------------

Level = Literal["info", "warning", "critical"]


class WebhookSenderConfig(Frozen):
    """A generic JSON webhook: one POST per alert. The URL is a secret (it often carries a token)."""

    kind: Literal["webhook"]
    name: Annotated[str, Field(pattern=_NAME)] = "webhook"
    url: SecretRef
    min_severity: Level = "warning"
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


class TelegramSenderConfig(Frozen):
    """Telegram's Bot API: sendMessage to one chat."""

    kind: Literal["telegram"]
    name: Annotated[str, Field(pattern=_NAME)] = "telegram"
    bot_token: SecretRef
    chat_id: str = Field(min_length=1)
    api_url: str = "https://api.telegram.org"
    min_severity: Level = "warning"
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)


SenderConfig = Annotated[WebhookSenderConfig | TelegramSenderConfig, Field(discriminator="kind")]


class AlertsConfig(Frozen):
    """How alerts are announced and where they go.

    An alert goes out once when it begins and again every `repeat_seconds`
    while it lasts; senders also drop repeats of one kind within
    `dedup_seconds` and beyond `max_per_kind_per_hour`, and retry failed
    deliveries with backoff.
    """

    repeat_seconds: float = Field(default=900.0, gt=0)
    senders: tuple[SenderConfig, ...] = ()
    dedup_seconds: float = Field(default=900.0, ge=0)
    max_per_kind_per_hour: int = Field(default=12, ge=1)
    retry_initial_seconds: float = Field(default=5.0, gt=0)
    retry_max_seconds: float = Field(default=600.0, gt=0)
    queue_size: int = Field(default=500, ge=1)
    startup_summary: bool = True


_LOOPBACK = {"127.0.0.1", "::1", "localhost"}


class HttpConfig(Frozen):
    """The operations endpoint: /healthz, /readyz, /metrics, /status."""

    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=9310, ge=0, le=65535)
    token: SecretRef | None = None
    stale_after_seconds: float | None = Field(default=None, gt=0)
    # The ops port never takes the descriptors the exchange needs: at most this many connections at once,
    # closed when idle (or half-sent) this long, and this many descriptors kept free below the process's limit.
    max_connections: int = Field(default=64, ge=1)
    idle_timeout_seconds: float = Field(default=10.0, gt=0)
    fd_reserve: int = Field(default=256, ge=0)

    @model_validator(mode="after")
    def _token_off_loopback(self) -> HttpConfig:
        if self.enabled and self.host not in _LOOPBACK and not self.host.startswith("127.") and self.token is None:
            raise ValueError(
                f"host {self.host!r} is not a loopback address: set a bearer token "
                "(token = { env = \"NAME\" } or { file = \"/path\" }) to serve it beyond this machine"
            )
        return self


# ---- accounts and the whole file -----------------------------------------------------


class AccountConfig(Frozen):
    """One exchange account and the hedges kept on it."""

    name: Annotated[str, Field(pattern=_NAME)]
    exchange: str = "binanceusdm"
    mode: Literal["paper", "live"] = "paper"
    credentials: Credentials | None = None
    allow_withdraw_permission: bool = False
    api_base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+$")
    streams: bool = True  # live accounts: websocket updates wake the keepers, REST polling as the fallback
    # With the user-data streams live, legs and balances come from their pushes and are read over REST at least this
    # often (and at once after a reconnect, an action, a lookup or a fill); while a stream is down, at every look.
    stream_reconcile_seconds: float = Field(default=1200.0, ge=1, le=86400)
    # How long an order lookup that misses an order proves nothing (None: the exchange's default, 30 s).
    order_settle_seconds: float | None = Field(default=None, ge=0, le=3600)
    # Beyond this offset between the exchange's clock and this machine's, nothing that adds risk goes out.
    max_clock_offset_seconds: float = Field(default=10.0, gt=0, le=3600)
    # The share of the IP's read weight (of the 80 % the daemon keeps to) this account's reads may use, so that
    # one account's polling cannot starve the others on the same IP; its orders and top-ups never wait on it.
    weight_share: float = Field(default=1.0, gt=0, le=1)
    paper: PaperConfig | None = None
    alerts: tuple[SenderConfig, ...] = ()
    # None: a holdings account, whose spot coins hedges of other accounts count (exposure.accounts).
    hedges: tuple[HedgeConfig, ...] = ()

    @field_validator("api_base_url")
    @classmethod
    def _no_credentials_in_url(cls, value: str | None) -> str | None:
        if value is not None and "@" in value:
            raise ValueError(
                "api_base_url must not carry a user name or password (user:password@host): "
                "requests are signed with [accounts.credentials]"
            )
        return value

    @model_validator(mode="after")
    def _complete(self) -> AccountConfig:
        if self.mode == "paper" and self.paper is None:
            raise ValueError("a paper account needs a [accounts.paper] section")
        if self.mode == "live" and self.credentials is None:
            raise ValueError("a live account needs credentials")
        if not self.hedges and self.paper is not None and self.paper.script:
            raise ValueError("a holdings account (no hedges) is only read: its [[accounts.paper.script]] would never run")
        names = [h.name for h in self.hedges]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"hedge names must be unique within an account: {duplicates}")
        symbols = [h.symbol for h in self.hedges]
        shared = sorted({s for s in symbols if symbols.count(s) > 1})
        if shared:
            raise ValueError(f"two hedges on one account cannot share the short leg of {shared}")
        for asset in sorted({a for h in self.hedges for a in h.counted_assets}):
            # Offsets are coins held elsewhere, each hedge's own; the account's spot and long leg are one pool.
            counting = [h for h in self.hedges if asset in h.counted_assets and (h.exposure.spot or h.exposure.perp_long)]
            total = sum((h.fixed_ratio for h in counting), Decimal(0))
            if len(counting) > 1 and total > 1:
                names = ", ".join(repr(h.name) for h in counting)
                raise ValueError(
                    f"hedges {names} all count the {asset} held in this account, at ratios adding up to {total}: "
                    f"the account would be short {total} times its coins; split the holding by giving them ratios "
                    "that add up to at most 1, or set exposure.spot = false (and perp_long = false) on all but one"
                )
        if self.paper is not None:
            listed = {m.symbol for m in self.paper.markets}
            for hedge in self.hedges:
                if hedge.symbol not in listed:
                    raise ValueError(f"hedge {hedge.name!r} trades {hedge.symbol}, which [accounts.paper] does not list")
                for asset, symbol in hedge.holdings() if hedge.beta else ():
                    if symbol not in listed:
                        raise ValueError(
                            f"hedge {hedge.name!r} values its {asset} on {symbol} (holding_symbol), which "
                            "[accounts.paper] does not list: the paper venue has no price for it"
                        )
        return self


class DaemonConfig(Frozen):
    """Process-wide settings."""

    state_dir: Path = Path("var")
    # Machine-wide directory of account locks (None: $HEDGEBOT_LOCK_DIR, /run/hedgebot when writable, else
    # /tmp/hedgebot-locks). Every daemon on the machine must use the same one, whatever its state_dir.
    lock_dir: Path | None = None
    log_format: Literal["auto", "console", "json"] = "auto"
    log_level: Literal["debug", "info", "warning", "error"] = "info"
    status_interval_seconds: float = Field(default=2.0, gt=0)
    # SIGTERM stops the daemon within this many seconds, even with an exchange call that hangs (below TimeoutStopSec).
    shutdown_seconds: float = Field(default=30.0, gt=0)
    # A wall-clock step larger than this, either way, raises a critical clock_step alert.
    clock_step_seconds: float = Field(default=5.0, gt=0)
    # On a PostgreSQL journal: lead at most this many accounts at once (None: all); the rest wait for
    # another daemon to lead them, or for room here.
    max_accounts: int | None = Field(default=None, ge=1)


class JournalConfig(Frozen):
    """Where the journal lives: an SQLite file (the default), or a PostgreSQL database shared by daemons; how often its integrity is checked."""

    path: Path = Path("var/journal.sqlite")
    # postgresql://USER@HOST:PORT/DB; the password goes in `password` (env or file), never in the URL.
    url: str | None = Field(default=None, pattern=r"^postgres(ql)?://")
    password: SecretRef | None = None
    # Leases (PostgreSQL only): held this long, renewed every third of it; a daemon that has not renewed
    # within lease_seconds - lease_margin_seconds (its monotonic clock) sends nothing more.
    lease_seconds: float = Field(default=15.0, ge=3, le=600)
    lease_margin_seconds: float = Field(default=3.0, gt=0)
    # A PostgreSQL journal that does not answer at start-up (the host booted before the database, the database
    # fails over) is waited for this long, retried with back-off; then the daemon exits 75, which the unit restarts.
    start_patience_seconds: float = Field(default=300.0, ge=0, le=86400)
    # PRAGMA quick_check at start-up and then every this many seconds (it reads the whole file, off the event loop).
    check_interval_seconds: float = Field(default=3600.0, gt=0)
    # Free space on the journal's filesystem: a warning below the first, only top-ups and reductions below the second.
    free_space_warning_mb: int = Field(default=512, ge=0)
    free_space_stop_mb: int = Field(default=64, ge=0)

    @model_validator(mode="after")
    def _thresholds_in_order(self) -> JournalConfig:
        if self.free_space_stop_mb > self.free_space_warning_mb:
            raise ValueError(
                f"free_space_stop_mb ({self.free_space_stop_mb}) must not be above free_space_warning_mb "
                f"({self.free_space_warning_mb}): the warning comes first"
            )
        return self

    @model_validator(mode="after")
    def _password_apart(self) -> JournalConfig:
        if self.url is not None and urlsplit(self.url).password is not None:
            raise ValueError(
                "url: the password is written in the URL; remove it and give it as password = { env = \"VAR\" } "
                "or { file = \"PATH\" }"
            )
        if self.password is not None and self.url is None:
            raise ValueError("password: set only with a PostgreSQL url")
        if self.url is not None and not _parsable_conninfo(self.url):
            raise ValueError(
                "url: not a PostgreSQL URL psycopg can read (a '%' in a user or database name is written %25, "
                "e.g. postgresql://ops%25team@db.internal/hedgebot)"
            )
        if self.lease_margin_seconds >= self.lease_seconds / 3 * 2:
            raise ValueError(
                f"lease_margin_seconds ({self.lease_margin_seconds}) must be well under lease_seconds "
                f"({self.lease_seconds}): under two thirds of it, so a renewal every third leaves room"
            )
        return self

    def conninfo(self) -> str:
        """Return the connection string with the resolved password; raise ConfigError naming the field."""
        assert self.url is not None
        if self.password is None:
            return self.url
        import psycopg
        from psycopg.conninfo import make_conninfo

        try:
            return make_conninfo(self.url, password=self.password.resolve("journal.password"))
        except psycopg.Error:
            raise ConfigError("journal.url: not a PostgreSQL URL psycopg can read with the password added") from None


def _parsable_conninfo(url: str) -> bool:
    """Say whether psycopg reads the URL (its error may quote the URL's parts, so it is not shown)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    try:
        conninfo_to_dict(url)
    except psycopg.Error:
        return False
    return True


class CalendarEventConfig(Frozen):
    """One dated event that schedules and `until` may name."""

    name: str = Field(min_length=1)
    at: datetime

    @field_validator("at")
    @classmethod
    def _zoned(cls, value: datetime) -> datetime:
        _aware(value, "at")
        return value


class CalendarConfig(Frozen):
    """Events for schedules: written here, or read from an iCalendar (.ics) file at start-up and on reload."""

    events: tuple[CalendarEventConfig, ...] = ()
    file: Path | None = None


class Settings(BaseSettings):
    """The whole configuration."""

    model_config = SettingsConfigDict(
        env_prefix="HEDGEBOT_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    daemon: DaemonConfig = DaemonConfig()
    journal: JournalConfig = JournalConfig()
    http: HttpConfig = HttpConfig()
    alerts: AlertsConfig = AlertsConfig()
    calendar: CalendarConfig = CalendarConfig()
    accounts: tuple[AccountConfig, ...] = Field(min_length=1)

    def calendar_events(self) -> tuple[CalendarEvent, ...]:
        """Return the config's events and the calendar file's; raise ConfigError when the file cannot be read."""
        from hedgebot.config.calendar import read_calendar  # file I/O stays out of the models' import

        written = tuple(CalendarEvent(e.name, e.at.timestamp()) for e in self.calendar.events)
        return written + (read_calendar(self.calendar.file) if self.calendar.file is not None else ())

    @model_validator(mode="after")
    def _unique_accounts(self) -> Settings:
        names = [a.name for a in self.accounts]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"account names must be unique: {duplicates}")
        by_name = {a.name: a for a in self.accounts}
        counted: set[str] = set()
        for account in self.accounts:
            for hedge in account.hedges:
                for name in hedge.exposure.accounts:
                    held = by_name.get(name)
                    if held is None:
                        raise ValueError(
                            f"hedge {hedge.name!r} of account {account.name!r} counts the coins of account {name!r}, "
                            f"which the config does not have (accounts: {', '.join(names)})"
                        )
                    if held.hedges:
                        raise ValueError(
                            f"hedge {hedge.name!r} counts the coins of account {name!r}, which has hedges of its own: "
                            "a holdings account only holds coins; give its hedges to another account, or count its coins "
                            "with those hedges' own exposure.spot"
                        )
                    counted.add(name)
        # Coins held elsewhere are one pool per asset, as an account's spot is: counted by several hedges, their ratios
        # must add up to at most 1, or the pool is shorted more than once.
        pools: dict[tuple[str, str], list[tuple[str, Decimal]]] = {}
        for account in self.accounts:
            for hedge in account.hedges:
                sources = [f"account {n}" for n in hedge.exposure.accounts]
                if hedge.exposure.file is not None:
                    sources.append(f"custody file {hedge.exposure.file.resolve()}")
                for source in sources:
                    pools.setdefault((source, hedge.asset), []).append((f"{account.name}/{hedge.name}", hedge.fixed_ratio))
        for (source, asset), users in pools.items():
            total = sum((ratio for _, ratio in users), Decimal(0))
            if len(users) > 1 and total > 1:
                raise ValueError(
                    f"hedges {', '.join(name for name, _ in users)} all count the {asset} of {source}, at ratios adding "
                    f"up to {total}: its coins would be shorted {total} times; give them ratios that add up to at most 1"
                )
        idle = [a.name for a in self.accounts if not a.hedges and a.name not in counted]
        if idle:
            raise ValueError(
                f"account(s) {', '.join(map(repr, idle))} have no hedges and no hedge counts their coins: give them "
                "hedges, or name them in a hedge's [accounts.hedges.exposure] accounts"
            )
        if not any(a.hedges for a in self.accounts):
            raise ValueError("no account has a hedge: nothing to keep")
        self._paper_refills_reach_their_account(by_name)
        return self

    def _paper_refills_reach_their_account(self, by_name: dict[str, AccountConfig]) -> None:
        """Refuse a paper refill whose withdrawal would not reach the hedging account: the config says both ends."""
        for account in self.accounts:
            for hedge in account.hedges:
                buffer = hedge.buffer
                if buffer is None or not buffer.allow_withdraw or account.paper is None:
                    continue
                where = f"accounts[{account.name}].hedges[{hedge.name}].buffer.withdraw_address"
                own = account.paper.deposit_address
                if own != buffer.withdraw_address:
                    raise ValueError(
                        f"{where} {buffer.withdraw_address!r} is not account {account.name!r}'s deposit address "
                        + (f"({own!r})" if own else "(it has none: set [accounts.paper] deposit_address)")
                        + ": a refill would pay an address nobody here owns"
                    )
                source = by_name[buffer.refill_from] if buffer.refill_from in by_name else None
                if source is not None and source.paper is not None and own not in source.paper.withdraw_whitelist:
                    raise ValueError(
                        f"{where} {own!r} is not on account {source.name!r}'s withdraw_whitelist "
                        f"{list(source.paper.withdraw_whitelist)}: the exchange would refuse every refill"
                    )


def _format_location(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in {"function-after", "function-before"} or str(part).startswith(("SyntheticFeed", "ReplayFeed", "LiveFeed")):
            continue
        else:
            out += f".{part}" if out else str(part)
    return out or "(top level)"


# Fields whose input is never echoed back in an error message (anything under credentials, too).
_SECRET_FIELDS = {"credentials", "api_key", "secret", "password", "token", "bot_token", "url", "value"}
# An unknown field whose name has one of these in it is taken for a misplaced secret: its value is never shown.
_SECRET_WORDS = ("key", "secret", "pass", "token", "bearer", "auth", "cred", "sign", "url", "cookie", "private")


def _hidden(loc: tuple[int | str, ...], value: Any) -> bool:
    """Return whether an error about `value` at `loc` must not show the value (it is or may be a secret)."""
    if isinstance(value, dict) or any(str(part) in _SECRET_FIELDS for part in loc):
        return True
    if any(word in str(part).lower() for part in loc if isinstance(part, str) for word in _SECRET_WORDS):
        return True
    return looks_like_credential(repr(value))


def _secret_ref_message(field: str) -> str:
    return f'{field} must be a reference: {{ env = "VAR" }} or {{ file = "PATH" }}'


def format_validation_error(error: ValidationError, origins: Mapping[tuple[str, ...], str] | None = None) -> str:
    """Return one line per problem: `field.path: message (value: ...)`, never showing a secret's value.

    `origins` maps a field's path to the environment variable that set it, so
    that a problem in a value from the environment names the variable.
    """
    items = error.errors()
    lines = []
    for item in items:
        loc = tuple(item["loc"])
        if item["type"] == "too_short" and any(tuple(o["loc"])[: len(loc)] == loc and len(o["loc"]) > len(loc) for o in items):
            continue  # pydantic counts a tuple short when its items failed; the item errors say why
        where = _format_location(loc)
        value = item.get("input")
        hidden = _hidden(loc, value)
        if hidden and isinstance(value, str):
            register_secret(value)  # a misplaced secret is masked in anything that might echo it later
        shown = "" if hidden else f" (value: {value!r})"
        message = item["msg"].removeprefix("Value error, ")
        if item["type"] == "model_type" and (item.get("ctx") or {}).get("class_name") == "SecretRef":
            message = _secret_ref_message(str(loc[-1]))
        elif item["type"] == "extra_forbidden":
            message = "unknown field"
        variable = _origin(loc, origins or {})
        if variable is not None:
            shown += f" (set by the environment variable {variable})"
        lines.append(f"{where}: {message}{shown}")
    return "\n".join(lines)


def _origin(loc: tuple[int | str, ...], origins: Mapping[tuple[str, ...], str]) -> str | None:
    """Return the environment variable that set the value at `loc` or a table around it, if one did."""
    key = tuple(str(part).lower() for part in loc)
    for length in range(len(key), 0, -1):
        if key[:length] in origins:
            return origins[key[:length]]
    return None


ENV_PREFIX = "HEDGEBOT_"


def _where(parts: list[str | int]) -> str:
    return _format_location(tuple(parts))


def apply_env_overrides(
    data: dict[str, Any], environ: Mapping[str, str], origins: dict[tuple[str, ...], str] | None = None
) -> dict[str, Any]:
    """Return the config data with every `HEDGEBOT_A__B__0__C` variable applied (a number indexes a list).

    A value that starts with `[` or `{` is read as JSON (a whole list or table).
    A variable naming a list item the file does not have is an error naming the variable.
    `origins`, when given, receives each set field's path (lower case) and the variable that set it.
    """
    data = copy.deepcopy(data)
    top = set(Settings.model_fields)
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        parts = name[len(ENV_PREFIX) :].lower().split("__")
        if parts[0] not in top or not all(parts):
            continue
        value: Any = environ[name]
        if value.lstrip().startswith(("[", "{")):
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ConfigError(f"{name}: not valid JSON: {exc}") from None
        node: Any = data
        walked: list[str | int] = []
        for depth, part in enumerate(parts):
            last = depth == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f"{name}: {_where([*walked, int(part) if part.isdigit() else part])} is not in the config file "
                        f"({_where(walked)} has {len(node)} item(s), numbered from 0); add it to the file"
                    )
                key: str | int = int(part)
            elif isinstance(node, dict):
                key = next((k for k in node if str(k).lower() == part), part)
            else:
                raise ConfigError(f"{name}: {_where(walked)} is a single value, not a table")
            walked.append(key)
            if last:
                node[key] = value
                if origins is not None:
                    origins[tuple(str(part).lower() for part in walked)] = name
            else:
                if isinstance(node, dict) and key not in node:
                    node[key] = {}
                node = node[key]
    return data


def _rebased(value: Any, base: Path) -> Any:
    """Return `value` with every relative path in it made relative to `base` instead of the current directory."""
    if isinstance(value, Path):
        path = value.expanduser()
        # normpath, not resolve: `config/../var` reads as `var`, but a symlinked secret stays the link.
        return path if path.is_absolute() else Path(os.path.normpath(base / path))
    if isinstance(value, tuple):
        items = tuple(_rebased(v, base) for v in value)
        return value if all(a is b for a, b in zip(items, value, strict=True)) else items
    if isinstance(value, BaseModel):
        changes = {}
        for name in type(value).model_fields:
            old = getattr(value, name)
            new = _rebased(old, base)
            if new is not old:
                changes[name] = new
        return value.model_copy(update=changes) if changes else value
    return value


def load_config(path: Path) -> Settings:
    """Read and validate a config file (with environment overrides), or raise ConfigError.

    Relative paths in it resolve against the file's own directory.
    """
    if path.is_dir():
        raise ConfigError(f"config file {path} is a directory; name the TOML file in it")
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}); save the file as UTF-8"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc

    origins: dict[tuple[str, ...], str] = {}
    data = apply_env_overrides(data, os.environ, origins)
    try:
        settings = _FromData(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(exc, origins)) from None
    rebased: Settings = _rebased(settings, path.parent.resolve())
    for account in rebased.accounts:
        surface = account.paper.option_volatility_surface if account.paper is not None else None
        if surface is not None:
            try:
                load_surface(surface)
            except SurfaceError as exc:
                raise ConfigError(f"account {account.name!r} paper.option_volatility_surface: {exc}") from None
    events = rebased.calendar_events()
    for account in rebased.accounts:
        for hedge in account.hedges:
            hedge.schedule_of(events)  # an event no calendar holds is named now, not at the window's time
    return rebased


class _FromData(Settings):
    """Settings validated from data already merged (file plus environment), reading nothing else."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)
