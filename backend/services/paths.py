"""User-supplied paths are accepted only under the configured roots (symlinks and .. resolved),
never inside the panel's own state: the rules are ``cpt_contract.roots``, shared with the worker."""

from __future__ import annotations

from pathlib import Path

from cpt_contract.roots import PathRefused, Roots, escaping_entry, is_under, resolve_user_path

__all__ = ["PathNotAllowed", "escaping_entry", "is_under", "resolve_allowed"]

PathNotAllowed = PathRefused


def resolve_allowed(raw: str | Path, roots: Roots) -> Path:
    """The resolved absolute path, or ``PathNotAllowed`` saying which roots are allowed."""
    return resolve_user_path(raw, roots)
