"""Command line: ``cpt-panel serve | worker | up | runs ...``.

``serve`` runs the API, ``worker`` a Celery worker with its heartbeat, ``up`` both (``make run``),
``runs`` is the HTTP client (cpt_cli/runs.py). Heavy imports stay inside the commands.
"""

from __future__ import annotations

import typer

from cpt_cli.runs import app as runs_app
from cpt_contract.settings import get_settings

app = typer.Typer(help="cpt-panel: continual-pretraining control panel.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")


@app.callback()
def _main() -> None:
    """A callback keeps typer in sub-command mode even while only ``serve`` exists."""


@app.command()
def serve(reload: bool = typer.Option(False, help="Reload on code changes (development).")) -> None:
    """Run the API (and the built frontend) on CPT_HOST:CPT_PORT."""
    import uvicorn

    settings = get_settings()
    uvicorn.run(
        "backend.main:app",
        host=settings.host,
        port=settings.port,
        reload=reload,
        proxy_headers=True,
        timeout_graceful_shutdown=3,
    )


@app.command()
def worker() -> None:
    """Run a Celery worker on CPT_QUEUE (CPT_WORKER_CONCURRENCY runs at once) with its heartbeat."""
    from worker.boot import run_worker

    run_worker(get_settings())


@app.command()
def up() -> None:
    """The API and one worker in one process tree (what ``make run`` starts); Ctrl-C stops both."""
    from cpt_cli.up import run_up

    raise typer.Exit(run_up(get_settings()))


if __name__ == "__main__":
    app()
