"""The run registry on its own: records written atomically and owned by one worker instance,
cancel and stop markers, the start-up clear, and run ids that cannot escape the directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from cpt_contract.settings import Settings
from worker.attempt import instance
from worker.attempt.registry import Registry, check_run_id, worker_name


def test_a_record_names_the_attempt_its_processes_and_this_instance(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "w")
    reg.register("r-1", 2, pgid=123, procs=[[123, 1.5]])
    (record,) = reg.active()
    assert record["run_id"] == "r-1" and record["attempt"] == 2
    assert record["pgid"] == 123 and record["procs"] == [[123, 1.5]]
    assert record["instance"] == instance.current() and "slurm_job" not in record
    reg.register("r-1", 2, slurm_job="46")  # the same run again: replaced, not added
    (record,) = reg.active()
    assert record["slurm_job"] == "46" and record["pgid"] is None
    assert not list((tmp_path / "w" / "runs").glob("*.tmp"))  # written by rename


def test_cancel_and_stop_markers_and_unregister(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "w")
    reg.register("r-1", 1)
    reg.register("r-2", 1)
    assert not reg.cancel_requested("r-1")
    reg.request_cancel("r-1")
    assert reg.cancel_requested("r-1") and not reg.cancel_requested("r-2")
    assert sorted(reg.request_stop_all()) == ["r-1", "r-2"]
    assert reg.stop_requested("r-2")
    reg.unregister("r-1")
    assert not reg.cancel_requested("r-1") and not reg.stop_requested("r-1")
    assert [r["run_id"] for r in reg.active()] == ["r-2"]


def test_an_unreadable_record_is_skipped_and_clear_returns_what_was_there(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "w")
    reg.register("r-1", 1)
    (tmp_path / "w" / "runs" / "r-9.json").write_text("{half")
    assert [r["run_id"] for r in reg.active()] == ["r-1"]
    reg.request_cancel("r-1")
    cleared = reg.clear()
    assert [r["run_id"] for r in cleared] == ["r-1"]
    assert reg.active() == [] and not reg.cancel_requested("r-1")


@pytest.mark.parametrize("bad", ["../etc", "r/1", "", ".", "r-1\n"])
def test_run_ids_that_could_escape_are_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ValueError, match="invalid run id"):
        check_run_id(bad)
    with pytest.raises(ValueError):
        Registry(tmp_path).register(bad, 1)


def test_the_directory_is_per_worker_name_and_gpus_are_per_box(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, worker_name="box a/1", build_demo=False)
    reg = Registry.for_settings(settings)
    assert worker_name(settings) == "box a/1"
    assert reg.root == tmp_path.resolve() / "worker-state" / "box_a_1"
    assert reg.gpu_lock_dir == tmp_path.resolve() / "worker-state" / "gpus"
    json.dumps(reg.active())  # empty, serialisable
