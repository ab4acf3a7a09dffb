"""The names under which the guards that hold a hedge's trading are journaled (store.control holds).

Owns: the names only. May not touch: anything else; it imports nothing, so every keeper module may use it.
"""

from __future__ import annotations

# Names of the guards that hold trading, as journaled (store.control holds).
REOPEN_HOLD = "reopen_after_liquidation"
JOURNAL_UNWRITABLE = "journal_unwritable"
JOURNAL_DAMAGED = "journal_damaged"
DISK_SPACE_LOW = "disk_space_low"
DISK_SPACE_CRITICAL = "disk_space_critical"
SALE_HOLD = "failed_margin_sale"
BETA_HOLD = "beta_in_force"  # a beta hedge's betas held (by asset): a restart judges the band from them
ROLL_HOLD = "roll"  # a quarterly hedge's roll under way: from, to, and the short (base) when it began
ROLL_FALLBACK = "roll_fallback"
