"""The generated job (pure parts): sbatch options, the batch script against golden files,
safe quoting of user values, Slurm state and sinfo parsing, the partition fit rules.

The golden files are also what a multi-node job on a real cluster gets; on this machine the
two-node job additionally runs for real (``test_runs.py::test_two_nodes``). Rewrite the golden
files after an intended change with ``CPT_UPDATE_GOLDEN=1``.
"""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from cpt_contract.fit import slurm_problems
from cpt_contract.runconfig.argv import LaunchContext
from cpt_contract.runconfig.schema import LaunchSection, RunConfig
from cpt_contract.settings import Settings
from cpt_contract.slurm import ClusterReport, Partition, parse_time_minutes
from worker.attempt.slurm import script, states
from worker.attempt.slurm.cluster import parse_sinfo

GOLDEN = Path(__file__).parent / "golden"
HOSTILE = '/data/it\'s a $(touch /tmp/pwned) `x` ; rm -rf / "q"'


def _config(**launch: object) -> RunConfig:
    return RunConfig.model_validate(
        {
            "model": {"model_name_or_path": "/models/llama", "tokenizer_name_or_path": HOSTILE},
            "data": {"dataset_dir": "/data/kn corpus", "block_size": 512},
            "training": {"max_steps": 100, "extra_args": ["--optim", "adamw_torch"]},
            "launch": {"deepspeed": "zero2", **launch},
        }
    )


def _job(config: RunConfig, *, use_cpu: bool) -> tuple[str, list[str], list[str]]:
    ctx = LaunchContext(
        output_dir="/shared/runs/r-abc/output",
        data_cache_dir="/shared/cache",
        deepspeed_config="/shared/runs/r-abc/ds_config.json",
        use_cpu=use_cpu,
        python="/opt/venv/bin/python",
        script="/opt/cpt-panel/worker/pretrain.py",
        resume_from_checkpoint="last",
        run_id="r-abc",
    )
    spec = script.JobSpec(
        run_id="r-abc",
        attempt=2,
        python=ctx.python,
        script=ctx.script,
        run_dir=Path("/shared/runs/r-abc"),
        log_path=Path("/shared/runs/r-abc/logs/attempt-2.log"),
        marker_dir=Path("/shared/runs/r-abc/slurm"),
        use_cpu=use_cpu,
        partition="gpu",
        account="lab",
        qos="normal",
        time_limit="1-00:00:00",
        signal_grace_seconds=120,
        extra_sbatch=["--constraint=a100", "--exclusive"],
    )
    options = script.sbatch_options(config, spec)
    argv = [*script.launcher_argv(config, spec), "--rdzv_endpoint", "<rdzv>"]
    argv += script.training_argv(config, ctx, spec)
    return script.render(config, ctx, spec, options), options, argv


@pytest.mark.parametrize(
    ("name", "launch", "use_cpu"),
    [
        ("two_nodes_gpu.sbatch", {"nnodes": 2, "nproc_per_node": 8}, False),
        ("one_node_cpu.sbatch", {"nproc_per_node": 2, "time_limit": "30"}, True),
    ],
)
def test_script_matches_golden_file(name: str, launch: dict[str, int], use_cpu: bool) -> None:
    text, _, _ = _job(_config(**launch), use_cpu=use_cpu)
    path = GOLDEN / name
    if os.environ.get("CPT_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed: rerun with CPT_UPDATE_GOLDEN=1 if intended"
    subprocess.run(["bash", "-n"], input=text, text=True, check=True)  # it parses


def test_options_follow_the_run_config() -> None:
    _, options, _ = _job(_config(nnodes=2, nproc_per_node=8, partition="big"), use_cpu=False)
    assert "--nodes=2" in options and "--ntasks-per-node=1" in options
    assert "--gpus-per-node=8" in options and "--partition=big" in options  # the run's override
    assert "--time=1-00:00:00" in options and "--signal=B:TERM@120" in options
    assert "--no-requeue" in options and "--account=lab" in options and "--qos=normal" in options
    _, cpu_options, _ = _job(_config(nproc_per_node=2, time_limit="30"), use_cpu=True)
    assert "--cpus-per-task=2" in cpu_options and "--time=30" in cpu_options
    assert not any(o.startswith("--gpus") for o in cpu_options)


def test_user_values_reach_srun_as_single_words(tmp_path: Path) -> None:
    """Run the script with bash; a stand-in ``srun`` (the one boundary replaced: we want the
    argv srun receives) records its arguments. Every hostile value arrives intact, nothing
    is executed, and the rendezvous is the first node's address."""
    config = _config(nnodes=2, nproc_per_node=1)
    text, _, expected = _job(config, use_cpu=True)
    marker_dir = tmp_path / "markers"
    marker_dir.mkdir()
    text = text.replace("/shared/runs/r-abc/slurm", str(marker_dir))
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    out = tmp_path / "argv"
    srun = bin_dir / "srun"
    srun.write_text(f"#!/bin/bash\nprintf '%s\\0' \"$@\" > {out}\n")
    srun.chmod(srun.stat().st_mode | stat.S_IEXEC)
    job = tmp_path / "job.sh"
    job.write_text(text)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "SLURM_JOB_ID": "4242",
        "SLURM_JOB_NODELIST": "cpt-n[1-2]",
        "SLURM_JOB_NUM_NODES": "2",
    }
    done = subprocess.run(["bash", str(job)], env=env, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    got = out.read_bytes().decode().split("\0")[:-1]
    assert got[:3] == ["--ntasks-per-node=1", "--kill-on-bad-exit=1", expected[0]]
    rdzv = got.index("--rdzv_endpoint") + 1
    assert got[rdzv] == f"127.0.0.1:{20000 + 4242 % 20000}"  # cpt-n1's NodeAddr
    expected[expected.index("<rdzv>")] = got[rdzv]
    assert got[2:] == expected
    # A hostile value is one argv item, glued to its flag: never split, expanded or run.
    assert f"--tokenizer_name_or_path={HOSTILE}" in got and "adamw_torch" in got
    assert not Path("/tmp/pwned").exists()


def test_scontrol_lines_map_to_phases_and_reasons() -> None:
    pending = states.parse_show_job(
        "JobId=7 JobName=cpt-r-1 UserId=root(0) JobState=PENDING Reason=Resources "
        "Dependency=(null) ExitCode=0:0 NodeList=(null) Command=/x y/job.sh"
    )
    assert pending.phase is states.Phase.pending and pending.nodes == ""
    assert states.describe(pending) == "Slurm job 7 pending: waiting for free nodes (Resources)"
    qos = states.parse_show_job("JobId=8 JobState=PENDING Reason=QOSMaxJobsPerUserLimit")
    assert "QoS or account limit" in states.describe(qos)
    running = states.parse_show_job("JobId=7 JobState=RUNNING Reason=None NodeList=cpt-n[1-2]")
    assert states.describe(running) == "Slurm job 7 running on cpt-n[1-2]"
    for state in ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "PREEMPTED", "NODE_FAIL"):
        info = states.parse_show_job(f"JobId=9 JobState={state} Reason=None ExitCode=1:15")
        assert info.phase is states.Phase.done and info.exit_code == 1 and info.exit_signal == 15
    assert {"TIMEOUT", "PREEMPTED"} == states.INTERRUPTED_STATES
    node_fail = states.parse_show_job("JobId=9 JobState=NODE_FAIL NodeList=gpu[3-4]")
    assert "NODE_FAIL" in (states.final_reason(node_fail) or "")
    assert states.final_reason(states.parse_show_job("JobId=9 JobState=COMPLETED")) is None
    assert states.parse_squeue("5", "PENDING|Priority").reason == "Priority"
    assert "PartitionTimeLimit" in states.NEVER_STARTS


