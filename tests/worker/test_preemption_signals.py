"""The preemption handler in one process, with real signal delivery: the same stop forwarded
along several paths (Slurm, the batch shell, torchrun) is one request; a later TERM means now."""

from __future__ import annotations

import signal
from collections.abc import Iterator

import pytest

from worker.training import preemption


@pytest.fixture
def handler_state(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    before = signal.getsignal(signal.SIGTERM)
    monkeypatch.setattr(preemption, "STATE", preemption._State())
    immediate: list[int] = []
    preemption.install(lambda signum, frame: immediate.append(signum))
    try:
        yield immediate
    finally:
        signal.signal(signal.SIGTERM, before)


def _term() -> None:
    signal.raise_signal(signal.SIGTERM)


def test_repeated_terms_are_one_request_and_a_late_one_stops_now(
    handler_state: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    preemption.STATE.in_loop = True
    clock = [100.0]
    monkeypatch.setattr(preemption.time, "monotonic", lambda: clock[0])
    _term()
    assert preemption.STATE.requested_at == 100.0 and handler_state == []
    clock[0] += 1.0
    _term()  # forwarded again by another process of the job
    assert handler_state == []
    clock[0] += preemption.REPEAT_WINDOW_SECONDS
    _term()
    assert handler_state == [signal.SIGTERM]


def test_a_rank_told_by_the_all_reduce_still_waits_for_the_save(
    handler_state: list[int], monkeypatch: pytest.MonkeyPatch
) -> None:
    preemption.STATE.in_loop = True
    preemption.STATE.requested_at = 5.0  # another rank's signal, through on_step_end
    monkeypatch.setattr(preemption.time, "monotonic", lambda: 6.0)
    _term()  # this rank's own copy of the same stop
    assert handler_state == [] and preemption.STATE.signalled_at == 6.0


def test_before_the_training_loop_a_term_stops_at_once(handler_state: list[int]) -> None:
    _term()
    assert handler_state == [signal.SIGTERM]
