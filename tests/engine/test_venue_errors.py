"""How the keeper tells an exchange's refusal: a ban with an absurd end is still a clear critical alert, never a crash."""

from __future__ import annotations

import pytest

from hedgebot.exchange.port import IpBanned
from tests.helpers import make_rig


@pytest.mark.parametrize("until", [1e300, float("inf"), float("nan")], ids=["1e300", "inf", "nan"])
async def test_a_ban_whose_end_is_out_of_range_raises_the_critical_ban_alert_instead_of_crashing(until: float) -> None:
    rig = await make_rig()
    rig.keeper._venue_error(IpBanned("fapi.binance.com banned this IP (HTTP 418)", until))
    alert = rig.keeper.alerts.active["exchange_ban"]
    assert alert.severity.value == "critical"
    assert "banned this IP (HTTP 418) until an unreadable time" in alert.message
