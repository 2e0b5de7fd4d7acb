"""Command line: ``cpt-panel serve`` (and, by the worker helper, worker/up/runs commands).

The worker helper extends this with worker/up/runs commands; keep ``serve`` working.
"""

from __future__ import annotations

import typer

from backend.core.config import get_settings

app = typer.Typer(help="cpt-panel: continual-pretraining control panel.", no_args_is_help=True)


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


if __name__ == "__main__":
    app()
