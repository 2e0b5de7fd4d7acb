"""``cpt-panel users create NAME --role ROLE``: a user made on the panel's own database (on the
API's box, like ``serve``), its password printed to a terminal only; ``users list``."""

from __future__ import annotations

import sys

import typer

from cpt_contract.roles import PASSWORD_MIN, Role
from cpt_contract.settings import get_settings

app = typer.Typer(help="Users of the panel (on the API's box, on its database).")


@app.command("create")
def create(
    name: str = typer.Argument(..., help="Lower-case letters, digits, . _ -"),
    role: Role = typer.Option(Role.viewer, help="viewer, operator or admin"),
    password_stdin: bool = typer.Option(
        False, "--password-stdin", help="Read the password from stdin (else one is generated)."
    ),
) -> None:
    """Create a user. A generated password is printed to a terminal only."""
    import re

    from backend.core.db import init_db, write_session
    from backend.services import audit, users
    from cpt_contract.roles import USER_NAME_PATTERN

    if not re.fullmatch(USER_NAME_PATTERN, name):
        raise typer.BadParameter("2-32 lower-case letters, digits, . _ - (a letter first)")
    password = sys.stdin.readline().strip() if password_stdin else None
    if password is not None and len(password) < PASSWORD_MIN:
        raise typer.BadParameter(f"a password has at least {PASSWORD_MIN} characters")
    if password is None and not sys.stdout.isatty():
        typer.echo(
            "not created: the generated password is printed to a terminal only "
            "(run in a terminal, or give one with --password-stdin)",
            err=True,
        )
        raise typer.Exit(1)
    settings = get_settings()
    init_db(settings)
    with write_session(settings) as db:
        try:
            user, secret = users.create_user(db, name, role, password)
        except Exception as exc:  # an existing name: say it in one line
            typer.echo(f"not created: {exc}", err=True)
            raise typer.Exit(1) from None
        audit.append(
            db,
            actor="cli",
            via="cli",
            client="localhost",
            action="user.create",
            target=f"user/{name}",
            changes={"role": role.value},
        )
        db.commit()
    typer.echo(f"user {user.name} ({role.value}) created")
    if password is None:
        typer.echo(f"one-time password: {secret}  (change it after signing in)")


@app.command("list")
def list_users() -> None:
    """Every user with its role (never a password)."""
    from sqlmodel import col, select

    from backend.core.db import init_db, write_session
    from backend.models import User

    settings = get_settings()
    init_db(settings)
    with write_session(settings) as db:
        for user in db.exec(select(User).order_by(col(User.name))):
            state = "" if user.active else " (disabled)"
            typer.echo(f"{user.name}\t{user.role}{state}")
