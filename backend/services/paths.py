"""User-supplied paths are accepted only under the configured roots (symlinks and .. resolved)."""

from __future__ import annotations

from pathlib import Path

from cpt_contract.roots import escaping_entry, is_under

__all__ = ["PathNotAllowed", "escaping_entry", "is_under", "resolve_allowed"]


class PathNotAllowed(ValueError):
    pass


def resolve_allowed(raw: str | Path, roots: list[Path]) -> Path:
    """The resolved absolute path, or ``PathNotAllowed`` saying which roots are allowed."""
    candidate = Path(raw).expanduser()
    if not candidate.is_absolute():
        raise PathNotAllowed(
            f"'{raw}' is a relative path: use an absolute path under one of the allowed roots "
            f"({', '.join(map(str, roots))})"
        )
    # strict=False: a missing path still resolves (its existence is checked separately).
    resolved = candidate.resolve(strict=False)
    if not any(is_under(resolved, root) for root in roots):
        raise PathNotAllowed(
            f"'{raw}' is outside the allowed roots: use a path under "
            f"{', '.join(map(str, roots))}, or add its parent to CPT_ALLOWED_ROOTS"
        )
    return resolved
