"""The retry policy (``cpt_contract/outcomes.py``), the same for the API's automatic resume and
the Slurm executor's resubmits: on recorded histories of tries."""

from __future__ import annotations

from cpt_contract.outcomes import FailureKind, Try, futile_streak, made_progress, why_not_retry

K = FailureKind


def test_progress_is_training_past_where_the_last_try_ended() -> None:
    assert made_progress(None, 20) and made_progress(100, 101)
    assert not made_progress(None, None) and not made_progress(100, 100)
    assert not made_progress(100, None)


def test_slurm_jobs_terminated_before_their_first_step_stop_after_the_limit() -> None:
    """The overnight case: every job got TERM before its first step (11 resubmits before)."""
    tries = [Try(K.slurm_time_limit, None)]
    assert why_not_retry(tries, max_futile=2) is None  # one may be bad luck
    tries.append(Try(K.slurm_time_limit, None))
    why = why_not_retry(tries, max_futile=2)
    assert why == "2 tries in a row ended without training past its first step"


def test_a_run_that_moves_on_keeps_being_resumed() -> None:
    tries = [Try(K.slurm_time_limit, s) for s in (40, 80, 120, 160)]
    assert futile_streak(tries) == 0 and why_not_retry(tries, 2) is None
    stuck = [*tries, Try(K.slurm_time_limit, 160), Try(K.slurm_time_limit, 160)]
    assert futile_streak(stuck) == 2
    assert why_not_retry(stuck, 2) == "2 tries in a row ended without training past step 160"
    assert (
        why_not_retry(stuck, 0) == "the same failure (slurm_time_limit) happened twice at step 160"
    )


def test_the_same_kind_twice_at_one_step_stops_even_below_the_futile_limit() -> None:
    tries = [Try(K.stalled, 40), Try(K.stalled, 40)]
    assert (
        why_not_retry(tries, max_futile=5) == "the same failure (stalled) happened twice at step 40"
    )
    assert why_not_retry([Try(K.crashed, 40), Try(K.stalled, 40)], max_futile=5) is None
