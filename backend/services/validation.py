"""Turn run-config problems into 422 errors that name the field and say the fix.

Every error is ``{"loc": ["body", ...field path], "msg": ..., "type": ...}`` (FastAPI's shape),
so the form can place it next to the field.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from cpt_contract.runconfig.schema import RunConfig

ErrorList = list[dict[str, Any]]


class ConfigInvalid(Exception):
    """Raised by the services; the app answers 422 with ``errors`` as ``detail``."""

    def __init__(self, errors: ErrorList) -> None:
        super().__init__("; ".join(str(e["msg"]) for e in errors))
        self.errors = errors


def error(loc: list[str | int], msg: str, type_: str = "value_error") -> dict[str, Any]:
    return {"loc": loc, "msg": msg, "type": type_}


def _model_at(loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The pydantic model that holds the field at ``loc`` (RunConfig or one section)."""
    model: type[BaseModel] = RunConfig
    for part in loc[:-1]:
        info = model.model_fields.get(str(part))
        annotation = info.annotation if info else None
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return None
        model = annotation
    return model


def _field_at(loc: tuple[str | int, ...]) -> FieldInfo | None:
    model = _model_at(loc)
    return model.model_fields.get(str(loc[-1])) if model and loc else None


def _example(info: FieldInfo | None) -> str | None:
    if info is None or info.default in (PydanticUndefined, None) or info.default == -1:
        return None
    return repr(info.default) if isinstance(info.default, str) else str(info.default)


def _hint(err: dict[str, Any], loc: tuple[str | int, ...]) -> str:
    """pydantic's message plus the fix, where a cheap one is known."""
    msg: str = err["msg"]
    kind: str = err["type"]
    ctx: dict[str, Any] = err.get("ctx") or {}
    info = _field_at(loc)
    title = (info.title if info and info.title else str(loc[-1]) if loc else "value").lower()
    example = _example(info)
    such_as = f" such as {example}" if example else ""
    if kind == "greater_than" and ctx.get("gt") == 0:
        return f"{msg}: use a positive {title}{such_as}"
    bounds = {
        "greater_than": ("above", "gt"),
        "greater_than_equal": ("at least", "ge"),
        "less_than": ("below", "lt"),
        "less_than_equal": ("at most", "le"),
    }
    if kind in bounds:
        words, key = bounds[kind]
        default = f", e.g. {example} (the default)" if example else ""
        return f"{msg}: use a {title} {words} {ctx.get(key)}{default}"
    if kind == "extra_forbidden":
        model = _model_at(loc)
        known = sorted(model.model_fields) if model else []
        close = difflib.get_close_matches(str(loc[-1]), known, n=1)
        where = ".".join(map(str, loc[:-1])) or "the config"
        fix = f"did you mean '{close[0]}'? " if close else ""
        return f"unknown field '{loc[-1]}' in {where}: {fix}known fields: {', '.join(known)}"
    if kind == "string_pattern_mismatch":
        desc = info.description if info and info.description else ""
        return f"{msg}. {desc}".strip() + (f" e.g. {example}" if example else "")
    if kind == "value_error":
        return msg.removeprefix("Value error, ")
    if kind.endswith(("_parsing", "_type")) and example:
        return f"{msg}: e.g. {example}"
    return msg


_PREFIX = re.compile(r"^(?:Value error, )?([a-z_]+(?:\.[a-z_]+)?): ")


def config_errors(exc: ValidationError, prefix: list[str | int]) -> ErrorList:
    """``RunConfig`` validation errors with friendlier messages and full body locations."""
    out: ErrorList = []
    for err in exc.errors(include_url=False):
        loc: tuple[str | int, ...] = tuple(err["loc"])
        msg = _hint(dict(err), loc)
        # Cross-field checks raise "section.field: ..." at the model level: point at that field.
        match = _PREFIX.match(err["msg"]) if not loc else None
        if match:
            loc = tuple(match.group(1).split("."))
            msg = _PREFIX.sub("", err["msg"])
        out.append(error([*prefix, *loc], msg, err["type"]))
    return out


def friendlier(errors: Sequence[Any]) -> ErrorList:
    """FastAPI's request errors with a fix added where one is cheap (e.g. broken JSON)."""
    out: ErrorList = []
    for err in errors:
        err = dict(err)
        if err.get("type") == "json_invalid":
            why = (err.get("ctx") or {}).get("error", "")
            pos = err["loc"][1] if len(err.get("loc", ())) > 1 else "?"
            err["msg"] = (
                f"the body is not valid JSON ({why}, at character {pos}): "
                'send a JSON object such as {"preset": "tiny-demo", "config": {}}'
            )
        out.append(err)
    return out
