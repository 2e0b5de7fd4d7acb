"""The frontend's statuses are generated from the contract, never typed twice."""

from __future__ import annotations

from cpt_contract import codegen
from cpt_contract.statuses import ACTIVE_STATUSES, TERMINAL_STATUSES, RunStatus


def test_committed_typescript_matches_the_contract() -> None:
    assert codegen.TARGET.read_text(encoding="utf-8") == codegen.render(), (
        "frontend/src/api/contract.ts is stale: run `python -m cpt_contract.codegen`"
    )


def test_committed_api_types_match_the_openapi_schema() -> None:
    """frontend/src/api/schema.ts is the API's OpenAPI schema as TypeScript: a changed response
    model without a regenerated file fails here."""
    from backend.api import schema_ts

    assert schema_ts.TARGET.read_text(encoding="utf-8") == schema_ts.render(), (
        "frontend/src/api/schema.ts is stale: run `make codegen`"
    )


def test_every_status_is_active_or_terminal() -> None:
    assert set(RunStatus) == ACTIVE_STATUSES | TERMINAL_STATUSES
    assert not ACTIVE_STATUSES & TERMINAL_STATUSES


def test_no_other_module_spells_the_status_list() -> None:
    """The statuses are defined once in Python and generated for TypeScript: no other file lists
    three or more of them in a row (an array, a set, a union or a rank table)."""
    import re
    from pathlib import Path

    name = "|".join(s.value for s in RunStatus)
    item = rf"""(?:["'](?:{name})["']|\b(?:{name})\s*:\s*\d+)"""
    listed = re.compile(rf"{item}(?:\s*[,|]\s*{item}){{2,}}")
    root = Path(__file__).resolve().parents[2]
    spelled = []
    for path in [
        *root.glob("backend/**/*.py"),
        *root.glob("worker/**/*.py"),
        *root.glob("cpt_cli/**/*.py"),
        *root.glob("frontend/src/**/*.ts*"),
    ]:
        if path.name in {"contract.ts"}:
            continue
        if listed.search(path.read_text(encoding="utf-8")):
            spelled.append(str(path.relative_to(root)))
    assert not spelled, f"these files spell the status list again: {spelled}"
