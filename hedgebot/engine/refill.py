"""The buffer's refill: the margin asset withdrawn from a holdings account when the buffer asks for a deposit.

A hedge with a buffer (`[accounts.hedges.buffer]`) whose plan says how much must be deposited to hedge in
full again (`Plan.deposit_needed`) may have that amount withdrawn from the holdings account it names
(`refill_from`) to its own deposit address. One `Refill` per holdings account, shared by every hedge that
refills from it, decides whether a withdrawal may go now and how much; the keeper sends it as a journaled
intent (kind `withdrawal`, found again by its client id), like every action.

Money leaves an account here, so the rules lean to sending too little rather than twice:
- nothing unless `allow_withdraw = true`, never to an address the sending exchange does not whitelist,
  never more than `max_withdraw` at once or than the account holds free;
- one withdrawal at a time per holdings account, whichever hedge sent it: none while an earlier one's
  outcome is unknown, while the exchange still processes it (its progress is read at most every
  `PROGRESS_EVERY` seconds: Binance's history weighs 18,000 a read), or until `refill_seconds` after it
  was sent (the money is on its way);
- after a withdrawal the exchange refused, or failed after accepting, none for `BACKOFF_SECONDS`, with
  a critical alert naming the error: a person looks before money moves again;
- never more than `max_withdraw_per_day` in any 24 hours (by default `max_withdraw`): a whitelisted
  address that is not the hedging account's own would otherwise be paid again every refill time.
It may read the holdings account; it does not trade.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from decimal import Decimal

from hedgebot.config import BufferConfig
from hedgebot.domain.model import ZERO, floor_to_step
from hedgebot.exchange.withdrawals import Withdrawal, Withdrawer
from hedgebot.store.journal import Intent, IntentStatus

BACKOFF_SECONDS = 3600.0  # after a refused or failed withdrawal, no other for this long
PROGRESS_EVERY = 300.0  # how often an accepted withdrawal's progress is read
DAY = 86400.0
FINAL = frozenset({"completed", "failed"})


@dataclass(frozen=True)
class RefillDecision:
    """How much to withdraw now (None: nothing), or why not, for the alert that says so."""

    amount: Decimal | None
    refused: str | None = None  # a reason a person must act on (the address is not whitelisted, nothing to send)


@dataclass
class _Sent:
    """A withdrawal this account sent, as last known."""

    client_id: str
    sent_at: float
    amount: Decimal
    status: str  # "unknown" (outcome not settled), "processing", "completed", "failed", "refused"
    changed_at: float
    checked_at: float = float("-inf")
    error: str = ""


@dataclass
class Refill:
    """The withdrawals of one holdings account that refill buffers: what was sent, and whether another may go."""

    account: str  # the holdings account withdrawn from
    venue: Withdrawer
    sent: dict[str, _Sent] = field(default_factory=dict)

    def remember(self, intents: Iterable[Intent], completed: Iterable[str] = ()) -> None:
        """Learn the withdrawals the journal holds from this account (at start-up, by every hedge).

        `completed` names the client ids whose completion the journal already told (`withdrawal_completed`).
        """
        done = set(completed)
        for intent in intents:
            if intent.kind == "withdrawal" and intent.detail.get("from_account") == self.account:
                self.record(intent)
                if intent.client_id in done:
                    self.sent[intent.client_id].status = "completed"

    def record(self, intent: Intent) -> None:
        """Note a withdrawal intent's state as the journal has it now."""
        outcome = intent.outcome or {}
        if intent.status in (IntentStatus.PENDING, IntentStatus.UNKNOWN):
            status = "unknown"
        elif intent.status is IntentStatus.DONE:
            status = str(outcome.get("status") or "processing")
        else:  # refused by the exchange, or proven never carried out: back off all the same
            status = "refused"
        known = self.sent.get(intent.client_id)
        if known is not None and known.status == status:
            return
        self.sent[intent.client_id] = _Sent(
            intent.client_id, intent.created_at, Decimal(str(intent.detail.get("amount", "0"))), status, intent.updated_at,
            error=str(outcome.get("error") or ""),
        )

    def waiting(self, now: float, refill_seconds: float) -> str | None:
        """Return why no withdrawal may go now (None: one may)."""
        for sent in sorted(self.sent.values(), key=lambda s: s.sent_at, reverse=True):
            if sent.status == "unknown":
                return f"withdrawal {sent.client_id} has an unknown outcome"
            if sent.status in ("refused", "failed") and now - sent.changed_at < BACKOFF_SECONDS:
                return f"withdrawal {sent.client_id} {sent.status}"
            if sent.status not in FINAL | {"refused"}:
                return f"withdrawal {sent.client_id} is still {sent.status}"
            if now - sent.sent_at < refill_seconds:
                return f"withdrawal {sent.client_id} is on its way"
        return None

    async def follow(self, now: float, ended: Callable[[_Sent], None]) -> None:
        """Read the progress of accepted withdrawals not yet final (at most every PROGRESS_EVERY); tell each that ends."""
        for sent in list(self.sent.values()):
            if sent.status in FINAL | {"unknown", "refused"} or now - sent.checked_at < PROGRESS_EVERY:
                continue
            sent.checked_at = now
            found: Withdrawal | None = await self.venue.find_withdrawal(sent.client_id, sent.sent_at - 60.0)
            if found is None or found.status == sent.status:
                continue
            sent.status, sent.changed_at = found.status, now
            if found.status == "failed":
                sent.error = "the exchange cancelled, rejected or failed it after accepting it"
            if found.status in FINAL:
                ended(sent)

    async def decide(self, config: BufferConfig, needed: Decimal | None, asset: str, step: Decimal, now: float) -> RefillDecision:
        """Return how much of `asset` to withdraw now for a deposit of `needed`, reading the whitelist and free balance."""
        if needed is None or needed <= 0 or not config.allow_withdraw:
            return RefillDecision(None)
        waiting = self.waiting(now, config.refill_seconds)
        if waiting is not None:
            refused = next((s for s in self.sent.values() if s.status in ("refused", "failed") and waiting.endswith(s.status)), None)
            if refused is not None:
                return RefillDecision(None, (
                    f"{waiting} ({refused.error or 'no reason given'}): no withdrawal from account {self.account} for "
                    f"{BACKOFF_SECONDS / 60:.0f} min after it; check the account, or deposit {needed} {asset} by hand"
                ))
            return RefillDecision(None)
        assert config.withdraw_address is not None and config.max_withdraw is not None
        if not await self.venue.withdrawal_whitelisted(asset, config.withdraw_address, config.withdraw_network):
            return RefillDecision(None, (
                f"address {config.withdraw_address} is not on account {self.account}'s withdrawal whitelist for {asset}: "
                f"nothing is withdrawn; whitelist it there, or deposit {needed} {asset} by hand"
            ))
        held = await self.venue.free_spot_balance(asset)
        day = sum((s.amount for s in self.sent.values() if now - s.sent_at < DAY and s.status != "refused"), ZERO)
        allowance = (config.max_withdraw_per_day or config.max_withdraw) - day
        if allowance <= 0:
            return RefillDecision(None, (
                f"{day} {asset} was withdrawn from account {self.account} in the last 24 h, the most "
                f"max_withdraw_per_day allows: deposit {needed} {asset} by hand"
            ))
        amount = floor_to_step(min(needed, config.max_withdraw, allowance, held), step)
        if amount <= 0:
            return RefillDecision(None, f"account {self.account} holds {held} {asset} free: nothing to withdraw toward "
                                        f"the {needed} {asset} the buffer needs; deposit it by hand")
        return RefillDecision(amount)


