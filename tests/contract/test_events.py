"""The training script's copy of the event kinds and phases equals the contract's."""

from __future__ import annotations

from cpt_contract import events as contract
from worker import events as writer


def test_the_writer_knows_the_contracts_kinds_and_phases() -> None:
    assert writer.KINDS == contract.KINDS
    assert writer.PHASES == contract.PHASES
    assert set(contract.PAUSE_PHASES) <= set(contract.PHASES)
