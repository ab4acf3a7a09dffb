"""Hours of market time against a venue that times out, rate-limits, lies about prices and fills in part."""

from __future__ import annotations

import pytest

from hedgebot.testing.faultsim import HARSH, run_fault_simulation
from tests.helpers import D


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 29])
async def test_thousands_of_faults_cause_no_duplicate_and_the_hedge_recovers(seed: int) -> None:
    result = await run_fault_simulation(seed, hours=12, rates=HARSH)
    print(f"\nseed {seed}: {result}")
    assert result.faults_injected >= 2000
    assert result.faults_by_kind["timeout_after"] >= 20 and result.faults_by_kind["duplicate_after"] >= 10
    assert result.partial_fills > 0
    assert result.duplicate_executions == 0 and result.growth_overshoots == 0
    assert result.journal_mismatches == 0 and result.venue_orders == result.journal_orders_done
    assert result.open_intents_left == 0
    # Never net short beyond the band plus one lot, whenever the keeper had finished.
    assert result.worst_over_hedge <= D("0.001")
    assert result.ticks_to_recover is not None and result.ticks_to_recover <= 3
    assert result.final_in_band


@pytest.mark.slow
@pytest.mark.parametrize("seed", [11, 29, 47])
async def test_the_ccxt_venue_on_the_strict_emulator_survives_faults_in_the_port_and_on_the_wire(seed: int) -> None:
    # The wire's mix includes orders answered 503 or -1007 and carried out up to 8 s later, and order
    # lookups and history that lag behind execution by up to 8 s.
    result = await run_fault_simulation(seed, hours=3, rates=HARSH, exchange="emulator")
    print(f"\nseed {seed} (ccxt on the emulator): {result}")
    wire = {k: v for k, v in result.faults_by_kind.items() if k.startswith("wire_")}
    assert result.faults_injected >= 750 and sum(wire.values()) >= 120
    assert wire.get("wire_drop_after", 0) >= 20 and wire.get("wire_timestamp", 0) >= 3
    assert wire.get("wire_order_unseen", 0) >= 5 and wire.get("wire_lookup_lag", 0) >= 5
    assert result.late_executions >= 5, "orders answered 'status unknown' and carried out later"
    assert result.venue_orders >= 30
    assert result.duplicate_executions == 0 and result.growth_overshoots == 0
    assert result.journal_mismatches == 0 and result.venue_orders == result.journal_orders_done
    assert result.open_intents_left == 0
    assert result.worst_over_hedge <= D("0.001")
    assert result.ticks_to_recover is not None and result.ticks_to_recover <= 3
    assert result.final_in_band
