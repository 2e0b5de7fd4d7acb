"""``cpt-panel data clean ...``: a clean job over the REST API, followed to its report.

Steps are given in order, each as one ``--step`` of a kind and ``key=value`` pairs (values are
YAML scalars or flow collections, quoted when they hold spaces), e.g.
``--step "language keep=[en,hi] 'thresholds={hi: 0.3}'"``
``--step exact_dedup --step "near_dedup threshold=0.8"``; or all of them as a YAML/JSON list in
``--steps FILE``. The server validates them (a 422 names the step and field).
"""

from __future__ import annotations

import shlex
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from cpt_cli.client import CliError, make_client, request
from cpt_cli.follow import TERMINAL
from cpt_contract.settings import get_settings

app = typer.Typer(help="Dataset jobs: clean a corpus into a new dataset.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


def parse_step(spec: str) -> dict[str, Any]:
    """``"near_dedup threshold=0.8 num_perm=256"`` → ``{"step": "near_dedup", ...}``."""
    parts = shlex.split(spec)
    if not parts:
        raise CliError("--step: give a step kind, e.g. --step exact_dedup")
    step: dict[str, Any] = {"step": parts[0]}
    for item in parts[1:]:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise CliError(f"--step {spec!r}: {item!r} is not key=value")
        step[key] = yaml.safe_load(raw) if raw.strip() else None
    return step


def _counts(c: dict[str, Any], tokens: bool) -> str:
    text = f"{c['documents']:,} docs, {c['characters']:,} chars"
    return text + (f", {c['tokens']:,} tokens" if tokens else "")


def print_report(result: dict[str, Any]) -> None:
    tokens = bool(result.get("tokenizer"))
    table = Table(title="Each step")
    for col in ("step", "before", "after", "removed", "why"):
        table.add_column(col)
    for i, s in enumerate(result["steps"], 1):
        why = s.get("masked") if s["step"] == "pii" else s["reasons"]
        removed = (
            f"{s['changed']:,} masked" if s["step"] == "pii" else f"{s['removed']['documents']:,}"
        )
        table.add_row(
            f"{i}. {s['step']}",
            _counts(s["before"], tokens),
            _counts(s["after"], tokens),
            removed,
            ", ".join(f"{k}: {v:,}" for k, v in (why or {}).items()),
        )
    console.print(table)
    langs = Table(title="Each language")
    for col in ("language", "before", "after"):
        langs.add_column(col)
    for lang, c in result["by_language"].items():
        langs.add_row(lang, _counts(c["before"], tokens), _counts(c["after"], tokens))
    console.print(langs)
    console.print(f"dataset: {result['output']}", highlight=False)


@app.command()
def clean(
    sources: Annotated[list[str], typer.Argument(help="Files or directories of text.")],
    name: Annotated[str, typer.Option(help="The new dataset's directory name.")],
    step: Annotated[
        list[str] | None, typer.Option("--step", help="A step and its key=value pairs, in order.")
    ] = None,
    steps_file: Annotated[
        Path | None, typer.Option("--steps", help="YAML/JSON list of steps (instead of --step).")
    ] = None,
    tokenizer: Annotated[str | None, typer.Option(help="Count tokens with it.")] = None,
    output_root: Annotated[
        str | None, typer.Option(help="Datasets root (default: the data dir's datasets/).")
    ] = None,
    examples: Annotated[int, typer.Option(help="Removed examples kept per step.")] = 5,
    follow: Annotated[
        bool, typer.Option("--follow", "-f", help="Wait and show the report.")
    ] = False,
) -> None:
    """Clean SOURCES into a new dataset NAME with the steps given, in order."""
    try:
        steps = [parse_step(s) for s in step or []]
        if steps_file is not None:
            steps += list(yaml.safe_load(steps_file.read_text(encoding="utf-8")) or [])
        params: dict[str, Any] = {"sources": sources, "name": name, "steps": steps}
        params["examples"] = examples
        if tokenizer:
            params["tokenizer"] = tokenizer
        if output_root:
            params["output_root"] = output_root
        with make_client(get_settings()) as client:
            job = request(client, "POST", "/jobs", json={"kind": "clean", "params": params})
            console.print(f"submitted {job['id']}", highlight=False)
            if not follow:
                return
            job = _follow(client, job["id"])
    except (CliError, OSError, yaml.YAMLError) as exc:
        err.print(f"[red]error:[/] {exc}", highlight=False)
        raise typer.Exit(1) from None
    if job["status"] != "succeeded":
        console.print(f"job {job['id']} {job['status']}: {job.get('status_reason')}")
        raise typer.Exit(1)
    print_report(job["result"])


def _follow(client: Any, job_id: str) -> dict[str, Any]:
    """Print the job's log as it grows (progress lines included) until the job ends."""
    offset = 0
    while True:
        job = request(client, "GET", f"/jobs/{job_id}")
        chunk = request(client, "GET", f"/jobs/{job_id}/log", params={"after": offset})
        if chunk["text"]:
            sys.stdout.write(chunk["text"])
            sys.stdout.flush()
            offset = chunk["next"]
        if job["status"] in TERMINAL and offset >= job["log_size"]:
            return dict(job)
        time.sleep(1.0)
