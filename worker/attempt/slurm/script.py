"""The job of one submission: sbatch's options (an argv list) and the batch script (pure).

Every item that comes from the run config is a word of an argv list: in the script each one
is single-quoted with ``shlex.quote``, so no user value is ever parsed by a shell. The sbatch
options travel on sbatch's command line (a list too), not as ``#SBATCH`` comments, so a path
with spaces needs no escaping; only the administrator's extra options (a setting) are
``#SBATCH`` lines.

Inside the allocation one task per node runs ``python -m torch.distributed.run`` with c10d
rendezvous on the allocation's first node (``scontrol show hostnames``, its ``NodeAddr``, and
a port derived from the job id so two jobs sharing a node do not collide).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

from cpt_contract.runconfig.argv import LaunchContext, pretrain_args
from cpt_contract.runconfig.schema import RunConfig

#: The batch shell traps TERM (``--signal=B:TERM@grace``, ``scancel``) and forwards it to srun.
SIGNAL = "TERM"
#: The rendezvous port: 20000 + job id mod 20000 (the first node is the job's own).
RDZV_PORT_BASE = 20000


@dataclass(frozen=True)
class JobSpec:
    """What one submission needs besides the run config (the worker's settings, paths)."""

    run_id: str
    attempt: int
    python: str
    script: str  # worker/pretrain.py on the shared filesystem
    run_dir: Path
    log_path: Path
    #: The batch shell writes ``job-<id>.term`` here when Slurm signals it (time limit,
    #: preemption, scancel).
    marker_dir: Path
    use_cpu: bool
    partition: str | None = None
    account: str | None = None
    qos: str | None = None
    time_limit: str | None = None
    signal_grace_seconds: int = 120
    extra_sbatch: list[str] = field(default_factory=list)


#: The job's comment names the run and the attempt, so a restarted worker finds its jobs.
_COMMENT = re.compile(r"^cpt-panel:(?P<run>[A-Za-z0-9_-]{1,64}):attempt-(?P<attempt>[0-9]{1,9})$")


def job_comment(run_id: str, attempt: int) -> str:
    return f"cpt-panel:{run_id}:attempt-{attempt}"


def parse_comment(name: str, comment: str) -> tuple[str, int] | None:
    """(run id, attempt) of a job this panel submitted: its name and its comment agree."""
    found = _COMMENT.match(comment.strip())
    if found is None or name != f"cpt-{found['run']}":
        return None
    return found["run"], int(found["attempt"])


def sbatch_options(config: RunConfig, spec: JobSpec) -> list[str]:
    """sbatch's options: nodes, one task per node, GPUs or cores per node, where, how long."""
    launch = config.launch
    nproc = launch.nproc_per_node
    options = [
        f"--job-name=cpt-{spec.run_id}",
        f"--comment={job_comment(spec.run_id, spec.attempt)}",
        f"--nodes={launch.nnodes}",
        "--ntasks-per-node=1",
    ]
    if spec.use_cpu:
        options.append(f"--cpus-per-task={nproc}")  # each gloo rank needs a core
    else:
        options.append(f"--gpus-per-node={nproc}")
    partition = launch.partition or spec.partition
    if partition:
        options.append(f"--partition={partition}")
    if spec.account:
        options.append(f"--account={spec.account}")
    if spec.qos:
        options.append(f"--qos={spec.qos}")
    time_limit = launch.time_limit or spec.time_limit
    if time_limit:
        options.append(f"--time={time_limit}")
    options += [
        f"--signal=B:{SIGNAL}@{spec.signal_grace_seconds}",
        # The worker resubmits with --resume_from_checkpoint last; a requeue by Slurm itself
        # would rerun the first command and start over.
        "--no-requeue",
        "--open-mode=append",
        f"--output={spec.log_path}",
        f"--chdir={spec.run_dir}",
        "--export=ALL",
    ]
    return options


def launcher_argv(config: RunConfig, spec: JobSpec) -> list[str]:
    """``python -m torch.distributed.run`` up to ``--rdzv_endpoint`` (known only in the job)."""
    launch = config.launch
    return [
        spec.python,
        "-m",
        "torch.distributed.run",
        "--nnodes",
        str(launch.nnodes),
        "--nproc_per_node",
        str(launch.nproc_per_node),
        "--rdzv_backend",
        "c10d",
        "--rdzv_id",
        f"{spec.run_id}-{spec.attempt}",
    ]


def training_argv(config: RunConfig, ctx: LaunchContext, spec: JobSpec) -> list[str]:
    """The script and its flags: the same derivation as a local run (``pretrain_args``)."""
    return [spec.script, *pretrain_args(config, ctx)]


def term_marker(marker_dir: Path, job_id: str) -> Path:
    return marker_dir / f"job-{job_id}.term"


def _words(argv: list[str], indent: str = "  ") -> str:
    """One line per word, or per ``--flag value`` pair (for people reading the script)."""
    lines: list[list[str]] = []
    for word in argv:
        pairs = bool(lines) and lines[-1][0].startswith("--") and len(lines[-1]) == 1
        if pairs and not word.startswith("--"):
            lines[-1].append(word)
        else:
            lines.append([word])
    return " \\\n".join(indent + " ".join(shlex.quote(w) for w in line) for line in lines)


def render(config: RunConfig, ctx: LaunchContext, spec: JobSpec, options: list[str]) -> str:
    """The batch script. Options are shown in its header for people (sbatch gets the list)."""
    nproc = config.launch.nproc_per_node
    header = [
        "#!/bin/bash",
        f"# cpt-panel run {spec.run_id}, attempt {spec.attempt}: generated by the worker.",
        "# Submitted as: sbatch " + " ".join(shlex.quote(o) for o in options) + " <this file>",
    ]
    header += [f"#SBATCH {line}" for line in spec.extra_sbatch]
    marker = shlex.quote(str(spec.marker_dir)) + '/job-"$SLURM_JOB_ID".term'
    body = f"""
set -u
echo "[cpt-panel] Slurm job $SLURM_JOB_ID on $SLURM_JOB_NODELIST ($SLURM_JOB_NUM_NODES node(s))"
# c10d rendezvous on the first node of the allocation, at its address as Slurm knows it.
head=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)
addr=$(scontrol -o show node "$head" | tr ' ' '\\n' | sed -n 's/^NodeAddr=//p')
rdzv="${{addr:-$head}}:$(( {RDZV_PORT_BASE} + SLURM_JOB_ID % 20000 ))"
echo "[cpt-panel] rendezvous at $rdzv"
if [ -z "${{OMP_NUM_THREADS:-}}" ]; then
  threads=$(( ${{SLURM_CPUS_ON_NODE:-{nproc}}} / {nproc} ))
  export OMP_NUM_THREADS=$(( threads > 0 ? threads : 1 ))
fi

# Time limit (--signal=B:{SIGNAL}@grace), preemption or scancel: signal the job's steps (torchrun
# and its ranks; srun itself would cancel the step with SIGKILL); pretrain.py saves a
# checkpoint at the end of its step and stops.
on_term() {{
  echo "[cpt-panel] SIG{SIGNAL} from Slurm: stopping the training (it saves a checkpoint)"
  : > {marker}
  scancel --signal={SIGNAL} "$SLURM_JOB_ID" 2>/dev/null || kill -{SIGNAL} "${{child:-0}}" 2>/dev/null
}}
trap on_term {SIGNAL}

srun --ntasks-per-node=1 --kill-on-bad-exit=1 \\
{_words(launcher_argv(config, spec))} \\
  --rdzv_endpoint "$rdzv" \\
{_words(training_argv(config, ctx, spec))} &
child=$!
wait "$child"
code=$?
# A trapped signal interrupts wait: wait again until srun itself has exited.
while kill -0 "$child" 2>/dev/null; do
  wait "$child"
  code=$?
done
echo "[cpt-panel] srun exited with $code"
exit "$code"
"""
    return "\n".join(header) + "\n" + body