def test_sinfo_report_and_time_formats() -> None:
    parts = parse_sinfo(
        "debug*|up|10:00|0/2/0/2\nlong|up|7-00:00:00|3/1/1/5\nx|down|infinite|0/0/4/4\n"
    )
    assert [(p.name, p.default, p.available) for p in parts] == [
        ("debug", True, True),
        ("long", False, True),
        ("x", False, False),
    ]
    assert parts[0].max_time_minutes == 10 and parts[1].max_time_minutes == 7 * 1440
    assert parts[2].max_time_minutes is None
    assert (parts[1].nodes_allocated, parts[1].nodes_idle, parts[1].nodes_total) == (3, 1, 5)
    assert parts[0].gpus_per_node is None  # the older 4-field format: not reported
    # With %G: one line per partition and GRES, merged; GPUs per node the most any node has.
    gres = parse_sinfo(
        "gpu*|up|1:00:00|1/1/0/2|gpu:a100:8(S:0-1)\ngpu*|up|1:00:00|0/1/0/1|(null)\n"
        "cpu|up|1:00:00|0/4/0/4|(null)\nmix|up|1:00:00|0/1/0/1|gpu:2,shard:4\n"
    )
    assert [(p.name, p.nodes_total, p.gpus_per_node) for p in gres] == [
        ("gpu", 3, 8),
        ("cpu", 4, 0),
        ("mix", 1, 2),
    ]
    assert parse_time_minutes("2:30:00") == 150 and parse_time_minutes("1-2") == 1560
    with pytest.raises(ValueError):
        parse_time_minutes("soon")


def test_fit_rules_against_partitions() -> None:
    cluster = ClusterReport(
        partitions=[Partition(name="gpu", default=True, max_time_minutes=60, nodes_total=4)],
        default_partition="gpu",
    )
    assert slurm_problems(LaunchSection(nnodes=4, time_limit="1:00:00"), cluster) == []
    (problem,) = slurm_problems(LaunchSection(partition="cpu"), cluster)
    assert problem[0] == ("launch", "partition") and "choose one of: gpu" in problem[1]
    (problem,) = slurm_problems(LaunchSection(nnodes=5), cluster)
    assert problem[0] == ("launch", "nnodes")
    (problem,) = slurm_problems(LaunchSection(time_limit="2:00:00"), cluster)
    assert problem[0] == ("launch", "time_limit") and "01:00:00" in problem[1]
    strict = cluster.model_copy(update={"default_time_minutes": 120})
    (problem,) = slurm_problems(LaunchSection(), strict)
    assert "the worker's default time limit" in problem[1]


def test_settings_for_the_executor() -> None:
    s = Settings(
        executor="slurm",
        slurm_extra_sbatch="--constraint=a100; --exclusive",
        slurm_time_limit="12:00:00",
    )
    assert s.slurm_extra_sbatch == ["--constraint=a100", "--exclusive"]
    with pytest.raises(ValueError):
        Settings(slurm_extra_sbatch="constraint=a100")
    with pytest.raises(ValueError):
        Settings(slurm_time_limit="tomorrow")
