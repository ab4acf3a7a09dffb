"""The buffer's refill: the margin asset withdrawn from a holdings account when the buffer asks for a deposit.

A hedge with a buffer (`[accounts.hedges.buffer]`) whose plan says how much must be deposited to hedge in
full again (`Plan.deposit_needed`) may have that amount withdrawn from the holdings account it names
(`refill_from`) to its own deposit address. This module decides whether a withdrawal may go now and how
much; the keeper sends it as a journaled intent (kind `withdrawal`, found again by its client id), like
every action. It never sends one unless `allow_withdraw = true`, never to an address the sending
exchange does not whitelist, never more than `max_withdraw` at once, never while an earlier one's outcome
is unknown, and never again while the last one is still on its way (younger than `refill_seconds`).
It may read the holdings account; it does not trade.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from hedgebot.config import BufferConfig
from hedgebot.domain.model import ZERO, floor_to_step
from hedgebot.exchange.withdrawals import Withdrawer
from hedgebot.store.journal import Intent, IntentStatus


@dataclass(frozen=True)
class RefillDecision:
    """How much to withdraw now (None: nothing), or why not, for the alert that says so."""

    amount: Decimal | None
    refused: str | None = None  # a reason a person must act on (the address is not whitelisted, nothing to send)


@dataclass(frozen=True)
class Refill:
    """Where the buffer refills from, and on what terms."""

    account: str  # the holdings account withdrawn from
    venue: Withdrawer
    config: BufferConfig

    def waiting(self, intents: list[Intent], now: float) -> bool:
        """Tell whether an earlier withdrawal is unknown or still on its way: no other goes out meanwhile."""
        for intent in intents:
            if intent.kind != "withdrawal":
                continue
            if intent.status in (IntentStatus.PENDING, IntentStatus.UNKNOWN):
                return True
            if intent.status is IntentStatus.DONE and now - intent.created_at < self.config.refill_seconds:
                return True
        return False

    async def decide(self, needed: Decimal | None, asset: str, step: Decimal, intents: list[Intent], now: float) -> RefillDecision:
        """Return how much of `asset` to withdraw now for a deposit of `needed`, reading the sender's whitelist and balance."""
        config = self.config
        if needed is None or needed <= 0 or not config.allow_withdraw or self.waiting(intents, now):
            return RefillDecision(None)
        assert config.withdraw_address is not None and config.max_withdraw is not None
        if not await self.venue.withdrawal_whitelisted(asset, config.withdraw_address, config.withdraw_network):
            return RefillDecision(None, (
                f"address {config.withdraw_address} is not on account {self.account}'s withdrawal whitelist for {asset}: "
                f"nothing is withdrawn; whitelist it there, or deposit {needed} {asset} by hand"
            ))
        held = (await self.venue.fetch_spot_balances()).get(asset, ZERO)
        amount = floor_to_step(min(needed, config.max_withdraw, held), step)
        if amount <= 0:
            return RefillDecision(None, f"account {self.account} holds {held} {asset}: nothing to withdraw toward the "
                                        f"{needed} {asset} the buffer needs; deposit it by hand")
        return RefillDecision(amount)
