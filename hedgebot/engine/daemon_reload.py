"""Reloading the config while running (SIGHUP, `hedgebot reload`): apply what may change, name what needs a restart.

Owns judging a new config against the running one and handing each keeper its new hedge settings. It may not
rebuild a venue, add or remove a keeper or account, nor change a setting listed in RESTART_ONLY_HEDGE_FIELDS.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from hedgebot.access import unreadable
from hedgebot.config import AccountConfig, ConfigError, HedgeConfig, Settings, load_config
from hedgebot.domain.model import Severity
from hedgebot.domain.schedule import CalendarEvent
from hedgebot.engine.account_runtime import AccountRuntime
from hedgebot.ops import systemd
from hedgebot.ops.events import EventLog


# Hedge settings a reload cannot change under a running keeper: they are set on
# the exchange at start, or name a different contract.
RESTART_ONLY_HEDGE_FIELDS = ("asset", "symbol", "instrument", "side", "leverage", "margin_mode")


@dataclass(frozen=True)
class ReloadResult:
    """What a reload changed, and what only a restart can change."""

    applied: list[str]
    needs_restart: list[str]
    error: str | None = None


class Reloading:
    """Apply a new config to the running keepers where that is safe (a part of Daemon)."""

    # The daemon's state this part reads or sets (Daemon.__init__ makes it):
    accounts: list[AccountRuntime]
    calendar: tuple[CalendarEvent, ...]
    events: EventLog | None
    log: Any
    settings: Settings

    def reload_file(self, path: Path) -> ReloadResult:
        """Re-read the config (SIGHUP): apply ratios, bands and guards at the next tick; keep the old one when invalid."""
        try:
            new = load_config(path)
        except ConfigError as exc:
            return self._reload_rejected(f"invalid config {path}: {exc}")
        except OSError as exc:
            return self._reload_rejected(unreadable(path, exc))
        return self.reload(new)

    def _reload_rejected(self, message: str) -> ReloadResult:
        if self.events is not None:
            self.events.emit("daemon", "", "config_reload_rejected", Severity.WARNING, message=f"{message}; the running config stays in force")
        else:
            self.log.warning("config_reload_rejected", message=message)
        return ReloadResult([], [], message)

    def reload(self, new: Settings) -> ReloadResult:
        """Apply what can change while running; name what needs a restart."""
        try:
            # Read once; every hedge's new schedule is judged on this reading before anything is applied.
            calendar = new.calendar_events()
            for account_config in new.accounts:
                for hedge_config in account_config.hedges:
                    hedge_config.schedule_of(calendar)
        except ConfigError as exc:
            return self._reload_rejected(str(exc))
        applied: list[str] = []
        restart: list[str] = []
        old_names = [a.config.name for a in self.accounts]
        new_accounts = {a.name: a for a in new.accounts}
        for name in sorted(set(new_accounts) - set(old_names)):
            restart.append(f"account {name!r} was added: adding an account needs a restart")
        for name in sorted(set(old_names) - set(new_accounts)):
            restart.append(f"account {name!r} was removed: removing an account needs a restart")
        for section in ("daemon", "journal", "http", "alerts"):
            if getattr(new, section) != getattr(self.settings, section):
                restart.append(f"[{section}] changed: needs a restart")
        changed_calendar = calendar if calendar != self.calendar else None
        if changed_calendar is not None:
            self.calendar = calendar
            applied.append(f"calendar: {len(calendar)} event(s)")
        for runtime in self.accounts:
            account = new_accounts.get(runtime.config.name)
            if account is None:
                continue
            applied += self._reload_account(runtime, account, restart, changed_calendar)
        if self.events is not None:
            self.events.emit(
                "daemon", "", "config_reloaded", Severity.WARNING if restart else Severity.INFO,
                applied=applied, needs_restart=restart,
                message=("applied: " + "; ".join(applied) if applied else "no change to apply")
                + ("; needs a restart: " + "; ".join(restart) if restart else ""),
            )
        systemd.notify(f"STATUS=config reloaded ({len(applied)} change(s) applied, {len(restart)} need a restart)")
        return ReloadResult(applied, restart)

    def _reload_account(
        self, runtime: AccountRuntime, account: AccountConfig, restart: list[str],
        calendar: tuple[CalendarEvent, ...] | None = None,
    ) -> list[str]:
        name = account.name
        if account.model_copy(update={"hedges": runtime.config.hedges}) != runtime.config:
            restart.append(f"account {name!r}: exchange, mode, credentials, paper or alert settings changed: needs a restart")
        old = {h.name: h for h in runtime.config.hedges}
        new = {h.name: h for h in account.hedges}
        for hedge in sorted(set(new) ^ set(old)):
            restart.append(f"hedge {name}/{hedge} was {'added' if hedge in new else 'removed'}: needs a restart")
        applied = []
        for keeper in runtime.keepers:
            wanted = new.get(keeper.hedge.name)
            if wanted is None:
                continue  # removed: a restart is needed, and until then it keeps the schedule it runs on
            if wanted == keeper.hedge:
                if calendar is not None:
                    keeper.reconfigure(keeper.hedge, calendar)
                continue
            fixed = [f for f in RESTART_ONLY_HEDGE_FIELDS if getattr(wanted, f) != getattr(keeper.hedge, f)]
            if fixed:
                restart.append(f"hedge {name}/{wanted.name}: {', '.join(fixed)} changed: needs a restart")
                try:
                    wanted = HedgeConfig(**{**wanted.model_dump(), **{f: getattr(keeper.hedge, f) for f in fixed}})
                except ValidationError:
                    # The other changes only make sense with the new side or instrument (a long's amount): they wait too.
                    restart[-1] += "; the hedge's other changes go with it and wait for the restart as well"
                    continue
            if wanted != keeper.hedge:
                changed = [f for f in HedgeConfig.model_fields if getattr(wanted, f) != getattr(keeper.hedge, f)]
                keeper.reconfigure(wanted, calendar)
                applied.append(f"hedge {name}/{wanted.name}: {', '.join(changed)}")
        return applied
