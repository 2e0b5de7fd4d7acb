"""Generate ``frontend/src/api/schema.ts`` from the API's OpenAPI schema (``python -m backend.api.schema_ts``).

The UI never types an API shape by hand: every model a public endpoint takes or answers (and the
few models that travel inside a JSON field, ``EXTRA_MODELS``) becomes one TypeScript interface
here. ``tests/contract/test_codegen.py`` regenerates the file and fails when the committed one
differs; ``make codegen`` writes it together with ``contract.ts`` (``cpt_contract/codegen.py``).

Every field is present in an answer (the API serialises each field of its response model, None
included), so a field is optional only in a schema that is never answered (a request body).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from backend.services.notify import LogMessage
from cpt_contract.events import EvalSetInfo

TARGET = Path(__file__).resolve().parents[2] / "frontend" / "src" / "api" / "schema.ts"

#: Models the API sends outside an endpoint's answer (an SSE message, inside an event's ``data``).
EXTRA_MODELS: tuple[type[BaseModel], ...] = (EvalSetInfo, LogMessage)

#: Enums that ``contract.ts`` already declares (``cpt_contract/codegen.py``): imported, not restated.
FROM_CONTRACT = ("FailureKind", "Role", "RunStatus")

_REF = "#/components/schemas/"
_IDENT = re.compile(r"^[A-Za-z_$][A-Za-z0-9_$]*$")

Schema = dict[str, Any]


def _refs(node: Any) -> set[str]:
    """Every schema name ``node`` points at."""
    if isinstance(node, dict):
        found = {node["$ref"].removeprefix(_REF)} if isinstance(node.get("$ref"), str) else set()
        for value in node.values():
            found |= _refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_refs(v) for v in node)) if node else set()
    return set()


def _closure(names: set[str], schemas: dict[str, Schema]) -> set[str]:
    seen: set[str] = set()
    todo = list(names)
    while todo:
        name = todo.pop()
        if name in seen or name not in schemas:
            continue
        seen.add(name)
        todo.extend(_refs(schemas[name]))
    return seen


def _public_operations(openapi: Schema) -> list[Schema]:
    """The operations the UI may call: everything but the workers' ``/internal`` endpoints."""
    return [
        op
        for path, item in openapi["paths"].items()
        if "/internal/" not in path
        for op in item.values()
        if isinstance(op, dict)
    ]


def _ts(node: Schema) -> str:
    """The TypeScript type of one JSON Schema node (the keywords FastAPI and pydantic emit)."""
    if "$ref" in node:
        return str(node["$ref"]).removeprefix(_REF)
    if "const" in node:
        return json.dumps(node["const"])
    if "enum" in node:
        return " | ".join(json.dumps(v) for v in node["enum"])
    for key in ("anyOf", "oneOf"):
        if key in node:
            return " | ".join(dict.fromkeys(_ts(n) for n in node[key]))
    if "allOf" in node:
        return " & ".join(_ts(n) for n in node["allOf"])
    kind = node.get("type")
    if kind == "string":
        return "string"
    if kind in ("integer", "number"):
        return "number"
    if kind == "boolean":
        return "boolean"
    if kind == "null":
        return "null"
    if kind == "array":
        items = node.get("items")
        inner = _ts(items) if items else "unknown"
        return f"({inner})[]" if " " in inner else f"{inner}[]"
    if kind == "object" or "properties" in node:
        if "properties" in node:
            return _object(node, answered=True, indent="")
        extra = node.get("additionalProperties", True)
        return f"Record<string, {_ts(extra) if isinstance(extra, dict) else 'unknown'}>"
    return "unknown"


def _object(node: Schema, *, answered: bool, indent: str) -> str:
    required = set(node.get("required", []))
    lines = ["{"]
    for name, prop in node.get("properties", {}).items():
        doc = prop.get("description")
        if doc:
            lines.append(f"{indent}  /** {' '.join(str(doc).split())} */")
        key = name if _IDENT.match(name) else json.dumps(name)
        optional = name not in required and not answered
        lines.append(f"{indent}  {key}{'?' if optional else ''}: {_ts(prop)};")
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def _declaration(name: str, node: Schema, *, answered: bool) -> str:
    doc = node.get("description")
    head = f"/** {' '.join(str(doc).split())} */\n" if doc else ""
    if node.get("type") == "object" and "properties" in node:
        return f"{head}export interface {name} {_object(node, answered=answered, indent='')}\n"
    return f"{head}export type {name} = {_ts(node)};\n"


def render(openapi: Schema | None = None) -> str:
    if openapi is None:
        from backend.main import app

        openapi = app.openapi()
    schemas: dict[str, Schema] = dict(openapi.get("components", {}).get("schemas", {}))
    operations = _public_operations(openapi)
    answered = _closure(
        set().union(*(_refs(op.get("responses", {})) for op in operations)), schemas
    )
    used = answered | _closure(set().union(*(_refs(op) for op in operations)), schemas)
    _, extra = models_json_schema(
        [(m, "serialization") for m in EXTRA_MODELS], ref_template=_REF + "{model}"
    )
    for name, node in extra.get("$defs", {}).items():
        schemas.setdefault(name, node)
        used.add(name)
        answered.add(name)
    names = sorted(used - set(FROM_CONTRACT))
    shared = ", ".join(n for n in FROM_CONTRACT if n in used)
    body = "\n".join(_declaration(n, schemas[n], answered=n in answered) for n in names)
    return (
        "// Generated by `python -m backend.api.schema_ts` from the API's OpenAPI schema. Do not edit:\n"
        "// change the pydantic model, then run `make codegen`.\n\n"
        f'import type {{ {shared} }} from "./contract";\n\n'
        f"export type {{ {shared} }};\n\n" + body
    )


def main() -> int:
    TARGET.write_text(render(), encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
