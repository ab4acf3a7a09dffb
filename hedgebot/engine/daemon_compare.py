"""Comparing an account with its journal: shorts the journal's fills explain, orphaned shorts, legs and wallets moved.

Owns the warnings raised when the exchange shows what hedgebot did not do (at start and at a takeover), and the
account snapshot journaled at a clean stop for the next start to compare. It reads the venue and the journal and
emits events; it may not trade, nor change a keeper or the journal's intents.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hedgebot.domain.model import Severity
from hedgebot.engine.account_runtime import AccountRuntime
from hedgebot.exchange.port import ExchangeError
from hedgebot.ops.events import EventLog
from hedgebot.ops.figures import Figure, Precision, booked, render
from hedgebot.store.journal import JournalStore


class AccountComparison:
    """Say where an account differs from what the journal says it should be (a part of Daemon)."""

    # The daemon's state this part reads or sets (Daemon.__init__ makes it):
    accounts: list[AccountRuntime]
    events: EventLog | None
    journal: JournalStore | None
    log: Any
    only: tuple[str, str] | None

    def _journaled_shorts(self, account: str, symbol: str) -> dict[str, Decimal]:
        """Return, per hedge name, the short on `symbol` that the account's journaled fills add up to."""
        assert self.journal is not None
        shorts: dict[str, Decimal] = {}
        for intent in self.journal.intents(account):
            outcome = intent.outcome or {}
            if intent.kind != "order" or "filled" not in outcome or outcome.get("position_side") != "short":
                continue
            if outcome.get("symbol", intent.detail.get("symbol")) != symbol:
                continue
            filled = Decimal(outcome["filled"])
            shorts[intent.hedge] = shorts.get(intent.hedge, Decimal(0)) + (filled if outcome.get("side") == "sell" else -filled)
        return shorts

    async def _report_surprises(self, runtime: AccountRuntime) -> None:
        """Compare each short with what the journal's fills say it should be, and say who holds any difference."""
        assert self.journal is not None and self.events is not None
        account = runtime.config.name
        configured = {h.name for h in runtime.config.hedges}
        for keeper in runtime.keepers:
            shorts = self._journaled_shorts(account, keeper.hedge.symbol)
            expected = shorts.get(keeper.hedge.name, Decimal(0))
            legs = await runtime.venue.fetch_legs(keeper.hedge.symbol)
            if legs.short.size == expected:
                continue
            # A hedge that was renamed or removed leaves its short behind under its old name.
            orphans = {name: size for name, size in shorts.items() if name not in configured and size != 0}
            explained = expected + sum(orphans.values(), Decimal(0))
            if orphans:
                self.events.emit(
                    account, keeper.hedge.name, "short_held_by_unconfigured_hedge", Severity.WARNING,
                    venue_short=legs.short.size, journal_short=expected, hedges=sorted(orphans),
                    unconfigured_short=sum(orphans.values(), Decimal(0)),
                    note=f"hedge(s) {', '.join(sorted(orphans))} of this account, no longer configured (renamed or "
                    f"removed), opened {sum(orphans.values(), Decimal(0))} of this short; hedge {keeper.hedge.name!r} "
                    "now keeps the whole short",
                )
            if legs.short.size != explained:
                self.events.emit(
                    account, keeper.hedge.name, "position_differs_from_journal", Severity.WARNING,
                    venue_short=legs.short.size, journal_short=explained,
                    note="changes hedgebot did not make (manual trades, liquidation, another tool)",
                )
        await self._report_orphans(runtime)
        await self._compare_with_last_stop(runtime)

    async def _report_orphans(self, runtime: AccountRuntime) -> None:
        """Name shorts opened by hedges since removed from the config, on contracts no configured hedge keeps."""
        assert self.journal is not None and self.events is not None
        account = runtime.config.name
        if self.only is not None:
            return  # running one hedge for an unwind: the others are configured, just not run here
        kept = {h.symbol for h in runtime.config.hedges}
        configured = {h.name for h in runtime.config.hedges}
        symbols = {
            str(i.detail.get("symbol")) for i in self.journal.intents(account)
            if i.kind == "order" and i.hedge not in configured and i.detail.get("position_side") == "short"
        }
        for symbol in sorted(symbols - kept):
            owners = {n: q for n, q in self._journaled_shorts(account, symbol).items() if n not in configured and q != 0}
            if not owners:
                continue
            try:
                live = (await runtime.venue.fetch_legs(symbol)).short.size
            except ExchangeError as exc:
                live = f"unknown ({exc})"
            if live == 0:
                continue
            names = ", ".join(sorted(owners))
            self.events.emit(
                account, sorted(owners)[0], "orphaned_short", Severity.CRITICAL, symbol=symbol, venue_short=live,
                journal_short=sum(owners.values(), Decimal(0)), hedges=sorted(owners),
                note=f"hedge(s) {names} no longer in the config opened a short on {symbol} that is still open "
                f"({live}); nothing keeps it now, and its margin is not guarded. Put the hedge back in the config "
                f"and close it with `hedgebot unwind --hedge {sorted(owners)[0]}`, or close it on the exchange",
            )

    async def _account_figures(self, runtime: AccountRuntime) -> dict[str, str]:
        """Return both legs of every hedged contract and both wallets, as journal-ready strings."""
        venue = runtime.venue
        figures: dict[str, str] = {}
        for keeper in runtime.keepers:
            symbol = keeper.market.symbol if keeper.market is not None else keeper.hedge.symbol  # a quarterly's contract
            legs = await venue.fetch_legs(symbol)
            shown = Precision.of(keeper.market)
            figures[f"{symbol} long"] = render(legs.long.size, Figure.AMOUNT, shown)
            figures[f"{symbol} short"] = render(legs.short.size, Figure.AMOUNT, shown)
        for asset, amount in sorted((await venue.fetch_spot_balances()).items()):
            figures[f"spot {asset}"] = booked(amount)
        for quote in sorted({k.market.margin_asset for k in runtime.keepers if k.market is not None}):
            figures[f"futures {quote}"] = booked((await venue.fetch_futures_balance(quote)).wallet)
        return figures

    async def _compare_with_last_stop(self, runtime: AccountRuntime) -> None:
        """Report what changed in the legs and wallets since the journal last saw them (at the last clean stop)."""
        assert self.journal is not None and self.events is not None
        name = runtime.config.name
        saved = self.journal.events(account=name, kind="account_snapshot")
        if not saved:
            return
        before = {k: v for k, v in saved[-1].detail.items() if k != "note"}
        now = await self._account_figures(runtime)
        changed = {
            key: f"{before.get(key, '0')} -> {now.get(key, '0')}"
            for key in sorted(set(before) | set(now))
            if Decimal(before.get(key, "0")) != Decimal(now.get(key, "0"))
        }
        if changed:
            self.events.emit(
                name, "-", "account_changed_while_stopped", Severity.WARNING, **changed,
                note="legs or wallets moved since the last clean stop (funding, deposits, manual trades, liquidation)",
            )

    async def _record_account_snapshots(self) -> None:
        """Journal every account's legs and wallets at a clean stop, for the next start to compare."""
        assert self.events is not None
        for runtime in self.accounts:
            if runtime.setup is None or not runtime.keepers:
                continue
            try:
                figures = await self._account_figures(runtime)
            except ExchangeError as exc:
                self.log.warning("account_snapshot_failed", account=runtime.config.name, error=str(exc))
                continue
            self.events.emit(runtime.config.name, "-", "account_snapshot", **figures, note="recorded at a clean stop")
