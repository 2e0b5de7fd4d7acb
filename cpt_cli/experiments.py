"""``cpt-panel experiments ...``: create, launch, watch, cancel and resume an experiment (a base
config x axes, judged on a target set under a forgetting cap) and print or export its verdict."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer
import yaml
from rich.console import Console
from rich.table import Table

from cpt_cli.client import CliError, make_client, request
from cpt_cli.runs import _scalar, parse_set
from cpt_contract.runconfig.schema import deep_merge
from cpt_contract.settings import get_settings

app = typer.Typer(
    help="Ask one question with a grid of runs, and read its verdict.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _fail(exc: Exception) -> typer.Exit:
    err.print(f"[red]error:[/] {exc}", highlight=False)
    return typer.Exit(1)


def parse_axis(item: str) -> tuple[str, list[Any]]:
    """``training.learning_rate=1e-4,3e-4`` → ``("training.learning_rate", [1e-4, 3e-4])``."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip() or not raw.strip():
        raise CliError(
            f"--axis {item!r}: use field.path=v1,v2, e.g. method.finetuning_type=lora,full"
        )
    return key.strip(), [_scalar(v) for v in raw.split(",")]


@app.command()
def create(
    spec_file: Annotated[
        Path | None,
        typer.Option("--spec", help="YAML/JSON experiment spec (name, base, axes, target…)."),
    ] = None,
    preset: Annotated[
        str | None, typer.Option(help="Experiment preset to start from (seed-2x2).")
    ] = None,
    run_preset: Annotated[
        str | None, typer.Option("--run-preset", help="Run preset under the base (tiny-demo…).")
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", "-s", help="Base config key.path=value (repeatable)."),
    ] = None,
    axis: Annotated[
        list[str] | None,
        typer.Option("--axis", "-a", help="field.path=v1,v2 (repeatable: a grid)."),
    ] = None,
    target: Annotated[str | None, typer.Option(help="The eval set being learned.")] = None,
    retain: Annotated[
        list[str] | None, typer.Option(help="A retain eval set (repeatable).")
    ] = None,
    cap: Annotated[
        float | None, typer.Option(help="Forgetting cap: bits/char over step 0 on each retain set.")
    ] = None,
    steps: Annotated[int | None, typer.Option(help="Budget: steps per run.")] = None,
    tokens: Annotated[int | None, typer.Option(help="Budget: tokens per run.")] = None,
    early_stopping: Annotated[
        float | None,
        typer.Option("--early-stopping", help="Successive halving, keeping this share (0.5)."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="Experiment name.")] = None,
    launch: Annotated[bool, typer.Option("--launch", help="Queue its runs at once.")] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list the runs it would queue (validated).")
    ] = False,
) -> None:
    """Create an experiment (validated: a bad axis value is named with its axis)."""
    try:
        body: dict[str, Any] = {}
        if spec_file is not None:
            loaded = yaml.safe_load(spec_file.read_text()) or {}
            if not isinstance(loaded, dict):
                raise CliError(f"{spec_file}: expected a mapping (name, base, axes, target, …)")
            body.update(loaded)
        if run_preset is not None:
            body["preset"] = run_preset
        if set_:
            body["base"] = deep_merge(body.get("base") or {}, parse_set(set_))
        if axis:
            body["axes"] = {**(body.get("axes") or {}), **dict(parse_axis(a) for a in axis)}
        for key, value in (
            ("target", target),
            ("retain", retain),
            ("forgetting_cap", cap),
            ("name", name),
        ):
            if value is not None:
                body[key] = value
        if steps is not None or tokens is not None:
            body["budget"] = {"steps": steps} if steps is not None else {"tokens": tokens}
        if early_stopping is not None:
            body["early_stopping"] = {"keep": early_stopping}
        params = {"preset": preset} if preset else {}
        with make_client(get_settings()) as client:
            if dry_run:
                out = request(client, "POST", "/experiments/preview", json=body, params=params)
                for i, child in enumerate(out["runs"], 1):
                    shown = ", ".join(f"{k}={v}" for k, v in child["values"].items())
                    steps_ = child["config"]["training"]["max_steps"]
                    console.print(f"{i}. {shown or '(base)'} · {steps_} steps", highlight=False)
                return
            exp = request(
                client, "POST", "/experiments", json=body, params={**params, "launch": launch}
            )
    except (CliError, OSError, yaml.YAMLError) as exc:
        raise _fail(exc) from None
    console.print(
        f"created {exp['id']} ({exp['name']}): {exp['run_count']} runs → {exp['status']}",
        highlight=False,
    )


def _action(exp_id: str, verb: str) -> None:
    try:
        with make_client(get_settings()) as client:
            exp = request(client, "POST", f"/experiments/{exp_id}/{verb}")
    except CliError as exc:
        raise _fail(exc) from None
    counts = ", ".join(f"{k} {v}" for k, v in sorted(exp["counts"].items()))
    console.print(f"{exp['id']} → {exp['status']} ({counts})", highlight=False)


@app.command("launch")
def launch_cmd(exp_id: str) -> None:
    """Queue the experiment's runs."""
    _action(exp_id, "launch")


@app.command()
def cancel(exp_id: str) -> None:
    """Cancel every run of the experiment that is still queued or running."""
    _action(exp_id, "cancel")


@app.command()
def resume(exp_id: str) -> None:
    """Queue again the runs that did not finish (failed or cancelled, not stopped early)."""
    _action(exp_id, "resume")


@app.command("list")
def list_cmd() -> None:
    """The experiments, newest first."""
    try:
        with make_client(get_settings()) as client:
            items = request(client, "GET", "/experiments")["items"]
    except CliError as exc:
        raise _fail(exc) from None
    table = Table("id", "name", "status", "runs", "created")
    for exp in items:
        table.add_row(
            exp["id"], exp["name"], exp["status"], str(exp["run_count"]), exp["created_at"]
        )
    console.print(table)


def print_verdict(v: dict[str, Any]) -> None:
    # The export's own table and winner line (pure formatting: no database behind it).
    from backend.services.experiments.export import table, winner_text

    head, rows = table(v)
    out = Table(*head)
    for row in rows:
        out.add_row(*row)
    console.print(out)
    for warning in v["warnings"]:
        console.print(f"[yellow]not comparable:[/] {warning}", highlight=False)
    console.print(f"winner: {winner_text(v)}", highlight=False)


@app.command()
def verdict(
    exp_id: str,
    export: Annotated[
        str | None, typer.Option(help="Print the export instead: md, csv or json.")
    ] = None,
    wait: Annotated[bool, typer.Option("--wait", help="Wait until no run is going.")] = False,
) -> None:
    """The verdict table and the winner (or the Markdown/CSV/JSON export)."""
    try:
        with make_client(get_settings()) as client:
            while wait and request(client, "GET", f"/experiments/{exp_id}")["status"] == "running":
                time.sleep(2)
            if export:
                r = client.get(f"/experiments/{exp_id}/verdict/export", params={"format": export})
                if r.status_code >= 400:
                    raise CliError(f"HTTP {r.status_code}: {r.text}")
                typer.echo(r.text, nl=False)
                return
            v = request(client, "GET", f"/experiments/{exp_id}/verdict")
    except CliError as exc:
        raise _fail(exc) from None
    print_verdict(v)
