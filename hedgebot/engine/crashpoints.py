"""Named crash points for fault-injection tests of recovery.

`HEDGEBOT_CRASHPOINT=intent_journaled:3` makes the process kill itself with
SIGKILL the third time it passes `intent_journaled`. Unset, it costs one
dictionary lookup. Points: intent_journaled (after the journal, before the
venue), action_sent (after the venue answered, before the journal),
outcome_journaled (after the outcome and its event, before anything else).
"""

from __future__ import annotations

import os
import signal
from collections import Counter

_counts: Counter[str] = Counter()
_spec = os.environ.get("HEDGEBOT_CRASHPOINT", "")
_name, _, _nth = _spec.partition(":")
_target = int(_nth) if _nth.isdigit() else 1


def reached(name: str) -> None:
    """Note that `name` was reached; die there if the environment asks for it."""
    if not _name or name != _name:
        return
    _counts[name] += 1
    if _counts[name] >= _target:
        os.kill(os.getpid(), signal.SIGKILL)
