"""``cpt-panel runs ...``: submit, list, follow, logs, cancel and resume runs over the REST API."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from cpt_cli.client import CliError, make_client, request
from cpt_cli.follow import TERMINAL, follow
from cpt_contract.runconfig.schema import deep_merge
from cpt_contract.settings import get_settings

app = typer.Typer(help="Submit and watch training runs.", no_args_is_help=True)
console = Console()
err = Console(stderr=True)


_FLOAT = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _scalar(raw: str) -> Any:
    """A YAML scalar; also ``1e-3`` as a float (YAML 1.1 wants ``1.0e-3``, people type ``1e-3``)."""
    if not raw.strip():
        return None
    value = yaml.safe_load(raw)
    if isinstance(value, str) and _FLOAT.match(value.strip()):
        return float(value)
    return value


def parse_set(items: list[str]) -> dict[str, Any]:
    """``["training.max_steps=12", "launch.deepspeed=none"]`` → nested dict, values as YAML scalars."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise CliError(f"--set {item!r}: use key.path=value, e.g. training.max_steps=100")
        value = _scalar(raw)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise CliError(f"--set {item!r}: {part} is already a value")
            node = child
        node[parts[-1]] = value
    return out


def _fail(exc: CliError) -> typer.Exit:
    err.print(f"[red]error:[/] {exc}", highlight=False)
    return typer.Exit(1)


def _finish(view_status: str, reason: str | None, run_id: str) -> None:
    color = {"succeeded": "green", "cancelled": "yellow"}.get(view_status, "red")
    tail = f" ({reason})" if reason else ""
    console.print(f"run {run_id} [{color}]{view_status}[/]{tail}", highlight=False)
    if view_status != "succeeded":
        raise typer.Exit(1 if view_status == "failed" else 2)


def _follow(run_id: str) -> None:
    with make_client(get_settings()) as client:
        view = follow(client, run_id, console)
    _finish(view.status, view.reason, run_id)


@app.command()
def submit(
    preset: Annotated[
        str | None, typer.Option(help="Preset to start from (seed-lora, full, tiny-demo).")
    ] = None,
    config: Annotated[
        Path | None, typer.Option("--config", "-c", help="YAML file with a (partial) run config.")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="key.path=value override (repeatable).")
    ] = None,
    name: Annotated[str | None, typer.Option(help="Run name.")] = None,
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Show progress until the run ends.")
    ] = False,
) -> None:
    """Submit a run: a preset and/or a YAML config, plus --set overrides.

    With --follow the exit code tells the outcome: 0 succeeded, 1 failed, 2 cancelled.
    """
    try:
        if preset is None and config is None:
            raise CliError("give --preset NAME or --config FILE.yaml (or both)")
        body: dict[str, Any] = {}
        if config is not None:
            loaded = yaml.safe_load(config.read_text()) or {}
            if not isinstance(loaded, dict):
                raise CliError(f"{config}: expected a mapping of config sections")
            # A file may hold a whole submit body ({preset, name, config}) or just the config.
            if "config" in loaded and isinstance(loaded["config"], dict):
                body.update(loaded)
            else:
                body["config"] = loaded
        if preset is not None:
            body["preset"] = preset
        if name is not None:
            body["name"] = name
        body["config"] = deep_merge(body.get("config") or {}, parse_set(set_ or []))
        with make_client(get_settings()) as client:
            run = request(client, "POST", "/runs", json=body)
    except (CliError, OSError, yaml.YAMLError) as exc:
        raise _fail(CliError(str(exc))) from None
    console.print(
        f"submitted {run['id']} ({run.get('name') or run.get('preset') or ''}) → {run['status']}",
        highlight=False,
    )
    if follow_:
        try:
            _follow(run["id"])
        except CliError as exc:
            raise _fail(exc) from None


@app.command("list")
def list_runs(
    status: Annotated[
        list[str] | None, typer.Option(help="Only runs in this status (repeatable).")
    ] = None,
    limit: Annotated[int, typer.Option(help="How many runs.")] = 20,
) -> None:
    """The newest runs."""
    try:
        with make_client(get_settings()) as client:
            page = request(client, "GET", "/runs", params={"status": status or [], "limit": limit})
    except CliError as exc:
        raise _fail(exc) from None
    table = Table("id", "name", "status", "step", "loss", "model", "created")
    for run in page["items"]:
        step = f"{run.get('step') or 0}/{run.get('max_steps') or '?'}"
        loss = f"{run['loss']:.4f}" if run.get("loss") is not None else "-"
        table.add_row(
            run["id"],
            run.get("name") or "",
            run["status"],
            step,
            loss,
            run.get("model") or "",
            run.get("created_at") or "",
        )
    console.print(table)
    console.print(f"{len(page['items'])} of {page['total']} runs", highlight=False)


@app.command("follow")
def follow_cmd(run_id: str) -> None:
    """Show a run's progress until it ends (exit code 0 succeeded, 1 failed, 2 cancelled)."""
    try:
        _follow(run_id)
    except CliError as exc:
        raise _fail(exc) from None


def _raw(text: str) -> None:
    """Log text as is: rich would drop the \\r that progress bars in the log rely on."""
    if text:
        sys.stdout.write(text)
        sys.stdout.flush()


@app.command()
def logs(
    run_id: str,
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Keep printing until the run ends.")
    ] = False,
    attempt: Annotated[int | None, typer.Option(help="Attempt (default: the latest).")] = None,
) -> None:
    """Print a run's log (the latest attempt's by default)."""
    try:
        with make_client(get_settings()) as client:
            offset = 0
            while True:
                params: dict[str, Any] = {"offset": offset, "limit": 65536}
                if attempt is not None:
                    params["attempt"] = attempt
                chunk = request(client, "GET", f"/runs/{run_id}/logs", params=params)
                if attempt is None:
                    attempt = chunk.get("attempt")
                _raw(chunk["text"])
                offset = chunk["next_offset"]
                if offset < chunk["size"]:
                    continue  # more already stored: keep reading without waiting
                if not follow_:
                    return
                run = request(client, "GET", f"/runs/{run_id}")
                if run["status"] in TERMINAL and offset >= chunk["size"]:
                    # One last read: the final bytes are shipped before the final status.
                    tail = request(
                        client, "GET", f"/runs/{run_id}/logs", params={**params, "offset": offset}
                    )
                    _raw(tail["text"])
                    return
                time.sleep(0.5)
    except CliError as exc:
        raise _fail(exc) from None


@app.command()
def cancel(run_id: str) -> None:
    """Cancel a queued or running run."""
    try:
        with make_client(get_settings()) as client:
            run = request(client, "POST", f"/runs/{run_id}/cancel")
    except CliError as exc:
        raise _fail(exc) from None
    console.print(f"{run['id']} → {run['status']}", highlight=False)


@app.command()
def resume(
    run_id: str,
    checkpoint: Annotated[
        str, typer.Option(help="'last' or a checkpoint name such as checkpoint-200.")
    ] = "last",
    follow_: Annotated[
        bool, typer.Option("--follow", "-f", help="Show progress until the run ends.")
    ] = False,
) -> None:
    """Start a new attempt of a finished run from one of its checkpoints."""
    try:
        with make_client(get_settings()) as client:
            run = request(client, "POST", f"/runs/{run_id}/resume", json={"checkpoint": checkpoint})
        console.print(f"{run['id']} attempt {run['attempt']} → {run['status']}", highlight=False)
        if follow_:
            _follow(run_id)
    except CliError as exc:
        raise _fail(exc) from None
