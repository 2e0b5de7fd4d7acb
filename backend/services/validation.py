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


_PREFIX = re.compile(r"^(?:Value error, )?([a-z_]+(?:\.(?:[a-z_]+|[0-9]+))*): ")


#: At most this many errors are explained (each may cost a fuzzy match): a body of 90k unknown
#: keys took 6 s of CPU to explain, and starved every other request meanwhile.
MAX_ERRORS = 50


#: A run config has about 100 keys; a body of tens of thousands only costs CPU to explain.
MAX_CONFIG_ITEMS = 2000


def _count_items(value: Any, limit: int) -> int:
    """Keys and list items in ``value``, counting stops just past ``limit``."""
    count, stack = 0, [value]
    while stack and count <= limit:
        item = stack.pop()
        if isinstance(item, dict):
            count += len(item)
            stack.extend(item.values())
        elif isinstance(item, list):
            count += len(item)
            stack.extend(item)
    return count


def check_size(value: Any, loc: list[str | int], what: str = "config") -> None:
    """422 before validation when ``value`` holds more keys and items than any real one."""
    if _count_items(value, MAX_CONFIG_ITEMS) > MAX_CONFIG_ITEMS:
        raise ConfigInvalid(
            [
                error(
                    loc,
                    f"the {what} holds more than {MAX_CONFIG_ITEMS} keys and items: a real one has "
                    "about 100; send only the fields you change",
                    "too_large",
                )
            ]
        )


def config_errors(exc: ValidationError, prefix: list[str | int]) -> ErrorList:
    """``RunConfig`` validation errors with friendlier messages and full body locations."""
    out: ErrorList = []
    errors = exc.errors(include_url=False)
    if len(errors) > MAX_ERRORS:
        more = len(errors) - MAX_ERRORS
        out.append(
            error(
                prefix,
                f"{len(errors)} errors; the first {MAX_ERRORS} follow, {more} more not shown",
                "too_many_errors",
            )
        )
        errors = errors[:MAX_ERRORS]
    for err in errors:
        loc: tuple[str | int, ...] = tuple(err["loc"])
        msg = _hint(dict(err), loc)
        # Cross-field checks raise "section.field: ..." at the model level: point at that field.
        match = _PREFIX.match(err["msg"]) if not loc else None
        if match:
            loc = tuple(int(p) if p.isdigit() else p for p in match.group(1).split("."))
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


def _safe(value: Any, depth: int = 0) -> Any:
    """A JSON-safe, bounded copy of what an error echoes (text re-encoded, bytes decoded)."""
    if isinstance(value, bytes):
        value = value[:200].decode("utf-8", "replace")
    if isinstance(value, str):
        return value[:200].encode("utf-8", "backslashreplace").decode("utf-8")
    if value is None or isinstance(value, bool | int):
        return value if not isinstance(value, int) or abs(value) < 2**63 else str(value)[:60]
    if isinstance(value, float):
        return value if value == value and abs(value) != float("inf") else str(value)
    if depth < 3 and isinstance(value, list | tuple):
        return [_safe(v, depth + 1) for v in list(value)[:20]]
    if depth < 3 and isinstance(value, dict):
        return {_safe(str(k)): _safe(v, depth + 1) for k, v in list(value.items())[:20]}
    return _safe(repr(value)[:200])


#: Fields whose value a 422 never echoes, whatever the route (a secret a user typed).
SECRET_FIELD = re.compile(r"token|password|secret|api_key", re.IGNORECASE)


def safe_errors(errors: Sequence[Any], echo: bool = True) -> ErrorList:
    """Request errors as FastAPI shapes them, each field made safe to serialise; the input is
    left out with ``echo=False`` (a body that carries a secret) and for a secret's field."""
    out: ErrorList = []
    for err in list(errors)[:100]:
        err = dict(err)
        item: dict[str, Any] = {
            "loc": [x if isinstance(x, int) else _safe(str(x)) for x in err.get("loc", ())],
            "msg": _safe(str(err.get("msg", ""))),
            "type": _safe(str(err.get("type", ""))),
        }
        secret = any(isinstance(x, str) and SECRET_FIELD.search(x) for x in err.get("loc", ()))
        if not echo or secret:
            out.append(item)
            continue
        if "input" in err:
            item["input"] = _safe(err["input"])
        if err.get("ctx"):
            item["ctx"] = {str(k): _safe(str(v)) for k, v in dict(err["ctx"]).items()}
        out.append(item)
    return out
