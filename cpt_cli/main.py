"""Command line: ``cpt-panel serve | worker | up | runs ... | data clean ... | users ...``.

``serve`` runs the API, ``worker`` a Celery worker with its heartbeat, ``up`` both (``make run``),
``runs`` and ``data`` are HTTP clients (cpt_cli/runs.py, cpt_cli/data.py). Heavy imports stay inside the commands.
"""

from __future__ import annotations

import os

import typer

from cpt_cli.data import app as data_app
from cpt_cli.experiments import app as experiments_app
from cpt_cli.runs import app as runs_app
from cpt_cli.users import app as users_app
from cpt_contract.settings import get_settings

app = typer.Typer(help="cpt-panel: continual-pretraining control panel.", no_args_is_help=True)
app.add_typer(runs_app, name="runs")
app.add_typer(data_app, name="data")
app.add_typer(users_app, name="users")
app.add_typer(experiments_app, name="experiments")


@app.callback()
def _main() -> None:
    """A callback keeps typer in sub-command mode even while only ``serve`` exists."""


def _private_files() -> None:
    """Everything the panel creates (database, tokens, run dirs, checkpoints, logs) is for its
    own user only: files 0600, directories 0700. The API and the workers share one uid."""
    os.umask(0o077)


@app.command()
def serve(reload: bool = typer.Option(False, help="Reload on code changes (development).")) -> None:
    """Run the API (and the built frontend) on CPT_HOST:CPT_PORT."""
    import uvicorn

    _private_files()
    settings = get_settings()
    uvicorn.run(
        "backend.main:app",
        host=settings.host,
        port=settings.port,
        reload=reload,
        # X-Forwarded-For only from the proxies named in CPT_TRUSTED_PROXIES (none by default):
        # otherwise any local client could pick the address its wrong tokens are counted on.
        proxy_headers=bool(settings.trusted_proxies),
        forwarded_allow_ips=",".join(settings.trusted_proxies) or None,
        timeout_graceful_shutdown=3,
    )


@app.command()
def worker() -> None:
    """Run a Celery worker on CPT_QUEUE (CPT_WORKER_CONCURRENCY runs at once) with its heartbeat."""
    from worker.agent.boot import run_worker

    _private_files()
    run_worker(get_settings())


@app.command()
def up() -> None:
    """The API and one worker in one process tree (what ``make run`` starts); Ctrl-C stops both."""
    from cpt_cli.up import run_up

    _private_files()
    raise typer.Exit(run_up(get_settings()))


if __name__ == "__main__":
    app()
